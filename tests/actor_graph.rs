//! The actor graph against in-memory fakes of Connect and WhatsApp, with the in-process
//! queue and the embedded store: ordering, dedupe, renewal, backpressure and restarts,
//! without any network. (The same paths run end to end against moto and the simulator in
//! the e2e_* tests.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Actor;
use async_trait::async_trait;
use serde_json::{json, Value};

use waconnect::actors::supervisor::{Ports, Supervisor};
use waconnect::adapters::http::HttpTransfer;
use waconnect::adapters::local::{EmbeddedStore, MemoryQueue};
use waconnect::config::{Behaviour, BehaviourSettings};
use waconnect::domain::UrlAllowlist;
use waconnect::lifecycle::Lifecycle;
use waconnect::ports::{
    AttachmentUpload, ConnectChat, ErrorKind, MediaInfo, NewChatRequest, PortError, PortResult,
    Queue, QueueMessage, StartedChat, WhatsApp,
};

/// A Connect that records what each chat received.
#[derive(Default)]
struct FakeConnect {
    chats: Mutex<Vec<(String, Vec<String>)>>,
    tokens: Mutex<HashMap<String, usize>>,
    seen_client_tokens: Mutex<HashMap<String, String>>,
    deny_next_send: AtomicBool,
    deny_next_join: AtomicBool,
    delay_ms: AtomicUsize,
}

impl FakeConnect {
    fn texts(&self) -> Vec<Vec<String>> {
        self.chats
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| t.clone())
            .collect()
    }
}

#[async_trait]
impl ConnectChat for FakeConnect {
    async fn start_chat_contact(&self, r: &NewChatRequest) -> PortResult<StartedChat> {
        if let Some(id) = self.seen_client_tokens.lock().unwrap().get(&r.client_token) {
            return Ok(StartedChat {
                contact_id: id.clone(),
                participant_id: "p".into(),
                participant_token: id.clone(),
            });
        }
        let mut chats = self.chats.lock().unwrap();
        let id = format!("contact-{}", chats.len());
        chats.push((r.customer_id.clone(), vec![r.initial_text.clone()]));
        self.seen_client_tokens
            .lock()
            .unwrap()
            .insert(r.client_token.clone(), id.clone());
        Ok(StartedChat {
            contact_id: id.clone(),
            participant_id: "p".into(),
            participant_token: id,
        })
    }
    async fn start_contact_streaming(&self, _: &str, _: &str, _: &str) -> PortResult<()> {
        Ok(())
    }
    async fn create_participant_connection(&self, participant_token: &str) -> PortResult<String> {
        if self.deny_next_join.swap(false, Ordering::SeqCst) {
            return Err(PortError::new(
                ErrorKind::AccessDenied,
                "connectparticipant",
                "CreateParticipantConnection",
                "ended",
            ));
        }
        let index = self.chats.lock().unwrap().len() - 1;
        self.tokens
            .lock()
            .unwrap()
            .insert(participant_token.to_string(), index);
        Ok(participant_token.to_string())
    }
    async fn send_message(
        &self,
        token: &str,
        _: &str,
        content: &str,
        _: &str,
    ) -> PortResult<String> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        if self.deny_next_send.swap(false, Ordering::SeqCst) {
            return Err(PortError::new(
                ErrorKind::AccessDenied,
                "connectparticipant",
                "SendMessage",
                "expired",
            ));
        }
        let index = *self.tokens.lock().unwrap().get(token).expect("known token");
        self.chats.lock().unwrap()[index]
            .1
            .push(content.to_string());
        Ok("item".into())
    }
    async fn send_event(&self, _: &str, _: &str, _: Option<&str>, _: &str) -> PortResult<()> {
        Ok(())
    }
    async fn disconnect_participant(&self, _: &str, _: &str) -> PortResult<()> {
        Ok(())
    }
    async fn start_attachment_upload(
        &self,
        _: &str,
        _: &str,
        _: u64,
        _: &str,
        _: &str,
    ) -> PortResult<AttachmentUpload> {
        Err(PortError::new(
            ErrorKind::Other,
            "fake",
            "StartAttachmentUpload",
            "not in this fake",
        ))
    }
    async fn complete_attachment_upload(&self, _: &str, _: &str, _: &str) -> PortResult<()> {
        Err(PortError::new(
            ErrorKind::Other,
            "fake",
            "CompleteAttachmentUpload",
            "not in this fake",
        ))
    }
    async fn get_attachment(&self, _: &str, _: &str) -> PortResult<String> {
        Err(PortError::new(
            ErrorKind::Other,
            "fake",
            "GetAttachment",
            "not in this fake",
        ))
    }
}

