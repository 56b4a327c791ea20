//! `switchyard serve`: build one validated [`NodeConfig`], bind, and run the node until SIGTERM
//! or SIGINT.
//!
//! Settings merge in rising precedence:
//!
//! ```text
//!   NodeConfig::default() < --config FILE (TOML) < SWITCHYARD_* environment < flags
//! ```
//!
//! The merge is a pure function of the flags, an explicit environment map and a file reader
//! ([`resolve`]), so tests exercise every precedence rule without touching the process
//! environment. Both listeners are bound before the node starts, so a port in use is reported
//! as such rather than as a node failure half-way through start-up. Tokens are only ever
//! logged as "set" or "not set".

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use switchyard_server::auth::{Token, Tokens};
use switchyard_server::config::parse_peers;
use switchyard_server::{
    Connector, NodeConfig, NodeDeps, SystemClock, TcpConnector, TlsConnector, TlsMaterial,
};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::args::ServeArgs;

/// Environment variables, by name. Tests build one by hand; [`process_env`] reads the real one.
pub type Env = BTreeMap<String, String>;

/// The `SWITCHYARD_*` variables of this process.
pub fn process_env() -> Env {
    std::env::vars()
        .filter(|(name, _)| name.starts_with("SWITCHYARD_"))
        .collect()
}

/// Everything `serve` needs after merging: the node's settings and its tokens.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The validated node configuration.
    pub config: NodeConfig,
    /// Tokens per role; `Debug` redacts them.
    pub tokens: Tokens,
}

/// Merges defaults < config file < `env` < flags, validates, and loads the tokens.
///
/// `read_file` reads the config and token files (the real filesystem in `serve`). Every error
/// names the setting (and the variable or file it came from) and the rule it broke.
pub fn resolve(
    args: &ServeArgs,
    env: &Env,
    read_file: &dyn Fn(&Path) -> io::Result<String>,
) -> anyhow::Result<ServeSettings> {
    let config_path = args
        .config
        .clone()
        .or_else(|| env.get("SWITCHYARD_CONFIG").map(PathBuf::from));
    let mut config = match &config_path {
        Some(path) => {
            let text = read_file(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str::<NodeConfig>(&text).map_err(|e| {
                anyhow::anyhow!(
                    "config file {}: {}",
                    path.display(),
                    e.to_string().trim_end()
                )
            })?
        }
        None => NodeConfig::default(),
    };

    apply_env(&mut config, env)?;
    apply_flags(&mut config, args)?;
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;

    let tokens = Tokens {
        admin: load_token("admin", args.admin_token_file.as_deref(), env, read_file)?,
        client: load_token("client", args.client_token_file.as_deref(), env, read_file)?,
        cluster: load_token(
            "cluster",
            args.cluster_token_file.as_deref(),
            env,
            read_file,
        )?,
    };
    Ok(ServeSettings { config, tokens })
}

fn apply_env(config: &mut NodeConfig, env: &Env) -> anyhow::Result<()> {
    if let Some(v) = env.get("SWITCHYARD_NODE_ID") {
        config.node_id = parse_number(v, "SWITCHYARD_NODE_ID", "node_id")?;
    }
    if let Some(v) = env.get("SWITCHYARD_DATA_DIR") {
        config.data_dir = PathBuf::from(v);
    }
    if let Some(v) = env.get("SWITCHYARD_GRPC_ADDR") {
        config.grpc_addr = v.clone();
    }
    if let Some(v) = env.get("SWITCHYARD_HTTP_ADDR") {
        config.http_addr = v.clone();
    }
    if let Some(v) = env.get("SWITCHYARD_ADVERTISE_ADDR") {
        config.advertise_addr = Some(v.clone()).filter(|a| !a.is_empty());
    }
    if let Some(v) = env.get("SWITCHYARD_PEERS") {
        config.peers = parse_peers(v).map_err(|e| anyhow::anyhow!("SWITCHYARD_PEERS: {e}"))?;
    }
    if let Some(v) = env.get("SWITCHYARD_TICK_INTERVAL_MS") {
        config.tick_interval_ms =
            parse_number(v, "SWITCHYARD_TICK_INTERVAL_MS", "tick_interval_ms")?;
    }
    for (variable, field) in [
        ("SWITCHYARD_TLS_CERT", &mut config.tls_cert),
        ("SWITCHYARD_TLS_KEY", &mut config.tls_key),
        ("SWITCHYARD_TLS_CA", &mut config.tls_ca),
        ("SWITCHYARD_TLS_CLIENT_CA", &mut config.tls_client_ca),
    ] {
        if let Some(v) = env.get(variable) {
            *field = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
        }
    }
    if let Some(v) = env.get("SWITCHYARD_INSECURE") {
        config.insecure = parse_bool(v, "SWITCHYARD_INSECURE", "insecure")?;
    }
    if let Some(v) = env.get("SWITCHYARD_JOIN") {
        config.join = parse_bool(v, "SWITCHYARD_JOIN", "join")?;
    }
    Ok(())
}

fn parse_bool(value: &str, variable: &str, field: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "" | "0" | "false" | "no" => Ok(false),
        other => bail!("{variable}: invalid `{field}`: must be true or false, got {other:?}"),
    }
}

