//! TranscoderPool against the real ffmpeg, and against stand-in "ffmpeg" scripts that
//! hang, crash, write garbage or die idle. Every input is made here at run time
//! (espeak-ng and ffmpeg's lavfi sources); nothing binary is committed.
//!
//! Needs `ffmpeg`, `ffprobe` and `espeak-ng` on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use tempfile::TempDir;

use waconnect::actors::transcoder_pool::{
    PoolStats, Stats, Transcode, TranscodeError, TranscoderConfig, TranscoderPool,
};
use waconnect::media::transcode::{wav_info, Profile, PNG_SIGNATURE};

const OGG_OPUS: &str = "audio/ogg; codecs=opus";

/// Inputs shared by the tests, made once per test binary.
struct Media {
    voice_ogg: Vec<u8>,
    /// Duration of `voice_ogg` according to ffprobe.
    voice_secs: f64,
    webp: Vec<u8>,
    mp3: Vec<u8>,
    wav: Vec<u8>,
    aac: Vec<u8>,
    m4a: Vec<u8>,
    /// Two minutes of OGG/Opus: its WAV (3.8 MB) is far bigger than a pipe's buffer.
    long_ogg: Vec<u8>,
}

fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} not runnable: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ffmpeg_make(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    let mut all = vec!["-hide_banner", "-loglevel", "error", "-y"];
    all.extend_from_slice(args);
    all.push(path.to_str().unwrap());
    run("ffmpeg", &all);
    std::fs::read(path).unwrap()
}

fn media() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let dir = TempDir::new().unwrap();
        let d = dir.path();
        let speech = d.join("speech.wav");
        run(
            "espeak-ng",
            &[
                "-w",
                speech.to_str().unwrap(),
                "Hello, this is a voice note from a customer who needs help with an order.",
            ],
        );
        let voice_ogg = ffmpeg_make(
            d,
            "voice.ogg",
            &["-i", speech.to_str().unwrap(), "-c:a", "libopus"],
        );
        let probed = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
                d.join("voice.ogg").to_str().unwrap(),
            ],
        );
        let voice_secs: f64 = String::from_utf8_lossy(&probed).trim().parse().unwrap();
        assert!(voice_secs > 2.0, "espeak-ng made only {voice_secs} s");
        Media {
            voice_ogg,
            voice_secs,
            webp: ffmpeg_make(
                d,
                "x.webp",
                &["-f", "lavfi", "-i", "color=red:s=64x64", "-frames:v", "1"],
            ),
            mp3: ffmpeg_make(d, "x.mp3", &["-f", "lavfi", "-i", "sine=f=440:d=2"]),
            wav: ffmpeg_make(d, "x.wav", &["-f", "lavfi", "-i", "sine=f=440:d=2"]),
            aac: ffmpeg_make(
                d,
                "x.aac",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=f=440:d=2",
                    "-c:a",
                    "aac",
                    "-f",
                    "adts",
                ],
            ),
            m4a: ffmpeg_make(
                d,
                "x.m4a",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=f=440:d=2",
                    "-c:a",
                    "aac",
                    "-movflags",
                    "+faststart",
                ],
            ),
            long_ogg: ffmpeg_make(
                d,
                "long.ogg",
                &["-f", "lavfi", "-i", "sine=f=300:d=120", "-c:a", "libopus"],
            ),
        }
    })
}

/// Writes an executable script. It is written by a `sh` child rather than by this
/// process: a file this (multi-threaded) process has open for writing can be inherited by
/// a concurrent fork, and exec'ing it then fails with ETXTBSY ("text file busy").
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut child = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    path
}

fn config(ffmpeg: impl Into<PathBuf>, workers: usize) -> TranscoderConfig {
    TranscoderConfig {
        ffmpeg_path: ffmpeg.into(),
        workers,
        ..TranscoderConfig::default()
    }
}

