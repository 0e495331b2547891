//! Several routers on the same queues and tables (issue: many replicas, one conversation):
//! with the FIFO stage, every customer's texts reach the agent once and in order, in one
//! chat, even when a router is killed mid-way; agents' replies likewise reach the
//! customer once and in order; two routers racing on a new customer open one chat; and
//! work longer than the visibility timeout is not handed to a second router.

mod common;

use std::time::Duration;

use common::traffic::*;
use common::*;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(240);

async fn fleet(name: &str, routers: usize, env: &[(&str, &str)]) -> (Resources, Sim, Vec<Router>) {
    let res = Resources::provision(
        name,
        Opts {
            fifo: true,
            ..Default::default()
        },
    )
    .await;
    let sim = Sim::start(&res).await;
    let mut fleet = Vec::new();
    for i in 0..routers {
        fleet.push(Router::start_named(&res, &sim, &format!("router-{i}"), env).await);
    }
    (res, sim, fleet)
}

/// The router that currently regroups `queue` ("inbound" or "connect"): the one whose
/// regrouped-messages counter moved.
async fn regroup_leader(routers: &[Router], queue: &str) -> usize {
    let series = format!("waconnect_regrouped_messages_total{{queue=\"{queue}\"}}");
    wait_for(
        &format!("a router regrouping {queue}"),
        DEADLINE,
        async || {
            for (i, r) in routers.iter().enumerate() {
                let count = r
                    .metrics()
                    .await
                    .lines()
                    .find(|l| l.starts_with(&series))
                    .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .unwrap_or(0.0);
                if count > 0.0 {
                    return Some(i);
                }
            }
            None
        },
    )
    .await
}

