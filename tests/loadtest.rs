//! `waconnect loadtest`: every mode runs for a couple of seconds, prints one JSON object
//! as the last line of standard output with the figures operators size from, and
//! accounts for every message it sent. (The figures themselves are measured by the
//! commands in docs/performance.md, never asserted here.)

use std::process::Command;

use serde_json::Value;

const ACTORS: [&str; 7] = [
    "inbound_intake",
    "conversation",
    "connect_upload",
    "whatsapp_send",
    "connect_event_intake",
    "media_download",
    "transcoder_pool",
];

fn waconnect(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_waconnect"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("waconnect runs")
}

/// Runs a load test; answers its report, checked for shape and accounting.
fn report(args: &[&str]) -> Value {
    let out = waconnect(args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("some output");
    let r: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    for key in [
        "messages",
        "per_sec",
        "cpu_seconds_per_1000",
        "peak_rss_bytes",
    ] {
        assert!(r[key].is_number(), "{key} in {r}");
    }
    let l = &r["latency_ms"];
    for key in ["p50", "p90", "p99", "max"] {
        assert!(l[key].is_number(), "latency_ms.{key} in {r}");
    }
    let at = |k: &str| l[k].as_f64().unwrap();
    assert!(
        at("p50") <= at("p90") && at("p90") <= at("p99") && at("p99") <= at("max"),
        "{r}"
    );
    let count = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert!(count("messages") > 0, "{r}");
    assert_eq!(count("failed"), 0, "{r}");
    assert_eq!(count("unfinished"), 0, "{r}");
    assert_eq!(
        count("sent"),
        count("messages"),
        "every message accounted for: {r}"
    );
    assert!(count("peak_rss_bytes") > 0, "{r}");
    r
}

#[test]
fn help_lists_the_actors_and_e2e() {
    let out = waconnect(&["loadtest", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    for name in ACTORS.iter().chain(&["actor", "e2e"]) {
        assert!(help.contains(name), "{name} missing from:\n{help}");
    }
}

#[test]
fn each_actor_runs_alone_and_accounts_for_every_message() {
    for actor in ACTORS {
        let rate = if actor == "transcoder_pool" {
            "5"
        } else {
            "40"
        };
        let r = report(&[
            "loadtest",
            "actor",
            actor,
            "--duration",
            "2s",
            "--rate",
            rate,
            "--customers",
            "5",
            "--json",
        ]);
        assert_eq!(r["target"], actor, "{r}");
    }
}

#[test]
fn whatsapp_send_merges_acknowledgements_that_back_up() {
    // 60 customer texts/s make 180 acknowledgement sends/s against a rate of 80.
    let r = report(&[
        "loadtest",
        "actor",
        "whatsapp_send",
        "--duration",
        "2s",
        "--rate",
        "5",
        "--ack-texts-per-sec",
        "60",
        "--whatsapp-rate",
        "80",
        "--port-latency-ms",
        "0",
        "--json",
    ]);
    let extra = &r["extra"];
    let count = |k: &str| extra[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert!(count("acks_handed_over") > 0, "{r}");
    assert!(
        count("acks_merged") > 0,
        "backed-up acknowledgements were merged: {r}"
    );
    assert!(
        count("acks_sent") + count("acks_merged") + count("acks_dropped")
            <= count("acks_handed_over"),
        "no acknowledgement sent that was not handed over: {r}"
    );
}

#[test]
fn e2e_runs_against_the_embedded_simulator() {
    let r = report(&[
        "loadtest",
        "e2e",
        "--duration",
        "3s",
        "--rate",
        "10",
        "--customers",
        "3",
        "--mix",
        "text=8,reply=2",
        "--json",
    ]);
    assert_eq!(r["mode"], "e2e");
    assert!(
        r["extra"]["aws_calls_per_message"]["SendMessage"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{r}"
    );
}

#[test]
fn refuses_a_simulator_off_loopback() {
    let out = waconnect(&[
        "loadtest",
        "e2e",
        "--sim",
        "http://10.1.2.3:8080",
        "--duration",
        "1s",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
