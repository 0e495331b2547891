//! TranscoderPool: runs ffmpeg for media that one side cannot take as it is (voice notes
//! for Connect, stickers for Connect, agent audio for WhatsApp), one child process per job,
//! fed through stdin and read from stdout.
//!
//! Why children are spawned ahead of need: a cold `ffmpeg` spends most of a voice note's
//! conversion starting up (about 99 ms of ~113 ms for a 4 s note on the production
//! machines; see docs/performance.md for this pool's figures). A child spawned for the
//! common case (voice note, OGG in, WAV out) has paid that and waits, blocked on stdin,
//! when the note arrives. ffmpeg converts one stream per process, so every job uses up
//! its child and a replacement is spawned straight away.
//!
//! Why the limits: customer media is untrusted and ffmpeg is large. A job gets at most
//! `job_timeout`, its input and output are size-capped, at most `workers` run at once and
//! at most `queue_capacity` wait; beyond that callers get [`TranscodeError::Busy`] at once
//! (backpressure they can turn into a retry) rather than memory growing without bound.
//! A child that hangs, crashes or writes garbage is killed and replaced; the pool serves
//! on.
//!
//! The actor owns the state (warm children, counters) and decides; the job itself (pipe
//! I/O, waiting for the exit) runs in its own tokio task, so a slow child never holds the
//! actor up and the actor only wakes when a job ends.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::fut;
use actix::prelude::*;
use metrics::{counter, gauge, histogram};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::media::transcode::{self, InputFormat, Profile};
use crate::metrics::{self as m, ActorMetrics};
use crate::supervision::{suffer, Fault, Probe};

pub const METRICS: ActorMetrics = ActorMetrics::new("transcoder_pool");

/// The (profile, input) children are spawned ahead for: WhatsApp voice notes (OGG/Opus)
/// on their way to Connect as WAV, by far the most common job.
pub const WARM_PROFILE: Profile = Profile::VoiceToWav;
pub const WARM_INPUT: InputFormat = InputFormat::OGG;

/// How much of a child's stderr is kept for the error (ffmpeg's first error lines name
/// the cause; the rest is read and dropped so the child never blocks on a full pipe).
const STDERR_CAP: usize = 2048;
/// How often idle warm children are checked for having died (OOM killer, operator), so
/// the pool-size gauge tells the truth and a replacement is ready before the next job.
const REAP_EVERY: Duration = Duration::from_secs(5);
/// How long a killed child gets to be reaped before it is left to tokio's orphan reaper.
const KILL_GRACE: Duration = Duration::from_secs(1);
/// Longest MIME type quoted back in an error.
const MIME_QUOTE_MAX: usize = 100;

#[derive(Debug, Clone)]
pub struct TranscoderConfig {
    /// The ffmpeg binary (looked up in `PATH` when it has no slash).
    pub ffmpeg_path: PathBuf,
    /// Jobs running at once, and children kept warm.
    pub workers: usize,
    /// Longest a job may run, from handing the input to the child to its exit.
    pub job_timeout: Duration,
    /// Largest input taken (16 MiB, WhatsApp's audio limit).
    pub max_input_bytes: usize,
    /// Largest output read before the child is killed: a confused child writing forever
    /// must not fill memory. 64 MiB is 35 min of 16 kHz mono WAV, well above Connect's
    /// 20 MB attachment limit.
    pub max_output_bytes: usize,
    /// Jobs that may wait for a worker; more are refused with [`TranscodeError::Busy`].
    pub queue_capacity: usize,
}

