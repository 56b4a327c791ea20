//! Token and certificate reload without a restart.
//!
//! On SIGHUP, and when one of the files changes (polled every [`RELOAD_POLL`]), `serve` reads
//! the token files and the TLS files again. What loads cleanly replaces what is in force:
//! the next call is checked against the new tokens, the next connection gets the new
//! certificate, and calls and connections already open carry on. What does not load (an empty
//! token file, a key that does not match its certificate, a file half-written) is logged with
//! the reason, and the old material stays in force. Tokens set directly in the environment
//! cannot change while the process runs; use token files to rotate them.
//!
//! Why poll file contents rather than subscribe to file events: the files are a handful of
//! small PEM and token files, and Kubernetes rotates mounted secrets by swapping a symlink,
//! which a content comparison sees and an inotify watch on the old file does not.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use switchyard_server::auth::Tokens;
use switchyard_server::{NodeConfig, TlsState};
use tokio::signal::unix::{SignalKind, signal};

use super::settings::{Env, load_tokens, token_files};
use crate::args::ServeArgs;

/// How often the files are compared with what was last loaded.
pub const RELOAD_POLL: Duration = Duration::from_secs(1);

/// Reloads tokens and certificates; see the module doc.
#[derive(Debug)]
pub struct Reloader {
    args: ServeArgs,
    env: Env,
    config: NodeConfig,
    tokens: Tokens,
    tls: Option<TlsState>,
    files: Vec<PathBuf>,
}

impl Reloader {
    /// A reloader for the node started from `args`, `env` and `config`.
    pub fn new(
        args: ServeArgs,
        env: Env,
        config: NodeConfig,
        tokens: Tokens,
        tls: Option<TlsState>,
    ) -> Self {
        let mut files = token_files(&args, &env);
        if tls.is_some() {
            files.extend(
                [
                    &config.tls_cert,
                    &config.tls_key,
                    &config.tls_ca,
                    &config.tls_client_ca,
                ]
                .into_iter()
                .flatten()
                .cloned(),
            );
        }
        Self {
            args,
            env,
            config,
            tokens,
            tls,
            files,
        }
    }

    /// The reload loop; the SIGHUP handler is installed now, so a signal sent once this
    /// returns is not lost.
    pub fn run(self) -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
        let mut hangup = signal(SignalKind::hangup()).context("cannot install a SIGHUP handler")?;
        Ok(async move {
            let mut seen = self.contents();
            let mut poll = tokio::time::interval(RELOAD_POLL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let why = tokio::select! {
                    _ = hangup.recv() => "SIGHUP",
                    _ = poll.tick() => {
                        if self.contents() == seen {
                            continue;
                        }
                        "a file changed"
                    }
                };
                seen = self.contents();
                self.reload(why);
            }
        })
    }

    /// The watched files' bytes (`None`: unreadable right now).
    fn contents(&self) -> Vec<Option<Vec<u8>>> {
        self.files.iter().map(|f| std::fs::read(f).ok()).collect()
    }

    fn reload(&self, why: &str) {
        match load_tokens(&self.args, &self.env, &|p| std::fs::read_to_string(p)) {
            Ok(set) if set == self.tokens.current() => {}
            Ok(set) => {
                tracing::info!(
                    why,
                    admin_token = set.admin.is_some(),
                    viewer_token = set.viewer.is_some(),
                    client_token = set.client.is_some(),
                    cluster_token = set.cluster.is_some(),
                    "tokens reloaded"
                );
                self.tokens.replace(set);
            }
            Err(e) => tracing::warn!(
                why,
                error = format!("{e:#}"),
                "token reload failed; the tokens in force stay"
            ),
        }
        if let Some(tls) = &self.tls {
            match tls.reload(&self.config) {
                Ok(()) => tracing::info!(why, "TLS certificates reloaded for new connections"),
                Err(e) => tracing::warn!(
                    why,
                    error = %e,
                    "TLS reload failed; the certificates in force stay"
                ),
            }
        }
    }
}
