//! Child processes: spawning the real `waconnect` binary with its log file (under
//! `.test-logs/<test>/`), waiting for it to answer, reading its log, killing it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `<repo>/.test-logs`
pub fn test_logs_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".test-logs")
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("pick a free loopback port")
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

pub(crate) fn open_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open log {}: {e}", path.display()))
}

/// Spawns the real `waconnect` binary with `args` and `env`, output appended to `log`.
/// Inherited AWS endpoint / WACONNECT_* variables are removed so only ours apply.
pub(crate) fn spawn_waconnect(args: &[String], env: &[(String, String)], log: &Path) -> Child {
    spawn_binary(Path::new(env!("CARGO_BIN_EXE_waconnect")), args, env, log)
}

/// The binary the harness runs as the router: this build's `waconnect`, or the one named
/// by `WACONNECT_HARNESS_ROUTER_BIN` (benches compare an older build against this one
/// with the same simulator, queues and command).
pub(crate) fn router_binary() -> PathBuf {
    std::env::var_os("WACONNECT_HARNESS_ROUTER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_waconnect")))
}

/// [`spawn_waconnect`] with another binary.
pub(crate) fn spawn_binary(
    bin: &Path,
    args: &[String],
    env: &[(String, String)],
    log: &Path,
) -> Child {
    let mut f = open_log(log);
    let _ = writeln!(
        f,
        "=== harness: spawning {} {} ===",
        bin.display(),
        args.join(" ")
    );
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(f.try_clone().expect("clone log handle")))
        .stderr(Stdio::from(f));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_ENDPOINT_URL") || k.starts_with("WACONNECT_") || k == "AWS_PROFILE" {
            cmd.env_remove(&k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {} {}: {e}", bin.display(), args.join(" ")))
}

pub(crate) fn read_log(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = read_log(path);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Waits until GET `url` answers 200; panics early if the child exits.
pub(crate) async fn wait_http_ok(
    what: &str,
    child: &mut Child,
    url: &str,
    deadline: Duration,
    log: &Path,
) {
    let http = http_client();
    let start = Instant::now();
    let mut last: String;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited during start-up ({status}); last lines of {}:\n{}",
                log.display(),
                log_tail(log, 40)
            );
        }
        match http.get(url).timeout(Duration::from_secs(2)).send().await {
            Ok(r) if r.status().as_u16() == 200 => return,
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = format!("{e}"),
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} not ready: GET {url} did not answer 200 within {deadline:?} (last: {last}); \
                 last lines of {}:\n{}",
                log.display(),
                log_tail(log, 40)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn kill_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill(); // SIGKILL on Unix
        let _ = c.wait();
    }
}