fn report(scenario: &str, tally: &Tally, problems: &[String], dead: usize) {
    println!("{}", tally.summary(scenario, dead));
    for p in problems.iter().take(20) {
        println!("  {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_routers_one_killed_mid_way_keep_every_customer_in_order_once() {
    let (res, sim, mut routers) = fleet("replicas_three_routers_kill", 3, &[]).await;
    let customers: Vec<String> = (0..30).map(|i| customer(1, i)).collect();

    let mut sent = customers_send(&sim, &customers, 0, 5, Duration::ZERO).await;
    // Mid-way: the router that regroups customer events dies without a word (the worst
    // one to lose: another must take over the lease), and comes back a second later.
    let leader = regroup_leader(&routers, "inbound").await;
    routers[leader].kill();
    let second_half = customers_send(&sim, &customers, 5, 7, Duration::ZERO).await;
    sent.merge(second_half);
    tokio::time::sleep(Duration::from_secs(1)).await;
    routers[leader].start_again().await;
    sent.merge(customers_send(&sim, &customers, 7, 10, Duration::ZERO).await);
    assert!(sent.total() >= 300);

    let (tally, problems) = wait_inbound(&sim, &sent, DEADLINE).await;
    let (_, chats) = agent_side(&sim).await;
    let extra = extra_chats(&chats, &customers);

    // Agents answer 20 of them, five replies each, while a router is killed again.
    let answered = &customers[..20];
    let mut replies = agents_reply(&sim, answered, 0, 2).await;
    let leader = regroup_leader(&routers, "connect").await;
    routers[leader].kill();
    replies.merge(agents_reply(&sim, answered, 2, 5).await);
    routers[leader].start_again().await;
    let (out_tally, out_problems) = wait_outbound(&sim, &replies, DEADLINE).await;

    let dead = dead_letters(&res).await;
    report("replicas_inbound", &tally, &problems, dead.len());
    report("replicas_outbound", &out_tally, &out_problems, dead.len());
    assert_eq!(
        (tally.duplicated, tally.out_of_order),
        (0, 0),
        "{problems:?}"
    );
    assert!(extra.is_empty(), "one chat per customer: {extra:?}");
    assert!(out_tally.sent >= 100);
    assert_eq!(
        (out_tally.duplicated, out_tally.out_of_order),
        (0, 0),
        "{out_problems:?}"
    );
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_routers_racing_on_new_customers_open_one_chat_each() {
    let (res, sim, _routers) = fleet("replicas_race_new_customer", 2, &[]).await;
    // Each new customer's first three texts arrive at the same moment: both routers poll.
    let customers: Vec<String> = (0..30).map(|i| customer(2, i)).collect();
    let mut sent = Sent::default();
    for chunk in customers.chunks(10) {
        let bursts = chunk.iter().map(|c| {
            let sim = &sim;
            async move {
                let texts: Vec<String> = (0..3).map(|s| numbered(c, s)).collect();
                // Three webhooks in flight at once for a customer no router knows yet.
                futures::future::join_all(texts.iter().map(|t| sim.send_text(c, t))).await;
                (c.clone(), texts)
            }
        });
        for (c, texts) in futures::future::join_all(bursts).await {
            sent.lines.insert(c, texts);
        }
    }
    let (tally, _) = wait_inbound(&sim, &sent, DEADLINE).await;
    let (arrived, chats) = agent_side(&sim).await;
    let extra = extra_chats(&chats, &customers);
    println!(
        "{}",
        tally.summary("replicas_race", dead_letters(&res).await.len())
    );
    assert!(extra.is_empty(), "one chat per customer: {extra:?}");
    assert_eq!(tally.duplicated, 0);
    // Sent at the same moment, they have no order of their own; each must be there once,
    // in the order the queue delivered them (checked across replicas by the first test).
    for c in &customers {
        assert_eq!(arrived[c].len(), 3, "{c}: {:?}", arrived[c]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_longer_than_the_visibility_timeout_is_delivered_once() {
    // The FIFO queues' visibility timeout is 5 s; SendMessage takes 8 s.
    // Each text its own SendMessage (no burst aggregation), so the calls can be counted.
    let (res, sim, _routers) =
        fleet("replicas_long_step", 2, &[("WACONNECT_AGGREGATE", "false")]).await;
    let c = customer(3, 0);
    sim.send_text(&c, "opening").await;
    wait_for("the chat", Duration::from_secs(60), async || {
        !sim.chats_for(&c).await.is_empty()
    })
    .await;
    sim.add_fault(json!({"operation": "SendMessage", "latency_ms": 8000, "count": 1}))
        .await;
    sim.send_text(&c, "slow one").await;
    sim.send_text(&c, "after it").await;
    let sent = Sent {
        lines: [(
            c.clone(),
            vec!["opening".into(), "slow one".into(), "after it".into()],
        )]
        .into(),
    };
    let (tally, problems) = wait_inbound(&sim, &sent, Duration::from_secs(90)).await;
    // Settled: nothing left anywhere, nothing received twice by the two routers.
    let fifo = res.fifo.clone().unwrap();
    wait_for("FIFO queue drained", Duration::from_secs(60), async || {
        res.queue_depth(&fifo.inbound_url).await == 0
    })
    .await;
    let sends = sim
        .calls()
        .await
        .iter()
        .filter(|c| c["operation"] == "SendMessage" && c["status"] == 200)
        .count();
    println!(
        "{}",
        tally.summary("replicas_long_step", dead_letters(&res).await.len())
    );
    assert_eq!(
        (tally.duplicated, tally.out_of_order),
        (0, 0),
        "{problems:?}"
    );
    assert_eq!(
        sends, 2,
        "two texts, two SendMessage calls: the slow one ran once, no second router took it over"
    );
}

/// Without the FIFO stage nothing serialises a customer across routers: the session store
/// alone must keep it to one chat (a claim is needed to start one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_fifo_queues_the_store_still_allows_one_chat_per_customer() {
    let res = Resources::provision("replicas_race_store_only", Opts::default()).await;
    let sim = Sim::start(&res).await;
    let _a = Router::start_named(&res, &sim, "router-a", &[]).await;
    let _b = Router::start_named(&res, &sim, "router-b", &[]).await;
    let customers: Vec<String> = (0..20).map(|i| customer(4, i)).collect();
    let bursts = customers.iter().map(|c| {
        let sim = &sim;
        async move {
            let texts: Vec<String> = (0..3).map(|s| numbered(c, s)).collect();
            futures::future::join_all(texts.iter().map(|t| sim.send_text(c, t))).await;
            (c.clone(), texts)
        }
    });
    let sent = Sent {
        lines: futures::future::join_all(bursts)
            .await
            .into_iter()
            .collect(),
    };
    let (tally, _) = wait_inbound(&sim, &sent, DEADLINE).await;
    let (_, chats) = agent_side(&sim).await;
    // A chat started and then left because another router's claim won would show as a
    // second chat here.
    let extra = extra_chats(&chats, &customers);
    println!(
        "{}",
        tally.summary("replicas_race_store_only", dead_letters(&res).await.len())
    );
    assert!(extra.is_empty(), "one chat per customer: {extra:?}");
    assert_eq!(tally.duplicated, 0);
}