#[derive(Default)]
struct FakeWhatsApp {
    sent: Mutex<Vec<Value>>,
}

#[async_trait]
impl WhatsApp for FakeWhatsApp {
    async fn send(&self, _: &str, message: &Value) -> PortResult<String> {
        self.sent.lock().unwrap().push(message.clone());
        Ok("m".into())
    }
    async fn get_media(&self, _: &str, _: &str, _: &str, _: &str) -> PortResult<MediaInfo> {
        Err(PortError::new(
            ErrorKind::Other,
            "fake",
            "GetWhatsAppMessageMedia",
            "not in this fake",
        ))
    }
}

/// A queue that panics on its first receive, to prove the supervisor restarts the intake.
struct PanicOnceQueue {
    inner: Arc<MemoryQueue>,
    panicked: AtomicBool,
}

#[async_trait]
impl Queue for PanicOnceQueue {
    async fn receive(&self, max: usize, wait: Duration) -> PortResult<Vec<QueueMessage>> {
        if !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("injected intake failure");
        }
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, r: &str) -> PortResult<()> {
        self.inner.delete(r).await
    }
    async fn retry_later(&self, r: &str, d: Duration) -> PortResult<()> {
        self.inner.retry_later(r, d).await
    }
    async fn dead_letter(&self, m: &QueueMessage, reason: &str) -> PortResult<()> {
        self.inner.dead_letter(m, reason).await
    }
    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

fn eum_event(wa_id: &str, messages: Vec<Value>) -> String {
    let entry = json!({"id": "waba", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "111"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
        "messages": messages}}]});
    json!({"context": {"MetaWabaIds": [], "MetaPhoneNumberIds": [{"metaPhoneNumberId": "111",
            "arn": "arn:aws:social-messaging:us-east-1:1:phone-number-id/abc"}]},
        "whatsAppWebhookEntry": entry.to_string(), "aws_account_id": "1",
        "message_timestamp": "2026-01-01T00:00:00Z"})
    .to_string()
}

fn text(wa_id: &str, wamid: &str, ts: u64, body: &str) -> Value {
    json!({"from": wa_id, "id": wamid, "timestamp": ts.to_string(), "type": "text", "text": {"body": body}})
}

struct Graph {
    inbound: Arc<MemoryQueue>,
    connect: Arc<FakeConnect>,
    whatsapp: Arc<FakeWhatsApp>,
    _dir: tempfile::TempDir,
}

