//! CPU pressure: the share of time tasks on the node's CPUs waited for one, from Linux's
//! pressure stall information (PSI). It is the back-pressure signal for a node whose CPU, not
//! a buffer, runs short (see [`crate::report_pacing`]).
//!
//! Why PSI: a node whose cores are saturated (a smaller CPU than planned, a busy neighbour)
//! serves every report late while no buffer is anywhere near its limit, so buffer fill alone
//! never asks the fleet for coarser reports. The kernel counts, in `some total=` (µs), the time
//! at least one task was runnable and waiting for a CPU; its rate over wall time is the share
//! of time work queued for a core. The node reads it once per tick interval and smooths it over
//! about half a second ([`Smoothed`]).
//!
//! The file read is the node's cgroup's `cpu.pressure` under cgroup v2 (it counts throttling
//! by a CPU quota too), else the host's `/proc/pressure/cpu`; `cpu_pressure_file` names
//! another. Without one (another OS, a kernel without PSI, the simulation) the signal is off.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The host-wide PSI file.
pub const HOST_FILE: &str = "/proc/pressure/cpu";

/// Weight of a new reading in the smoothed share: 1/4, so with a reading every 100 ms the
/// figure follows a change over about 400 ms.
const SMOOTHING: f64 = 0.25;

/// The cumulative stall time (µs) on the `some` line of a PSI file.
pub fn parse_some_total_us(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("some "))?
        .split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

/// The cumulative stall time (µs) in the PSI file at `path`; `None` when it cannot be read or
/// has no `some ... total=` line.
pub fn read_some_total_us(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| parse_some_total_us(&text))
}

/// The PSI file for this process: its cgroup v2 `cpu.pressure` when there is one, else the
/// host's, else none.
pub fn detect() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| cgroup_v2_file(&text));
    own.into_iter()
        .chain(std::iter::once(PathBuf::from(HOST_FILE)))
        .find(|path| read_some_total_us(path).is_some())
}

/// `/sys/fs/cgroup<path>/cpu.pressure` for the unified (v2) line `0::<path>` of
/// `/proc/self/cgroup`.
fn cgroup_v2_file(proc_self_cgroup: &str) -> Option<PathBuf> {
    let path = proc_self_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))?;
    let mut file = PathBuf::from("/sys/fs/cgroup");
    file.push(path.trim_start_matches('/'));
    file.push("cpu.pressure");
    Some(file)
}

/// The stall share between two readings: stalled µs over elapsed µs, in 0..=1.
pub fn share(total_before_us: u64, total_after_us: u64, elapsed: Duration) -> f64 {
    let elapsed_us = elapsed.as_micros() as f64;
    if elapsed_us <= 0.0 {
        return 0.0;
    }
    (total_after_us.saturating_sub(total_before_us) as f64 / elapsed_us).clamp(0.0, 1.0)
}

/// The smoothed stall share, shared between the reader and whoever asks.
#[derive(Debug, Default)]
pub struct Smoothed {
    /// The share in parts per million.
    ppm: AtomicU64,
}

impl Smoothed {
    /// Records a reading (0..=1); returns the smoothed share.
    pub fn observe(&self, share: f64) -> f64 {
        let old = self.get();
        let next = old + (share.clamp(0.0, 1.0) - old) * SMOOTHING;
        // One writer (the reader loop): a plain read-modify-write is enough.
        self.ppm
            .store((next * 1_000_000.0).round() as u64, Ordering::Relaxed);
        next
    }

    /// The smoothed share, 0..=1.
    pub fn get(&self) -> f64 {
        self.ppm.load(Ordering::Relaxed) as f64 / 1_000_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PSI: &str = "some avg10=7.40 avg60=5.60 avg300=2.00 total=7769965\n\
                       full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

    #[test]
    fn the_some_total_is_read_and_anything_else_is_none() {
        assert_eq!(parse_some_total_us(PSI), Some(7_769_965));
        assert_eq!(
            parse_some_total_us("full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"),
            None
        );
        assert_eq!(parse_some_total_us("some avg10=1.0 total=x\n"), None);
        assert_eq!(parse_some_total_us(""), None);
    }

    #[test]
    fn the_share_is_stall_over_wall_time_within_0_and_1() {
        let tick = Duration::from_millis(100);
        assert!((share(1_000, 91_000, tick) - 0.9).abs() < 1e-9);
        assert_eq!(share(5, 5, tick), 0.0);
        // A counter that went back (another file, a reset) is no stall, and more stall than
        // wall time (readings late) is all of it.
        assert_eq!(share(10, 5, tick), 0.0);
        assert_eq!(share(0, 500_000, tick), 1.0);
        assert_eq!(share(0, 5, Duration::ZERO), 0.0);
    }

    #[test]
    fn the_cgroup_v2_line_names_the_cgroups_file() {
        let v2 = "0::/system.slice/switchyard.service\n";
        assert_eq!(
            cgroup_v2_file(v2),
            Some(PathBuf::from(
                "/sys/fs/cgroup/system.slice/switchyard.service/cpu.pressure"
            ))
        );
        assert_eq!(
            cgroup_v2_file("0::/\n"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu.pressure"))
        );
        assert_eq!(cgroup_v2_file("4:memory:/x\n1:cpu:/\n"), None);
    }

    #[test]
    fn a_sustained_share_is_followed_and_a_single_reading_fades() {
        let s = Smoothed::default();
        assert!(s.observe(1.0) <= 0.25 + 1e-6);
        for _ in 0..10 {
            s.observe(0.0);
        }
        assert!(s.get() < 0.02, "{}", s.get());
        for _ in 0..20 {
            s.observe(0.9);
        }
        assert!((s.get() - 0.9).abs() < 0.01, "{}", s.get());
    }
}
