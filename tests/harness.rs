//! Checks of the test harness itself against the real moto server: the resources the e2e
//! scenarios rely on exist with the right wiring (these tests need no waconnect binary).

mod common;

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use common::*;
use serde_json::Value;

async fn publish(res: &Resources, topic: &str, message: &str) {
    use aws_sdk_sns::types::MessageAttributeValue;
    sdk(
        "Publish",
        res.sns
            .publish()
            .topic_arn(topic)
            .message(message)
            .message_attributes(
                "ContactId",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("c-1")
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_have_dead_letter_queues_and_visibility_timeout() {
    let res = Resources::provision("harness_queues", Opts::default()).await;
    for (url, dlq_arn) in [
        (&res.inbound_queue_url, &res.inbound_dlq_arn),
        (&res.connect_queue_url, &res.connect_dlq_arn),
    ] {
        let out = sdk(
            "GetQueueAttributes",
            res.sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await,
        );
        let attrs = out.attributes().unwrap();
        assert_eq!(attrs[&QueueAttributeName::VisibilityTimeout], "10");
        let redrive: Value =
            serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
        assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str());
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            "5"
        );
    }
    // The four queues are distinct and start empty.
    let urls = [
        &res.inbound_queue_url,
        &res.inbound_dlq_url,
        &res.connect_queue_url,
        &res.connect_dlq_url,
    ];
    for (i, a) in urls.iter().enumerate() {
        assert_eq!(res.queue_depth(a).await, 0);
        for b in &urls[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_test_gets_its_own_resources() {
    let a = Resources::provision("harness_unique", Opts::default()).await;
    let b = Resources::provision("harness_unique", Opts::default()).await;
    assert_ne!(a.inbound_queue_url, b.inbound_queue_url);
    assert_ne!(a.connect_stream_topic_arn, b.connect_stream_topic_arn);
    assert_ne!(a.sessions_table, b.sessions_table);
    assert_ne!(a.dedupe_table, b.dedupe_table);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_deliver_sns_envelopes_to_the_queues() {
    let res = Resources::provision("harness_sns_envelope", Opts::default()).await;
    assert_eq!(
        res.inbound_subscription_attribute("RawMessageDelivery")
            .await
            .as_deref(),
        Some("false")
    );

    publish(&res, &res.connect_stream_topic_arn, r#"{"Type":"MESSAGE"}"#).await;
    let body = res
        .take_message_containing(&res.connect_queue_url, "Notification")
        .await;
    let env: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(env["Type"], "Notification");
    assert_eq!(env["TopicArn"], res.connect_stream_topic_arn.as_str());
    assert_eq!(env["Message"], r#"{"Type":"MESSAGE"}"#);
    assert_eq!(env["MessageAttributes"]["ContactId"]["Value"], "c-1");

    publish(
        &res,
        &res.eum_inbound_topic_arn,
        r#"{"whatsAppWebhookEntry":"{}"}"#,
    )
    .await;
    let body = res
        .take_message_containing(&res.inbound_queue_url, "Notification")
        .await;
    let env: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(env["TopicArn"], res.eum_inbound_topic_arn.as_str());
    assert_eq!(env["Message"], r#"{"whatsAppWebhookEntry":"{}"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_delivery_option_delivers_the_event_itself() {
    let res = Resources::provision(
        "harness_raw_delivery",
        Opts {
            raw_inbound_delivery: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        res.inbound_subscription_attribute("RawMessageDelivery")
            .await
            .as_deref(),
        Some("true")
    );
    let event = r#"{"whatsAppWebhookEntry":"{\"id\":\"raw\"}"}"#;
    publish(&res, &res.eum_inbound_topic_arn, event).await;
    let body = res
        .take_message_containing(&res.inbound_queue_url, "whatsAppWebhookEntry")
        .await;
    assert_eq!(body, event);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_match_the_reference_schema() {
    let res = Resources::provision("harness_tables", Opts::default()).await;
    let t = sdk(
        "DescribeTable",
        res.ddb
            .describe_table()
            .table_name(&res.sessions_table)
            .send()
            .await,
    );
    let table = t.table().unwrap();
    let keys: Vec<_> = table
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect();
    assert_eq!(keys, vec![("contactId".to_string(), "HASH".to_string())]);
    let gsi = &table.global_secondary_indexes()[0];
    assert_eq!(gsi.index_name(), Some("customerId-index"));
    let gkeys: Vec<_> = gsi
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect();
    assert_eq!(
        gkeys,
        vec![
            ("customerId".to_string(), "HASH".to_string()),
            ("channel".to_string(), "RANGE".to_string())
        ]
    );
    assert_eq!(
        gsi.projection()
            .and_then(|p| p.projection_type())
            .map(|p| p.as_str()),
        Some("ALL")
    );

    for (table, attr) in [
        (&res.sessions_table, "date"),
        (&res.dedupe_table, "expires"),
    ] {
        let ttl = sdk(
            "DescribeTimeToLive",
            res.ddb
                .describe_time_to_live()
                .table_name(table)
                .send()
                .await,
        );
        let d = ttl.time_to_live_description().unwrap();
        assert_eq!(d.attribute_name(), Some(attr));
        assert_eq!(d.time_to_live_status().map(|s| s.as_str()), Some("ENABLED"));
    }

    let d = sdk(
        "DescribeTable",
        res.ddb
            .describe_table()
            .table_name(&res.dedupe_table)
            .send()
            .await,
    );
    let keys: Vec<_> = d
        .table()
        .unwrap()
        .key_schema()
        .iter()
        .map(|k| k.attribute_name().to_string())
        .collect();
    assert_eq!(keys, vec!["id".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_helpers_count_and_peek_without_consuming() {
    let res = Resources::provision("harness_queue_helpers", Opts::default()).await;
    let big = "x".repeat(300 * 1024); // the oversized-body scenario must fit in SQS
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(res.enqueue_inbound(&format!("m{i}")).await);
    }
    ids.push(res.enqueue_inbound(&big).await);
    assert_eq!(res.queue_depth(&res.inbound_queue_url).await, 13);

    let peeked = res.peek_messages(&res.inbound_queue_url).await;
    assert_eq!(peeked.len(), 13, "peek sees every message");
    assert!(peeked.iter().any(|m| m.body == big));
    for id in &ids {
        assert!(peeked.iter().any(|m| &m.message_id == id));
    }
    // Left in place and visible again.
    assert_eq!(res.queue_counts(&res.inbound_queue_url).await, (13, 0));
    assert_eq!(res.peek_messages(&res.inbound_queue_url).await.len(), 13);

    assert!(res.dlq_messages(&res.inbound_dlq_url).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fixture_is_retargeted_at_a_contact() {
    let body = connect_event_from_fixture(
        "connect-customer-echo.sns.json",
        "contact-2",
        "contact-1",
        Some("eco"),
    );
    let env: Value = serde_json::from_str(&body).unwrap();
    let msg: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
    assert_eq!(msg["ContactId"], "contact-2");
    assert_eq!(msg["InitialContactId"], "contact-1");
    assert_eq!(msg["ParticipantRole"], "CUSTOMER");
    assert_eq!(msg["Content"], "eco");
    assert_eq!(env["MessageAttributes"]["ContactId"]["Value"], "contact-2");
    assert_eq!(
        env["MessageAttributes"]["InitialContactId"]["Value"],
        "contact-1"
    );

    let (body, wamid) = eum_envelope_with_message(
        "5491100000000",
        serde_json::json!({"type": "text", "text": {"body": "hola"}}),
    );
    let env: Value = serde_json::from_str(&body).unwrap();
    let event: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
    let entry: Value =
        serde_json::from_str(event["whatsAppWebhookEntry"].as_str().unwrap()).unwrap();
    let m = &entry["changes"][0]["value"]["messages"][0];
    assert_eq!(m["from"], "5491100000000");
    assert_eq!(m["id"], wamid.as_str());
    assert_eq!(m["text"]["body"], "hola");
}

#[tokio::test]
async fn wait_for_returns_the_value_once_ready() {
    let mut n = 0;
    let v = wait_for("n to reach 3", Duration::from_secs(5), async || {
        n += 1;
        if n >= 3 {
            Ok(n)
        } else {
            Err(format!("n={n}"))
        }
    })
    .await;
    assert_eq!(v, 3);
    wait_for("true", Duration::from_secs(1), async || true).await;
    assert_eq!(
        wait_for("some", Duration::from_secs(1), async || Some(7)).await,
        7
    );
}

#[tokio::test]
#[should_panic(expected = "waiting for the impossible; last observed: still 41")]
async fn wait_for_names_what_and_last_state_on_timeout() {
    wait_for::<Result<(), String>, _>("the impossible", Duration::from_millis(300), async || {
        Err("still 41".to_string())
    })
    .await;
}

/// The FIFO stage's guarantee rests on SQS holding back a message group while one of its
/// messages is in flight, even against concurrent consumers. moto must really do it (with
/// scripts/moto_server.py serialising its SQS backend), or the replica tests would pass
/// on an emulator that does not enforce what they rely on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_holds_back_a_fifo_group_while_one_of_its_messages_is_in_flight() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    let res = Resources::provision(
        "harness_fifo_groups",
        Opts {
            fifo: true,
            ..Default::default()
        },
    )
    .await;
    let url = res.fifo.as_ref().unwrap().inbound_url.clone();
    let send = |group: String, body: String| {
        let (sqs, url) = (res.sqs.clone(), url.clone());
        async move {
            sdk(
                "SendMessage",
                sqs.send_message()
                    .queue_url(url)
                    .message_body(body.clone())
                    .message_group_id(group)
                    .message_deduplication_id(body)
                    .send()
                    .await,
            );
        }
    };
    // One group with a message in flight is not handed to anyone else.
    send("g".into(), "g-0".into()).await;
    send("g".into(), "g-1".into()).await;
    send("h".into(), "h-0".into()).await;
    let first = sdk(
        "ReceiveMessage",
        res.sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(1)
            .send()
            .await,
    );
    assert_eq!(first.messages()[0].body(), Some("g-0"));
    let others = sdk(
        "ReceiveMessage",
        res.sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await,
    );
    let bodies: Vec<&str> = others.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, ["h-0"], "g is held back while g-0 is in flight");
    for m in [&first.messages()[0], &others.messages()[0]] {
        sdk(
            "DeleteMessage",
            res.sqs
                .delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await,
        );
    }

    // Many groups, four concurrent consumers: never two of them inside one group at once,
    // and each group's messages come out in order.
    const GROUPS: usize = 12;
    const PER_GROUP: usize = 6;
    for i in 0..PER_GROUP {
        for g in 0..GROUPS {
            send(format!("c{g}"), format!("c{g}-{i}")).await;
        }
    }
    // g-1 is still there: take it out of the way.
    let holders: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<String, Vec<usize>>>> = Arc::default();
    let mut consumers = Vec::new();
    for consumer in 0..4 {
        let (sqs, url) = (res.sqs.clone(), url.clone());
        let (holders, seen) = (holders.clone(), seen.clone());
        consumers.push(tokio::spawn(async move {
            let mut idle = 0;
            while idle < 6 {
                let out = sdk(
                    "ReceiveMessage",
                    sqs.receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(3)
                        .wait_time_seconds(1)
                        .send()
                        .await,
                );
                if out.messages().is_empty() {
                    idle += 1;
                    continue;
                }
                idle = 0;
                for m in out.messages() {
                    let body = m.body().unwrap().to_string();
                    let (group, index) = body.split_once('-').unwrap();
                    if group == "g" {
                        continue;
                    }
                    if let Some(other) = holders.lock().unwrap().insert(group.to_string(), consumer)
                    {
                        assert_eq!(
                            other, consumer,
                            "group {group} handed to two consumers at once"
                        );
                    }
                    seen.lock()
                        .unwrap()
                        .entry(group.to_string())
                        .or_default()
                        .push(index.parse().unwrap());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                // Done with these: the group is free again once they are deleted.
                for m in out.messages() {
                    let body = m.body().unwrap();
                    holders
                        .lock()
                        .unwrap()
                        .remove(body.split_once('-').unwrap().0);
                    sdk(
                        "DeleteMessage",
                        sqs.delete_message()
                            .queue_url(&url)
                            .receipt_handle(m.receipt_handle().unwrap())
                            .send()
                            .await,
                    );
                }
            }
        }));
    }
    for c in consumers {
        c.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), GROUPS, "{seen:?}");
    for (group, indexes) in seen.iter() {
        assert_eq!(
            indexes,
            &(0..PER_GROUP).collect::<Vec<_>>(),
            "group {group}"
        );
    }
}

/// Real SQS hands a FIFO group's next message to a waiting long poll as soon as the
/// group is free. Stock moto's poll keeps the in-flight groups it saw when it began and
/// returns empty at the end of its wait; scripts/moto_server.py wakes polls on every
/// delete, so the latency figures measured on moto are not that artefact's
/// (docs/performance.md). The check is what the poll returned, not how fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_long_poll_sees_a_fifo_group_freed_while_it_waits() {
    let res = Resources::provision(
        "harness_fifo_wake",
        Opts {
            fifo: true,
            ..Default::default()
        },
    )
    .await;
    let url = res.fifo.as_ref().unwrap().inbound_url.clone();
    for body in ["g-0", "g-1"] {
        sdk(
            "SendMessage",
            res.sqs
                .send_message()
                .queue_url(&url)
                .message_body(body)
                .message_group_id("g")
                .message_deduplication_id(body)
                .send()
                .await,
        );
    }
    let first = sdk(
        "ReceiveMessage",
        res.sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(1)
            .send()
            .await,
    );
    assert_eq!(first.messages()[0].body(), Some("g-0"));
    let poll = {
        let (sqs, url) = (res.sqs.clone(), url.clone());
        tokio::spawn(async move {
            sdk(
                "ReceiveMessage",
                sqs.receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(4)
                    .send()
                    .await,
            )
        })
    };
    // Let the poll begin while g-0 is still in flight, then free the group.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sdk(
        "DeleteMessage",
        res.sqs
            .delete_message()
            .queue_url(&url)
            .receipt_handle(first.messages()[0].receipt_handle().unwrap())
            .send()
            .await,
    );
    let got = poll.await.unwrap();
    let bodies: Vec<&str> = got.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(
        bodies,
        ["g-1"],
        "the poll that was waiting when g-0 was deleted must be handed g-1"
    );
}
