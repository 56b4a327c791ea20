//! Settings of `switchyard serve`, merged in rising precedence:
//!
//! ```text
//!   NodeConfig::default() < --config FILE (TOML) < SWITCHYARD_* environment < flags
//! ```
//!
//! The merge is a pure function of the flags, an explicit environment map and a file reader
//! ([`resolve`]), so tests exercise every precedence rule without touching the process
//! environment. Tokens are only ever reported as "set" or "not set".

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use switchyard_server::NodeConfig;
use switchyard_server::auth::{Token, TokenSet};
use switchyard_server::config::parse_peers;

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
    pub tokens: TokenSet,
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

    let tokens = load_tokens(args, env, read_file)?;
    Ok(ServeSettings { config, tokens })
}

/// Every role's token, from its file flag, its variable or its `_FILE` variable; `serve` calls
/// this again on reload (the environment does not change, the files may).
pub fn load_tokens(
    args: &ServeArgs,
    env: &Env,
    read_file: &dyn Fn(&Path) -> io::Result<String>,
) -> anyhow::Result<TokenSet> {
    Ok(TokenSet {
        admin: load_token("admin", args.admin_token_file.as_deref(), env, read_file)?,
        viewer: load_token("viewer", args.viewer_token_file.as_deref(), env, read_file)?,
        client: load_token("client", args.client_token_file.as_deref(), env, read_file)?,
        cluster: load_token(
            "cluster",
            args.cluster_token_file.as_deref(),
            env,
            read_file,
        )?,
    })
}

/// The token files `serve` reads: each role's `--<role>-token-file` or
/// `SWITCHYARD_<ROLE>_TOKEN_FILE` (a token set directly in the environment has no file).
pub fn token_files(args: &ServeArgs, env: &Env) -> Vec<PathBuf> {
    [
        ("ADMIN", &args.admin_token_file),
        ("VIEWER", &args.viewer_token_file),
        ("CLIENT", &args.client_token_file),
        ("CLUSTER", &args.cluster_token_file),
    ]
    .into_iter()
    .filter_map(|(role, flag)| {
        flag.clone().or_else(|| {
            let variable = format!("SWITCHYARD_{role}_TOKEN");
            (!env.contains_key(&variable))
                .then(|| env.get(&format!("{variable}_FILE")).map(PathBuf::from))
                .flatten()
        })
    })
    .collect()
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
    if let Some(v) = env.get("SWITCHYARD_METRICS_REQUIRE_TOKEN") {
        config.metrics_require_token = parse_bool(
            v,
            "SWITCHYARD_METRICS_REQUIRE_TOKEN",
            "metrics_require_token",
        )?;
    }
    if let Some(v) = env.get("SWITCHYARD_HTTP_PLAINTEXT") {
        config.http_plaintext = parse_bool(v, "SWITCHYARD_HTTP_PLAINTEXT", "http_plaintext")?;
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
    if args.metrics_require_token {
        config.metrics_require_token = true;
    }
    if args.http_plaintext {
        config.http_plaintext = true;
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
    set(
        flags.cpu_pressure_max_percent,
        &mut limits.cpu_pressure_max_percent,
    );
    if let Some(v) = flags.snapshot_bytes_max {
        limits.snapshot_bytes_max = v;
    }
    if flags.cpu_pressure_file.is_some() {
        config
            .cpu_pressure_file
            .clone_from(&flags.cpu_pressure_file);
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
             tokens are set. Set SWITCHYARD_ADMIN_TOKEN, SWITCHYARD_VIEWER_TOKEN, \
             SWITCHYARD_CLIENT_TOKEN and SWITCHYARD_CLUSTER_TOKEN (or --admin-token-file, \
             --viewer-token-file, --client-token-file, --cluster-token-file), bind 127.0.0.1, \
             or pass --insecure for development",
            config.grpc_addr,
            config.http_addr
        );
    }
    Ok(())
}

#[cfg(test)]
#[path = "settings_test.rs"]
mod tests;
