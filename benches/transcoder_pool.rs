//! Voice notes to WAV: a cold `ffmpeg` per file against the TranscoderPool's children
//! spawned ahead of need. Plain `main` (harness = false), prints a table.
//!
//!     cargo bench --bench transcoder_pool
//!
//! Makes 100 voice notes (espeak-ng sentences of 2-8 s, encoded to OGG/Opus) in a temp
//! dir, then converts all of them with the pool's exact arguments:
//!
//! - cold: one `ffmpeg` spawned per file when the file is there (what the pool avoids),
//!   one at a time, then with as many at once as there are CPUs;
//! - pool (workers = CPUs): one at a time back to back, one at a time with a 500 ms gap
//!   between notes (real arrivals are seconds apart, so the replacement child is warm;
//!   the gap is not counted), as many at once as there are CPUs, and all 100 at once
//!   (the pool's own queue does the waiting).
//!
//! Latency is per file, from submitting it to having the checked output; with all 100
//! submitted at once it includes queueing. Needs `ffmpeg`, `ffprobe`, `espeak-ng`.
//! `TRANSCODER_BENCH_NOTES` changes the number of notes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use futures::stream::{self, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use waconnect::actors::transcoder_pool::{Transcode, TranscoderConfig, TranscoderPool};
use waconnect::media::transcode::{check_output, ffmpeg_args, wav_info, InputFormat, Profile};

const WORDS: &[&str] = &[
    "hello",
    "order",
    "delivery",
    "payment",
    "package",
    "refund",
    "invoice",
    "address",
    "tomorrow",
    "morning",
    "please",
    "call",
    "me",
    "back",
    "about",
    "the",
    "status",
    "of",
    "my",
    "account",
    "thanks",
    "parcel",
    "arrived",
    "damaged",
    "yesterday",
    "evening",
    "could",
    "you",
    "check",
    "number",
    "seven",
    "twelve",
    "help",
    "card",
    "declined",
];
const GAP: Duration = Duration::from_millis(500);

struct Note {
    ogg: Vec<u8>,
    secs: f64,
}

