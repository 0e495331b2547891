//! "Customer event queued -> text in the chat", end to end through the real parts: the
//! simulator publishes each customer text to SNS (moto), SNS delivers it to the inbound SQS
//! queue, the router (`waconnect run`, a child process) receives it and sends it to the
//! simulator's Connect Participant. The latency of one text is the simulator's
//! `AbsoluteTime` of the chat item minus the moment its control API answered (the event
//! was then in the queue); both clocks are this machine's.
//!
//! Customers first open their chats (one text each, not measured: StartChatContact and
//! friends are another path), then send paced texts into the open chat: the common case.
//!
//! A plain `main` that prints figures (docs/performance.md); `scripts/bench_latency.sh`
//! starts moto and runs it:
//!
//! ```sh
//! ./scripts/bench_latency.sh                  # standard queue, this build
//! LATENCY_BENCH_FIFO=1 ./scripts/bench_latency.sh   # with the FIFO stage
//! WACONNECT_HARNESS_ROUTER_BIN=/path/to/older/waconnect ./scripts/bench_latency.sh
//! # knobs: LATENCY_BENCH_CUSTOMERS (10), LATENCY_BENCH_TEXTS (20 per customer),
//! #        LATENCY_BENCH_GAP_MS (500, between one customer's texts)
//! ```
//!
//! Burst aggregation is switched off (`WACONNECT_AGGREGATE=false`): it holds texts on
//! purpose until a customer pauses, which is not what this measures. An older router
//! ignores the variable.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;

use common::traffic::customer;
use common::*;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let customers_n = knob("LATENCY_BENCH_CUSTOMERS", 10) as usize;
    let texts = knob("LATENCY_BENCH_TEXTS", 20) as usize;
    let gap = Duration::from_millis(knob("LATENCY_BENCH_GAP_MS", 500));
    let fifo = std::env::var("LATENCY_BENCH_FIFO").is_ok_and(|v| v == "1");
    let router_bin = router_binary();

    let res = Resources::provision(
        "bench_inbound_latency",
        Opts {
            fifo,
            ..Opts::default()
        },
    )
    .await;
    let sim = Sim::start(&res).await;
    // Debug logs cost time on the path measured; LATENCY_BENCH_RUST_LOG asks for them
    // when the figures need explaining.
    let log = std::env::var("LATENCY_BENCH_RUST_LOG").unwrap_or("warn,waconnect=info".into());
    let _router = Router::start(
        &res,
        &sim,
        &[("WACONNECT_AGGREGATE", "false"), ("RUST_LOG", log.as_str())],
    )
    .await;
    let customers: Vec<String> = (0..customers_n).map(|i| customer(87, i)).collect();

    // Open every chat first (not measured).
    for wa_id in &customers {
        sim.send_text(wa_id, &format!("{wa_id} hello")).await;
    }
    for wa_id in &customers {
        wait_for(
            &format!("the chat of {wa_id}"),
            Duration::from_secs(120),
            async || sim.chat_for(wa_id).await,
        )
        .await;
    }

    // Each customer sends its texts one after the other, all customers at once, staggered.
    let queued: Vec<(String, DateTime<Utc>)> =
        join_all(customers.iter().enumerate().map(|(i, wa_id)| {
            let sim = &sim;
            async move {
                tokio::time::sleep(gap * i as u32 / customers_n.max(1) as u32).await;
                let mut out = Vec::with_capacity(texts);
                for seq in 0..texts {
                    let text = format!("{wa_id} latency #{seq:04}");
                    sim.send_text(wa_id, &text).await;
                    out.push((text, Utc::now()));
                    tokio::time::sleep(gap).await;
                }
                out
            }
        }))
        .await
        .into_iter()
        .flatten()
        .collect();

    // When each text became a chat item.
    let total = queued.len();
    let recorded: HashMap<String, DateTime<Utc>> = wait_for(
        &format!("{total} measured texts in the chats"),
        Duration::from_secs(300),
        async || {
            let mut at = HashMap::new();
            for chat in sim.chats().await {
                for item in chat_items(&chat) {
                    let (Some(content), Some(time)) =
                        (item["content"].as_str(), item["absolute_time"].as_str())
                    else {
                        continue;
                    };
                    if let Ok(t) = DateTime::parse_from_rfc3339(time) {
                        at.entry(content.to_string())
                            .or_insert(t.with_timezone(&Utc));
                    }
                }
            }
            let arrived = queued.iter().filter(|(t, _)| at.contains_key(t)).count();
            if arrived == total {
                Ok(at)
            } else {
                Err(format!("{arrived}/{total}"))
            }
        },
    )
    .await;

    let mut ms: Vec<f64> = queued
        .iter()
        .map(|(text, sent)| (recorded[text] - *sent).num_microseconds().unwrap_or(0) as f64 / 1e3)
        .collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((p / 100.0) * (ms.len() - 1) as f64).round() as usize];
    println!(
        "inbound latency (event queued -> text in the chat), router {}, {} queue, aggregation off",
        router_bin.display(),
        if fifo {
            "standard + FIFO stage"
        } else {
            "standard"
        },
    );
    println!(
        "  {total} texts from {customers_n} customers, {} ms apart per customer",
        gap.as_millis()
    );
    println!(
        "  p50 {:.0} ms  p90 {:.0} ms  p99 {:.0} ms  max {:.0} ms  min {:.0} ms",
        pct(50.0),
        pct(90.0),
        pct(99.0),
        ms[ms.len() - 1],
        ms[0]
    );
}
