//! The docker CLI, driven with `std::process::Command`: is an engine reachable, the image
//! (built once per test run), and leftovers of earlier runs.
//!
//! The CLI rather than an API client: it is what CI machines and developers already have, its
//! error messages are the ones people know, and it needs no extra dependency.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// CI sets this so that a missing engine fails the suite instead of skipping it.
pub const REQUIRE_ENV: &str = "SWITCHYARD_REQUIRE_DOCKER";

/// Every container, network and volume the suite creates carries this label, whose value is
/// the pid of the test process, so leftovers of a crashed run can be found and removed.
pub const OWNER_LABEL: &str = "org.switchyard.chaos.pid";

/// Runs `docker ARGS` and returns its trimmed stdout, or an error with its stderr.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `docker {}`: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "`docker {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Like [`docker`], for steps that must succeed.
pub fn docker_ok(args: &[&str]) -> String {
    docker(args).unwrap_or_else(|e| panic!("{e}"))
}

/// The last `lines` lines a container wrote, stdout and stderr merged (a node logs on
/// stderr, which `docker logs` replays on its own stderr).
pub fn container_logs(name: &str, lines: u32) -> String {
    match Command::new("docker")
        .args(["logs", "--tail", &lines.to_string(), name])
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) => format!("(cannot run docker logs: {e})"),
    }
}

/// Whether the chaos tests can run. Without an engine they are skipped with a message, unless
/// [`REQUIRE_ENV`] is set, in which case the missing engine fails the test.
pub fn engine_available() -> bool {
    static ENGINE: OnceLock<Result<(), String>> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        docker(&["info", "--format", "{{.ServerVersion}}"])
            .map(|version| eprintln!("chaos: docker engine {version}"))
    });
    match engine {
        Ok(()) => true,
        Err(e) if std::env::var_os(REQUIRE_ENV).is_some() => {
            panic!("{REQUIRE_ENV} is set but no docker engine is reachable: {e}")
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: no docker engine is reachable ({e}). The chaos tests need one; \
                 set {REQUIRE_ENV}=1 to make this a failure."
            );
            false
        }
    }
}

/// The image under test, built once per test run by `deploy/docker/build.sh` (which is cheap
/// when neither the sources nor the binaries changed). `SWITCHYARD_CHAOS_IMAGE` names an
/// image to use as it is, without building.
pub fn image() -> &'static str {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    let image = IMAGE.get_or_init(|| {
        remove_leftovers();
        if let Ok(image) = std::env::var("SWITCHYARD_CHAOS_IMAGE") {
            return Ok(image);
        }
        let image = "switchyard:dev".to_string();
        let started = Instant::now();
        let script = repo_root().join("deploy/docker/build.sh");
        eprintln!(
            "chaos: building {image} with {} (the musl release build takes minutes when cold)",
            script.display()
        );
        let status = Command::new(&script)
            .env("IMAGE", &image)
            .env(
                "CARGO",
                std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            )
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !status.success() {
            return Err(format!("{} failed ({status})", script.display()));
        }
        eprintln!("chaos: image {image} ready in {:?}", started.elapsed());
        Ok(image)
    });
    match image {
        Ok(image) => image,
        Err(e) => panic!("the image could not be built: {e}"),
    }
}

/// The workspace root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Removes containers, networks and volumes left by test processes that no longer run (a
/// killed `cargo test` cannot clean up after itself, and its subnets would collide).
fn remove_leftovers() {
    let alive = |pid: &str| PathBuf::from("/proc").join(pid).exists();
    let filter = format!("label={OWNER_LABEL}");
    let format = format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
    let dead = |listing: Result<String, String>| -> Vec<String> {
        listing
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once(' '))
            .filter(|(_, pid)| !alive(pid))
            .map(|(id, _)| id.to_string())
            .collect()
    };
    for id in dead(docker(&[
        "ps", "-a", "--filter", &filter, "--format", &format,
    ])) {
        let _ = docker(&["rm", "-f", "-v", &id]);
    }
    for id in dead(docker(&[
        "network", "ls", "--filter", &filter, "--format", &format,
    ])) {
        let _ = docker(&["network", "rm", &id]);
    }
    let volume_format = format!("{{{{.Name}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
    for id in dead(docker(&[
        "volume",
        "ls",
        "--filter",
        &filter,
        "--format",
        &volume_format,
    ])) {
        let _ = docker(&["volume", "rm", "-f", &id]);
    }
}
