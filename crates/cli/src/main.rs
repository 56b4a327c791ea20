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

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::admin::{Admin, AdminOptions};
use crate::args::{Cli, Command};
use crate::commands::Ctx;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.command);
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
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (colored only on a terminal), filtered by `RUST_LOG`; a node logs at `info` by default, operator
/// commands only at `warn` so their stdout and stderr stay about the answer.
fn init_tracing(command: &Command) {
    // openraft logs every election step at info; keep its warnings and errors only.
    let default = match command {
        Command::Serve(_) | Command::LocalCluster(_) => "info,openraft=warn",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
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
fn ctx_of(global: &args::GlobalArgs) -> anyhow::Result<Ctx> {
    let tls = admin::TlsPaths {
        ca: global.tls_ca.clone(),
        client_cert: global.tls_client_cert.clone(),
        client_key: global.tls_client_key.clone(),
    };
    let options = AdminOptions::from_env(&global.endpoints, global.timeout_ms, tls)?;
    Ok(Ctx {
        admin: Admin::new(options),
        json: global.json,
        local: global.local,
    })
}