fn real_pool(workers: usize) -> Addr<TranscoderPool> {
    TranscoderPool::new(config("ffmpeg", workers)).start()
}

async fn transcode(
    pool: &Addr<TranscoderPool>,
    profile: Profile,
    mime: &str,
    input: &[u8],
) -> Result<Vec<u8>, TranscodeError> {
    pool.send(Transcode {
        profile,
        input_mime: mime.to_string(),
        input: input.to_vec(),
    })
    .await
    .expect("pool mailbox")
}

async fn stats(pool: &Addr<TranscoderPool>) -> PoolStats {
    pool.send(Stats).await.expect("pool mailbox")
}

/// Waits until the pool's stats satisfy `ok` (replacements are spawned asynchronously).
async fn wait_for_stats(pool: &Addr<TranscoderPool>, ok: impl Fn(&PoolStats) -> bool) -> PoolStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = stats(pool).await;
        if ok(&s) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the process whose pid is in `pid_file` has exited: gone, or a zombie not yet
/// reaped by its parent. False while the file is missing or not yet written.
fn child_exited(pid_file: &Path) -> bool {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    else {
        return false;
    };
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => true,
    }
}

fn assert_wav_16k_mono(wav: &[u8], expect_secs: f64) {
    assert!(wav.starts_with(b"RIFF") && &wav[8..12] == b"WAVE");
    let riff_size = u32::from_le_bytes([wav[4], wav[5], wav[6], wav[7]]) as usize;
    assert_eq!(riff_size, wav.len() - 8, "RIFF size not patched");
    let info = wav_info(wav).expect("readable WAV");
    assert_eq!(info.sample_rate, 16_000);
    assert_eq!(info.channels, 1);
    assert_eq!(info.bits_per_sample, 16);
    let got = info.duration.as_secs_f64();
    assert!(
        (got - expect_secs).abs() <= 0.3,
        "WAV lasts {got:.3} s, source {expect_secs:.3} s"
    );
}

#[actix_rt::test]
async fn voice_note_becomes_16k_mono_wav() {
    let m = media();
    let pool = real_pool(2);
    let wav = transcode(&pool, Profile::VoiceToWav, OGG_OPUS, &m.voice_ogg)
        .await
        .unwrap();
    assert_wav_16k_mono(&wav, m.voice_secs);
    let s = wait_for_stats(&pool, |s| s.warm == 2).await;
    assert_eq!(
        (s.completed, s.failed, s.restarts, s.busy, s.warm),
        (1, 0, 0, 0, 2)
    );
}

#[actix_rt::test]
async fn sticker_becomes_png() {
    let pool = real_pool(1);
    let png = transcode(&pool, Profile::WebpToPng, "image/webp", &media().webp)
        .await
        .unwrap();
    assert!(png.starts_with(&PNG_SIGNATURE));
    assert!(png.len() > PNG_SIGNATURE.len() + 12);
}

#[actix_rt::test]
async fn agent_mp3_and_wav_become_ogg_opus() {
    let m = media();
    let pool = real_pool(2);
    for (mime, input) in [("audio/mpeg", &m.mp3), ("audio/wav", &m.wav)] {
        let ogg = transcode(&pool, Profile::AudioToOpus, mime, input)
            .await
            .unwrap_or_else(|e| panic!("{mime}: {e}"));
        assert!(ogg.starts_with(b"OggS"), "{mime}");
        assert!(
            ogg.windows(8).any(|w| w == b"OpusHead"),
            "{mime}: no OpusHead"
        );
    }
}

#[actix_rt::test]
async fn aac_and_mp4_audio_become_wav() {
    let m = media();
    let pool = real_pool(1);
    for (mime, input) in [("audio/aac", &m.aac), ("audio/mp4", &m.m4a)] {
        let wav = transcode(&pool, Profile::VoiceToWav, mime, input)
            .await
            .unwrap_or_else(|e| panic!("{mime}: {e}"));
        assert_wav_16k_mono(&wav, 2.0);
    }
}