impl Default for TranscoderConfig {
    fn default() -> Self {
        Self {
            ffmpeg_path: PathBuf::from("ffmpeg"),
            workers: crate::config::default_transcoder_workers(),
            job_timeout: Duration::from_secs(30),
            max_input_bytes: 16 * 1024 * 1024,
            max_output_bytes: 64 * 1024 * 1024,
            queue_capacity: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("input of {len} bytes is over the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("unsupported input: {0}")]
    UnsupportedInput(String),
    #[error("transcoder busy: all workers running and the queue is full")]
    Busy,
    #[error("ffmpeg did not finish within {after:?} and was killed; stderr: {stderr}")]
    Timeout { after: Duration, stderr: String },
    #[error("ffmpeg failed ({status}): {stderr}")]
    Failed { status: ExitStatus, stderr: String },
    #[error("ffmpeg output unusable: {0}")]
    Garbage(String),
    #[error("could not start ffmpeg: {0}")]
    Spawn(String),
}

impl TranscodeError {
    /// Value of the `outcome` label of `waconnect_ffmpeg_jobs_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            TranscodeError::TooLarge { .. } => "too_large",
            TranscodeError::UnsupportedInput(_) => "unsupported",
            TranscodeError::Busy => "busy",
            TranscodeError::Timeout { .. } => "timeout",
            TranscodeError::Failed { .. } => "failed",
            TranscodeError::Garbage(_) => "garbage",
            TranscodeError::Spawn(_) => "spawn_failed",
        }
    }

    /// Whether the child that ran the job misbehaved (hung, crashed, wrote garbage) and
    /// had to be killed or thrown away, as opposed to the job being refused up front.
    fn child_misbehaved(&self) -> bool {
        matches!(
            self,
            TranscodeError::Timeout { .. }
                | TranscodeError::Failed { .. }
                | TranscodeError::Garbage(_)
        )
    }
}

/// Convert `input` (of type `input_mime`) with `profile`; answers the converted bytes.
#[derive(Message)]
#[rtype(result = "Result<Vec<u8>, TranscodeError>")]
pub struct Transcode {
    pub profile: Profile,
    pub input_mime: String,
    pub input: Vec<u8>,
}

/// The pool's counters, for tests and diagnostics.
#[derive(Message)]
#[rtype(result = "PoolStats")]
pub struct Stats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, MessageResponse)]
pub struct PoolStats {
    /// Children spawned ahead and waiting for a job.
    pub warm: usize,
    /// Jobs running.
    pub busy: usize,
    /// Jobs waiting for a worker.
    pub queued: usize,
    /// Children killed or thrown away after a hang, a crash, garbage, or dying idle.
    pub restarts: u64,
    /// Jobs that produced output.
    pub completed: u64,
    /// Jobs that ran (or tried to start a child) and failed.
    pub failed: u64,
}

/// A job that passed the checks that need no process.
struct Job {
    profile: Profile,
    format: InputFormat,
    input: Vec<u8>,
}

/// How an admitted job gets its worker slot.
enum Turn {
    /// A slot was free.
    Now(OwnedSemaphorePermit),
    /// Waits in the queue (FIFO: tokio's semaphore is fair).
    Queued(Arc<Semaphore>),
}

impl Turn {
    async fn wait(self) -> Option<OwnedSemaphorePermit> {
        match self {
            Turn::Now(permit) => Some(permit),
            // Fails only if the semaphore is closed, which this pool never does.
            Turn::Queued(slots) => slots.acquire_owned().await.ok(),
        }
    }

    fn queued(&self) -> bool {
        matches!(self, Turn::Queued(_))
    }
}

/// The per-job limits a job task needs.
#[derive(Clone, Copy)]
struct Limits {
    job_timeout: Duration,
    max_output_bytes: usize,
}

/// What a job task reports back: the result and how long the child ran.
type JobEnd = (Result<Vec<u8>, TranscodeError>, Duration);

pub struct TranscoderPool {
    config: TranscoderConfig,
    /// Children for [`WARM_PROFILE`]/[`WARM_INPUT`], oldest (warmest) first.
    warm: VecDeque<Child>,
    /// One permit per worker; held by a job's task until its child is gone.
    slots: Arc<Semaphore>,
    queued: usize,
    busy: usize,
    restarts: u64,
    completed: u64,
    failed: u64,
    probe: Arc<Probe>,
}

impl TranscoderPool {
    pub fn new(config: TranscoderConfig) -> Self {
        Self::with_probe(config, Probe::new("transcoder_pool"))
    }

    /// A pool whose progress `probe` reports to the supervisor.
    pub fn with_probe(mut config: TranscoderConfig, probe: Arc<Probe>) -> Self {
        config.workers = config.workers.max(1);
        Self {
            probe,
            slots: Arc::new(Semaphore::new(config.workers)),
            config,
            warm: VecDeque::new(),
            queued: 0,
            busy: 0,
            restarts: 0,
            completed: 0,
            failed: 0,
        }
    }

