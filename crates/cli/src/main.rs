//! `switchyard`: run a node (`serve`), a local cluster (`local-cluster`), or operate a running
//! cluster (`status`, `breaker`, `policy`, `tier`, `audit`, `sla`, `members`). DESIGN §6 is
//! the contract for every name, flag and default here.
//!
//! Modules:
//! - [`args`]: the command line (clap derive).
//! - [`serve`]: config precedence, listeners, signals, and the node's `run`.
//! - [`local_cluster`]: N child `serve` processes on loopback.
//! - [`admin`]: the admin API connection: failover, credentials, error messages.
//! - [`commands`]: one module per operator command group.
//! - [`output`]: tables, key/value blocks, JSON, CSV, times.
//! - [`bench`]: measurement harnesses (`bench sdk|ingest|writes|failover`).
//! - [`demo`]: a local cluster, a simulated fleet and a failing dependency, live.
//! - [`duration`]: `500ms` / `30s` / `10m` / `2h` / `7d`.
//! - [`trace_export`]: `serve --otlp-endpoint`: the node's spans over OTLP/gRPC.
//!
//! `main` only parses, sets up tracing (stderr, `RUST_LOG`) and dispatches. Errors print on
//! stderr as `error: ...` and exit with status 1; usage errors exit with status 2 (clap).

#![forbid(unsafe_code)]

mod admin;
mod args;
mod bench;
mod commands;
mod demo;
mod duration;
mod local_cluster;
mod output;
mod serve;
mod trace_export;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::admin::{Admin, AdminOptions};
use crate::args::{Cli, Command};
use crate::commands::Ctx;
use crate::trace_export::TraceExport;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The exporter's connection lives on this runtime.
    let export = {
        let _in_runtime = runtime.enter();
        match init_tracing(&cli.command) {
            Ok(export) => export,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    };
    // Operator commands send one request id with every call; on an error it is printed, so an
    // operator can quote it (it is in the audit events and node logs of what the command did).
    let request_id = cli.command.is_operator().then(|| {
        cli.global
            .request_id
            .clone()
            .unwrap_or_else(admin::new_request_id)
    });
    let result = runtime.block_on(dispatch(cli, request_id.clone()));
    // Spans still buffered for export leave before the process does.
    if let Some(export) = export {
        export.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(id) = request_id {
                eprintln!("request id: {id}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (colored only on a terminal), filtered by `RUST_LOG`; a node logs at `info` by default, operator
/// commands only at `warn` so their stdout and stderr stay about the answer. `serve` with an
/// OTLP endpoint also exports its spans (see [`trace_export`]); without one the export layer
/// is not installed at all.
fn init_tracing(command: &Command) -> anyhow::Result<Option<TraceExport>> {
    // openraft logs every election step at info; keep its warnings and errors only.
    let default = match command {
        Command::Serve(_) | Command::LocalCluster(_) => "info,openraft=warn",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    let endpoint = match command {
        Command::Serve(args) => args
            .otlp_endpoint
            .as_deref()
            .filter(|e| !e.trim().is_empty()),
        _ => None,
    };
    let Some(endpoint) = endpoint else {
        registry.init();
        return Ok(None);
    };
    let node_id = match command {
        Command::Serve(args) => serve::node_id_hint(args),
        _ => None,
    };
    let (export, layer) = TraceExport::start(endpoint, node_id)?;
    registry.with(layer).init();
    Ok(Some(export))
}

async fn dispatch(cli: Cli, request_id: Option<String>) -> anyhow::Result<()> {
    let global = cli.global;
    let ctx_of = |global: &args::GlobalArgs| ctx_of(global, request_id.clone().unwrap_or_default());
    match cli.command {
        Command::Serve(mut args) => {
            args.tls_ca.clone_from(&global.tls_ca);
            serve::serve(*args).await
        }
        Command::LocalCluster(args) => local_cluster::run(args).await,
        Command::Bench(command) => bench::run(command).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Status => commands::status::run(&ctx_of(&global)?).await,
        Command::Breaker(command) => commands::breaker::run(&ctx_of(&global)?, command).await,
        Command::Policy(command) => commands::policy::run(&ctx_of(&global)?, command).await,
        Command::Tier(command) => commands::tier::run(&ctx_of(&global)?, command).await,
        Command::Audit(args) => commands::audit::run(&ctx_of(&global)?, args).await,
        Command::Sla(args) => commands::sla::run(&ctx_of(&global)?, args).await,
        Command::Members(command) => commands::members::run(&ctx_of(&global)?, command).await,
    }
}

/// The operator-command context from the global flags and the environment.
fn ctx_of(global: &args::GlobalArgs, request_id: String) -> anyhow::Result<Ctx> {
    let tls = admin::TlsPaths {
        ca: global.tls_ca.clone(),
        client_cert: global.tls_client_cert.clone(),
        client_key: global.tls_client_key.clone(),
    };
    let options = AdminOptions::from_env(&global.endpoints, global.timeout_ms, tls, request_id)?;
    Ok(Ctx {
        admin: Admin::new(options),
        json: global.json,
        local: global.local,
    })
}