#[actix_rt::test]
async fn mp4_with_its_index_at_the_end_fails_as_a_job() {
    // Without faststart the `moov` index follows the audio; ffmpeg cannot seek back on a
    // pipe (5.1 writes a WAV header without audio and exits 0). Either way it must come
    // back as a failed job, not as an empty voice note, and the pool must serve on.
    let dir = TempDir::new().unwrap();
    let m4a = ffmpeg_make(
        dir.path(),
        "late-index.m4a",
        &["-f", "lavfi", "-i", "sine=f=440:d=60", "-c:a", "aac"],
    );
    let pool = real_pool(1);
    match transcode(&pool, Profile::VoiceToWav, "audio/mp4", &m4a).await {
        Err(TranscodeError::Garbage(why)) => assert!(why.contains("without audio"), "{why}"),
        Err(TranscodeError::Failed { stderr, .. }) => assert!(!stderr.is_empty()),
        other => panic!("expected a failed job, got {other:?}"),
    }
    let wav = transcode(&pool, Profile::VoiceToWav, OGG_OPUS, &media().voice_ogg)
        .await
        .unwrap();
    assert_wav_16k_mono(&wav, media().voice_secs);
}

#[actix_rt::test]
async fn large_output_is_read_without_deadlock_and_capped() {
    let m = media();
    let pool = real_pool(1);
    let wav = transcode(&pool, Profile::VoiceToWav, OGG_OPUS, &m.long_ogg)
        .await
        .unwrap();
    assert_wav_16k_mono(&wav, 120.0);

    let capped = TranscoderPool::new(TranscoderConfig {
        max_output_bytes: 100_000,
        ..config("ffmpeg", 1)
    })
    .start();
    match transcode(&capped, Profile::VoiceToWav, OGG_OPUS, &m.long_ogg).await {
        Err(TranscodeError::Garbage(why)) => assert!(why.contains("100000"), "{why}"),
        other => panic!("expected Garbage, got {other:?}"),
    }
    let s = wait_for_stats(&capped, |s| s.warm == 1).await;
    assert_eq!((s.restarts, s.warm, s.busy), (1, 1, 0));
}

/// A stand-in that logs each start, then is the real ffmpeg: counts spawns.
fn counting_ffmpeg(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("starts.log");
    let body = format!(
        "#!/bin/sh\necho start >> '{}'\nexec ffmpeg \"$@\"\n",
        log.display()
    );
    (script(dir, "ffmpeg-counting", &body), log)
}

fn starts(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .count()
}