    /// Starts a child for (profile, format), blocked on its stdin until a job feeds it.
    fn spawn_child(&self, profile: Profile, format: InputFormat) -> Result<Child, TranscodeError> {
        Command::new(&self.config.ffmpeg_path)
            .args(transcode::ffmpeg_args(profile, format))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A child whose job was dropped (timeout, actor stopped) must not outlive it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                TranscodeError::Spawn(format!("{}: {e}", self.config.ffmpeg_path.display()))
            })
    }

    /// Forgets warm children that exited while idle (counted as restarts).
    fn reap_dead(&mut self) {
        let before = self.warm.len();
        self.warm.retain_mut(|child| match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                tracing::warn!(%status, "idle ffmpeg child exited; replacing it");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "idle ffmpeg child unreadable; replacing it");
                false
            }
        });
        self.count_restarts(before - self.warm.len());
    }

    /// Tops the warm children up to `workers`. A failed spawn is logged and retried at
    /// the next job or check, not in a loop.
    fn replenish(&mut self) {
        self.reap_dead();
        while self.warm.len() < self.config.workers {
            match self.spawn_child(WARM_PROFILE, WARM_INPUT) {
                Ok(child) => self.warm.push_back(child),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot spawn a warm ffmpeg child");
                    break;
                }
            }
        }
        self.publish_gauges();
    }

    /// A child for a job: a live warm one when the job is of the warm kind, else a new
    /// one (cold). A warm child found dead is dropped and the next one tried.
    fn take_child(
        &mut self,
        profile: Profile,
        format: InputFormat,
    ) -> Result<Child, TranscodeError> {
        if (profile, format) == (WARM_PROFILE, WARM_INPUT) {
            while let Some(mut child) = self.warm.pop_front() {
                match child.try_wait() {
                    Ok(None) => return Ok(child),
                    Ok(Some(status)) => {
                        tracing::warn!(%status, "warm ffmpeg child had exited; using another")
                    }
                    Err(e) => tracing::warn!(error = %e, "warm ffmpeg child unreadable"),
                }
                self.count_restarts(1);
            }
        }
        self.spawn_child(profile, format)
    }

    /// Checks that need no process; refuses a job the queue has no room for.
    fn admit(&mut self, msg: Transcode) -> Result<(Job, Turn), TranscodeError> {
        let max = self.config.max_input_bytes;
        if msg.input.len() > max {
            return Err(TranscodeError::TooLarge {
                len: msg.input.len(),
                max,
            });
        }
        let format =
            transcode::input_format_for(msg.profile, &msg.input_mime).ok_or_else(|| {
                let mime: String = msg.input_mime.chars().take(MIME_QUOTE_MAX).collect();
                TranscodeError::UnsupportedInput(format!("{} does not take {mime:?}", msg.profile))
            })?;
        let turn = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Turn::Now(permit),
            Err(_) if self.queued < self.config.queue_capacity => {
                self.queued += 1;
                Turn::Queued(self.slots.clone())
            }
            Err(_) => return Err(TranscodeError::Busy),
        };
        self.publish_gauges();
        let job = Job {
            profile: msg.profile,
            format,
            input: msg.input,
        };
        Ok((job, turn))
    }

    /// Gives the job a child and runs it in its own task; answers when it ends. The
    /// replacement for a used warm child is spawned now, while the job runs.
    fn start(&mut self, job: Job, permit: OwnedSemaphorePermit) -> impl Future<Output = JobEnd> {
        let child = self.take_child(job.profile, job.format);
        self.busy += 1;
        let limits = Limits {
            job_timeout: self.config.job_timeout,
            max_output_bytes: self.config.max_output_bytes,
        };
        let task = tokio::spawn(async move {
            // The slot stays taken as long as the child may run, even if the actor stops.
            let _slot = permit;
            let started = Instant::now();
            let result = match child {
                Ok(child) => run_job(child, job, limits).await,
                Err(e) => Err(e),
            };
            (result, started.elapsed())
        });
        self.replenish();
        async move {
            task.await.unwrap_or_else(|e| {
                let error = TranscodeError::Spawn(format!("transcoding task ended: {e}"));
                (Err(error), Duration::ZERO)
            })
        }
    }

    /// Books a job's end: counters, metrics, and a replacement if the child misbehaved.
    fn finish(
        &mut self,
        profile: Profile,
        result: &Result<Vec<u8>, TranscodeError>,
        ran: Duration,
    ) {
        self.busy = self.busy.saturating_sub(1);
        if !matches!(result, Err(TranscodeError::Spawn(_))) {
            histogram!(m::FFMPEG_JOB_DURATION, "profile" => profile.label())
                .record(ran.as_secs_f64());
        }
        match result {
            Ok(_) => self.completed += 1,
            Err(e) => {
                self.failed += 1;
                if e.child_misbehaved() {
                    tracing::warn!(%profile, error = %e, "ffmpeg job failed; child discarded");
                    self.count_restarts(1);
                }
            }
        }
        // Usually a no-op (the replacement was spawned when the job started); catches up
        // after a spawn that failed then.
        self.replenish();
    }

    fn count_restarts(&mut self, n: usize) {
        if n > 0 {
            self.restarts += n as u64;
            counter!(m::FFMPEG_CHILD_RESTARTS).increment(n as u64);
        }
    }

    fn publish_gauges(&self) {
        gauge!(m::FFMPEG_POOL_SIZE).set(self.warm.len() as f64);
        gauge!(m::FFMPEG_BUSY).set(self.busy as f64);
        gauge!(m::FFMPEG_QUEUED).set(self.queued as f64);
    }
}

