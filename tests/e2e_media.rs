//! Files both ways through moto + simulator + real ffmpeg, with real files made here: a PNG,
//! a small PDF, a voice note spoken by espeak-ng and encoded to OGG/Opus, a WebP sticker,
//! an MP3, a WAV from the agent.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ANA: &str = "5491155550123";
const FLOW: Duration = Duration::from_secs(60);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

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

fn ffmpeg(dir: &Path, args: &[&str], out: &str) -> Vec<u8> {
    let path = dir.join(out);
    run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(&path));
    std::fs::read(&path).expect("ffmpeg output")
}

fn png(dir: &Path) -> Vec<u8> {
    ffmpeg(
        dir,
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=48x48",
            "-frames:v",
            "1",
        ],
        "x.png",
    )
}

fn webp(dir: &Path) -> Vec<u8> {
    ffmpeg(
        dir,
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=64x64",
            "-frames:v",
            "1",
            "-c:v",
            "libwebp",
        ],
        "x.webp",
    )
}

fn mp3(dir: &Path) -> Vec<u8> {
    ffmpeg(
        dir,
        &["-f", "lavfi", "-i", "sine=frequency=440:duration=2"],
        "x.mp3",
    )
}

/// A spoken WAV from espeak-ng, and its duration.
fn spoken_wav(dir: &Path, text: &str) -> (Vec<u8>, f64) {
    let path = dir.join("spoken.wav");
    run(Command::new("espeak-ng").arg("-w").arg(&path).arg(text));
    let bytes = std::fs::read(&path).expect("espeak output");
    let info = wav_info(&bytes).expect("espeak writes a WAV");
    (bytes, info.duration)
}

/// A WhatsApp voice note: speech encoded to OGG/Opus; returns the bytes and duration.
fn voice_note(dir: &Path) -> (Vec<u8>, f64) {
    let (_, duration) = spoken_wav(dir, "Hola, necesito ayuda con mi pedido número doce");
    let ogg = ffmpeg(
        dir,
        &[
            "-i",
            dir.join("spoken.wav").to_str().unwrap(),
            "-c:a",
            "libopus",
            "-b:a",
            "24k",
        ],
        "voice.ogg",
    );
    (ogg, duration)
}

/// A minimal valid one-page PDF.
fn pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >>",
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

struct WavInfo {
    sample_rate: u32,
    channels: u16,
    bits: u16,
    duration: f64,
}

/// Reads a RIFF/WAVE header's fmt and data chunks.
fn wav_info(bytes: &[u8]) -> Option<WavInfo> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let (mut pos, mut fmt, mut data_len) = (12, None, None);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = pos + 8;
        if id == b"fmt " && body + 16 <= bytes.len() {
            let channels = u16::from_le_bytes(bytes[body + 2..body + 4].try_into().ok()?);
            let rate = u32::from_le_bytes(bytes[body + 4..body + 8].try_into().ok()?);
            let bits = u16::from_le_bytes(bytes[body + 14..body + 16].try_into().ok()?);
            fmt = Some((rate, channels, bits));
        }
        if id == b"data" {
            // Header sizes of piped WAVs may be placeholders: count what is really there.
            data_len = Some(len.min(bytes.len() - body));
            break;
        }
        pos = body + len + (len & 1);
    }
    let (sample_rate, channels, bits) = fmt?;
    let frame = (channels as usize * bits as usize / 8).max(1);
    Some(WavInfo {
        sample_rate,
        channels,
        bits,
        duration: data_len? as f64 / frame as f64 / sample_rate as f64,
    })
}

fn attachments(chat: &Value) -> Vec<Value> {
    items_of_type(chat, "ATTACHMENT")
}

async fn wait_for_attachment(w: &World, wa_id: &str) -> (Value, Value) {
    let sim = &w.sim;
    wait_for("an attachment in the customer's chat", FLOW, async || {
        let chats = sim.chats_for(wa_id).await;
        chats
            .iter()
            .find_map(|c| attachments(c).first().map(|a| (c.clone(), a.clone())))
            .ok_or_else(|| describe_chats(&chats))
    })
    .await
}

async fn download(w: &World, contact: &str, attachment_id: &str) -> Vec<u8> {
    let url = format!(
        "{}/sim/chats/{contact}/attachments/{attachment_id}",
        w.sim.url
    );
    let response = reqwest::get(&url).await.expect("download attachment");
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.bytes().await.expect("attachment bytes").to_vec()
}