#[actix_rt::test]
async fn too_large_and_unknown_inputs_are_refused_without_a_process() {
    let dir = TempDir::new().unwrap();
    let (ffmpeg, log) = counting_ffmpeg(dir.path());
    let pool = TranscoderPool::new(TranscoderConfig {
        max_input_bytes: 100_000,
        ..config(ffmpeg, 1)
    })
    .start();
    let deadline = Instant::now() + Duration::from_secs(5);
    while starts(&log) < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let spawned = starts(&log);
    assert_eq!(spawned, 1, "one warm child");

    assert!(media().voice_ogg.len() < 100_000);
    match transcode(&pool, Profile::VoiceToWav, OGG_OPUS, &[0u8; 100_001]).await {
        Err(TranscodeError::TooLarge {
            len: 100_001,
            max: 100_000,
        }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Cold profiles too: they would spawn a child of their own.
    for (profile, mime) in [
        (Profile::VoiceToWav, "video/x-matroska"),
        (Profile::WebpToPng, "audio/ogg"),
        (Profile::AudioToOpus, ""),
    ] {
        match transcode(&pool, profile, mime, b"bytes").await {
            Err(TranscodeError::UnsupportedInput(why)) => assert!(why.contains(mime), "{why}"),
            other => panic!("{profile} {mime:?}: expected UnsupportedInput, got {other:?}"),
        }
    }
    assert_eq!(starts(&log), spawned, "a refused job started a process");
    let s = stats(&pool).await;
    assert_eq!((s.completed, s.failed, s.restarts, s.warm), (0, 0, 0, 1));

    // The same pool still converts.
    transcode(&pool, Profile::VoiceToWav, OGG_OPUS, &media().voice_ogg)
        .await
        .unwrap();
}

#[actix_rt::test]
async fn hung_ffmpeg_is_killed_at_the_timeout_while_a_real_pool_serves() {
    let dir = TempDir::new().unwrap();
    // Only the child that gets a job (reads a byte of input) records its pid.
    let pids = dir.path().join("pids");
    let hang = script(
        dir.path(),
        "ffmpeg-hang",
        &format!(
            "#!/bin/sh\necho 'stuck probing input' >&2\nhead -c 1 >/dev/null\n\
             echo $$ >> '{}'\nexec sleep 600\n",
            pids.display()
        ),
    );
    let hung = TranscoderPool::new(TranscoderConfig {
        job_timeout: Duration::from_secs(1),
        ..config(hang, 1)
    })
    .start();
    let real = real_pool(1);
    wait_for_stats(&hung, |s| s.warm == 1).await;

    let m = media();
    let started = Instant::now();
    let (hung_result, real_result) = futures::join!(
        transcode(&hung, Profile::VoiceToWav, OGG_OPUS, &m.voice_ogg),
        transcode(&real, Profile::VoiceToWav, OGG_OPUS, &m.voice_ogg),
    );
    let took = started.elapsed();
    match hung_result {
        Err(TranscodeError::Timeout { after, stderr }) => {
            assert_eq!(after, Duration::from_secs(1));
            assert!(
                stderr.contains("stuck probing input"),
                "stderr so far: {stderr:?}"
            );
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(took < Duration::from_secs(4), "timeout took {took:?}");
    assert_wav_16k_mono(&real_result.unwrap(), m.voice_secs);

    // The hung child is gone (killed and reaped), a replacement waits.
    let pids = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<&str> = pids.lines().collect();
    assert_eq!(pids.len(), 1, "{pids:?}");
    assert!(
        !Path::new(&format!("/proc/{}", pids[0])).exists(),
        "hung child {} still exists",
        pids[0]
    );
    let s = wait_for_stats(&hung, |s| s.warm == 1 && s.busy == 0).await;
    assert_eq!((s.restarts, s.failed, s.warm, s.busy), (1, 1, 1, 0));
}

#[actix_rt::test]
async fn crashing_ffmpeg_fails_with_its_stderr() {
    use std::os::unix::process::ExitStatusExt;

    let dir = TempDir::new().unwrap();
    let segv = script(
        dir.path(),
        "ffmpeg-segv",
        "#!/bin/sh\nulimit -c 0\necho 'decoder exploded at frame 7' >&2\nkill -SEGV $$\n",
    );
    let exit1 = script(
        dir.path(),
        "ffmpeg-exit1",
        "#!/bin/sh\necho 'pipe:0: Invalid data found when processing input' >&2\nexit 1\n",
    );
    for (ffmpeg, signal, code, text) in [
        (segv, Some(11), None, "decoder exploded at frame 7"),
        (exit1, None, Some(1), "Invalid data found"),
    ] {
        let pool = TranscoderPool::new(config(&ffmpeg, 2)).start();
        match transcode(&pool, Profile::VoiceToWav, OGG_OPUS, &media().voice_ogg).await {
            Err(TranscodeError::Failed { status, stderr }) => {
                assert_eq!(status.signal(), signal, "{status}");
                assert_eq!(status.code(), code, "{status}");
                assert!(stderr.contains(text), "{stderr:?}");
                assert_eq!(stderr, stderr.trim());
            }
            other => panic!("{}: expected Failed, got {other:?}", ffmpeg.display()),
        }
        let s = stats(&pool).await;
        assert_eq!((s.failed, s.busy), (1, 0));
        assert!(s.restarts >= 1);
    }
}

#[actix_rt::test]
async fn chatty_stderr_is_drained_and_capped() {
    let dir = TempDir::new().unwrap();
    // 200 KB of stderr: more than a pipe holds, so an undrained stderr would block the
    // child until the timeout.
    let chatty = script(
        dir.path(),
        "ffmpeg-chatty",
        "#!/bin/sh
echo 'first error line' >&2
head -c 200000 /dev/zero | tr '\\0' x >&2
exit 69
",
    );
    let pool = TranscoderPool::new(TranscoderConfig {
        job_timeout: Duration::from_secs(10),
        ..config(chatty, 1)
    })
    .start();
    let started = Instant::now();
    match transcode(&pool, Profile::VoiceToWav, OGG_OPUS, &media().voice_ogg).await {
        Err(TranscodeError::Failed { status, stderr }) => {
            assert_eq!(status.code(), Some(69));
            assert!(stderr.starts_with("first error line"), "{stderr:?}");
            assert!(stderr.ends_with("[...]"));
            assert!(stderr.len() <= 2048 + 6, "{} bytes", stderr.len());
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[actix_rt::test]
async fn random_bytes_are_garbage() {
    let dir = TempDir::new().unwrap();
    let garbage = script(
        dir.path(),
        "ffmpeg-garbage",
        "#!/bin/sh\ncat /dev/urandom | head -c 1000\n",
    );
    let pool = TranscoderPool::new(config(garbage, 1)).start();
    for (profile, mime) in [
        (Profile::VoiceToWav, OGG_OPUS),
        (Profile::WebpToPng, "image/webp"),
        (Profile::AudioToOpus, "audio/wav"),
    ] {
        match transcode(&pool, profile, mime, b"whatever").await {
            Err(TranscodeError::Garbage(why)) => assert!(why.contains("not"), "{why}"),
            other => panic!("{profile}: expected Garbage, got {other:?}"),
        }
    }
    let empty = script(dir.path(), "ffmpeg-silent", "#!/bin/sh\nexit 0\n");
    let pool = TranscoderPool::new(config(empty, 1)).start();
    match transcode(&pool, Profile::WebpToPng, "image/webp", b"x").await {
        Err(TranscodeError::Garbage(why)) => assert_eq!(why, "empty output"),
        other => panic!("expected Garbage, got {other:?}"),
    }
}

#[actix_rt::test]
async fn full_queue_refuses_at_once() {
    let dir = TempDir::new().unwrap();
    let hang = script(dir.path(), "ffmpeg-hang", "#!/bin/sh\nexec sleep 600\n");
    let pool = TranscoderPool::new(TranscoderConfig {
        job_timeout: Duration::from_secs(2),
        queue_capacity: 1,
        ..config(hang, 1)
    })
    .start();
    let job = || Transcode {
        profile: Profile::VoiceToWav,
        input_mime: OGG_OPUS.into(),
        input: b"OggS".to_vec(),
    };
    let running = pool.send(job());
    let waiting = pool.send(job());
    let started = Instant::now();
    let refused = pool.send(job()).await.unwrap();
    assert!(matches!(refused, Err(TranscodeError::Busy)), "{refused:?}");
    assert!(started.elapsed() < Duration::from_millis(500));
    let s = wait_for_stats(&pool, |s| s.busy == 1).await;
    assert_eq!((s.busy, s.queued), (1, 1));

    // The queued job runs once the first one times out, and times out in its turn.
    let (running, waiting) = futures::join!(running, waiting);
    assert!(matches!(
        running.unwrap(),
        Err(TranscodeError::Timeout { .. })
    ));
    assert!(matches!(
        waiting.unwrap(),
        Err(TranscodeError::Timeout { .. })
    ));
    let s = stats(&pool).await;
    assert_eq!((s.busy, s.queued, s.failed, s.restarts), (0, 0, 2, 2));
}

#[actix_rt::test]
async fn warm_child_that_died_idle_is_replaced() {
    let dir = TempDir::new().unwrap();
    // The first child started writes its pid and exits at once; every later one is the
    // real ffmpeg.
    let pid_file = dir.path().join("first.pid");
    let ffmpeg = script(
        dir.path(),
        "ffmpeg-dies-first",
        &format!(
            "#!/bin/sh\nif mkdir '{}' 2>/dev/null; then echo $$ > '{}'; exit 0; fi\nexec ffmpeg \"$@\"\n",
            dir.path().join("first").display(),
            pid_file.display()
        ),
    );
    let pool = TranscoderPool::new(config(ffmpeg, 1)).start();
    wait_for_stats(&pool, |s| s.warm == 1).await;
    // The job must find the warm child already dead: wait until it has exited (a zombie
    // until the pool looks at it, or reaped by the pool's periodic check).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !child_exited(&pid_file) {
        assert!(
            Instant::now() < deadline,
            "the first ffmpeg child did not exit within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wav = transcode(&pool, Profile::VoiceToWav, OGG_OPUS, &media().voice_ogg)
        .await
        .unwrap();
    assert_wav_16k_mono(&wav, media().voice_secs);
    let s = wait_for_stats(&pool, |s| s.warm == 1).await;
    assert_eq!((s.completed, s.failed, s.restarts, s.warm), (1, 0, 1, 1));
}

#[actix_rt::test]
async fn a_hung_job_among_normal_ones_is_killed_and_replaced() {
    let dir = TempDir::new().unwrap();
    // The real ffmpeg, except for an input starting with HANG: then it hangs.
    let body = format!(
        r#"#!/bin/sh
in=$(mktemp '{dir}/in.XXXXXX')
cat > "$in"
if [ "$(head -c 4 "$in")" = "HANG" ]; then rm -f "$in"; exec sleep 600; fi
exec 0<"$in"
rm -f "$in"
exec ffmpeg "$@"
"#,
        dir = dir.path().display()
    );
    let ffmpeg = script(dir.path(), "ffmpeg-hangs-on-marker", &body);
    let pool = TranscoderPool::new(TranscoderConfig {
        job_timeout: Duration::from_secs(5),
        ..config(ffmpeg, 2)
    })
    .start();
    wait_for_stats(&pool, |s| s.warm == 2).await;
    let m = media();

    let started = Instant::now();
    let hung = {
        let pool = pool.clone();
        async move {
            let result = transcode(&pool, Profile::VoiceToWav, OGG_OPUS, b"HANG and more").await;
            (result, started.elapsed())
        }
    };
    let normal = futures::future::join_all((0..4).map(|_| {
        let pool = pool.clone();
        async move {
            let result = transcode(&pool, Profile::VoiceToWav, OGG_OPUS, &m.voice_ogg).await;
            (result, started.elapsed())
        }
    }));
    let ((hung, hung_at), normal) = futures::join!(hung, normal);

    assert!(
        matches!(hung, Err(TranscodeError::Timeout { .. })),
        "{hung:?}"
    );
    for (result, at) in normal {
        assert_wav_16k_mono(&result.unwrap(), m.voice_secs);
        assert!(
            at < hung_at,
            "a normal job ({at:?}) waited for the hung one ({hung_at:?})"
        );
    }
    let s = wait_for_stats(&pool, |s| s.warm == 2 && s.busy == 0).await;
    assert_eq!(
        (s.completed, s.failed, s.restarts, s.warm, s.busy),
        (4, 1, 1, 2, 0)
    );

    // Still serving.
    transcode(&pool, Profile::VoiceToWav, OGG_OPUS, &m.voice_ogg)
        .await
        .unwrap();
}