fn apply_flags(config: &mut NodeConfig, args: &ServeArgs) -> anyhow::Result<()> {
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir.clone_from(dir);
    }
    if let Some(addr) = &args.grpc_addr {
        config.grpc_addr.clone_from(addr);
    }
    if let Some(addr) = &args.http_addr {
        config.http_addr.clone_from(addr);
    }
    if let Some(addr) = &args.advertise_addr {
        config.advertise_addr = Some(addr.clone());
    }
    if let Some(peers) = &args.peers {
        config.peers = parse_peers(peers).map_err(|e| anyhow::anyhow!("--peers: {e}"))?;
    }
    if args.insecure {
        config.insecure = true;
    }
    if args.join {
        config.join = true;
    }
    for (flag, field) in [
        (&args.tls_cert, &mut config.tls_cert),
        (&args.tls_key, &mut config.tls_key),
        (&args.tls_ca, &mut config.tls_ca),
        (&args.tls_client_ca, &mut config.tls_client_ca),
    ] {
        if flag.is_some() {
            field.clone_from(flag);
        }
    }
    let (flags, limits) = (&args.limits, &mut config.limits);
    let set = |flag: Option<u32>, field: &mut u32| {
        if let Some(v) = flag {
            *field = v;
        }
    };
    set(flags.report_deltas_max, &mut limits.report_deltas_max);
    set(flags.pending_deltas_max, &mut limits.pending_deltas_max);
    set(
        flags.report_rate_per_instance_max,
        &mut limits.report_rate_per_instance_max,
    );
    set(flags.watch_streams_max, &mut limits.watch_streams_max);
    set(flags.message_bytes_max, &mut limits.message_bytes_max);
    set(flags.audit_page_max, &mut limits.audit_page_max);
    if let Some(v) = flags.snapshot_bytes_max {
        limits.snapshot_bytes_max = v;
    }
    Ok(())
}

fn parse_number(value: &str, variable: &str, field: &str) -> anyhow::Result<u64> {
    value.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "{variable}: invalid `{field}`: must be a non-negative integer, got {value:?}"
        )
    })
}

/// A role's token: `--<role>-token-file` beats `SWITCHYARD_<ROLE>_TOKEN`, which beats
/// `SWITCHYARD_<ROLE>_TOKEN_FILE`. Errors never include the token itself.
fn load_token(
    role: &str,
    file_flag: Option<&Path>,
    env: &Env,
    read_file: &dyn Fn(&Path) -> io::Result<String>,
) -> anyhow::Result<Option<Token>> {
    let variable = format!("SWITCHYARD_{}_TOKEN", role.to_ascii_uppercase());
    let file_variable = format!("{variable}_FILE");
    let from_file = |path: &Path, source: String| -> anyhow::Result<Option<Token>> {
        let text = read_file(path).with_context(|| {
            format!(
                "cannot read the {role} token file {} ({source})",
                path.display()
            )
        })?;
        Token::new(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("the {role} token in {} ({source}): {e}", path.display()))
    };
    if let Some(path) = file_flag {
        return from_file(path, format!("--{role}-token-file"));
    }
    if let Some(value) = env.get(&variable) {
        return Token::new(value)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{variable}: {e}"));
    }
    if let Some(path) = env.get(&file_variable) {
        return from_file(Path::new(path), file_variable);
    }
    Ok(None)
}