/// Counts every answered job, refused or run.
fn record_outcome(profile: Profile, result: &Result<Vec<u8>, TranscodeError>, took: Duration) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    };
    counter!(m::FFMPEG_JOBS, "profile" => profile.label(), "outcome" => outcome).increment(1);
    if result.is_err() {
        METRICS.error(outcome);
    }
    METRICS.handled(if result.is_ok() { "ok" } else { "error" }, took);
}

impl Actor for TranscoderPool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Waiting jobs are bounded by `queue_capacity` (they hold their input); the
        // mailbox in front of that is kept as small, so it cannot hold more.
        ctx.set_mailbox_capacity(self.config.queue_capacity.max(16));
        self.replenish();
        ctx.run_interval(REAP_EVERY, |act, _| act.replenish());
        METRICS.heartbeat();
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // Dropping the children kills them (kill_on_drop).
        self.warm.clear();
        self.queued = 0;
        self.publish_gauges();
    }
}

impl Handler<Fault> for TranscoderPool {
    type Result = ();

    fn handle(&mut self, fault: Fault, ctx: &mut Self::Context) {
        let probe = self.probe.clone();
        suffer(fault, &probe, self, ctx);
    }
}

impl Handler<Transcode> for TranscoderPool {
    type Result = ResponseActFuture<Self, Result<Vec<u8>, TranscodeError>>;

    fn handle(&mut self, msg: Transcode, _: &mut Self::Context) -> Self::Result {
        let received = Instant::now();
        let profile = msg.profile;
        let (job, turn) = match self.admit(msg) {
            Ok(admitted) => admitted,
            Err(e) => {
                let result = Err(e);
                record_outcome(profile, &result, received.elapsed());
                return Box::pin(fut::ready(result));
            }
        };
        let queued = turn.queued();
        let busy = self.probe.busy();
        // Waiting for a worker is backpressure, not being stuck.
        let waiting = queued.then(|| self.probe.waiting());
        let run = fut::wrap_future::<_, Self>(turn.wait()).then(move |permit, act, _| {
            drop(waiting);
            if queued {
                act.queued = act.queued.saturating_sub(1);
            }
            let run = permit.map(|permit| act.start(job, permit));
            act.publish_gauges();
            fut::wrap_future::<_, Self>(async move {
                match run {
                    Some(run) => Some(run.await),
                    None => None,
                }
            })
        });
        Box::pin(run.map(move |end, act, _| {
            drop(busy);
            let result = match end {
                Some((result, ran)) => {
                    act.finish(profile, &result, ran);
                    result
                }
                None => Err(TranscodeError::Busy),
            };
            act.publish_gauges();
            record_outcome(profile, &result, received.elapsed());
            result
        }))
    }
}

impl Handler<Stats> for TranscoderPool {
    type Result = PoolStats;

    fn handle(&mut self, _: Stats, _: &mut Self::Context) -> PoolStats {
        PoolStats {
            warm: self.warm.len(),
            busy: self.busy,
            queued: self.queued,
            restarts: self.restarts,
            completed: self.completed,
            failed: self.failed,
        }
    }
}

/// Why a job stopped before its child exited on its own.
enum Stop {
    OutputTooLarge(usize),
    Read(std::io::Error),
}

/// Runs one job on `child`: feeds the input, reads stdout and stderr to their ends and
/// waits for the exit, all under the job timeout, then checks the output.
async fn run_job(mut child: Child, job: Job, limits: Limits) -> Result<Vec<u8>, TranscodeError> {
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(TranscodeError::Spawn("child without pipes".into()));
    };
    let mut output = Vec::new();
    // Outside the timed future, so what arrived before a timeout is still there after.
    let mut errors = Vec::new();
    // The three pipes are driven concurrently: a child blocked writing a full stdout pipe
    // while we still write its stdin (or the reverse) would otherwise deadlock. They are
    // futures of this task rather than tasks of their own so that a timeout drops (and so
    // stops) all of them at once.
    let ran = tokio::time::timeout(limits.job_timeout, async {
        tokio::try_join!(
            feed(stdin, &job.input),
            read_capped(stdout, &mut output, limits.max_output_bytes),
            // One byte over the cap tells a cut stderr from one that just fits.
            drain_capped(stderr, &mut errors, STDERR_CAP + 1),
        )?;
        child.wait().await.map_err(Stop::Read)
    })
    .await;
    let stderr_text = || stderr_text(&errors);
    match ran {
        Ok(Ok(status)) if status.success() => {
            transcode::check_output(job.profile, &mut output).map_err(TranscodeError::Garbage)?;
            Ok(output)
        }
        Ok(Ok(status)) => Err(TranscodeError::Failed {
            status,
            stderr: stderr_text(),
        }),
        Ok(Err(stop)) => {
            kill(&mut child).await;
            Err(TranscodeError::Garbage(match stop {
                Stop::OutputTooLarge(max) => format!("output over {max} bytes"),
                Stop::Read(e) => format!("reading from ffmpeg: {e}"),
            }))
        }
        Err(_elapsed) => {
            kill(&mut child).await;
            Err(TranscodeError::Timeout {
                after: limits.job_timeout,
                stderr: stderr_text(),
            })
        }
    }
}

