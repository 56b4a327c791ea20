//! Tests of the settings merge: precedence, errors naming their source, tokens.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn files(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&Path) -> io::Result<String> {
    move |path: &Path| {
        pairs
            .iter()
            .find(|(name, _)| Path::new(name) == path)
            .map(|(_, text)| (*text).to_string())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
}

const CONFIG: &[(&str, &str)] = &[(
    "node.toml",
    "node_id = 2\ndata_dir = \"/file\"\ngrpc_addr = \"127.0.0.1:1001\"\n\
     http_addr = \"127.0.0.1:1002\"\ntick_interval_ms = 50\n",
)];

#[test]
fn defaults_apply_without_any_source() {
    let s = resolve(&ServeArgs::default(), &Env::new(), &files(&[])).unwrap();
    assert_eq!(s.config, NodeConfig::default());
    assert!(!s.tokens.any());
}

#[test]
fn file_then_env_then_flags_take_precedence() {
    // phase: the file alone
    let args = ServeArgs {
        config: Some("node.toml".into()),
        ..ServeArgs::default()
    };
    let s = resolve(&args, &Env::new(), &files(CONFIG)).unwrap();
    assert_eq!(s.config.node_id, 2);
    assert_eq!(s.config.data_dir, PathBuf::from("/file"));
    assert_eq!(s.config.tick_interval_ms, 50);

    // phase: the environment overrides the file, field by field
    let e = env(&[
        ("SWITCHYARD_NODE_ID", "3"),
        ("SWITCHYARD_GRPC_ADDR", "127.0.0.1:2001"),
        ("SWITCHYARD_PEERS", "3=127.0.0.1:2001,4=127.0.0.1:2002"),
    ]);
    let s = resolve(&args, &e, &files(CONFIG)).unwrap();
    assert_eq!(s.config.node_id, 3);
    assert_eq!(s.config.grpc_addr, "127.0.0.1:2001");
    assert_eq!(s.config.http_addr, "127.0.0.1:1002", "kept from the file");
    assert_eq!(s.config.peers.len(), 2);

    // phase: flags override both
    let args = ServeArgs {
        node_id: Some(4),
        grpc_addr: Some("127.0.0.1:3001".into()),
        data_dir: Some("/flag".into()),
        ..args
    };
    let s = resolve(&args, &e, &files(CONFIG)).unwrap();
    assert_eq!(s.config.node_id, 4);
    assert_eq!(s.config.grpc_addr, "127.0.0.1:3001");
    assert_eq!(s.config.data_dir, PathBuf::from("/flag"));
    assert_eq!(s.config.tick_interval_ms, 50, "kept from the file");
}

