//! What the reference sample does, done better (issue 10): voice notes transcribed with
//! Amazon Transcribe Streaming (played by the simulator on the wire the SDK speaks), and
//! bursts of texts joined into one chat message only while no agent has joined.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{json, Value};

const ANA: &str = "5491155550123";
const DEADLINE: Duration = Duration::from_secs(60);

/// A spoken WhatsApp voice note (espeak-ng, then OGG/Opus).
fn voice_note(dir: &Path, words: &str) -> Vec<u8> {
    let wav = dir.join("spoken.wav");
    let ogg = dir.join("voice.ogg");
    let ok = Command::new("espeak-ng")
        .arg("-w")
        .arg(&wav)
        .arg(words)
        .status()
        .expect("espeak-ng")
        .success()
        && Command::new("ffmpeg")
            .args(["-y", "-loglevel", "error", "-i"])
            .arg(&wav)
            .args(["-c:a", "libopus", "-b:a", "24k"])
            .arg(&ogg)
            .status()
            .expect("ffmpeg")
            .success();
    assert!(ok, "could not make a voice note");
    std::fs::read(ogg).unwrap()
}

async fn send_voice_note(w: &World, wa_id: &str, note: &[u8]) -> String {
    let media = json!({
        "content_base64": base64::engine::general_purpose::STANDARD.encode(note),
        "mime_type": "audio/ogg; codecs=opus",
    });
    w.sim
        .send_message(
            wa_id,
            json!({"type": "audio", "audio": {"voice": true}, "media": media}),
        )
        .await
}