/// Refuses a non-loopback bind without any token unless `insecure` is set (DESIGN §8).
pub fn check_exposure(settings: &ServeSettings) -> anyhow::Result<()> {
    let config = &settings.config;
    if config.binds_non_loopback() && !settings.tokens.any() && !config.insecure {
        bail!(
            "refusing to start: grpc_addr {} / http_addr {} are reachable from other hosts and no \
             tokens are set. Set SWITCHYARD_ADMIN_TOKEN, SWITCHYARD_CLIENT_TOKEN and \
             SWITCHYARD_CLUSTER_TOKEN (or --admin-token-file, --client-token-file, \
             --cluster-token-file), bind 127.0.0.1, or pass --insecure for development",
            config.grpc_addr,
            config.http_addr
        );
    }
    Ok(())
}

/// Runs `switchyard serve` until SIGTERM or SIGINT.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = resolve(&args, &process_env(), &|path| std::fs::read_to_string(path))?;
    check_exposure(&settings)?;
    let ServeSettings { config, tokens } = settings;
    if config.binds_non_loopback() && !tokens.any() {
        tracing::warn!(
            "--insecure: serving a non-loopback address with no tokens; anyone can change breakers"
        );
    }

    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create data_dir {} (set --data-dir)",
            config.data_dir.display()
        )
    })?;
    let grpc_listener = bind("gRPC", "--grpc-addr", &config.grpc_addr).await?;
    let http_listener = bind("HTTP", "--http-addr", &config.http_addr).await?;

    tracing::info!(
        node_id = config.node_id,
        grpc_addr = %config.grpc_addr,
        http_addr = %config.http_addr,
        advertise_addr = config.advertised(),
        data_dir = %config.data_dir.display(),
        peers = ?config.peers,
        admin_token = tokens.admin.is_some(),
        client_token = tokens.client.is_some(),
        cluster_token = tokens.cluster.is_some(),
        tls = config.tls_enabled(),
        mtls = config.tls_client_ca.is_some(),
        "starting node"
    );

    // Peers are dialled over https when this node serves TLS: the cluster is all-TLS or
    // all-plaintext, never mixed.
    let connector: Arc<dyn Connector> = match TlsMaterial::load(&config)? {
        Some(material) => Arc::new(TlsConnector::new(material)),
        None => Arc::new(TcpConnector::default()),
    };
    let shutdown = shutdown_signal()?;
    let deps = NodeDeps {
        clock: Arc::new(SystemClock),
        connector,
        tokens,
        // The real disk: sled in `data_dir`.
        disk: None,
    };
    switchyard_server::run(
        config,
        deps,
        switchyard_server::transport::tcp_incoming(grpc_listener),
        Some(http_listener),
        shutdown,
    )
    .await
    .context("the node stopped with an error")?;
    tracing::info!("node stopped");
    Ok(())
}

async fn bind(what: &str, flag: &str, addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::AddrInUse => {
                " (the port is in use: is another node running? choose another with "
            }
            io::ErrorKind::PermissionDenied => " (permission denied: use a port above 1024 with ",
            _ => " (set another address with ",
        };
        anyhow::anyhow!("cannot bind the {what} address {addr}: {e}{hint}{flag})")
    })
}

/// A future that resolves on the first SIGTERM or SIGINT. The handlers are installed now, so a
/// signal arriving during start-up is not lost.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install a SIGTERM handler")?;
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot install a SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received; shutting down"),
            _ = interrupt.recv() => tracing::info!("SIGINT received; shutting down"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn files(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&Path) -> io::Result<String> {
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
            err.contains("SWITCHYARD_JOIN")
                && err.contains("`join`")
                && err.contains("true or false"),
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
        assert!(s.tokens.cluster.is_none());
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
}
