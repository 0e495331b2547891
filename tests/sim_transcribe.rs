//! Amazon Transcribe Streaming end to end: the production adapter ([`AwsTranscriber`],
//! on the official aws-sdk-transcribestreaming client) against the simulator, over
//! HTTP/2 + TLS with the CA the simulator makes at start-up, event-stream frames both
//! ways. The simulator runs in-process, except where `waconnect sim` / `waconnect local`
//! are what is tested. One raw HTTP/2 client checks what the SDK cannot show: that no
//! result is sent before the audio ends.
//!
//! The latency test prints figures (p50 over 20 transcriptions of a 5 s note) and
//! asserts no timing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use bytes::Bytes;
use serde_json::{json, Value};

use waconnect::adapters::aws::AwsTranscriber;
use waconnect::adapters::local::MemoryQueue;
use waconnect::media::pcm::test_wav;
use waconnect::media::transcode::wav_info;
use waconnect::ports::transcribe::{DEFAULT_DEADLINE, DEFAULT_MAX_AUDIO};
use waconnect::ports::{
    ErrorKind, Language, TranscribeError, TranscribeRequest, Transcriber, Transcript,
};
use waconnect::sim::{
    self, MemoryChatStreamSink, MemoryInboundSink, SimIdentity, SimTls, Simulator,
};

const WAIT: Duration = Duration::from_secs(20);

