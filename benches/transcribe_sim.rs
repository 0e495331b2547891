//! Latency of transcribing a 5 s voice note through the production adapter
//! (`AwsTranscriber`, the official Transcribe Streaming client) against the simulator,
//! in-process on loopback: HTTP/2 over TLS, 50 signed AudioEvents of 100 ms, the
//! transcript once the audio has ended. It measures waconnect's side of a transcription
//! (WAV parsing, chunking, signing, HTTP/2, event-stream decoding); Transcribe's own
//! processing time is not in it.
//!
//! A plain `main` that prints figures (docs/performance.md):
//!
//! ```sh
//! cargo bench --bench transcribe_sim
//! # knobs: TRANSCRIBE_BENCH_RUNS (default 20), TRANSCRIBE_BENCH_SECONDS (default 5)
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use bytes::Bytes;

use waconnect::adapters::aws::AwsTranscriber;
use waconnect::adapters::local::MemoryQueue;
use waconnect::media::pcm::test_wav;
use waconnect::ports::transcribe::{DEFAULT_DEADLINE, DEFAULT_MAX_AUDIO};
use waconnect::ports::{Language, TranscribeRequest, Transcriber};
use waconnect::sim::{
    self, MemoryChatStreamSink, MemoryInboundSink, SimIdentity, SimTls, Simulator,
};

fn knob(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tone_wav(seconds: f64) -> Bytes {
    let n = (seconds * 16_000.0).round() as usize;
    let samples: Vec<i16> = (0..n)
        .map(|i| ((i as f64 / 16_000.0 * 440.0 * std::f64::consts::TAU).sin() * 8_000.0) as i16)
        .collect();
    Bytes::from(test_wav(16_000, &samples))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let runs = knob("TRANSCRIBE_BENCH_RUNS", 20.0).max(1.0) as usize;
    let seconds = knob("TRANSCRIBE_BENCH_SECONDS", 5.0);

    let queue = || Arc::new(MemoryQueue::new("q", Duration::from_secs(30)));
    let simulator = Simulator::new(
        SimIdentity::default(),
        Arc::new(MemoryInboundSink::new(queue())),
        Arc::new(MemoryChatStreamSink::new(queue())),
        false,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("sim-ca.pem");
    let tls = SimTls::generate(&[]).unwrap();
    tls.write_ca(&ca_file).unwrap();
    tokio::spawn(async move { sim::serve_tls(listener, simulator, &tls).await });

    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("https://{addr}"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "static"))
        .load()
        .await;
    let transcriber = AwsTranscriber::from_sdk_config(&sdk, Some(&ca_file)).unwrap();
    let wav = tone_wav(seconds);
    let expected = format!("simulated transcript of {seconds:.1} seconds of audio");

    let mut took = Vec::with_capacity(runs);
    for _ in 0..runs {
        let request = TranscribeRequest::from_wav(
            wav.clone(),
            Language::fixed("en-US").unwrap(),
            DEFAULT_MAX_AUDIO,
            DEFAULT_DEADLINE,
        )
        .unwrap();
        let started = Instant::now();
        let transcript = transcriber
            .transcribe(request)
            .await
            .expect("transcription");
        took.push(started.elapsed());
        assert_eq!(transcript.text, expected);
    }
    let first = took[0].as_secs_f64() * 1000.0;
    let mut sorted = took.clone();
    sorted.sort();
    println!(
        "transcribe a {seconds} s note via the simulator: {runs} runs, {} AudioEvents of 100 ms each",
        (seconds * 10.0).ceil()
    );
    println!(
        "  first {first:.1} ms (new TLS + HTTP/2 connection); p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.9),
        percentile(&sorted, 1.0),
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "  load average: {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}