/// Writes the input and closes stdin (ffmpeg's end of input). A write error is not the
/// job's verdict: a child that quits early or ignores its input breaks the pipe, and its
/// exit status and output say what happened.
async fn feed(mut stdin: ChildStdin, input: &[u8]) -> Result<(), Stop> {
    if let Err(e) = stdin.write_all(input).await {
        tracing::debug!(error = %e, "ffmpeg stopped reading its input");
        return Ok(());
    }
    let _ = stdin.shutdown().await;
    drop(stdin);
    Ok(())
}

/// Reads `pipe` to its end into `out`, failing once it exceeds `max` bytes.
async fn read_capped(
    mut pipe: impl AsyncRead + Unpin,
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), Stop> {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = pipe.read(&mut chunk).await.map_err(Stop::Read)?;
        if n == 0 {
            return Ok(());
        }
        if out.len() + n > max {
            return Err(Stop::OutputTooLarge(max));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Reads `pipe` to its end, keeping the first `keep` bytes. Never fails: stderr only
/// explains, it does not decide.
async fn drain_capped(
    mut pipe: impl AsyncRead + Unpin,
    out: &mut Vec<u8>,
    keep: usize,
) -> Result<(), Stop> {
    let mut chunk = [0u8; 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => {
                let room = keep.saturating_sub(out.len()).min(n);
                out.extend_from_slice(&chunk[..room]);
            }
        }
    }
}

/// Kills the child and reaps it (briefly; tokio's orphan reaper takes over after that).
async fn kill(child: &mut Child) {
    if let Err(e) = child.start_kill() {
        tracing::debug!(error = %e, "killing ffmpeg child");
    }
    let _ = tokio::time::timeout(KILL_GRACE, child.wait()).await;
}

/// Stderr as text for an error: at most [`STDERR_CAP`] bytes, lossy UTF-8, trimmed,
/// marked when cut.
fn stderr_text(bytes: &[u8]) -> String {
    let cut = bytes.len() > STDERR_CAP;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(STDERR_CAP)]);
    let text = text.trim();
    if cut {
        format!("{text} [...]")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_trimmed_and_capped() {
        assert_eq!(
            stderr_text(b"  pipe:0: End of file\n"),
            "pipe:0: End of file"
        );
        let exact = vec![b'x'; STDERR_CAP];
        assert_eq!(stderr_text(&exact).len(), STDERR_CAP);
        let long = vec![b'y'; STDERR_CAP + 1];
        let text = stderr_text(&long);
        assert!(text.ends_with(" [...]"));
        assert_eq!(text.len(), STDERR_CAP + " [...]".len());
        // A multi-byte character cut by the cap does not panic.
        let mut accented = vec![b'a'; STDERR_CAP - 1];
        accented.extend_from_slice("é and more".as_bytes());
        assert!(stderr_text(&accented).ends_with("[...]"));
    }

    #[test]
    fn outcomes_match_the_metric_labels() {
        let errors = [
            TranscodeError::TooLarge { len: 2, max: 1 },
            TranscodeError::UnsupportedInput("x".into()),
            TranscodeError::Busy,
            TranscodeError::Timeout {
                after: Duration::from_secs(1),
                stderr: String::new(),
            },
            TranscodeError::Garbage("x".into()),
            TranscodeError::Spawn("x".into()),
        ];
        for e in &errors {
            assert!(m::FFMPEG_OUTCOMES.contains(&e.outcome()), "{e}");
        }
        assert!(m::FFMPEG_OUTCOMES.contains(&"ok"));
        assert!(m::FFMPEG_OUTCOMES.contains(&"failed"));
        for profile in Profile::ALL {
            assert!(m::FFMPEG_PROFILES.contains(&profile.label()));
        }
    }
}
