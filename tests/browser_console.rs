//! The local console: `waconnect local` (the real binary, router + simulator, temp data
//! dir, free loopback ports) serving its page, assets and event stream, driven over HTTP
//! and, in the last test, in Debian's chromium through playwright-core
//! (`tests/browser/console.spec.mjs`). No moto needed: local mode has no AWS.
//!
//! The browser test fails, never skips, when node, playwright-core or chromium is
//! missing; `./scripts/test.sh` installs them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

const START_DEADLINE: Duration = Duration::from_secs(60);
const FLOW_DEADLINE: Duration = Duration::from_secs(60);
/// The whole browser run (chromium start, every flow, screenshots).
const BROWSER_DEADLINE: Duration = Duration::from_secs(300);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("pick a free loopback port")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// `waconnect local` on free loopback ports with a temporary data dir; killed on drop.
struct Local {
    child: Child,
    url: String,
    log: PathBuf,
    _data: tempfile::TempDir,
}

impl Local {
    async fn start(test: &str) -> Local {
        let logs = repo().join(".test-logs").join("browser_console").join(test);
        let _ = std::fs::remove_dir_all(&logs);
        std::fs::create_dir_all(&logs).expect("create the test's log dir");
        let log = logs.join("local.log");
        let file = std::fs::File::create(&log).expect("create local.log");
        let data = tempfile::tempdir().expect("temp data dir");
        let (port, admin) = (free_port(), free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_waconnect"));
        command
            .args(["local", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
            .arg("--data-dir")
            .arg(data.path())
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().expect("log handle")))
            .stderr(Stdio::from(file));
        for (name, _) in std::env::vars() {
            if name.starts_with("WACONNECT_") || name.starts_with("AWS_ENDPOINT_URL") {
                command.env_remove(&name);
            }
        }
        command.env("RUST_LOG", "info,waconnect=debug");
        let child = command.spawn().expect("spawn waconnect local");
        let mut local = Local {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _data: data,
        };
        local.wait_ok(&format!("{}/sim/healthz", local.url)).await;
        local
            .wait_ok(&format!("http://127.0.0.1:{admin}/readyz"))
            .await;
        local
    }

    async fn wait_ok(&mut self, url: &str) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "waconnect local exited during start-up ({status}):\n{}",
                    self.log_tail()
                );
            }
            let answer = http().get(url).timeout(Duration::from_secs(2)).send().await;
            if answer.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(
                started.elapsed() < START_DEADLINE,
                "GET {url} did not answer 200 within {START_DEADLINE:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        http()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// POSTs `body`; answers (status, JSON body).
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = http()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct SseEvent {
    name: String,
    id: String,
    data: Value,
}

impl SseEvent {
    fn seq(&self) -> u64 {
        let (_, seq) = self
            .id
            .rsplit_once('-')
            .expect("event ids are <epoch>-<seq>");
        seq.parse().expect("a numeric sequence")
    }
}

/// A reader of `GET /sim/events`.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    async fn connect(base: &str, last_event_id: Option<&str>) -> Sse {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let mut request = client.get(format!("{base}/sim/events"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("GET /sim/events");
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), "text/event-stream");
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped); panics after `FLOW_DEADLINE`.
    async fn next(&mut self) -> SseEvent {
        let deadline = Instant::now() + FLOW_DEADLINE;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if name.is_empty() && data.is_empty() {
                    continue; // a comment (keep-alive) or a bare retry
                }
                let data = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("event {name} data is not JSON ({e}): {data}"));
                return SseEvent { name, id, data };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within {FLOW_DEADLINE:?}"))
                .expect("read the event stream")
                .expect("the event stream ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Events until (and with) the first for which `done` holds.
    async fn until(&mut self, done: impl Fn(&SseEvent) -> bool) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await;
            let last = done(&event);
            seen.push(event);
            if last {
                return seen;
            }
        }
    }
}

