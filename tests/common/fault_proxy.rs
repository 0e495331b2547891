//! A small HTTP fault proxy of the tests' own, on loopback, in front of moto (SQS,
//! DynamoDB) or the simulator (EUM): it forwards each request and, at configured rates,
//! answers 5xx without forwarding, resets the connection before forwarding (no effect),
//! drops the answer after forwarding (the call took effect, the client never hears it),
//! or delays it. Rules match on the `X-Amz-Target` header (SQS and DynamoDB name their
//! operation there) or the request path.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What the proxy does to requests that match `matches` (all requests when empty).
#[derive(Clone, Debug, Default)]
pub struct FaultRule {
    /// Substring of `X-Amz-Target` or of the path; empty matches every request.
    pub matches: String,
    /// Answer 500 without forwarding.
    pub error_rate: f64,
    /// Close the connection without forwarding (no effect, the client sees a reset).
    pub reset_rate: f64,
    /// Forward, then close the connection without answering (the effect happened).
    pub drop_answer_rate: f64,
    /// Delay the answer by `delay`.
    pub delay_rate: f64,
    pub delay: Duration,
}

/// How often each fault was applied.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub resets: AtomicU64,
    pub dropped_answers: AtomicU64,
    pub delays: AtomicU64,
}

impl FaultCounts {
    pub fn summary(&self) -> String {
        format!(
            "requests={} 5xx={} resets={} dropped_answers={} delays={}",
            self.requests.load(Ordering::SeqCst),
            self.errors.load(Ordering::SeqCst),
            self.resets.load(Ordering::SeqCst),
            self.dropped_answers.load(Ordering::SeqCst),
            self.delays.load(Ordering::SeqCst)
        )
    }
}

pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: give it as the service's endpoint.
    pub url: String,
    pub counts: Arc<FaultCounts>,
    rules: Arc<Mutex<Vec<FaultRule>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    rules: Arc<Mutex<Vec<FaultRule>>>,
    counts: Arc<FaultCounts>,
}

/// A uniform number in 0..1 (uuid v4 bits; no extra RNG dependency in the tests).
fn roll() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75;
    bits as f64 / (1u64 << 53) as f64
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. moto's URL) with no rules.
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fault proxy");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let rules: Arc<Mutex<Vec<FaultRule>>> = Arc::default();
        let counts: Arc<FaultCounts> = Arc::default();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            rules: rules.clone(),
            counts: counts.clone(),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    // An error from the service closes the connection unanswered: that is
                    // how resets and dropped answers are made.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            url: format!("http://{addr}"),
            counts,
            rules,
            task,
        }
    }

    pub fn set_rules(&self, rules: Vec<FaultRule>) {
        *self.rules.lock().unwrap() = rules;
    }
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    shared.counts.requests.fetch_add(1, Ordering::SeqCst);
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let rule = shared
        .rules
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.matches.is_empty() || target.contains(&r.matches) || path.contains(&r.matches))
        .cloned()
        .unwrap_or_default();
    let counts = &shared.counts;
    if roll() < rule.reset_rate {
        counts.resets.fetch_add(1, Ordering::SeqCst);
        return Err(Dropped);
    }
    if roll() < rule.error_rate {
        counts.errors.fetch_add(1, Ordering::SeqCst);
        return Ok(Response::builder()
            .status(500)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amzn-query-error", "InternalError;Receiver")
            .body(Full::new(Bytes::from_static(
                br#"{"__type":"InternalError","message":"injected by the fault proxy"}"#,
            )))
            .unwrap());
    }
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|_| Dropped)?
        .to_bytes();
    let mut upstream = shared
        .client
        .request(method, format!("{}{path}", shared.upstream))
        .body(body);
    for (name, value) in headers.iter() {
        if name != "host" && name != "content-length" && name != "connection" {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.send().await.map_err(|_| Dropped)?;
    let status = answer.status();
    let answer_headers = answer.headers().clone();
    let bytes = answer.bytes().await.map_err(|_| Dropped)?;
    if roll() < rule.drop_answer_rate {
        counts.dropped_answers.fetch_add(1, Ordering::SeqCst);
        return Err(Dropped);
    }
    if roll() < rule.delay_rate {
        counts.delays.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(rule.delay).await;
    }
    let mut response = Response::builder().status(status.as_u16());
    for (name, value) in answer_headers.iter() {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response = response.header(name, value);
        }
    }
    Ok(response.body(Full::new(bytes)).unwrap())
}