/// A simulator serving plain HTTP and TLS on one loopback port.
struct Sim {
    addr: std::net::SocketAddr,
    ca_file: PathBuf,
    ca_pem: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Sim {
    async fn start() -> Sim {
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
        let ca_pem = tls.ca_pem().to_string();
        tokio::spawn(async move { sim::serve_tls(listener, simulator, &tls).await });
        Sim {
            addr,
            ca_file,
            ca_pem,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn https(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn control_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn transcriber(&self) -> AwsTranscriber {
        transcriber(&self.https(), Some(&self.ca_file)).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, self.control_url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn set_answer(&self, setting: Value) {
        let (status, body) = self
            .send(reqwest::Method::PUT, "/sim/transcribe", Some(setting))
            .await;
        assert_eq!(status, 200, "PUT /sim/transcribe: {body}");
    }

    async fn transcribe_state(&self) -> Value {
        self.send(reqwest::Method::GET, "/sim/transcribe", None)
            .await
            .1
    }

    /// The latest stream the simulator recorded.
    async fn last_stream(&self) -> Value {
        let state = self.transcribe_state().await;
        state["streams"]
            .as_array()
            .and_then(|s| s.last())
            .cloned()
            .unwrap_or_else(|| panic!("no stream recorded: {state}"))
    }

    async fn add_fault(&self, fault: Value) {
        let (status, body) = self
            .send(reqwest::Method::POST, "/sim/faults", Some(fault))
            .await;
        assert_eq!(status, 200, "POST /sim/faults: {body}");
    }

    async fn calls(&self, operation: &str) -> Vec<u64> {
        let (_, body) = self.send(reqwest::Method::GET, "/sim/calls", None).await;
        body["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["operation"] == operation)
            .map(|c| c["status"].as_u64().unwrap())
            .collect()
    }
}

async fn transcriber(endpoint: &str, ca_file: Option<&Path>) -> AwsTranscriber {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    AwsTranscriber::from_sdk_config(&sdk, ca_file).expect("transcriber")
}

/// A WAV of a 440 Hz tone: mono 16-bit PCM at `rate`, `seconds` long, with a LIST chunk
/// before the samples (so its header is not 44 bytes).
fn tone_wav(rate: u32, seconds: f64) -> Bytes {
    let n = (seconds * f64::from(rate)).round() as usize;
    let samples: Vec<i16> = (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            ((t * 440.0 * std::f64::consts::TAU).sin() * 8_000.0) as i16
        })
        .collect();
    Bytes::from(test_wav(rate, &samples))
}

fn request(wav: Bytes, language: Language) -> TranscribeRequest {
    TranscribeRequest::from_wav(wav, language, DEFAULT_MAX_AUDIO, DEFAULT_DEADLINE).unwrap()
}

fn en_us() -> Language {
    Language::fixed("en-US").unwrap()
}

async fn ok(transcriber: &AwsTranscriber, request: TranscribeRequest) -> Transcript {
    match tokio::time::timeout(WAIT, transcriber.transcribe(request)).await {
        Ok(Ok(transcript)) => transcript,
        Ok(Err(e)) => panic!("transcription failed: {e}"),
        Err(_) => panic!("no answer within {WAIT:?}"),
    }
}

async fn err(transcriber: &AwsTranscriber, request: TranscribeRequest) -> TranscribeError {
    match tokio::time::timeout(WAIT, transcriber.transcribe(request)).await {
        Ok(Ok(transcript)) => panic!("expected an error, got {transcript:?}"),
        Ok(Err(e)) => e,
        Err(_) => panic!("no answer within {WAIT:?}"),
    }
}

#[tokio::test]
async fn the_default_transcript_names_the_duration_the_simulator_counted() {
    let sim = Sim::start().await;
    let transcriber = sim.transcriber().await;
    let wav = tone_wav(16_000, 3.2);
    let transcript = ok(&transcriber, request(wav.clone(), en_us())).await;
    assert_eq!(
        transcript.text,
        "simulated transcript of 3.2 seconds of audio"
    );
    assert_eq!(transcript.language_code.as_deref(), Some("en-US"));
    assert_eq!(transcript.transcribed, Duration::from_millis(3_200));
    assert!(!transcript.truncated);

    let stream = sim.last_stream().await;
    // Exactly the samples: the 58-byte header (with its LIST chunk) was not sent.
    assert_eq!(stream["audio_bytes"], 102_400, "{stream}");
    assert_eq!(wav.len() - 102_400, 58);
    assert_eq!(
        stream["audio_events"], 32,
        "100 ms per AudioEvent: {stream}"
    );
    assert_eq!(stream["largest_chunk"], 3_200);
    assert_eq!(stream["duration_seconds"], 3.2);
    assert_eq!(stream["sample_rate"], 16_000);
    assert_eq!(stream["language_code"], "en-US");
    assert_eq!(stream["ended_by"], "empty_frame", "{stream}");
    assert_eq!(stream["outcome"], "transcribed");
    assert_eq!(stream["final_results"], 1);
    assert_eq!(sim.calls("StartStreamTranscription").await, vec![200]);
    let counters = &sim.transcribe_state().await["counters"];
    assert_eq!(counters["streams"], 1);
    assert_eq!(counters["transcribed"], 1);
    assert_eq!(counters["audio_bytes"], 102_400);
}

#[tokio::test]
async fn a_configured_transcript_comes_back_whole_and_partials_are_ignored() {
    let sim = Sim::start().await;
    let transcriber = sim.transcriber().await;
    // Three sentences: three results, each sent first as a partial, then final.
    let said = "Hola, buenas tardes. ¿Me ayudan con el pedido 4521? Gracias!";
    sim.set_answer(json!({ "transcript": said })).await;
    let transcript = ok(&transcriber, request(tone_wav(16_000, 2.0), en_us())).await;
    assert_eq!(transcript.text, said);
    assert_eq!(sim.last_stream().await["final_results"], 3);

    // The setting reads back as it was put.
    let state = sim.transcribe_state().await;
    assert_eq!(state["transcript"], said);
    assert_eq!(state["fail"], false);

    // Silence: an empty transcript is no result at all, not an error.
    sim.set_answer(json!({ "transcript": "" })).await;
    let silent = ok(&transcriber, request(tone_wav(16_000, 1.0), en_us())).await;
    assert!(silent.is_empty());
    assert_eq!(silent.language_code.as_deref(), Some("en-US"));
}

#[tokio::test]
async fn identification_answers_the_configured_language_among_the_options() {
    let sim = Sim::start().await;
    let transcriber = sim.transcriber().await;
    let options = Language::identify(&["es-US", "en-US", "pt-BR"], None).unwrap();

    sim.set_answer(json!({ "transcript": "Olá, tudo bem?", "language_code": "pt-BR" }))
        .await;
    let transcript = ok(
        &transcriber,
        request(tone_wav(16_000, 1.5), options.clone()),
    )
    .await;
    assert_eq!(transcript.language_code.as_deref(), Some("pt-BR"));
    assert_eq!(transcript.text, "Olá, tudo bem?");
    let stream = sim.last_stream().await;
    assert_eq!(stream["identify_language"], true);
    assert_eq!(stream["language_code"], Value::Null);
    assert_eq!(
        stream["language_options"],
        json!(["es-US", "en-US", "pt-BR"])
    );
    assert_eq!(stream["answered_language"], "pt-BR");

    // A configured language the request did not offer: the first option.
    sim.set_answer(json!({ "language_code": "fr-CA" })).await;
    let transcript = ok(&transcriber, request(tone_wav(16_000, 1.5), options)).await;
    assert_eq!(transcript.language_code.as_deref(), Some("es-US"));

    // The preferred language travels too.
    let preferred = Language::identify(&["es-US", "en-US"], Some("en-US")).unwrap();
    sim.set_answer(json!({ "language_code": "en-US" })).await;
    let transcript = ok(&transcriber, request(tone_wav(16_000, 1.0), preferred)).await;
    assert_eq!(transcript.language_code.as_deref(), Some("en-US"));
    assert_eq!(sim.last_stream().await["preferred_language"], "en-US");
}

#[tokio::test]
async fn fail_true_is_a_typed_error_after_all_the_audio_was_received() {
    let sim = Sim::start().await;
    let transcriber = sim.transcriber().await;
    sim.set_answer(json!({ "transcript": "never sent", "fail": true }))
        .await;
    let error = err(&transcriber, request(tone_wav(16_000, 2.0), en_us())).await;
    let TranscribeError::Service(port) = &error else {
        panic!("expected a service error, got {error:?}");
    };
    assert_eq!(port.kind, ErrorKind::Transient, "{port}");
    assert_eq!(
        (port.service, port.operation),
        ("transcribe", "StartStreamTranscription")
    );
    assert!(
        port.message.starts_with("InternalFailureException"),
        "{port}"
    );
    let stream = sim.last_stream().await;
    assert_eq!(stream["outcome"], "failed");
    assert_eq!(stream["audio_bytes"], 64_000);
    assert_eq!(stream["ended_by"], "empty_frame");

    // Each modelled exception maps to what the retry policy needs.
    for (code, kind) in [
        ("LimitExceededException", ErrorKind::Throttled),
        ("BadRequestException", ErrorKind::Invalid),
        ("ServiceUnavailableException", ErrorKind::Transient),
        ("ConflictException", ErrorKind::Invalid),
    ] {
        sim.set_answer(json!({ "fail": true, "fail_with": code }))
            .await;
        let error = err(&transcriber, request(tone_wav(16_000, 0.5), en_us())).await;
        assert_eq!(error.kind(), kind, "{code}: {error}");
        assert!(error.to_string().contains(code), "{error}");
    }

    // Unknown settings are refused, the old one stays.
    let (status, _) = sim
        .send(
            reqwest::Method::PUT,
            "/sim/transcribe",
            Some(json!({ "fail_with": "NoSuchException" })),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = sim
        .send(
            reqwest::Method::PUT,
            "/sim/transcribe",
            Some(json!({ "transcript": "x", "langauge_code": "es-US" })),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        sim.transcribe_state().await["fail_with"],
        "ConflictException"
    );

    // DELETE restores the default answer.
    let (status, _) = sim
        .send(reqwest::Method::DELETE, "/sim/transcribe", None)
        .await;
    assert_eq!(status, 200);
    let transcript = ok(&transcriber, request(tone_wav(16_000, 1.0), en_us())).await;
    assert_eq!(
        transcript.text,
        "simulated transcript of 1.0 seconds of audio"
    );
}

#[tokio::test]
async fn a_sample_rate_other_than_16_khz_is_a_bad_request() {
    let sim = Sim::start().await;
    let transcriber = sim.transcriber().await;
    let error = err(&transcriber, request(tone_wav(8_000, 1.0), en_us())).await;
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error}");
    assert!(error.to_string().contains("BadRequestException"), "{error}");
    assert!(error.to_string().contains("8000"), "{error}");
    assert_eq!(sim.calls("StartStreamTranscription").await, vec![400]);
    assert_eq!(sim.transcribe_state().await["counters"]["streams"], 0);
}

#[tokio::test]
async fn faults_are_service_errors_and_latency_runs_into_the_deadline() {
    let sim = Sim::start().await;
    let transcriber = sim.transcriber().await;
    for (code, kind) in [
        ("LimitExceededException", ErrorKind::Throttled),
        ("ServiceUnavailableException", ErrorKind::Transient),
        ("BadRequestException", ErrorKind::Invalid),
    ] {
        sim.add_fault(json!({
            "operation": "StartStreamTranscription", "error": code, "count": 1
        }))
        .await;
        let error = err(&transcriber, request(tone_wav(16_000, 0.5), en_us())).await;
        assert_eq!(error.kind(), kind, "{code}: {error}");
    }
    // A streamed body cannot be replayed, so the SDK does not retry: one call each.
    assert_eq!(
        sim.calls("StartStreamTranscription").await,
        vec![429, 503, 400]
    );

    sim.add_fault(json!({
        "operation": "StartStreamTranscription", "latency_ms": 5_000, "count": 1
    }))
    .await;
    let quick = TranscribeRequest::from_wav(
        tone_wav(16_000, 1.0),
        en_us(),
        DEFAULT_MAX_AUDIO,
        Duration::from_millis(300),
    )
    .unwrap();
    let error = err(&transcriber, quick).await;
    assert!(
        matches!(error, TranscribeError::Timeout(d) if d == Duration::from_millis(300)),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Transient);

    // The fault is spent: the next call goes through.
    let transcript = ok(&transcriber, request(tone_wav(16_000, 1.0), en_us())).await;
    assert!(!transcript.is_empty());
}

#[tokio::test]
async fn long_notes_are_cut_to_the_maximum() {
    let sim = Sim::start().await;
    let transcriber = sim.transcriber().await;
    let long = TranscribeRequest::from_wav(
        tone_wav(16_000, 4.0),
        en_us(),
        Duration::from_millis(2_500),
        DEFAULT_DEADLINE,
    )
    .unwrap();
    assert_eq!(long.original_duration(), Duration::from_secs(4));
    let transcript = ok(&transcriber, long).await;
    assert!(transcript.truncated);
    assert_eq!(transcript.transcribed, Duration::from_millis(2_500));
    assert_eq!(
        transcript.text,
        "simulated transcript of 2.5 seconds of audio"
    );
    assert_eq!(sim.last_stream().await["audio_bytes"], 80_000);
}

#[tokio::test]
async fn paced_audio_arrives_whole() {
    let sim = Sim::start().await;
    // Ten times real time: 1.5 s of audio in about 150 ms.
    let paced = sim.transcriber().await.with_pacing(10.0);
    let transcript = ok(&paced, request(tone_wav(16_000, 1.5), en_us())).await;
    assert_eq!(
        transcript.text,
        "simulated transcript of 1.5 seconds of audio"
    );
    let stream = sim.last_stream().await;
    assert_eq!(stream["audio_events"], 15);
    assert_eq!(stream["audio_bytes"], 48_000);
}

#[tokio::test]
async fn a_spoken_note_from_espeak_and_ffmpeg_is_streamed_sample_for_sample() {
    let sim = Sim::start().await;
    let transcriber = sim.transcriber().await;
    let dir = tempfile::tempdir().unwrap();
    let spoken = dir.path().join("spoken.wav");
    run(Command::new("espeak-ng")
        .arg("-w")
        .arg(&spoken)
        .arg("Hola, necesito ayuda con mi pedido número doce"));
    // What the TranscoderPool's profile writes: PCM s16le, 16 kHz, mono.
    let wav_path = dir.path().join("voice.wav");
    run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&spoken)
        .args(["-c:a", "pcm_s16le", "-ar", "16000", "-ac", "1"])
        .arg(&wav_path));
    let wav = std::fs::read(&wav_path).unwrap();
    let info = wav_info(&wav).expect("ffmpeg wrote a WAV");
    assert_eq!((info.sample_rate, info.channels), (16_000, 1));
    let samples = (info.duration.as_secs_f64() * 16_000.0).round() as u64;

    let transcript = ok(&transcriber, request(Bytes::from(wav.clone()), en_us())).await;
    let stream = sim.last_stream().await;
    assert_eq!(stream["audio_bytes"], samples * 2, "{stream}");
    assert!(
        wav.len() as u64 > samples * 2 + 44 - 1,
        "header skipped, whatever its size"
    );
    let seconds = samples as f64 / 16_000.0;
    assert_eq!(
        transcript.text,
        format!("simulated transcript of {seconds:.1} seconds of audio")
    );
}

#[tokio::test]
async fn plain_http_is_http_1_and_refused_and_an_untrusted_certificate_fails() {
    let sim = Sim::start().await;
    // Over http:// the SDK's client speaks HTTP/1.1, which Transcribe Streaming is not.
    let plain = transcriber(&format!("http://{}", sim.addr), None).await;
    let error = err(&plain, request(tone_wav(16_000, 0.5), en_us())).await;
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error}");
    assert!(error.to_string().contains("HTTP/2"), "{error}");

    // Without the simulator's CA the TLS handshake fails: nothing trusts everything.
    let untrusting = transcriber(&sim.https(), None).await;
    let error = err(&untrusting, request(tone_wav(16_000, 0.5), en_us())).await;
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert!(error.to_string().contains("dispatch failure"), "{error}");
    assert_eq!(sim.calls("StartStreamTranscription").await, vec![400]);

    // The CA served by the control API is the one written to the file.
    let served = reqwest::get(sim.control_url("/sim/tls/ca.pem"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, sim.ca_pem);
}

#[tokio::test]
async fn transcription_latency_of_a_5_second_note() {
    const RUNS: usize = 20;
    let sim = Sim::start().await;
    let transcriber = sim.transcriber().await;
    let wav = tone_wav(16_000, 5.0);
    let mut took = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let transcript = ok(&transcriber, request(wav.clone(), en_us())).await;
        took.push(started.elapsed());
        assert_eq!(
            transcript.text,
            "simulated transcript of 5.0 seconds of audio"
        );
    }
    eprintln!(
        "all: {:?}",
        took.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    );
    let first = took[0];
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "transcribe 5 s note via the simulator ({} build, {RUNS} runs, 50 AudioEvents of 100 ms, \
         unpaced): first {:.1} ms (new TLS + HTTP/2 connection), p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        ms(first),
        ms(took[RUNS / 2]),
        ms(took[RUNS * 9 / 10]),
        ms(took[RUNS - 1]),
    );
    assert_eq!(
        sim.transcribe_state().await["counters"]["transcribed"],
        RUNS as u64
    );
}

// ---------------------------------------------------------------------------------------
// Processes: `waconnect sim` and `waconnect local` serve the TLS endpoint too.
// ---------------------------------------------------------------------------------------

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_waconnect(args: &[&str], log: &Path) -> Process {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_waconnect"))
        .args(args)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn waconnect");
    Process(child)
}

/// Waits for `/sim/healthz` and the CA file.
async fn wait_ready(process: &mut Process, port: u16, ca_file: &Path, log: &Path) {
    let url = format!("http://127.0.0.1:{port}/sim/healthz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = process.0.try_wait() {
            panic!(
                "waconnect exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        let healthy = matches!(reqwest::get(&url).await, Ok(r) if r.status().is_success());
        if healthy && ca_file.exists() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not ready: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn standalone_sim_writes_its_ca_and_serves_transcribe_on_the_listen_port() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let ca_file = dir.path().join("certs").join("sim-ca.pem");
    let log = dir.path().join("sim.log");
    let listen = format!("127.0.0.1:{port}");
    let mut process = spawn_waconnect(
        &[
            "sim",
            "--listen",
            &listen,
            "--inbound-queue-url",
            "http://127.0.0.1:9/unused",
            "--tls-ca-out",
            ca_file.to_str().unwrap(),
        ],
        &log,
    );
    wait_ready(&mut process, port, &ca_file, &log).await;
    let transcriber = transcriber(&format!("https://{listen}"), Some(&ca_file)).await;
    let transcript = ok(&transcriber, request(tone_wav(16_000, 1.0), en_us())).await;
    assert_eq!(
        transcript.text,
        "simulated transcript of 1.0 seconds of audio"
    );
}

#[tokio::test]
async fn local_mode_serves_transcribe_with_the_ca_in_its_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let data_dir = dir.path().join("data");
    let log = dir.path().join("local.log");
    let listen = format!("127.0.0.1:{port}");
    let admin_listen = format!("127.0.0.1:{admin}");
    let mut process = spawn_waconnect(
        &[
            "local",
            "--listen",
            &listen,
            "--admin-listen",
            &admin_listen,
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        &log,
    );
    let ca_file = data_dir.join(sim::LOCAL_CA_FILE);
    wait_ready(&mut process, port, &ca_file, &log).await;
    let transcriber = transcriber(&format!("https://{listen}"), Some(&ca_file)).await;
    let transcript = ok(&transcriber, request(tone_wav(16_000, 0.7), en_us())).await;
    assert_eq!(
        transcript.text,
        "simulated transcript of 0.7 seconds of audio"
    );
}

// ---------------------------------------------------------------------------------------
// A raw HTTP/2 client: results only after the end of the audio.
// ---------------------------------------------------------------------------------------

mod raw {
    use super::*;
    use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    use futures::StreamExt;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use rustls::pki_types::ServerName;
    use tokio::sync::mpsc;

    fn encode(message: &Message) -> Bytes {
        let mut buffer = Vec::new();
        write_message_to(message, &mut buffer).unwrap();
        Bytes::from(buffer)
    }

    fn string(value: &str) -> HeaderValue {
        HeaderValue::String(value.to_string().into())
    }

    /// A frame as the SDK sends it: the event inside a signature envelope.
    fn signed(inner: Option<Message>) -> Bytes {
        let payload = inner.map(|m| encode(&m)).unwrap_or_default();
        encode(
            &Message::new(payload)
                .add_header(Header::new(
                    ":chunk-signature",
                    HeaderValue::ByteArray(Bytes::from_static(&[7; 32])),
                ))
                .add_header(Header::new(
                    ":date",
                    HeaderValue::Timestamp(aws_smithy_types::DateTime::from_secs(1_700_000_000)),
                )),
        )
    }

    fn event(kind: &str, content_type: &str, payload: Bytes) -> Message {
        Message::new(payload)
            .add_header(Header::new(":message-type", string("event")))
            .add_header(Header::new(":event-type", string(kind)))
            .add_header(Header::new(":content-type", string(content_type)))
    }

    /// Reads response frames until one is complete; answers its `:event-type` (or
    /// exception type) and JSON payload.
    async fn next_message(
        body: &mut axum::body::BodyDataStream,
        buffer: &mut Vec<u8>,
    ) -> Option<(String, Value)> {
        loop {
            if buffer.len() >= 4 {
                let total =
                    u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize;
                if buffer.len() >= total {
                    let frame: Vec<u8> = buffer.drain(..total).collect();
                    let message = read_message_from(Bytes::from(frame)).unwrap();
                    let kind = message
                        .headers()
                        .iter()
                        .find(|h| {
                            h.name().as_str() == ":event-type"
                                || h.name().as_str() == ":exception-type"
                        })
                        .map(|h| h.value().as_string().unwrap().as_str().to_string())
                        .unwrap();
                    let json = serde_json::from_slice(message.payload()).unwrap();
                    return Some((kind, json));
                }
            }
            match tokio::time::timeout(WAIT, body.next()).await {
                Ok(Some(Ok(bytes))) => buffer.extend_from_slice(&bytes),
                Ok(None) => return None,
                Ok(Some(Err(e))) => panic!("response body: {e}"),
                Err(_) => panic!("no response frame within {WAIT:?}"),
            }
        }
    }

    #[tokio::test]
    async fn no_result_is_sent_before_the_audio_ends() {
        let sim = Sim::start().await;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(sim.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let tcp = tokio::net::TcpStream::connect(sim.addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(connection);

        let (audio, frames) = mpsc::channel::<Bytes>(64);
        let body = axum::body::Body::from_stream(futures::stream::unfold(frames, |mut rx| async {
            rx.recv()
                .await
                .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
        }));
        let request = hyper::Request::post(format!("https://{}/stream-transcription", sim.addr))
            .header("content-type", "application/vnd.amazon.eventstream")
            .header("x-amzn-transcribe-sample-rate", "16000")
            .header("x-amzn-transcribe-media-encoding", "pcm")
            .header("x-amzn-transcribe-language-code", "es-US")
            .header("x-amzn-transcribe-session-id", "raw-h2-test")
            .body(body)
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        assert_eq!(
            response.headers()["x-amzn-transcribe-session-id"],
            "raw-h2-test"
        );
        let mut body = axum::body::Body::new(response.into_body()).into_data_stream();
        let mut buffer = Vec::new();

        // A configuration event, then ten AudioEvents of 100 ms, one frame split in two.
        let config = event(
            "ConfigurationEvent",
            "application/json",
            Bytes::from_static(b"{}"),
        );
        audio.send(signed(Some(config))).await.unwrap();
        let pcm = Bytes::from(vec![1u8; 3_200]);
        for i in 0..10 {
            let frame = signed(Some(event(
                "AudioEvent",
                "application/octet-stream",
                pcm.clone(),
            )));
            if i == 4 {
                audio.send(frame.slice(..100)).await.unwrap();
                audio.send(frame.slice(100..)).await.unwrap();
            } else {
                audio.send(frame).await.unwrap();
            }
        }
        // Transcribe keeps the stream alive with empty events while audio flows: the
        // first one comes after the tenth AudioEvent, and nothing came before it.
        let (kind, first) = next_message(&mut body, &mut buffer).await.unwrap();
        assert_eq!(kind, "TranscriptEvent");
        assert_eq!(first["Transcript"]["Results"], json!([]), "{first}");
        let stream = sim.last_stream().await;
        assert_eq!(stream["outcome"], "streaming");
        assert_eq!(stream["audio_bytes"], 32_000);
        assert_eq!(stream["final_results"], 0);

        // End the audio with an empty AudioEvent, then close the body.
        let end = event("AudioEvent", "application/octet-stream", Bytes::new());
        audio.send(signed(Some(end))).await.unwrap();
        drop(audio);
        let mut finals = Vec::new();
        while let Some((kind, message)) = next_message(&mut body, &mut buffer).await {
            assert_eq!(kind, "TranscriptEvent", "{message}");
            for result in message["Transcript"]["Results"].as_array().unwrap() {
                if result["IsPartial"] == false {
                    finals.push(result["Alternatives"][0]["Transcript"].clone());
                }
            }
        }
        assert_eq!(
            finals,
            vec![json!("simulated transcript of 1.0 seconds of audio")]
        );
        let stream = sim.last_stream().await;
        assert_eq!(stream["ended_by"], "empty_audio_event");
        assert_eq!(stream["outcome"], "transcribed");
        assert_eq!(stream["audio_events"], 10);
    }

    #[tokio::test]
    async fn a_wav_header_sent_as_audio_is_refused_in_the_stream() {
        let sim = Sim::start().await;
        // Through the SDK directly, as a client that forgot to strip the header would.
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(sim.https())
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .load()
            .await;
        let pem = std::fs::read(&sim.ca_file).unwrap();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(
                aws_smithy_http_client::tls::TlsContext::builder()
                    .with_trust_store(
                        aws_smithy_http_client::tls::TrustStore::empty().with_pem_certificate(pem),
                    )
                    .build()
                    .unwrap(),
            )
            .build_https();
        let client = aws_sdk_transcribestreaming::Client::from_conf(
            aws_sdk_transcribestreaming::config::Builder::from(&sdk)
                .http_client(http)
                .build(),
        );
        use aws_sdk_transcribestreaming::types::{
            AudioEvent, AudioStream, LanguageCode, MediaEncoding,
        };
        let wav = tone_wav(16_000, 0.2);
        let events = vec![Ok(AudioStream::AudioEvent(
            AudioEvent::builder()
                .audio_chunk(aws_sdk_transcribestreaming::primitives::Blob::new(
                    wav.to_vec(),
                ))
                .build(),
        ))];
        let mut output = client
            .start_stream_transcription()
            .language_code(LanguageCode::EnUs)
            .media_encoding(MediaEncoding::Pcm)
            .media_sample_rate_hertz(16_000)
            .audio_stream(futures::stream::iter(events).into())
            .send()
            .await
            .unwrap();
        let error = loop {
            match output.transcript_result_stream.recv().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("stream ended without the exception"),
                Err(e) => break e,
            }
        };
        let text = format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(&error)
        );
        assert!(text.contains("BadRequestException"), "{text}");
        assert!(text.contains("RIFF"), "{text}");
        assert_eq!(sim.last_stream().await["outcome"], "failed");
    }
}