fn start(inbound_queue: Option<Arc<dyn Queue>>, mailbox: Option<usize>) -> Graph {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let inbound = Arc::new(MemoryQueue::new("in", Duration::from_millis(300)));
    let connect = Arc::new(FakeConnect::default());
    let whatsapp = Arc::new(FakeWhatsApp::default());
    let ports = Ports {
        inbound_queue: inbound_queue.unwrap_or_else(|| inbound.clone()),
        connect_queue: Arc::new(MemoryQueue::new("cx", Duration::from_secs(30))),
        sessions: store.clone(),
        dedupe: store,
        connect: connect.clone(),
        whatsapp: whatsapp.clone(),
        media: None,
        http: HttpTransfer::new(UrlAllowlist::default()).unwrap(),
    };
    let behaviour = Behaviour::from_settings(&BehaviourSettings {
        mailbox_capacity: mailbox,
        ..Default::default()
    })
    .unwrap();
    Supervisor::new(
        ports,
        behaviour,
        "arn:aws:sns:us-east-1:1:t".into(),
        Arc::new(Lifecycle::default()),
    )
    .start();
    Graph {
        inbound,
        connect,
        whatsapp,
        _dir: dir,
    }
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[actix_rt::test]
async fn thirty_messages_keep_their_order_and_open_one_chat() {
    let g = start(None, None);
    g.connect.delay_ms.store(2, Ordering::SeqCst);
    for i in 0..30 {
        g.inbound.push(eum_event(
            "549",
            vec![text("549", &format!("w{i}"), 1000 + i, &format!("m{i}"))],
        ));
    }
    g.inbound.push(eum_event(
        "550",
        vec![text("550", "x", 1, "other customer")],
    ));
    wait_until("31 texts", || {
        g.connect.texts().iter().map(Vec::len).sum::<usize>() == 31
    })
    .await;
    let chats = g.connect.texts();
    let mine = chats
        .iter()
        .find(|t| t[0] == "m0")
        .expect("customer 549's chat");
    let expected: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    assert_eq!(mine, &expected);
    assert_eq!(chats.len(), 2, "one chat per customer");
}

#[actix_rt::test]
async fn redelivered_message_reaches_the_agent_once() {
    let g = start(None, None);
    let body = eum_event("549", vec![text("549", "same", 1, "hello")]);
    g.inbound.push(body.clone());
    wait_until("first delivery", || g.connect.texts().len() == 1).await;
    g.inbound.push(body);
    wait_until("queue drained", || g.inbound.depth() == (0, 0)).await;
    assert_eq!(g.connect.texts(), vec![vec!["hello".to_string()]]);
}

#[actix_rt::test]
async fn access_denied_starts_a_new_chat_once_and_resends() {
    let g = start(None, None);
    g.inbound
        .push(eum_event("549", vec![text("549", "a", 1, "first")]));
    wait_until("first chat", || g.connect.texts().len() == 1).await;
    g.connect.deny_next_send.store(true, Ordering::SeqCst);
    g.inbound
        .push(eum_event("549", vec![text("549", "b", 2, "second")]));
    wait_until("second chat", || g.connect.texts().len() == 2).await;
    assert_eq!(
        g.connect.texts(),
        vec![vec!["first".to_string()], vec!["second".to_string()]]
    );
}

#[actix_rt::test]
async fn undecodable_bodies_are_dead_lettered_with_a_reason() {
    let g = start(None, None);
    g.inbound.push("not json");
    g.inbound
        .push(r#"{"Type":"Notification","Message":"[1,2]"}"#);
    wait_until("two dead letters", || g.inbound.dead_letters().len() == 2).await;
    assert!(g
        .inbound
        .dead_letters()
        .iter()
        .all(|d| !d.reason.is_empty()));
    // And the graph still works.
    g.inbound
        .push(eum_event("549", vec![text("549", "ok", 1, "still here")]));
    wait_until("delivery after bad input", || g.connect.texts().len() == 1).await;
}

#[actix_rt::test]
async fn a_full_mailbox_leaves_work_in_the_queue_and_loses_nothing() {
    let g = start(None, Some(1));
    g.connect.delay_ms.store(20, Ordering::SeqCst);
    for i in 0..12 {
        g.inbound.push(eum_event(
            "549",
            vec![text("549", &format!("w{i}"), 100 + i, &format!("m{i}"))],
        ));
    }
    wait_until("all 12 delivered", || {
        g.connect.texts().iter().map(Vec::len).sum::<usize>() == 12
    })
    .await;
    let mut got = g.connect.texts()[0].clone();
    got.sort();
    let mut expected: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(got, expected, "every message delivered exactly once");
}

#[actix_rt::test]
async fn supervisor_restarts_a_crashed_intake() {
    let inner = Arc::new(MemoryQueue::new("in", Duration::from_millis(300)));
    let queue: Arc<dyn Queue> = Arc::new(PanicOnceQueue {
        inner: inner.clone(),
        panicked: AtomicBool::new(false),
    });
    let g = start(Some(queue), None);
    inner.push(eum_event("549", vec![text("549", "a", 1, "after restart")]));
    wait_until("delivery by the restarted intake", || {
        g.connect.texts().len() == 1
    })
    .await;
    wait_until("acknowledgements", || {
        g.whatsapp.sent.lock().unwrap().len() >= 2
    })
    .await;
}

#[actix_rt::test]
async fn a_chat_that_ends_before_it_is_joined_is_replaced_not_retried_forever() {
    let g = start(None, None);
    g.connect.deny_next_join.store(true, Ordering::SeqCst);
    g.inbound
        .push(eum_event("549", vec![text("549", "a", 1, "hello")]));
    wait_until("a second, live chat", || g.connect.texts().len() == 2).await;
    wait_until("queue drained", || g.inbound.depth() == (0, 0)).await;
    g.inbound
        .push(eum_event("549", vec![text("549", "b", 2, "again")]));
    wait_until("next message in the live chat", || {
        g.connect.texts()[1].len() == 2
    })
    .await;
    assert_eq!(
        g.connect.texts()[1],
        vec!["hello".to_string(), "again".to_string()]
    );
    assert!(g.inbound.dead_letters().is_empty());
}
