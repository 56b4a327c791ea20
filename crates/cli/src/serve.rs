//! `switchyard serve`: build one validated [`NodeConfig`](switchyard_server::NodeConfig), bind,
//! and run the node until SIGTERM or SIGINT, reloading tokens and certificates on SIGHUP and
//! when their files change.
//!
//! - [`settings`]: defaults < `--config` file < `SWITCHYARD_*` environment < flags.
//! - [`reload`]: token and certificate files read again without a restart.
//!
//! Both listeners are bound before the node starts, so a port in use is reported as such
//! rather than as a node failure half-way through start-up. Tokens are only ever logged as
//! "set" or "not set".

mod reload;
mod settings;

use std::io;
use std::sync::Arc;

use anyhow::Context;
use switchyard_server::auth::Tokens;
use switchyard_server::{Connector, NodeDeps, SystemClock, TcpConnector, TlsConnector, TlsState};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::args::ServeArgs;
use settings::{ServeSettings, check_exposure, process_env, resolve};

/// The node id `serve` will run as, when its settings resolve (for the trace resource; a
/// settings error is reported by [`serve`] itself).
pub fn node_id_hint(args: &ServeArgs) -> Option<u64> {
    resolve(args, &process_env(), &|path| std::fs::read_to_string(path))
        .ok()
        .map(|s| s.config.node_id)
}

/// Runs `switchyard serve` until SIGTERM or SIGINT.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let env = process_env();
    let settings = resolve(&args, &env, &|path| std::fs::read_to_string(path))?;
    check_exposure(&settings)?;
    let ServeSettings { config, tokens } = settings;
    if config.binds_non_loopback() && !tokens.any() {
        tracing::warn!(
            "--insecure: serving a non-loopback address with no tokens; anyone can change breakers"
        );
    }

    let cpu_pressure = cpu_pressure_file(&config)?;
    tracing::info!(
        file = ?cpu_pressure,
        max_percent = config.limits.cpu_pressure_max_percent,
        "CPU pressure"
    );
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
        viewer_token = tokens.viewer.is_some(),
        client_token = tokens.client.is_some(),
        cluster_token = tokens.cluster.is_some(),
        tls = config.tls_enabled(),
        http_tls = config.http_tls_enabled(),
        mtls = config.tls_client_ca.is_some(),
        metrics_require_token = config.metrics_require_token,
        "starting node"
    );

    // Peers are dialled over https when this node serves TLS: the cluster is all-TLS or
    // all-plaintext, never mixed.
    let tls = TlsState::load(&config)?;
    let connector: Arc<dyn Connector> = match &tls {
        Some(state) => Arc::new(TlsConnector::new(state.clone())),
        None => Arc::new(TcpConnector::default()),
    };
    let tokens = Tokens::new(tokens);
    let reloader = reload::Reloader::new(args, env, config.clone(), tokens.clone(), tls.clone());
    tokio::spawn(reloader.run()?);
    let shutdown = shutdown_signal()?;
    let raft_runtime = switchyard_server::raft_runtime::RaftRuntime::start()
        .context("cannot start the Raft runtime")?;
    let deps = NodeDeps {
        clock: Arc::new(SystemClock),
        connector,
        tokens,
        // The real disk: sled in `data_dir`.
        disk: None,
        raft_runtime: Some(raft_runtime.handle()),
        cpu_pressure,
    };
    switchyard_server::run_with_tls(
        config,
        deps,
        tls,
        switchyard_server::transport::tcp_incoming(grpc_listener),
        Some(http_listener),
        shutdown,
    )
    .await
    .context("the node stopped with an error")?;
    tracing::info!("node stopped");
    Ok(())
}

/// The PSI file the node reads its CPU pressure from: the configured one, which must be
/// readable, or the detected one (none without PSI).
fn cpu_pressure_file(
    config: &switchyard_server::config::NodeConfig,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let Some(file) = &config.cpu_pressure_file else {
        return Ok(switchyard_server::cpu_pressure::detect());
    };
    switchyard_server::cpu_pressure::read_some_total_us(file).with_context(|| {
        format!(
            "invalid `cpu_pressure_file`: {} must be a readable Linux PSI file with a \
                 `some ... total=` line",
            file.display()
        )
    })?;
    Ok(Some(file.clone()))
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