#[test]
fn join_comes_from_the_file_the_environment_or_the_flag() {
    let s = resolve(&ServeArgs::default(), &Env::new(), &files(&[])).unwrap();
    assert!(
        !s.config.join,
        "a node initializes a fresh cluster by default"
    );

    static JOIN_FILE: &[(&str, &str)] = &[("join.toml", "join = true\n")];
    let args = ServeArgs {
        config: Some("join.toml".into()),
        ..ServeArgs::default()
    };
    assert!(
        resolve(&args, &Env::new(), &files(JOIN_FILE))
            .unwrap()
            .config
            .join
    );

    let e = env(&[("SWITCHYARD_JOIN", "true")]);
    let s = resolve(&ServeArgs::default(), &e, &files(&[])).unwrap();
    assert!(s.config.join);

    let args = ServeArgs {
        join: true,
        ..ServeArgs::default()
    };
    assert!(
        resolve(&args, &Env::new(), &files(&[]))
            .unwrap()
            .config
            .join
    );

    let e = env(&[("SWITCHYARD_JOIN", "maybe")]);
    let err = resolve(&ServeArgs::default(), &e, &files(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SWITCHYARD_JOIN") && err.contains("`join`") && err.contains("true or false"),
        "{err}"
    );
}

#[test]
fn errors_name_the_field_and_the_source() {
    let e = env(&[("SWITCHYARD_NODE_ID", "abc")]);
    let err = resolve(&ServeArgs::default(), &e, &files(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SWITCHYARD_NODE_ID") && err.contains("node_id"),
        "{err}"
    );

    let args = ServeArgs {
        node_id: Some(0),
        ..ServeArgs::default()
    };
    let err = resolve(&args, &Env::new(), &files(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`node_id`"), "{err}");

    let args = ServeArgs {
        grpc_addr: Some("localhost".into()),
        ..ServeArgs::default()
    };
    let err = resolve(&args, &Env::new(), &files(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`grpc_addr`"), "{err}");

    let args = ServeArgs {
        peers: Some("1:127.0.0.1:1".into()),
        ..ServeArgs::default()
    };
    let err = resolve(&args, &Env::new(), &files(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--peers") && err.contains("ID=HOST:PORT"),
        "{err}"
    );

    let args = ServeArgs {
        node_id: Some(5),
        peers: Some("1=a:1".into()),
        ..ServeArgs::default()
    };
    let err = resolve(&args, &Env::new(), &files(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`peers`"), "{err}");

    static BAD: &[(&str, &str)] = &[("bad.toml", "tick_intervl_ms = 5\n")];
    let args = ServeArgs {
        config: Some("bad.toml".into()),
        ..ServeArgs::default()
    };
    let err = resolve(&args, &Env::new(), &files(BAD))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.toml") && err.contains("tick_intervl_ms"),
        "{err}"
    );

    let args = ServeArgs {
        config: Some("missing.toml".into()),
        ..ServeArgs::default()
    };
    let err = format!(
        "{:#}",
        resolve(&args, &Env::new(), &files(&[])).unwrap_err()
    );
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn tokens_come_from_files_or_env_and_are_never_shown() {
    static TOKENS: &[(&str, &str)] = &[("admin.tok", "file-secret\n"), ("empty.tok", "  \n")];
    let e = env(&[
        ("SWITCHYARD_ADMIN_TOKEN", "env-secret"),
        ("SWITCHYARD_CLIENT_TOKEN", "c"),
    ]);
    let s = resolve(&ServeArgs::default(), &e, &files(TOKENS)).unwrap();
    assert!(s.tokens.admin.is_some() && s.tokens.client.is_some());
    assert!(s.tokens.cluster.is_none() && s.tokens.viewer.is_none());
    assert!(!format!("{s:?}").contains("env-secret"));

    let args = ServeArgs {
        admin_token_file: Some("admin.tok".into()),
        ..ServeArgs::default()
    };
    let s = resolve(&args, &e, &files(TOKENS)).unwrap();
    assert_eq!(
        s.tokens.admin,
        Some(Token::new("file-secret").unwrap()),
        "the flag wins"
    );

    let args = ServeArgs {
        admin_token_file: Some("empty.tok".into()),
        ..ServeArgs::default()
    };
    let err = resolve(&args, &Env::new(), &files(TOKENS))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("admin token") && err.contains("empty"),
        "{err}"
    );
}

#[test]
fn tls_and_limits_come_from_env_and_flags() {
    // phase: TLS paths from the environment, then a flag overriding one of them
    let e = env(&[
        ("SWITCHYARD_TLS_CERT", "/env/node.pem"),
        ("SWITCHYARD_TLS_KEY", "/env/node.key"),
        ("SWITCHYARD_TLS_CA", "/env/ca.pem"),
    ]);
    let s = resolve(&ServeArgs::default(), &e, &files(&[])).unwrap();
    assert_eq!(s.config.tls_cert, Some(PathBuf::from("/env/node.pem")));
    assert_eq!(s.config.tls_client_ca, None);
    let args = ServeArgs {
        tls_ca: Some("/flag/ca.pem".into()),
        tls_client_ca: Some("/flag/ca.pem".into()),
        ..ServeArgs::default()
    };
    let s = resolve(&args, &e, &files(&[])).unwrap();
    assert_eq!(s.config.tls_ca, Some(PathBuf::from("/flag/ca.pem")));
    assert_eq!(s.config.tls_client_ca, Some(PathBuf::from("/flag/ca.pem")));

    // phase: a half-configured TLS setup names the missing setting
    let e = env(&[("SWITCHYARD_TLS_CERT", "/env/node.pem")]);
    let err = resolve(&ServeArgs::default(), &e, &files(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`tls_key`"), "{err}");

    // phase: limit flags override the config file's [limits]
    static LIMITS: &[(&str, &str)] = &[(
        "limits.toml",
        "[limits]\nwatch_streams_max = 7\nreport_deltas_max = 9\n",
    )];
    let args = ServeArgs {
        config: Some("limits.toml".into()),
        limits: crate::args::LimitArgs {
            watch_streams_max: Some(3),
            ..crate::args::LimitArgs::default()
        },
        ..ServeArgs::default()
    };
    let s = resolve(&args, &Env::new(), &files(LIMITS)).unwrap();
    assert_eq!(s.config.limits.watch_streams_max, 3, "the flag wins");
    assert_eq!(s.config.limits.report_deltas_max, 9, "kept from the file");
    let args = ServeArgs {
        limits: crate::args::LimitArgs {
            message_bytes_max: Some(1_000),
            ..crate::args::LimitArgs::default()
        },
        ..ServeArgs::default()
    };
    let err = resolve(&args, &Env::new(), &files(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.message_bytes_max"), "{err}");
    for (percent, ok) in [(100, true), (101, false), (0, true)] {
        let args = ServeArgs {
            limits: crate::args::LimitArgs {
                cpu_pressure_max_percent: Some(percent),
                cpu_pressure_file: Some("/run/psi".into()),
                ..crate::args::LimitArgs::default()
            },
            ..ServeArgs::default()
        };
        match resolve(&args, &Env::new(), &files(&[])) {
            Ok(s) => {
                assert!(ok, "{percent} must be refused");
                assert_eq!(s.config.limits.cpu_pressure_max_percent, percent);
                assert_eq!(s.config.cpu_pressure_file, Some("/run/psi".into()));
            }
            Err(e) => {
                assert!(!ok, "{percent}: {e}");
                let e = e.to_string();
                assert!(e.contains("limits.cpu_pressure_max_percent"), "{e}");
                assert!(e.contains("at most 100"), "{e}");
            }
        }
    }
}

#[test]
fn non_loopback_without_tokens_needs_insecure() {
    let args = ServeArgs {
        grpc_addr: Some("0.0.0.0:7070".into()),
        ..ServeArgs::default()
    };
    let s = resolve(&args, &Env::new(), &files(&[])).unwrap();
    let err = check_exposure(&s).unwrap_err().to_string();
    assert!(
        err.contains("--insecure") && err.contains("SWITCHYARD_ADMIN_TOKEN"),
        "{err}"
    );

    let args = ServeArgs {
        insecure: true,
        ..args
    };
    check_exposure(&resolve(&args, &Env::new(), &files(&[])).unwrap()).unwrap();

    let e = env(&[
        ("SWITCHYARD_ADMIN_TOKEN", "t"),
        ("SWITCHYARD_GRPC_ADDR", "0.0.0.0:1"),
    ]);
    check_exposure(&resolve(&ServeArgs::default(), &e, &files(&[])).unwrap()).unwrap();

    check_exposure(&resolve(&ServeArgs::default(), &Env::new(), &files(&[])).unwrap()).unwrap();
}

#[test]
fn the_viewer_token_and_the_http_flags_come_from_env_files_and_flags() {
    static TOKENS: &[(&str, &str)] = &[("viewer.tok", "view-secret\n")];
    let e = env(&[
        ("SWITCHYARD_VIEWER_TOKEN", "env-viewer"),
        ("SWITCHYARD_METRICS_REQUIRE_TOKEN", "true"),
    ]);
    let s = resolve(&ServeArgs::default(), &e, &files(TOKENS)).unwrap();
    assert_eq!(s.tokens.viewer, Some(Token::new("env-viewer").unwrap()));
    assert!(s.tokens.admin.is_none());
    assert!(s.config.metrics_require_token);
    assert!(
        token_files(&ServeArgs::default(), &e).is_empty(),
        "no file to watch"
    );

    let args = ServeArgs {
        viewer_token_file: Some("viewer.tok".into()),
        http_plaintext: true,
        ..ServeArgs::default()
    };
    let s = resolve(&args, &e, &files(TOKENS)).unwrap();
    assert_eq!(s.tokens.viewer, Some(Token::new("view-secret").unwrap()));
    assert!(s.config.http_plaintext);
    assert_eq!(token_files(&args, &e), vec![PathBuf::from("viewer.tok")]);

    let e = env(&[("SWITCHYARD_ADMIN_TOKEN_FILE", "/run/admin.tok")]);
    assert_eq!(
        token_files(&ServeArgs::default(), &e),
        vec![PathBuf::from("/run/admin.tok")]
    );
}

#[test]
fn plaintext_http_beside_tls_grpc_needs_loopback_or_insecure() {
    let args = ServeArgs {
        tls_cert: Some("/c.pem".into()),
        tls_key: Some("/c.key".into()),
        tls_ca: Some("/ca.pem".into()),
        http_addr: Some("0.0.0.0:7080".into()),
        http_plaintext: true,
        ..ServeArgs::default()
    };
    let err = resolve(&args, &Env::new(), &files(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`http_plaintext`") && err.contains("--insecure"),
        "{err}"
    );
    let insecure = ServeArgs {
        insecure: true,
        ..args.clone()
    };
    resolve(&insecure, &Env::new(), &files(&[])).unwrap();
    let loopback = ServeArgs {
        http_addr: Some("127.0.0.1:7080".into()),
        ..args
    };
    resolve(&loopback, &Env::new(), &files(&[])).unwrap();
}