/// The chat's items as (type, customer text or attachment name), in order.
fn items(chat: &Value) -> Vec<(String, String)> {
    chat_items(chat)
        .iter()
        .map(|i| {
            let kind = i["type"].as_str().unwrap_or_default().to_string();
            let what = if kind == "ATTACHMENT" {
                i["attachment"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            } else {
                i["content"].as_str().unwrap_or_default().to_string()
            };
            (kind, what)
        })
        .collect()
}

async fn wait_items(
    w: &World,
    wa_id: &str,
    what: &str,
    f: impl Fn(&[(String, String)]) -> bool,
) -> Value {
    let sim = &w.sim;
    wait_for(what, DEADLINE, async || {
        let chat = sim.chat_for(wa_id).await;
        match chat {
            Some(c) if f(&items(&c)) => Ok(c),
            Some(c) => Err(format!("{:?}", items(&c))),
            None => Err("no chat".into()),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_note_reaches_the_agent_as_audio_then_its_transcript_and_the_customer_gets_it_quoted(
) {
    let w = World::start("parity_transcript").await;
    let dir = tempfile::tempdir().unwrap();
    let note = voice_note(dir.path(), "hola necesito ayuda con mi pedido");
    w.sim
        .set_transcription(json!({"transcript": "hola necesito ayuda con mi pedido"}))
        .await;
    let wamid = send_voice_note(&w, ANA, &note).await;
    let chat = wait_items(&w, ANA, "the audio, then its transcript", |items| {
        items
            .iter()
            .any(|(_, t)| t.contains("hola necesito ayuda con mi pedido"))
    })
    .await;
    let items = items(&chat);
    let audio = items
        .iter()
        .position(|(k, _)| k == "ATTACHMENT")
        .expect("the WAV");
    let transcript = items
        .iter()
        .position(|(_, t)| t.starts_with("📝 Transcript of the voice note"))
        .expect("a labelled transcript");
    assert!(
        audio < transcript,
        "audio first, then its transcript: {items:?}"
    );
    assert!(items[audio].1.ends_with(".wav"), "{items:?}");
    // The customer sees the transcript quoted under their note.
    let inbox = w
        .wait_for_inbox_text(ANA, "🔊 _hola necesito ayuda con mi pedido_")
        .await;
    let quoted = inbox
        .iter()
        .find(|m| {
            m["type"] == "text"
                && m["body"]["text"]["body"]
                    .as_str()
                    .is_some_and(|b| b.starts_with("🔊"))
        })
        .unwrap();
    assert_eq!(quoted["body"]["context"]["message_id"], wamid.as_str());
    // The simulator really got 16 kHz PCM, and only answered once the audio ended.
    let streams = http_client()
        .get(format!("{}/sim/transcribe", w.sim.url))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let stream = &streams["streams"][0];
    assert_eq!(stream["sample_rate"], 16000);
    assert_eq!(stream["media_encoding"], "pcm");
    assert_eq!(stream["outcome"], "transcribed");
    assert!(stream["audio_bytes"].as_u64().unwrap() > 16000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transcription_never_holds_the_audio_back_and_the_agent_is_told() {
    let w = World::start("parity_transcript_fails").await;
    let dir = tempfile::tempdir().unwrap();
    let note = voice_note(dir.path(), "hola");
    w.sim.set_transcription(json!({"fail": true})).await;
    send_voice_note(&w, ANA, &note).await;
    let chat = wait_items(&w, ANA, "the audio and the notice", |items| {
        items
            .iter()
            .any(|(_, t)| t.contains("No transcript is available"))
    })
    .await;
    let items = items(&chat);
    assert!(
        items
            .iter()
            .any(|(k, n)| k == "ATTACHMENT" && n.ends_with(".wav")),
        "{items:?}"
    );
    let notice = items
        .iter()
        .find(|(_, t)| t.contains("No transcript"))
        .unwrap();
    assert!(
        !notice.1.contains("InternalFailure"),
        "in words, not an error dump: {notice:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_is_identified_among_the_configured_ones() {
    let w = World::start_with(
        "parity_identify_language",
        Opts::default(),
        &[
            ("WACONNECT_TRANSCRIBE_LANGUAGES", "es-US,en-US,pt-BR"),
            ("WACONNECT_TRANSCRIBE_LANGUAGE", "en-US"),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let note = voice_note(dir.path(), "bom dia");
    w.sim
        .set_transcription(
            json!({"transcript": "bom dia preciso de ajuda", "language_code": "pt-BR"}),
        )
        .await;
    send_voice_note(&w, ANA, &note).await;
    let chat = wait_items(&w, ANA, "the transcript", |items| {
        items
            .iter()
            .any(|(_, t)| t.contains("bom dia preciso de ajuda"))
    })
    .await;
    let items = items(&chat);
    let transcript = items.iter().find(|(_, t)| t.contains("bom dia")).unwrap();
    assert!(
        transcript.1.contains("(pt-BR)"),
        "the identified language reaches the agent: {transcript:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_before_an_agent_joins_are_one_message_and_after_it_each_goes_at_once() {
    let w = World::start("parity_bursts").await;
    let sent_last = {
        for text in ["hola", "quiero cambiar", "mi pedido"] {
            w.customer_says(ANA, text).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Instant::now()
    };
    let chat = w.wait_for_chat(ANA).await;
    let took = sent_last.elapsed();
    assert_eq!(
        customer_messages(&chat),
        ["hola\nquiero cambiar\nmi pedido"],
        "one chat message with the three lines, in order"
    );
    println!(
        "burst delivered {:.2}s after its last text (quiet gap 1.5 s)",
        took.as_secs_f64()
    );
    // An agent joins: every text goes through on its own.
    let contact = contact_id(&chat);
    http_client()
        .post(format!("{}/sim/chats/{contact}/agent/join", w.sim.url))
        .json(&json!({"display_name": "Marta"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    // The join reaches the router through the chat stream.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for text in ["uno", "dos", "tres"] {
        w.customer_says(ANA, text).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let chat = w.wait_for_lines_in(&contact, 6).await;
    assert_eq!(
        customer_messages(&chat)[1..],
        ["uno", "dos", "tres"],
        "three messages once an agent is there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_an_image_and_a_text_keep_their_order_before_an_agent_joins() {
    let w = World::start("parity_burst_order").await;
    let png = base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
        .unwrap();
    w.customer_says(ANA, "antes").await;
    w.sim
        .send_message(
            ANA,
            json!({"type": "image", "image": {},
                   "media": {"content_base64": base64::engine::general_purpose::STANDARD.encode(&png),
                             "mime_type": "image/png"}}),
        )
        .await;
    w.customer_says(ANA, "después").await;
    let chat = wait_items(&w, ANA, "text, image, text", |items| {
        items.iter().any(|(_, t)| t == "después")
    })
    .await;
    let order: Vec<String> = items(&chat)
        .into_iter()
        .filter(|(k, t)| k == "ATTACHMENT" || t == "antes" || t == "después")
        .map(|(k, t)| if k == "ATTACHMENT" { "image".into() } else { t })
        .collect();
    assert_eq!(order, ["antes", "image", "después"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_waiting_in_a_burst_survive_a_crash() {
    let mut w = World::start_with(
        "parity_burst_crash",
        Opts::default(),
        // A long burst, so the crash surely finds the texts waiting.
        &[
            ("WACONNECT_AGGREGATE_QUIET_MS", "5000"),
            ("WACONNECT_AGGREGATE_MAX_MS", "8000"),
        ],
    )
    .await;
    for text in ["uno", "dos", "tres"] {
        w.customer_says(ANA, text).await;
    }
    // Received and waiting: nothing in the chat yet.
    wait_for("the texts received", DEADLINE, async || {
        let (_, in_flight) = w.res.queue_counts(&w.res.inbound_queue_url).await;
        in_flight >= 3
    })
    .await;
    assert!(w.sim.chat_for(ANA).await.is_none());
    w.router.kill();
    w.router.start_again().await;
    let chat = w.wait_for_chat(ANA).await;
    let chat = w.wait_for_lines_in(&contact_id(&chat), 3).await;
    assert_eq!(
        customer_lines(&chat),
        ["uno", "dos", "tres"],
        "all delivered once"
    );
    w.expect_inbound_settled().await;
}
