//! [`Router`]: the router (`waconnect run`) as a child process: start with settings, stop
//! with SIGTERM or SIGKILL, restart, read its log and metrics.

use std::io::Write;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use super::*;

pub const CONNECT_INSTANCE_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const CONTACT_FLOW_ID: &str = "66666666-7777-8888-9999-000000000000";

/// Deadline for the router to answer `/readyz` with 200.
pub const ROUTER_START_DEADLINE: Duration = Duration::from_secs(60);

pub struct Router {
    child: Option<Child>,
    /// Admin base URL (`/readyz`, `/metrics`); changes on restart.
    pub url: String,
    pub log_path: PathBuf,
    env: Vec<(String, String)>,
    http: reqwest::Client,
}

impl Router {
    /// `waconnect run --admin-listen 127.0.0.1:PORT` wired to `res` and `sim`; `extra_env`
    /// overrides or adds variables. Waits for `/readyz` == 200.
    pub async fn start(res: &Resources, sim: &Sim, extra_env: &[(&str, &str)]) -> Router {
        Router::start_named(res, sim, "router", extra_env).await
    }

    /// [`Router::start`] with its own log file `<name>.log`: for several routers (replicas)
    /// on the same resources.
    pub async fn start_named(
        res: &Resources,
        sim: &Sim,
        name: &str,
        extra_env: &[(&str, &str)],
    ) -> Router {
        let mut env = res.aws_env();
        if let Some(f) = &res.fifo {
            for (k, v) in [
                ("WACONNECT_INBOUND_FIFO_QUEUE_URL", &f.inbound_url),
                ("WACONNECT_INBOUND_FIFO_DLQ_URL", &f.inbound_dlq_url),
                ("WACONNECT_CONNECT_FIFO_QUEUE_URL", &f.connect_url),
                ("WACONNECT_CONNECT_FIFO_DLQ_URL", &f.connect_dlq_url),
            ] {
                env.push((k.to_string(), v.clone()));
            }
        }
        let sim_url = sim.url.as_str();
        let transcribe_url = sim.transcribe_url();
        let ca_file = sim.ca_file.to_str().expect("utf-8 log dir");
        for (k, v) in [
            (
                "WACONNECT_INBOUND_QUEUE_URL",
                res.inbound_queue_url.as_str(),
            ),
            ("WACONNECT_INBOUND_DLQ_URL", res.inbound_dlq_url.as_str()),
            (
                "WACONNECT_CONNECT_QUEUE_URL",
                res.connect_queue_url.as_str(),
            ),
            ("WACONNECT_CONNECT_DLQ_URL", res.connect_dlq_url.as_str()),
            ("WACONNECT_SESSIONS_TABLE", res.sessions_table.as_str()),
            ("WACONNECT_DEDUPE_TABLE", res.dedupe_table.as_str()),
            ("WACONNECT_CONNECT_INSTANCE_ID", CONNECT_INSTANCE_ID),
            ("WACONNECT_CONTACT_FLOW_ID", CONTACT_FLOW_ID),
            (
                "WACONNECT_STREAMING_TOPIC_ARN",
                res.connect_stream_topic_arn.as_str(),
            ),
            ("AWS_ENDPOINT_URL_CONNECT", sim_url),
            ("AWS_ENDPOINT_URL_CONNECTPARTICIPANT", sim_url),
            ("AWS_ENDPOINT_URL_SOCIALMESSAGING", sim_url),
            // Transcribe Streaming: the simulator's TLS side, trusting the CA it wrote.
            ("AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING", &transcribe_url),
            ("WACONNECT_TRANSCRIBE_CA_FILE", ca_file),
            ("WACONNECT_MEDIA_BUCKET", res.media_bucket.as_str()),
            // The simulator serves attachment URLs on loopback http.
            ("WACONNECT_URL_ALLOWLIST", "http://127.0.0.1:*"),
            ("RUST_LOG", "info,waconnect=debug"),
        ] {
            env.push((k.to_string(), v.to_string()));
        }
        for (k, v) in extra_env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        let mut router = Router {
            child: None,
            url: String::new(),
            log_path: res.log_dir.join(format!("{name}.log")),
            env,
            http: http_client(),
        };
        router.spawn().await;
        router
    }

    async fn spawn(&mut self) {
        let port = free_port();
        let args = vec![
            "run".to_string(),
            "--admin-listen".to_string(),
            format!("127.0.0.1:{port}"),
        ];
        let mut child = spawn_binary(&router_binary(), &args, &self.env, &self.log_path);
        self.url = format!("http://127.0.0.1:{port}");
        wait_http_ok(
            "router",
            &mut child,
            &format!("{}/readyz", self.url),
            ROUTER_START_DEADLINE,
            &self.log_path,
        )
        .await;
        self.child = Some(child);
    }

    /// SIGKILL: a crash, no graceful shutdown.
    pub fn kill(&mut self) {
        if self.child.is_some() {
            let mut f = open_log(&self.log_path);
            let _ = writeln!(f, "=== harness: SIGKILL ===");
        }
        kill_child(&mut self.child);
    }

    /// SIGTERM, as Kubernetes stops a pod: returns the process once the signal is sent, so
    /// the caller can watch the drain; see [`Router::wait_exit`].
    pub fn terminate(&mut self) {
        if let Some(child) = self.child.as_ref() {
            let mut f = open_log(&self.log_path);
            let _ = writeln!(f, "=== harness: SIGTERM ===");
            let pid = child.id().to_string();
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -TERM {pid}");
        }
    }

    /// Waits for the process to exit; its exit status.
    pub async fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("router was started");
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status;
            }
            assert!(
                start.elapsed() < deadline,
                "router did not exit within {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the router again (after an exit) with the same environment.
    pub async fn start_again(&mut self) {
        self.spawn().await;
    }

    /// Kills the router if it runs, then starts it again with the same environment
    /// (new admin port) and waits for readiness.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_text(&self) -> String {
        read_log(&self.log_path)
    }

    /// HTTP status of GET /readyz (0 when it does not answer).
    pub async fn readyz(&self) -> u16 {
        match self.http.get(format!("{}/readyz", self.url)).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// The Prometheus text of GET /metrics.
    pub async fn metrics(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("GET /metrics");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "GET /metrics answered {status}: {}",
            truncate(&text, 300)
        );
        text
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}
