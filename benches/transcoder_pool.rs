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
//! submitted at once it includes queueing. The modes run in turn, in several rounds
//! (`TRANSCODER_BENCH_ROUNDS`, default 3), and the figures pool all rounds, so load from
//! elsewhere on a shared machine falls on cold and pool alike; the load average is
//! printed. `TRANSCODER_BENCH_NOTES` changes the number of notes (default 100). Needs
//! `ffmpeg` and `espeak-ng`.

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

/// The ways of converting the notes, measured in this order in every round.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    ColdSequential,
    ColdConcurrent,
    PoolSequential,
    PoolSpaced,
    PoolConcurrent,
    PoolAllAtOnce,
}

impl Mode {
    const ALL: [Mode; 6] = [
        Mode::ColdSequential,
        Mode::ColdConcurrent,
        Mode::PoolSequential,
        Mode::PoolSpaced,
        Mode::PoolConcurrent,
        Mode::PoolAllAtOnce,
    ];

    fn name(self) -> &'static str {
        match self {
            Mode::ColdSequential => "cold, one at a time",
            Mode::ColdConcurrent => "cold, concurrent",
            Mode::PoolSequential => "pool, one at a time",
            Mode::PoolSpaced => "pool, one at a time, 500 ms apart",
            Mode::PoolConcurrent => "pool, concurrent",
            Mode::PoolAllAtOnce => "pool, all at once",
        }
    }

    fn concurrency(self, cpus: usize, count: usize) -> usize {
        match self {
            Mode::ColdSequential | Mode::PoolSequential | Mode::PoolSpaced => 1,
            Mode::ColdConcurrent | Mode::PoolConcurrent => cpus,
            Mode::PoolAllAtOnce => count,
        }
    }
}

/// One mode's measurements over all rounds.
struct Samples {
    mode: Mode,
    latencies: Vec<Duration>,
    /// Wall time of each round; empty when pauses between files make it meaningless.
    walls: Vec<Duration>,
}

