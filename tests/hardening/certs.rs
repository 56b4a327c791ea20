//! Test PKI generated per test with rcgen: a CA and a node certificate for `127.0.0.1` and
//! `localhost`, usable both as a server and as a client certificate (the node presents it to
//! its peers under mTLS).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA and one certificate it signed, as PEM strings and as files in a directory.
#[derive(Debug)]
pub struct Pki {
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The node certificate (PEM).
    pub cert_pem: String,
    /// The node key (PEM).
    pub key_pem: String,
    /// `ca.pem`.
    pub ca: PathBuf,
    /// `node.pem`.
    pub cert: PathBuf,
    /// `node.key`.
    pub key: PathBuf,
}

impl Pki {
    /// Generates a CA named `name` and a node certificate, written under `dir/name/`.
    pub fn generate(dir: &Path, name: &str) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("switchyard {name} test CA"));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("self-signed CA");

        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("node params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("switchyard {name} node"));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("node key");
        let cert = params.signed_by(&key, &ca).expect("node certificate");

        let out = dir.join(name);
        std::fs::create_dir_all(&out).expect("pki dir");
        let pki = Self {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca: out.join("ca.pem"),
            cert: out.join("node.pem"),
            key: out.join("node.key"),
        };
        std::fs::write(&pki.ca, &pki.ca_pem).expect("write ca");
        std::fs::write(&pki.cert, &pki.cert_pem).expect("write cert");
        std::fs::write(&pki.key, &pki.key_pem).expect("write key");
        pki
    }

    /// `serve` flags for TLS with this PKI (and mTLS on Raft when `mtls`).
    pub fn serve_args(&self, mtls: bool) -> Vec<String> {
        let mut args = vec![
            "--tls-cert".to_string(),
            self.cert.display().to_string(),
            "--tls-key".to_string(),
            self.key.display().to_string(),
            "--tls-ca".to_string(),
            self.ca.display().to_string(),
        ];
        if mtls {
            args.push("--tls-client-ca".to_string());
            args.push(self.ca.display().to_string());
        }
        args
    }
}