fn main() {
    let count: usize = std::env::var("TRANSCODER_BENCH_NOTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::TempDir::new().expect("temp dir");
    let started = Instant::now();
    let notes = make_notes(dir.path(), count, cpus);
    let total_audio: f64 = notes.iter().map(|n| n.secs).sum();
    let (shortest, longest) = notes.iter().fold((f64::MAX, 0f64), |(lo, hi), n| {
        (lo.min(n.secs), hi.max(n.secs))
    });
    println!(
        "{count} voice notes, {shortest:.1}-{longest:.1} s (mean {:.1} s), made in {:.1} s; {cpus} CPUs",
        total_audio / count as f64,
        started.elapsed().as_secs_f64()
    );
    println!("{}", first_line(&run_out("ffmpeg", &["-version"])));

    let system = actix::System::new();
    let rows = system.block_on(async {
        let mut rows = Vec::new();
        // One throwaway cold run so the first measured file does not pay for page-cache
        // misses on ffmpeg's libraries.
        cold(&notes[0].ogg).await;
        rows.push(measure("cold, one at a time", &notes, 1, |n| cold(&n.ogg)).await);
        rows.push(measure("cold, concurrent", &notes, cpus, |n| cold(&n.ogg)).await);

        let pool = TranscoderPool::new(TranscoderConfig {
            workers: cpus,
            queue_capacity: count,
            ..TranscoderConfig::default()
        })
        .start();
        // Let the pool's first children finish starting, as they would in service.
        tokio::time::sleep(Duration::from_secs(1)).await;
        rows.push(measure("pool, one at a time", &notes, 1, |n| pooled(&pool, &n.ogg)).await);
        rows.push(spaced("pool, one at a time, 500 ms apart", &notes, &pool).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
        rows.push(measure("pool, concurrent", &notes, cpus, |n| pooled(&pool, &n.ogg)).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
        rows.push(
            measure("pool, all at once", &notes, count, |n| {
                pooled(&pool, &n.ogg)
            })
            .await,
        );
        rows
    });

    println!();
    println!(
        "{:<36} {:>5} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "mode", "conc", "p50 ms", "p95 ms", "max ms", "total s", "files/s"
    );
    for r in &rows {
        let (total, rate) = match (r.total, r.throughput()) {
            (Some(total), Some(rate)) => {
                (format!("{:.2}", total.as_secs_f64()), format!("{rate:.1}"))
            }
            _ => ("-".into(), "-".into()),
        };
        println!(
            "{:<36} {:>5} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>10}",
            r.name,
            r.concurrency,
            ms(r.p50),
            ms(r.p95),
            ms(r.max),
            total,
            rate
        );
    }
    let [cold_seq, cold_conc, pool_seq, pool_spaced, pool_conc, pool_all] = &rows[..] else {
        unreachable!("six rows")
    };
    println!();
    println!("ratios (pool / cold):");
    for (what, pool, cold) in [
        ("p50 latency, one at a time", pool_seq, cold_seq),
        (
            "p50 latency, one at a time, 500 ms apart",
            pool_spaced,
            cold_seq,
        ),
    ] {
        println!(
            "  {what:<44} {:.2} (p95 {:.2})",
            pool.p50.as_secs_f64() / cold.p50.as_secs_f64(),
            pool.p95.as_secs_f64() / cold.p95.as_secs_f64()
        );
    }
    for (what, pool, cold) in [
        ("throughput, one at a time", pool_seq, cold_seq),
        ("throughput, concurrent", pool_conc, cold_conc),
        (
            "throughput, all at once vs cold concurrent",
            pool_all,
            cold_conc,
        ),
    ] {
        if let (Some(pool), Some(cold)) = (pool.throughput(), cold.throughput()) {
            println!("  {what:<44} {:.2}", pool / cold);
        }
    }
}

struct Row {
    name: &'static str,
    concurrency: usize,
    p50: Duration,
    p95: Duration,
    max: Duration,
    /// Wall time for all files; none when pauses between files make it meaningless.
    total: Option<Duration>,
    files: usize,
}

impl Row {
    fn throughput(&self) -> Option<f64> {
        Some(self.files as f64 / self.total?.as_secs_f64())
    }

    fn new(
        name: &'static str,
        concurrency: usize,
        mut latencies: Vec<Duration>,
        total: Option<Duration>,
    ) -> Self {
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        Row {
            name,
            concurrency,
            p50: at(0.5),
            p95: at(0.95),
            max: at(1.0),
            total,
            files: latencies.len(),
        }
    }
}

/// Runs `convert` over every note with at most `concurrency` in flight; every output must
/// be a 16 kHz WAV as long as its note.
async fn measure<'a, F, Fut>(
    name: &'static str,
    notes: &'a [Note],
    concurrency: usize,
    convert: F,
) -> Row
where
    F: Fn(&'a Note) -> Fut,
    Fut: std::future::Future<Output = Vec<u8>> + 'a,
{
    let started = Instant::now();
    let latencies: Vec<Duration> = stream::iter(notes)
        .map(|note| {
            let submitted = Instant::now();
            let done = convert(note);
            async move {
                let wav = done.await;
                let took = submitted.elapsed();
                verify(&wav, note);
                took
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    Row::new(name, concurrency, latencies, Some(started.elapsed()))
}

/// One at a time through the pool with a pause between notes (no throughput: it would
/// measure the pauses).
async fn spaced(name: &'static str, notes: &[Note], pool: &Addr<TranscoderPool>) -> Row {
    let mut latencies = Vec::with_capacity(notes.len());
    for note in notes {
        tokio::time::sleep(GAP).await;
        let submitted = Instant::now();
        let wav = pooled(pool, &note.ogg).await;
        latencies.push(submitted.elapsed());
        verify(&wav, note);
    }
    Row::new(name, 1, latencies, None)
}

fn verify(wav: &[u8], note: &Note) {
    let info = wav_info(wav).expect("WAV output");
    assert_eq!((info.sample_rate, info.channels), (16_000, 1));
    assert!((info.duration.as_secs_f64() - note.secs).abs() < 0.3);
}

/// What the pool saves: spawn `ffmpeg` once the file is there, same arguments, same
/// pipes, same output check.
async fn cold(ogg: &[u8]) -> Vec<u8> {
    let mut child = tokio::process::Command::new("ffmpeg")
        .args(ffmpeg_args(Profile::VoiceToWav, InputFormat::OGG))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut out = Vec::new();
    let (written, read) = tokio::join!(
        async {
            stdin.write_all(ogg).await?;
            drop(stdin);
            std::io::Result::Ok(())
        },
        stdout.read_to_end(&mut out)
    );
    written.expect("write to ffmpeg");
    read.expect("read from ffmpeg");
    assert!(child.wait().await.expect("wait").success());
    check_output(Profile::VoiceToWav, &mut out).expect("WAV");
    out
}

async fn pooled(pool: &Addr<TranscoderPool>, ogg: &[u8]) -> Vec<u8> {
    pool.send(Transcode {
        profile: Profile::VoiceToWav,
        input_mime: "audio/ogg; codecs=opus".into(),
        input: ogg.to_vec(),
    })
    .await
    .expect("pool mailbox")
    .expect("pool transcode")
}

/// `count` espeak-ng sentences of 2-8 s as OGG/Opus, made `threads` at a time.
fn make_notes(dir: &std::path::Path, count: usize, threads: usize) -> Vec<Note> {
    let mut notes: Vec<Option<Note>> = (0..count).map(|_| None).collect();
    std::thread::scope(|scope| {
        for (t, chunk) in notes.chunks_mut(count.div_ceil(threads.max(1))).enumerate() {
            let base = t * count.div_ceil(threads.max(1));
            scope.spawn(move || {
                for (k, slot) in chunk.iter_mut().enumerate() {
                    *slot = Some(make_note(dir, base + k));
                }
            });
        }
    });
    notes.into_iter().flatten().collect()
}

/// Note `i`: a sentence of 6-20 words (about 2-8 s at espeak-ng's default rate), with a
/// word more or less until its length falls in 2-8 s.
fn make_note(dir: &std::path::Path, i: usize) -> Note {
    let mut words = 6 + (i * 7) % 15;
    let wav_path = dir.join(format!("note{i}.wav"));
    let ogg_path = dir.join(format!("note{i}.ogg"));
    for _ in 0..10 {
        let sentence: Vec<&str> = (0..words)
            .map(|w| WORDS[(i * 31 + w * 17 + w * w) % WORDS.len()])
            .collect();
        run_out(
            "espeak-ng",
            &["-w", wav_path.to_str().expect("path"), &sentence.join(" ")],
        );
        let wav = std::fs::read(&wav_path).expect("espeak WAV");
        let secs = wav_info(&wav).expect("espeak WAV").duration.as_secs_f64();
        if secs < 2.0 {
            words += 1;
        } else if secs > 8.0 {
            words -= 1;
        } else {
            run_out(
                "ffmpeg",
                &[
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-y",
                    "-i",
                    wav_path.to_str().expect("path"),
                    "-c:a",
                    "libopus",
                    ogg_path.to_str().expect("path"),
                ],
            );
            let ogg = std::fs::read(&ogg_path).expect("OGG");
            return Note { ogg, secs };
        }
    }
    panic!("note {i}: no sentence length gives 2-8 s");
}

fn run_out(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