fn main() {
    let count: usize = env_or("TRANSCODER_BENCH_NOTES", 100);
    let rounds: usize = env_or("TRANSCODER_BENCH_ROUNDS", 3);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::TempDir::new().expect("temp dir");
    let started = Instant::now();
    let notes = make_notes(dir.path(), count, cpus);
    let total_audio: f64 = notes.iter().map(|n| n.secs).sum();
    let (shortest, longest) = notes.iter().fold((f64::MAX, 0f64), |(lo, hi), n| {
        (lo.min(n.secs), hi.max(n.secs))
    });
    println!(
        "{count} voice notes, {shortest:.1}-{longest:.1} s (mean {:.1} s), made in {:.1} s; \
         {cpus} CPUs; {rounds} rounds",
        total_audio / count as f64,
        started.elapsed().as_secs_f64()
    );
    println!("{}", first_line(&run_out("ffmpeg", &["-version"])));
    println!("load average before: {}", load_average());

    let system = actix::System::new();
    let samples = system.block_on(async {
        let pool = TranscoderPool::new(TranscoderConfig {
            workers: cpus,
            queue_capacity: count,
            ..TranscoderConfig::default()
        })
        .start();
        // One throwaway cold run so the first measured file does not pay for page-cache
        // misses on ffmpeg's libraries.
        cold(&notes[0].ogg).await;
        let mut samples: Vec<Samples> = Mode::ALL
            .iter()
            .map(|&mode| Samples {
                mode,
                latencies: Vec::new(),
                walls: Vec::new(),
            })
            .collect();
        // Rounds interleave the modes, so a burst of load from elsewhere on the machine
        // hits cold and pool alike instead of one mode's whole run.
        for round in 1..=rounds {
            for s in samples.iter_mut() {
                // Lets the pool's replacement children finish starting, as they would
                // between bursts in service.
                tokio::time::sleep(Duration::from_secs(1)).await;
                let concurrency = s.mode.concurrency(cpus, count);
                let (latencies, wall) = match s.mode {
                    Mode::ColdSequential | Mode::ColdConcurrent => {
                        measure(&notes, concurrency, |n| cold(&n.ogg)).await
                    }
                    Mode::PoolSpaced => (spaced(&notes, &pool).await, None),
                    Mode::PoolSequential | Mode::PoolConcurrent | Mode::PoolAllAtOnce => {
                        measure(&notes, concurrency, |n| pooled(&pool, &n.ogg)).await
                    }
                };
                s.latencies.extend(latencies);
                s.walls.extend(wall);
            }
            println!("round {round} done; load average: {}", load_average());
        }
        samples
    });

    println!();
    println!(
        "{:<36} {:>5} {:>9} {:>9} {:>9} {:>8} {:>20}",
        "mode", "conc", "p50 ms", "p95 ms", "max ms", "files/s", "files/s per round"
    );
    let rows: Vec<Row> = samples.iter().map(|s| Row::new(s, cpus, count)).collect();
    for r in &rows {
        println!(
            "{:<36} {:>5} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>20}",
            r.name,
            r.concurrency,
            ms(r.p50),
            ms(r.p95),
            ms(r.max),
            r.throughput.map_or("-".into(), |t| format!("{t:.1}")),
            r.per_round
        );
    }
    let [cold_seq, cold_conc, pool_seq, pool_spaced, pool_conc, pool_all] = &rows[..] else {
        unreachable!("six modes")
    };
    println!();
    println!("ratios (pool / cold):");
    for (what, pool, cold) in [
        ("latency, one at a time", pool_seq, cold_seq),
        (
            "latency, one at a time, 500 ms apart",
            pool_spaced,
            cold_seq,
        ),
        ("latency, concurrent", pool_conc, cold_conc),
    ] {
        println!(
            "  {what:<44} p50 {:.2}  p95 {:.2}",
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
        if let (Some(pool), Some(cold)) = (pool.throughput, cold.throughput) {
            println!("  {what:<44} {:.2}", pool / cold);
        }
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The 1, 5 and 15 minute load averages: the machine may be shared.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

struct Row {
    name: &'static str,
    concurrency: usize,
    p50: Duration,
    p95: Duration,
    max: Duration,
    /// Files per second over all rounds; none for the spaced mode (it would measure the
    /// pauses).
    throughput: Option<f64>,
    per_round: String,
}

impl Row {
    fn new(s: &Samples, cpus: usize, count: usize) -> Self {
        let mut latencies = s.latencies.clone();
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        let wall: Duration = s.walls.iter().sum();
        let throughput = (!s.walls.is_empty()).then(|| latencies.len() as f64 / wall.as_secs_f64());
        let per_round = if s.walls.is_empty() {
            "-".to_string()
        } else {
            s.walls
                .iter()
                .map(|w| format!("{:.1}", count as f64 / w.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        Row {
            name: s.mode.name(),
            concurrency: s.mode.concurrency(cpus, count),
            p50: at(0.5),
            p95: at(0.95),
            max: at(1.0),
            throughput,
            per_round,
        }
    }
}

/// Runs `convert` over every note with at most `concurrency` in flight; every output must
/// be a 16 kHz WAV as long as its note. Answers each file's latency (from its submission)
/// and the wall time for all.
async fn measure<'a, F, Fut>(
    notes: &'a [Note],
    concurrency: usize,
    convert: F,
) -> (Vec<Duration>, Option<Duration>)
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
    (latencies, Some(started.elapsed()))
}

/// One at a time through the pool with a pause between notes.
async fn spaced(notes: &[Note], pool: &Addr<TranscoderPool>) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(notes.len());
    for note in notes {
        tokio::time::sleep(GAP).await;
        let submitted = Instant::now();
        let wav = pooled(pool, &note.ogg).await;
        latencies.push(submitted.elapsed());
        verify(&wav, note);
    }
    latencies
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