async fn wait_for_reaction(w: &World, wa_id: &str, wamid: &str, emoji: &str) {
    let sim = &w.sim;
    wait_for(&format!("reaction {emoji} on {wamid}"), FLOW, async || {
        let inbox = sim.inbox(wa_id).await;
        inbox_reactions(&inbox)
            .iter()
            .any(|(id, e)| id == wamid && e == emoji)
            .then_some(())
            .ok_or_else(|| format!("{inbox:?}"))
    })
    .await
}

async fn customer_sends_file(
    w: &World,
    kind: &str,
    body: Value,
    bytes: &[u8],
    mime: &str,
    filename: Option<&str>,
) -> String {
    let mut media = json!({"content_base64": b64(bytes), "mime_type": mime});
    if let Some(f) = filename {
        media["filename"] = json!(f);
    }
    w.sim
        .send_message(
            ANA,
            json!({"type": kind, kind: body, "media": media, "profile_name": "Ana"}),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_with_caption_opens_the_chat_then_the_caption_follows() {
    let dir = tempfile::tempdir().unwrap();
    let image = png(dir.path());
    let w = World::start("media_image").await;
    let wamid = customer_sends_file(
        &w,
        "image",
        json!({"caption": "la factura"}),
        &image,
        "image/png",
        None,
    )
    .await;
    let (chat, att) = wait_for_attachment(&w, ANA).await;
    assert_eq!(att["attachment"]["name"], "image.png");
    assert_eq!(att["attachment"]["content_type"], "image/png");
    assert_eq!(
        att["attachment"]["sha256"],
        sha256_hex(&image),
        "the exact bytes"
    );
    let caption_chat = w.wait_for_lines_in(&contact_id(&chat), 2).await;
    let items = chat_items(&caption_chat);
    let pos = |pred: &dyn Fn(&Value) -> bool| items.iter().position(pred).expect("item present");
    let file_at = pos(&|i| i["type"] == "ATTACHMENT");
    let caption_at = pos(&|i| i["content"] == "la factura");
    assert!(
        file_at < caption_at,
        "caption right after its file: {items:?}"
    );
    assert!(
        pos(&|i| i["type"] == "MESSAGE" && i["participant_role"] == "CUSTOMER") < file_at,
        "an attachment as first message opens the chat with a neutral text first: {items:?}"
    );
    wait_for_reaction(&w, ANA, &wamid, "📎").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_keeps_its_name_sanitised() {
    let doc = pdf();
    let w = World::start("media_document").await;
    w.customer_says(ANA, "te mando el pdf").await;
    customer_sends_file(
        &w,
        "document",
        json!({}),
        &doc,
        "application/pdf",
        Some("../../etc/\u{7}Factura\r\n 12.pdf"),
    )
    .await;
    let (chat, att) = wait_for_attachment(&w, ANA).await;
    let name = att["attachment"]["name"].as_str().unwrap().to_string();
    assert!(name.ends_with(".pdf") && name.contains("Factura"), "{name}");
    assert!(
        !name.contains('/') && !name.contains('\r') && !name.contains('\u{7}'),
        "{name:?}"
    );
    assert_eq!(
        download(
            &w,
            &contact_id(&chat),
            att["attachment"]["id"].as_str().unwrap()
        )
        .await,
        doc
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_note_becomes_wav_16k_mono_of_the_same_length() {
    let dir = tempfile::tempdir().unwrap();
    let (note, spoken_secs) = voice_note(dir.path());
    let w = World::start("media_voice").await;
    let wamid = customer_sends_file(
        &w,
        "audio",
        json!({"voice": true}),
        &note,
        "audio/ogg; codecs=opus",
        None,
    )
    .await;
    let (chat, att) = wait_for_attachment(&w, ANA).await;
    assert_eq!(att["attachment"]["name"], "voice.wav");
    assert_eq!(att["attachment"]["content_type"], "audio/wav");
    let wav = download(
        &w,
        &contact_id(&chat),
        att["attachment"]["id"].as_str().unwrap(),
    )
    .await;
    let info = wav_info(&wav).expect("RIFF/WAVE");
    assert_eq!((info.sample_rate, info.channels, info.bits), (16000, 1, 16));
    assert!(
        (info.duration - spoken_secs).abs() < 0.3,
        "wav {:.2}s vs note {spoken_secs:.2}s",
        info.duration
    );
    wait_for_reaction(&w, ANA, &wamid, "📎").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp3_audio_becomes_wav_and_stickers_become_png_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let (audio, sticker) = (mp3(dir.path()), webp(dir.path()));
    let w = World::start_with(
        "media_mp3_sticker",
        Opts::default(),
        &[("WACONNECT_FORWARD_STICKERS", "true")],
    )
    .await;
    w.customer_says(ANA, "hola").await;
    customer_sends_file(&w, "audio", json!({}), &audio, "audio/mpeg", None).await;
    customer_sends_file(&w, "sticker", json!({}), &sticker, "image/webp", None).await;
    let sim = &w.sim;
    let (chat, files) = wait_for("two attachments", FLOW, async || {
        let chats = sim.chats_for(ANA).await;
        chats
            .iter()
            .find_map(|c| (attachments(c).len() == 2).then(|| (c.clone(), attachments(c))))
            .ok_or_else(|| describe_chats(&chats))
    })
    .await;
    assert_eq!(
        files[0]["attachment"]["name"], "audio.wav",
        "in the customer's order"
    );
    assert_eq!(files[1]["attachment"]["name"], "sticker.png");
    let wav = download(
        &w,
        &contact_id(&chat),
        files[0]["attachment"]["id"].as_str().unwrap(),
    )
    .await;
    let info = wav_info(&wav).expect("RIFF/WAVE");
    assert_eq!((info.sample_rate, info.channels), (16000, 1));
    assert!((info.duration - 2.0).abs() < 0.3, "{}", info.duration);
    let png = download(
        &w,
        &contact_id(&chat),
        files[1]["attachment"]["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_type_and_oversize_files_get_the_two_notices() {
    let dir = tempfile::tempdir().unwrap();
    let big = png(dir.path());
    let limit = (big.len() / 2).to_string();
    let w = World::start_with(
        "media_refused",
        Opts::default(),
        &[("WACONNECT_ATTACHMENT_MAX_BYTES", limit.as_str())],
    )
    .await;
    let zip = customer_sends_file(
        &w,
        "document",
        json!({}),
        b"PK\x03\x04 not really a zip",
        "application/zip",
        Some("fotos.zip"),
    )
    .await;
    wait_for_reaction(&w, ANA, &zip, "❌").await;
    let large = customer_sends_file(&w, "image", json!({}), &big, "image/png", None).await;
    wait_for_reaction(&w, ANA, &large, "❌").await;
    let sim = &w.sim;
    let texts = wait_for("the size notice in the inbox", FLOW, async || {
        let texts = inbox_texts(&sim.inbox(ANA).await).join("\n");
        texts
            .contains("too large")
            .then(|| texts.clone())
            .ok_or(texts)
    })
    .await;
    assert!(
        texts.contains(".zip"),
        "the customer hears the type is refused: {texts}"
    );
    let chat = w.wait_for_chat(ANA).await;
    let agent_view = customer_text(&chat);
    assert!(
        agent_view.contains("fotos.zip") && agent_view.contains("application/zip"),
        "{agent_view}"
    );
    assert!(
        agent_view.contains("image.png") && agent_view.contains("limit"),
        "{agent_view}"
    );
    assert!(
        attachments(&chat).is_empty(),
        "nothing refused was uploaded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_to_a_url_outside_the_allowlist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = png(dir.path());
    let w = World::start_with(
        "media_allowlist",
        Opts::default(),
        &[("WACONNECT_URL_ALLOWLIST", "https://*.amazonaws.com")],
    )
    .await;
    let wamid = customer_sends_file(&w, "image", json!({}), &image, "image/png", None).await;
    wait_for_reaction(&w, ANA, &wamid, "❌").await;
    let chat = w.wait_for_chat(ANA).await;
    assert!(
        attachments(&chat).is_empty(),
        "no bytes went to the disallowed URL"
    );
    assert!(
        customer_text(&chat).contains("could not be delivered"),
        "the agent is told"
    );
    assert!(
        w.router.log_text().contains("allowlist"),
        "the refusal is logged"
    );
}

async fn agent_sends(w: &World, contact: &str, name: &str, content_type: &str, bytes: &[u8]) {
    w.sim
        .agent_says_with(contact, json!({"attachment": {"name": name, "content_type": content_type, "content_base64": b64(bytes)}}))
        .await;
}

async fn wait_for_inbox_type(w: &World, wa_id: &str, kind: &str) -> Value {
    let sim = &w.sim;
    wait_for(&format!("a {kind} in the inbox"), FLOW, async || {
        let inbox = sim.inbox(wa_id).await;
        inbox
            .iter()
            .find(|m| m["type"] == kind)
            .cloned()
            .ok_or_else(|| format!("{inbox:?}"))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_files_reach_the_customer_by_link_and_wav_becomes_ogg_opus() {
    let dir = tempfile::tempdir().unwrap();
    let (image, doc) = (png(dir.path()), pdf());
    let (wav, _) = spoken_wav(dir.path(), "Su pedido llega mañana");
    let w = World::start("media_agent_files").await;
    w.customer_says(ANA, "hola").await;
    let contact = contact_id(&w.wait_for_chat(ANA).await);
    agent_sends(&w, &contact, "mapa.png", "image/png", &image).await;
    agent_sends(&w, &contact, "contrato.pdf", "application/pdf", &doc).await;
    agent_sends(&w, &contact, "mensaje.wav", "audio/wav", &wav).await;
    // Still being scanned: must not be sent until approved.
    w.sim
        .agent_says_with(
            &contact,
            json!({"attachment": {"name": "pending.pdf", "content_type": "application/pdf",
            "content_base64": b64(&doc), "status": "IN_PROGRESS"}}),
        )
        .await;

    let image_msg = wait_for_inbox_type(&w, ANA, "image").await;
    let link = image_msg["body"]["image"]["link"]
        .as_str()
        .expect("image by link");
    assert_eq!(
        reqwest::get(link)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        image
    );
    let doc_msg = wait_for_inbox_type(&w, ANA, "document").await;
    assert_eq!(doc_msg["body"]["document"]["filename"], "contrato.pdf");
    let audio_msg = wait_for_inbox_type(&w, ANA, "audio").await;
    let link = audio_msg["body"]["audio"]["link"]
        .as_str()
        .expect("audio by link");
    let ogg = reqwest::get(link)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert_eq!(&ogg[..4], b"OggS", "converted to OGG");
    assert!(ogg.windows(8).any(|w| w == b"OpusHead"), "with Opus audio");

    w.wait_connect_stream_drained().await;
    let inbox = w.sim.inbox(ANA).await;
    let documents = inbox.iter().filter(|m| m["type"] == "document").count();
    assert_eq!(
        documents, 1,
        "the unapproved attachment is not sent: {inbox:?}"
    );
}

// ---- hostile files (issue 7, 2e) ------------------------------------------------------

/// A minimal Windows executable: a DOS header whose `e_lfanew` points at "PE\0\0".
fn windows_executable() -> Vec<u8> {
    let mut b = vec![0u8; 0x200];
    b[..2].copy_from_slice(b"MZ");
    b[0x3c] = 0x80;
    b[0x80..0x84].copy_from_slice(b"PE\0\0");
    b
}

/// A minimal 64-bit ELF header followed by padding.
fn elf_binary() -> Vec<u8> {
    let mut b = vec![0u8; 0x200];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // 64-bit
    b[5] = 1; // little-endian
    b[6] = 1; // version
    b[16] = 2; // executable
    b
}

async fn wait_for_agent_text(w: &World, wa_id: &str, needle: &str, count: usize) -> Value {
    let sim = &w.sim;
    wait_for(
        &format!("{count} agent notice(s) containing {needle:?}"),
        FLOW,
        async || {
            let chats = sim.chats_for(wa_id).await;
            chats
                .iter()
                .find(|c| customer_text(c).matches(needle).count() >= count)
                .cloned()
                .ok_or_else(|| describe_chats(&chats))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_disguised_as_a_pdf_or_a_jpeg_are_refused_with_two_notices_and_never_uploaded() {
    let w = World::start("media_hostile_programs").await;
    w.customer_says(ANA, "te mando la factura").await;
    w.wait_for_chat(ANA).await;
    let exe = customer_sends_file(
        &w,
        "document",
        json!({}),
        &windows_executable(),
        "application/pdf",
        Some("invoice.pdf"),
    )
    .await;
    let elf = customer_sends_file(&w, "image", json!({}), &elf_binary(), "image/jpeg", None).await;
    wait_for_reaction(&w, ANA, &exe, "❌").await;
    wait_for_reaction(&w, ANA, &elf, "❌").await;

    // The customer hears twice that the file does not match its type.
    let sim = &w.sim;
    let notices = wait_for("two notices in the customer's inbox", FLOW, async || {
        let texts = inbox_texts(&sim.inbox(ANA).await);
        let notices: Vec<String> = texts
            .into_iter()
            .filter(|t| t.contains("does not match its file type"))
            .collect();
        (notices.len() >= 2)
            .then_some(notices.clone())
            .ok_or(format!("{notices:?}"))
    })
    .await;
    assert_eq!(notices.len(), 2, "{notices:?}");

    // The agent reads what each file claimed to be and what it really is.
    let chat = wait_for_agent_text(&w, ANA, "was not delivered because", 2).await;
    let agent_view = customer_text(&chat);
    let exe_line = agent_view
        .lines()
        .find(|l| l.contains("invoice.pdf"))
        .unwrap_or_else(|| panic!("no notice naming invoice.pdf: {agent_view}"));
    assert!(
        exe_line.contains("program") && exe_line.contains("application/pdf"),
        "{exe_line}"
    );
    let elf_line = agent_view
        .lines()
        .find(|l| l.contains("image/jpeg"))
        .unwrap_or_else(|| panic!("no notice naming image/jpeg: {agent_view}"));
    assert!(elf_line.contains("program"), "{elf_line}");

    // Never uploaded: no attachment in the chat, not even an upload started.
    assert!(attachments(&chat).is_empty(), "{}", describe_chats(&[chat]));
    assert_eq!(w.calls_of("StartAttachmentUpload").await, 0);
    // Handled, not dead-lettered: the refusal is the outcome.
    w.expect_inbound_settled().await;
    let log = w.router.log_text();
    assert!(
        log.contains(&exe) && log.contains(&elf),
        "refusals logged by wamid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mp3_ffmpeg_cannot_decode_reaches_the_agent_as_a_notice_without_tool_output() {
    // An ID3 header passes the content check as audio/mpeg; what follows is no MP3 frame,
    // so ffmpeg fails (with "[mp3 @ 0x...] ... Invalid argument" on its stderr).
    let mut bad = b"ID3\x04\0\0\0\0\0\0".to_vec();
    for _ in 0..100 {
        bad.extend_from_slice(b"this is not an mp3 frame, only words. ");
    }
    let w = World::start("media_undecodable_mp3").await;
    w.customer_says(ANA, "te mando un audio").await;
    w.wait_for_chat(ANA).await;
    let wamid = customer_sends_file(&w, "audio", json!({}), &bad, "audio/mpeg", None).await;
    wait_for_reaction(&w, ANA, &wamid, "❌").await;
    let chat = wait_for_agent_text(&w, ANA, "could not be delivered", 1).await;
    let notice = customer_messages(&chat)
        .into_iter()
        .find(|m| m.contains("could not be delivered"))
        .unwrap();
    assert!(notice.contains("audio"), "says what it was: {notice}");
    for tool_output in [
        "0x", "Invalid", "invalid", "ffmpeg", "mp3 @", "pipe", "Failed", "frame", "seek", "stderr",
        "exit",
    ] {
        assert!(
            !notice.contains(tool_output),
            "the agent never sees ffmpeg's output ({tool_output:?}): {notice}"
        );
    }
    assert!(attachments(&chat).is_empty(), "nothing uploaded");
    // ffmpeg's words stay in the router's log, for the operator.
    assert!(w.router.log_text().contains("conversion failed"));
    w.expect_inbound_settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_file_outside_the_url_allowlist_is_told_to_the_agent_and_dead_lettered() {
    let doc = pdf();
    // The router's own default allowlist (Connect's https://*.amazonaws.com): the
    // simulator's http://127.0.0.1 download URL is outside it.
    let w = World::start_with(
        "media_agent_file_allowlist",
        Opts::default(),
        &[(
            "WACONNECT_URL_ALLOWLIST",
            waconnect::domain::DEFAULT_URL_ALLOWLIST,
        )],
    )
    .await;
    w.customer_says(ANA, "hola").await;
    let contact = contact_id(&w.wait_for_chat(ANA).await);
    agent_sends(&w, &contact, "contrato.pdf", "application/pdf", &doc).await;

    let chat = wait_for_agent_text(&w, ANA, "URL allowlist", 1).await;
    let notice = customer_text(&chat);
    assert!(
        notice.contains("contrato.pdf") && notice.contains("could not be sent"),
        "{notice}"
    );
    let res = &w.res;
    let dead = wait_for("the item in the connect DLQ", FLOW, async || {
        let dlq = res.dlq_messages(&res.connect_dlq_url).await;
        let count = dlq.len();
        dlq.into_iter()
            .find(|m| m.body.contains("contrato.pdf"))
            .ok_or(format!("{count} other message(s)"))
    })
    .await;
    let reason = dead
        .attributes
        .iter()
        .find(|(k, _)| k == "waconnect_reason")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(
        reason.contains("not in the allowlist") && reason.contains("/sim/download/"),
        "the reason names the refused address: {reason}"
    );
    let inbox = w.sim.inbox(ANA).await;
    assert!(
        !inbox.iter().any(|m| m["type"] == "document"),
        "nothing reached the customer: {inbox:?}"
    );
}