fn position(events: &[SseEvent], what: &str, test: impl Fn(&SseEvent) -> bool) -> usize {
    events.iter().position(test).unwrap_or_else(|| {
        let names: Vec<String> = events
            .iter()
            .map(|e| format!("{} {}", e.name, e.data))
            .collect();
        panic!("no {what} among the events:\n{}", names.join("\n"))
    })
}

fn is_reaction(event: &SseEvent, wamid: &str, emoji: &str) -> bool {
    let reaction = &event.data["entry"]["body"]["reaction"];
    event.name == "inbox" && reaction["message_id"] == wamid && reaction["emoji"] == emoji
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_its_assets_are_served_with_their_types_and_csp() {
    let local = Local::start("assets").await;
    let page = local.get("/").await;
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let csp = header(&page, "content-security-policy").to_string();
    assert_eq!(csp, waconnect::sim::CONSOLE_CSP);
    for needed in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(needed), "{csp} lacks {needed}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "inline script or style"
    );

    // Every asset the page names is served, with its type and the same policy; none
    // lives elsewhere.
    let mut named = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for piece in html.split(attribute).skip(1) {
            named.push(piece.split('"').next().unwrap().to_string());
        }
    }
    let assets: Vec<&String> = named.iter().filter(|u| !u.starts_with('#')).collect();
    assert_eq!(assets.len(), 3, "{named:?}");
    for asset in assets {
        assert!(
            asset.starts_with("/console/"),
            "{asset} is not the binary's"
        );
        let response = local.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        let expected = match asset.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected asset type {other:?}"),
        };
        assert_eq!(header(&response, "content-type"), expected, "{asset}");
        assert_eq!(header(&response, "content-security-policy"), csp);
        let text = response.text().await.unwrap();
        if !asset.ends_with(".svg") {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{asset} names an external URL"
            );
        }
    }
    assert_eq!(local.get("/console/nothing.js").await.status(), 404);
    assert_eq!(local.get("/sim/customers/1/media/2").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_message_produces_events_in_order_and_a_reconnect_resumes() {
    let local = Local::start("events").await;
    let mut sse = Sse::connect(&local.url, None).await;
    let snapshot = sse.next().await;
    assert_eq!(snapshot.name, "snapshot");
    assert_eq!(snapshot.data["customers"], json!([]));
    assert_eq!(snapshot.data["chats"], json!([]));
    assert_eq!(snapshot.data["seq"], snapshot.seq());

    let (status, answer) = local
        .post(
            "/sim/customers/5491155550123/messages",
            json!({"type": "text", "text": {"body": "Hola, ¿me ayudan?"}, "profile_name": "Lucía"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let wamid = answer["wamid"].as_str().unwrap().to_string();
    let events = sse.until(|e| is_reaction(e, &wamid, "✅")).await;

    let seqs: Vec<u64> = events.iter().map(SseEvent::seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1) && seqs[0] == snapshot.seq() + 1,
        "sequence numbers must follow the snapshot without gaps: {seqs:?}"
    );
    let sent = position(&events, "customer.message", |e| {
        e.name == "customer.message" && e.data["wamid"] == wamid.as_str()
    });
    assert_eq!(events[sent].data["status"], "sent");
    assert_eq!(
        events[sent].data["message"]["text"]["body"],
        "Hola, ¿me ayudan?"
    );
    let chat = position(&events, "chat started", |e| {
        e.name == "chat" && e.data["chat"]["customer_id"] == "5491155550123"
    });
    assert_eq!(events[chat].data["chat"]["state"], "active");
    let contact = events[chat].data["chat"]["contact_id"].clone();
    let item = position(&events, "the customer's chat item", |e| {
        e.name == "item"
            && e.data["item"]["participant_role"] == "CUSTOMER"
            && e.data["item"]["content"] == "Hola, ¿me ayudan?"
    });
    assert_eq!(events[item].data["contact_id"], contact);
    assert_eq!(events[item].data["customer_id"], "5491155550123");
    let started = position(&events, "StartChatContact call", |e| {
        e.name == "call" && e.data["operation"] == "StartChatContact"
    });
    let read = position(&events, "read mark", |e| {
        e.name == "inbox"
            && e.data["entry"]["type"] == "read"
            && e.data["entry"]["body"]["message_id"] == wamid.as_str()
    });
    assert_eq!(events[read].data["wa_id"], "5491155550123");
    let seen = position(&events, "👀 reaction", |e| is_reaction(e, &wamid, "👀"));
    let done = events.len() - 1;
    assert!(
        sent < chat && chat < item && chat < started,
        "{sent} {chat} {item} {started}"
    );
    // ✅ says the message reached the agent; 👀 and the read mark only follow the customer
    // message (the router sends acknowledgements concurrently).
    assert!(sent < read && sent < seen && item < done);

    // A client that lost the connection after `customer.message` resumes right after it.
    let mut resumed = Sse::connect(&local.url, Some(&events[sent].id)).await;
    for expected in &events[sent + 1..] {
        let got = resumed.next().await;
        assert_eq!((&got.name, &got.id), (&expected.name, &expected.id));
    }

    // An id from another lifetime (or too old) gets a fresh snapshot with it all.
    let mut fresh = Sse::connect(&local.url, Some("0123456789ab-3")).await;
    let again = fresh.next().await;
    assert_eq!(again.name, "snapshot");
    let customer = &again.data["customers"][0];
    assert_eq!(customer["wa_id"], "5491155550123");
    assert_eq!(customer["profile_name"], "Lucía");
    assert_eq!(customer["sent"][0]["wamid"], wamid.as_str());
    assert_eq!(customer["sent"][0]["seq"], events[sent].seq());
    let inbox = customer["inbox"].as_array().unwrap();
    assert!(inbox.iter().any(|e| e["body"]["reaction"]["emoji"] == "✅"
        && e["seq"] == events[done].seq()
        && e["at"].is_string()));
    let items = again.data["chats"][0]["items"].as_array().unwrap();
    assert!(items.iter().any(|i| i["content"] == "Hola, ¿me ayudan?"));
}

/// What a browser's MediaRecorder makes: Opus in WebM, here from ffmpeg's tone source.
fn webm_clip() -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi"])
        .args(["-i", "sine=frequency=440:duration=1.5"])
        .args(["-c:a", "libopus", "-f", "webm", "pipe:1"])
        .output()
        .expect("run ffmpeg (./scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_clip_becomes_an_ogg_opus_voice_note_that_reaches_the_agent_as_wav() {
    let local = Local::start("voice_note").await;
    let mut sse = Sse::connect(&local.url, None).await;
    sse.next().await;
    let clip = base64::engine::general_purpose::STANDARD.encode(webm_clip());
    let customer = "/sim/customers/5491155550124/messages";
    let (status, answer) = local
        .post(
            customer,
            json!({"type": "audio", "media": {"content_base64": clip, "mime_type": "audio/webm;codecs=opus", "voice_note": true}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let wamid = answer["wamid"].as_str().unwrap().to_string();

    let events = sse
        .until(|e| {
            e.name == "item"
                && e.data["item"]["type"] == "ATTACHMENT"
                && e.data["item"]["participant_role"] == "CUSTOMER"
        })
        .await;
    let sent = &events[position(&events, "customer.message", |e| {
        e.name == "customer.message" && e.data["wamid"] == wamid.as_str()
    })]
    .data;
    assert_eq!(sent["message"]["audio"]["voice"], true);
    assert_eq!(
        sent["message"]["audio"]["mime_type"],
        "audio/ogg; codecs=opus"
    );
    let note = local.get(sent["media"]["url"].as_str().unwrap()).await;
    assert_eq!(note.status(), 200);
    assert_eq!(header(&note, "content-type"), "audio/ogg; codecs=opus");
    let note = note.bytes().await.unwrap();
    assert!(note.starts_with(b"OggS"), "not OGG");
    assert!(
        note.windows(8).any(|w| w == b"OpusHead"),
        "OGG without an Opus stream"
    );

    // The router converted the voice note for Connect, as for any WhatsApp voice note.
    let item = &events.last().unwrap().data;
    let attachment = &item["item"]["attachment"];
    assert_eq!(attachment["content_type"], "audio/wav");
    let path = format!(
        "/sim/chats/{}/attachments/{}",
        item["contact_id"].as_str().unwrap(),
        attachment["id"].as_str().unwrap()
    );
    let wav = local.get(&path).await;
    assert_eq!(header(&wav, "content-security-policy"), "sandbox");
    assert_eq!(header(&wav, "x-content-type-options"), "nosniff");
    let wav = wav.bytes().await.unwrap();
    assert!(wav.starts_with(b"RIFF") && &wav[8..12] == b"WAVE");

    // Typing, as the agent's app sends it, is recorded and streamed as a Connect event.
    let contact = item["contact_id"].as_str().unwrap();
    let typing = "application/vnd.amazonaws.connect.event.typing";
    let (status, answer) = local
        .post(
            &format!("/sim/chats/{contact}/agent/events"),
            json!({ "content_type": typing }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let typed = sse
        .until(|e| e.name == "item" && e.data["item"]["content_type"] == typing)
        .await;
    let event = &typed.last().unwrap().data["item"];
    assert_eq!(
        (event["type"].as_str(), event["participant_role"].as_str()),
        (Some("EVENT"), Some("AGENT"))
    );
    let (status, _) = local
        .post(
            &format!("/sim/chats/{contact}/agent/events"),
            json!({ "content_type": "text/plain" }),
        )
        .await;
    assert_eq!(status, 400);

    // What cannot become a voice note is a 400 that says why.
    for (body, why) in [
        (
            json!({"type": "audio", "media": {"content_base64": "PGh0bWw+", "mime_type": "text/html", "voice_note": true}}),
            "cannot make a voice note",
        ),
        (
            json!({"type": "audio", "media": {"content_base64": "bm90IGF1ZGlv", "mime_type": "audio/webm", "voice_note": true}}),
            "could not be decoded",
        ),
        (
            json!({"type": "image", "media": {"content_base64": clip, "mime_type": "audio/webm", "voice_note": true}}),
            "needs a message of type \"audio\"",
        ),
    ] {
        let (status, answer) = local.post(customer, body).await;
        assert_eq!(status, 400, "{answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "{error}");
    }
}

/// Runs `tests/browser/console.spec.mjs` against a fresh `waconnect local`: customer text
/// to the agent, the agent's reply and ✅ on the phone, an image as an attachment, a
/// recorded voice note, an agent file, the strip, the narrow layout, ending the chat, a
/// reload, and no console errors. Screenshots go to docs/ (`WACONNECT_SCREENSHOT_DIR`
/// overrides).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let browser_dir = repo().join("tests").join("browser");
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => panic!(
            "node is not installed, so the console cannot be tested in a browser: install \
             Node.js (./scripts/test.sh needs node and npm to install playwright-core)"
        ),
    }
    assert!(
        browser_dir
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is not installed in tests/browser/node_modules: run \
         ./scripts/test.sh (it runs npm ci there)"
    );
    let local = Local::start("browser").await;
    let shots = std::env::var_os("WACONNECT_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("docs"));
    let run = tokio::process::Command::new("node")
        .arg("console.spec.mjs")
        .current_dir(&browser_dir)
        .env("CONSOLE_URL", &local.url)
        .env("SCREENSHOT_DIR", &shots)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(BROWSER_DEADLINE, run)
        .await
        .unwrap_or_else(|_| panic!("the browser test did not finish within {BROWSER_DEADLINE:?}"))
        .expect("run node tests/browser/console.spec.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("BROWSER TEST PASSED"),
        "the browser test failed ({}):\n{stdout}\n{stderr}\n--- waconnect local log (tail) ---\n{}",
        output.status,
        local.log_tail()
    );
    println!("{stdout}");
    for shot in ["console.png", "console-narrow.png"] {
        let bytes = std::fs::read(shots.join(shot)).expect("the screenshot was written");
        assert!(bytes.starts_with(b"\x89PNG"), "{shot} is not a PNG");
    }
}
