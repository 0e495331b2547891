//! What a load run measures: latency (HdrHistogram), counts, the process's CPU time and
//! peak RSS (from `/proc`), and high-water marks of the queues in front of each actor.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Linux reports CPU times in `/proc/<pid>/stat` in USER_HZ ticks, 100 per second on
/// every architecture the kernel exposes to user space this way.
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system, every thread) of process `pid` (`self` for this one).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    cpu_fields(pid, 11)
}

/// CPU seconds of `pid`'s children that have exited and been waited for (ffmpeg).
pub fn children_cpu_seconds(pid: &str) -> Option<f64> {
    cpu_fields(pid, 13)
}

/// Two consecutive tick fields of `/proc/<pid>/stat`, counted after the name, in seconds.
fn cpu_fields(pid: &str, first: usize) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line (11 and 12 counted from 0 after
    // the name), cutime and cstime 16 and 17.
    let user: f64 = fields.get(first)?.parse().ok()?;
    let system: f64 = fields.get(first + 1)?.parse().ok()?;
    Some((user + system) / USER_HZ)
}

/// A `kB` line of `/proc/<pid>/status` (VmHWM: peak RSS, VmRSS: current), in bytes.
pub fn status_bytes(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = value.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Counts and latencies of one run, shared by the tasks that drive it.
pub struct Meter {
    started: Instant,
    cpu_start: f64,
    children_cpu_start: f64,
    /// Whose CPU is measured: `self`, or the router's pid when it runs elsewhere.
    pid: String,
    latency_us: Mutex<Histogram<u64>>,
    pub sent: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    high_water: Mutex<BTreeMap<String, u64>>,
}

impl Meter {
    pub fn new(pid: Option<u32>) -> Self {
        let pid = pid.map_or_else(|| "self".to_string(), |p| p.to_string());
        Self {
            started: Instant::now(),
            cpu_start: cpu_seconds(&pid).unwrap_or(0.0),
            children_cpu_start: children_cpu_seconds(&pid).unwrap_or(0.0),
            pid,
            // 1 µs .. 1 h, three significant figures.
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            ),
            sent: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            high_water: Mutex::new(BTreeMap::new()),
        }
    }

    /// Starts the clocks again (after a warm-up).
    pub fn restart(&mut self) {
        self.started = Instant::now();
        self.cpu_start = cpu_seconds(&self.pid).unwrap_or(0.0);
        self.children_cpu_start = children_cpu_seconds(&self.pid).unwrap_or(0.0);
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn completed(&self, took: Duration) {
        let us = (took.as_micros() as u64).clamp(1, 3_600_000_000);
        self.latency_us
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saturating_record(us);
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Work sent and not yet answered.
    pub fn outstanding(&self) -> u64 {
        let done = self.completed.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed);
        self.sent.load(Ordering::Relaxed).saturating_sub(done)
    }

    /// Notes a depth seen in front of `actor`; the report keeps the highest.
    pub fn depth(&self, actor: &str, depth: u64) {
        let mut marks = self.high_water.lock().unwrap_or_else(|e| e.into_inner());
        let mark = marks.entry(actor.to_string()).or_insert(0);
        *mark = (*mark).max(depth);
    }

    /// The figures so far.
    pub fn report(&self, mode: &str, name: &str, extra: serde_json::Value) -> Report {
        let elapsed = self.elapsed().as_secs_f64();
        let completed = self.completed.load(Ordering::Relaxed);
        let cpu = cpu_seconds(&self.pid).map_or(0.0, |now| (now - self.cpu_start).max(0.0));
        let h = self.latency_us.lock().unwrap_or_else(|e| e.into_inner());
        let ms = |q: f64| {
            if h.is_empty() {
                0.0
            } else {
                round3(h.value_at_quantile(q) as f64 / 1000.0)
            }
        };
        Report {
            mode: mode.to_string(),
            target: name.to_string(),
            messages: completed,
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            unfinished: self.outstanding(),
            seconds: round3(elapsed),
            per_sec: if elapsed > 0.0 {
                round3(completed as f64 / elapsed)
            } else {
                0.0
            },
            latency_ms: Latency {
                p50: ms(0.5),
                p90: ms(0.9),
                p99: ms(0.99),
                p99_9: ms(0.999),
                max: if h.is_empty() {
                    0.0
                } else {
                    round3(h.max() as f64 / 1000.0)
                },
                mean: round3(h.mean() / 1000.0),
            },
            cpu_seconds: round3(cpu),
            cpu_seconds_per_1000: if completed > 0 {
                round3(cpu * 1000.0 / completed as f64)
            } else {
                0.0
            },
            cpu_seconds_children: round3(
                children_cpu_seconds(&self.pid)
                    .map_or(0.0, |now| (now - self.children_cpu_start).max(0.0)),
            ),
            cpu_measured_pid: self.pid.clone(),
            peak_rss_bytes: status_bytes(&self.pid, "VmHWM").unwrap_or(0),
            mailbox_high_water: self
                .high_water
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            extra,
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

/// The figures of one run: the line `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `actor` or `e2e`.
    pub mode: String,
    /// The actor's name, or the e2e mix.
    pub target: String,
    /// Messages completed (their latency is in `latency_ms`).
    pub messages: u64,
    /// Messages sent; `sent = messages + failed + unfinished`.
    pub sent: u64,
    pub failed: u64,
    /// Sent and not answered when the run stopped (after its drain).
    pub unfinished: u64,
    pub seconds: f64,
    pub per_sec: f64,
    pub latency_ms: Latency,
    pub cpu_seconds: f64,
    pub cpu_seconds_per_1000: f64,
    /// CPU of child processes that ended during the run (ffmpeg), not in `cpu_seconds`.
    pub cpu_seconds_children: f64,
    /// `self`, or the pid of the router measured (`--router-pid`).
    pub cpu_measured_pid: String,
    pub peak_rss_bytes: u64,
    /// Highest depth seen in front of each actor (see docs/performance.md).
    pub mailbox_high_water: BTreeMap<String, u64>,
    /// Figures of the mode (acknowledgements merged, calls per message, ...).
    pub extra: serde_json::Value,
}

impl Report {
    /// The report for people.
    pub fn text(&self) -> String {
        let l = &self.latency_ms;
        let mut out = format!(
            "{} {}: {} messages in {:.1} s = {:.1} msgs/s ({} failed, {} unfinished)\n\
             latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}\n\
             cpu: {:.3} s, {:.3} s per 1000 messages (pid {}); peak RSS {:.1} MiB\n",
            self.mode,
            self.target,
            self.messages,
            self.seconds,
            self.per_sec,
            self.failed,
            self.unfinished,
            l.p50,
            l.p90,
            l.p99,
            l.p99_9,
            l.max,
            self.cpu_seconds,
            self.cpu_seconds_per_1000,
            self.cpu_measured_pid,
            self.peak_rss_bytes as f64 / (1024.0 * 1024.0),
        );
        if !self.mailbox_high_water.is_empty() {
            let marks: Vec<String> = self
                .mailbox_high_water
                .iter()
                .map(|(a, n)| format!("{a} {n}"))
                .collect();
            out.push_str(&format!("mailbox high-water: {}\n", marks.join(", ")));
        }
        if !self.extra.is_null() {
            out.push_str(&format!("{}\n", self.extra));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(cpu_seconds("self").is_some());
        assert!(status_bytes("self", "VmHWM").unwrap() > 1024 * 1024);
    }

    #[test]
    fn report_counts_add_up() {
        let meter = Meter::new(None);
        for ms in [1, 2, 3] {
            meter.sent();
            meter.completed(Duration::from_millis(ms));
        }
        meter.sent();
        meter.failed();
        meter.sent();
        let r = meter.report("actor", "x", serde_json::Value::Null);
        assert_eq!((r.messages, r.sent, r.failed, r.unfinished), (3, 5, 1, 1));
        assert!((r.latency_ms.max - 3.0).abs() < 0.01, "{r:?}");
        assert!((r.latency_ms.p50 - 2.0).abs() < 0.01, "{r:?}");
    }
}
