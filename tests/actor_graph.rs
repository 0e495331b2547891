//! The actor graph against in-memory fakes of Connect and WhatsApp, with the in-process
//! queues and the embedded store: ordering, dedupe, renewal, backpressure, the retry
//! policy, supervision (restarts of dead and stuck actors) and two graphs sharing one
//! FIFO queue, without any network. (The same paths run end to end against moto and the
//! simulator in the e2e_* tests.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Actor;
use async_trait::async_trait;
use serde_json::{json, Value};

use actix::Addr;
use waconnect::actors::supervisor::{Adapters, InjectFault, Stats, Supervisor, SupervisorStats};
use waconnect::adapters::http::HttpTransfer;
use waconnect::adapters::local::{EmbeddedStore, MemoryQueue};
use waconnect::config::{Behaviour, BehaviourSettings};
use waconnect::delivery::dependency::{self, CallResult};
use waconnect::domain::UrlAllowlist;
use waconnect::lifecycle::Lifecycle;
use waconnect::ports::{
    AttachmentUpload, ConnectChat, ErrorKind, MediaInfo, NewChatRequest, OutgoingMessage,
    PortError, PortResult, Queue, QueueInfo, QueueMessage, StartedChat, WhatsApp,
};
use waconnect::supervision::Fault;

/// Decides whether a SendMessage with this content fails, and how.
type SendFault = Box<dyn Fn(&str) -> Option<PortError> + Send + Sync>;

/// A Connect that records what each chat received.
#[derive(Default)]
struct FakeConnect {
    chats: Mutex<Vec<(String, Vec<String>)>>,
    tokens: Mutex<HashMap<String, usize>>,
    seen_client_tokens: Mutex<HashMap<String, String>>,
    deny_next_send: AtomicBool,
    deny_next_join: AtomicBool,
    delay_ms: AtomicUsize,
    send_fault: Mutex<Option<SendFault>>,
    /// Service name reported to the dependency registry, as the AWS adapters do.
    service: Mutex<Option<&'static str>>,
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
                instance_id: "instance".into(),
                contact_id: id.clone(),
                participant_id: "p".into(),
                participant_token: id.clone(),
            });
        }
        let mut chats = self.chats.lock().unwrap();
        let id = format!("contact-{}", chats.len());
        self.tokens.lock().unwrap().insert(id.clone(), chats.len());
        chats.push((r.customer_id.clone(), vec![r.initial_text.clone()]));
        self.seen_client_tokens
            .lock()
            .unwrap()
            .insert(r.client_token.clone(), id.clone());
        Ok(StartedChat {
            instance_id: "instance".into(),
            contact_id: id.clone(),
            participant_id: "p".into(),
            participant_token: id,
        })
    }
    async fn start_contact_streaming(&self, _: &str, _: &str, _: &str, _: &str) -> PortResult<()> {
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
        // The participant token is the contact id, already mapped to its chat.
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
        let fault = self
            .send_fault
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|f| f(content));
        let service = *self.service.lock().unwrap();
        if let Some(service) = service {
            let result = match &fault {
                Some(e) if e.kind.is_retryable() => CallResult::Unavailable,
                _ => CallResult::Answered,
            };
            dependency::record(service, result);
        }
        if let Some(e) = fault {
            return Err(e);
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
    async fn delete_batch(&self, r: &[String]) -> PortResult<Vec<String>> {
        self.inner.delete_batch(r).await
    }
    async fn set_visibility(&self, r: &str, d: Duration) -> PortResult<()> {
        self.inner.set_visibility(r, d).await
    }
    async fn send_batch(&self, m: &[OutgoingMessage]) -> PortResult<()> {
        self.inner.send_batch(m).await
    }
    async fn dead_letter(&self, m: &QueueMessage, reason: &str) -> PortResult<()> {
        self.inner.dead_letter(m, reason).await
    }
    async fn info(&self) -> PortResult<QueueInfo> {
        self.inner.info().await
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

/// One customer text per queue message, as separate webhooks would arrive.
fn push_texts(queue: &MemoryQueue, wa_id: &str, prefix: &str, n: u64) {
    for i in 0..n {
        queue.push(eum_event(
            wa_id,
            vec![text(
                wa_id,
                &format!("{prefix}{i}"),
                100 + i,
                &format!("{prefix}{i}"),
            )],
        ));
    }
}

#[derive(Default)]
struct Options {
    mailbox: Option<usize>,
    inbound_queue: Option<Arc<dyn Queue>>,
    /// Feed conversations through in-process FIFO queues, as production with FIFO queues.
    fifo: bool,
    retry_base_ms: Option<u64>,
    retry_max_delay_ms: Option<u64>,
    retry_max_attempts: Option<u32>,
    stuck_after_secs: Option<u64>,
    /// Burst aggregation (off unless a test is about it: it joins quick texts).
    aggregate: bool,
}

struct Graph {
    inbound: Arc<MemoryQueue>,
    inbound_fifo: Arc<MemoryQueue>,
    connect: Arc<FakeConnect>,
    supervisor: Addr<Supervisor>,
    _dir: Arc<tempfile::TempDir>,
}

/// What several graphs (replicas) share: queues, store and the fake services.
struct Shared {
    inbound: Arc<MemoryQueue>,
    inbound_fifo: Arc<MemoryQueue>,
    connect_queue: Arc<MemoryQueue>,
    connect_fifo: Arc<MemoryQueue>,
    store: Arc<EmbeddedStore>,
    connect: Arc<FakeConnect>,
    whatsapp: Arc<FakeWhatsApp>,
    dir: Arc<tempfile::TempDir>,
}

impl Shared {
    fn new() -> Self {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
        Self {
            inbound: Arc::new(MemoryQueue::new("in", Duration::from_millis(300))),
            inbound_fifo: Arc::new(MemoryQueue::fifo("in.fifo", Duration::from_secs(3))),
            connect_queue: Arc::new(MemoryQueue::new("cx", Duration::from_secs(30))),
            connect_fifo: Arc::new(MemoryQueue::fifo("cx.fifo", Duration::from_secs(3))),
            store,
            connect: Arc::new(FakeConnect::default()),
            whatsapp: Arc::new(FakeWhatsApp::default()),
            dir: Arc::new(dir),
        }
    }

    fn start(&self, o: Options) -> Graph {
        let adapters = Adapters {
            inbound_queue: o.inbound_queue.unwrap_or_else(|| self.inbound.clone()),
            connect_queue: self.connect_queue.clone(),
            inbound_fifo: o.fifo.then(|| self.inbound_fifo.clone() as Arc<dyn Queue>),
            connect_fifo: o.fifo.then(|| self.connect_fifo.clone() as Arc<dyn Queue>),
            sessions: self.store.clone(),
            dedupe: self.store.clone(),
            leases: self.store.clone(),
            connect: self.connect.clone(),
            whatsapp: self.whatsapp.clone(),
            media: None,
            http: HttpTransfer::new(UrlAllowlist::default()).unwrap(),
            transcriber: None,
        };
        let behaviour = Behaviour::from_settings(&BehaviourSettings {
            mailbox_capacity: o.mailbox,
            retry_base_ms: o.retry_base_ms.or(Some(20)),
            retry_max_delay_ms: o.retry_max_delay_ms.or(Some(200)),
            retry_max_attempts: o.retry_max_attempts,
            stuck_after_secs: o.stuck_after_secs,
            aggregate: Some(o.aggregate),
            aggregate_quiet_ms: Some(300),
            aggregate_max_ms: Some(2000),
            transcribe: Some(false),
            ..Default::default()
        })
        .unwrap();
        let supervisor = Supervisor::new(
            adapters,
            behaviour,
            "arn:aws:sns:us-east-1:1:t".into(),
            Arc::new(Lifecycle::default()),
        )
        .start();
        Graph {
            inbound: self.inbound.clone(),
            inbound_fifo: self.inbound_fifo.clone(),
            connect: self.connect.clone(),
            supervisor,
            _dir: self.dir.clone(),
        }
    }
}

fn start(o: Options) -> Graph {
    Shared::new().start(o)
}

/// Logs of the graph under test, with RUST_LOG (e.g. `RUST_LOG=waconnect=debug`).
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

impl Graph {
    fn delivered(&self) -> usize {
        self.connect.texts().iter().map(Vec::len).sum()
    }

    async fn stats(&self) -> SupervisorStats {
        self.supervisor.send(Stats).await.unwrap()
    }

    async fn inject(&self, actor: &str, fault: Fault) {
        assert!(self
            .supervisor
            .send(InjectFault {
                actor: actor.into(),
                fault,
            })
            .await
            .unwrap());
    }
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..400 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn in_order(prefix: &str, n: u64) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[actix_rt::test]
async fn thirty_messages_keep_their_order_and_open_one_chat() {
    let g = start(Options::default());
    g.connect.delay_ms.store(2, Ordering::SeqCst);
    push_texts(&g.inbound, "549", "m", 30);
    g.inbound.push(eum_event(
        "550",
        vec![text("550", "x", 1, "other customer")],
    ));
    wait_until("31 texts", || g.delivered() == 31).await;
    let chats = g.connect.texts();
    let mine = chats
        .iter()
        .find(|t| t[0] == "m0")
        .expect("customer 549's chat");
    assert_eq!(mine, &in_order("m", 30));
    assert_eq!(chats.len(), 2, "one chat per customer");
}

#[actix_rt::test]
async fn redelivered_message_reaches_the_agent_once() {
    let g = start(Options::default());
    let body = eum_event("549", vec![text("549", "same", 1, "hello")]);
    g.inbound.push(body.clone());
    wait_until("first delivery", || g.connect.texts().len() == 1).await;
    g.inbound.push(body);
    wait_until("queue drained", || g.inbound.depth() == (0, 0)).await;
    assert_eq!(g.connect.texts(), vec![vec!["hello".to_string()]]);
}

#[actix_rt::test]
async fn access_denied_starts_a_new_chat_once_and_resends() {
    let g = start(Options::default());
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
    let g = start(Options::default());
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
async fn a_full_mailbox_refuses_work_and_keeps_order_without_losing_any() {
    let g = start(Options {
        mailbox: Some(2),
        ..Default::default()
    });
    g.connect.delay_ms.store(20, Ordering::SeqCst);
    push_texts(&g.inbound, "549", "m", 24);
    wait_until("all 24 delivered", || g.delivered() == 24).await;
    // Exact order, not sorted: a refused message must not be overtaken.
    assert_eq!(g.connect.texts(), vec![in_order("m", 24)]);
    let stats = g.stats().await;
    assert!(
        stats.refusals > 0,
        "the bound must have refused work: {stats:?}"
    );
    assert!(
        stats.mailbox_high_water <= 2,
        "the mailbox never holds more than its capacity: {stats:?}"
    );
    assert!(
        g.inbound.total_receives() > 24,
        "refused work went back to the queue"
    );
    assert!(g.inbound.dead_letters().is_empty());
}

#[actix_rt::test]
async fn transient_failures_are_retried_in_place_and_keep_the_order() {
    let g = start(Options::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    *g.connect.send_fault.lock().unwrap() = Some(Box::new(move |_| {
        // Every third send fails with a 5xx, whoever's it is.
        (counter.fetch_add(1, Ordering::SeqCst) % 3 == 2)
            .then(|| PortError::new(ErrorKind::Transient, "fake-flaky", "SendMessage", "503"))
    }));
    push_texts(&g.inbound, "549", "m", 20);
    wait_until("all 20 delivered", || g.delivered() == 20).await;
    assert_eq!(g.connect.texts(), vec![in_order("m", 20)]);
    assert!(
        calls.load(Ordering::SeqCst) > 20,
        "some sends failed and were retried"
    );
    assert!(g.inbound.dead_letters().is_empty());
}

#[actix_rt::test]
async fn a_poison_message_is_dead_lettered_after_its_attempts_and_later_ones_follow() {
    let g = start(Options {
        retry_max_attempts: Some(6),
        ..Default::default()
    });
    *g.connect.service.lock().unwrap() = Some("fake-poison");
    *g.connect.send_fault.lock().unwrap() = Some(Box::new(|content| {
        content.contains("POISON").then(|| {
            PortError::new(
                ErrorKind::Transient,
                "fake-poison",
                "SendMessage",
                "500 for this one",
            )
        })
    }));
    g.inbound
        .push(eum_event("549", vec![text("549", "a", 1, "before")]));
    g.inbound
        .push(eum_event("549", vec![text("549", "p", 2, "POISON")]));
    g.inbound
        .push(eum_event("549", vec![text("549", "b", 3, "after")]));
    // Other customers' sends keep succeeding meanwhile: the service is up, the message
    // is the problem.
    for i in 0..40 {
        g.inbound.push(eum_event(
            "550",
            vec![text("550", &format!("o{i}"), 10 + i, &format!("o{i}"))],
        ));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    wait_until("the poison dead-lettered", || {
        g.inbound.dead_letters().len() == 1
    })
    .await;
    let reason = &g.inbound.dead_letters()[0].reason;
    assert!(
        reason.contains("6 attempts") && reason.contains("500 for this one"),
        "{reason}"
    );
    assert!(!dependency::is_down("fake-poison"));
    wait_until("the message after it delivered", || g.delivered() == 42).await;
    let mine = g
        .connect
        .texts()
        .into_iter()
        .find(|t| t[0] == "before")
        .unwrap();
    assert_eq!(mine, vec!["before".to_string(), "after".to_string()]);
}

#[actix_rt::test]
async fn an_outage_holds_messages_without_spending_their_attempts() {
    let g = start(Options {
        retry_max_attempts: Some(6),
        retry_max_delay_ms: Some(100),
        ..Default::default()
    });
    *g.connect.service.lock().unwrap() = Some("fake-outage");
    let down = Arc::new(AtomicBool::new(true));
    let outage = down.clone();
    *g.connect.send_fault.lock().unwrap() = Some(Box::new(move |_| {
        outage.load(Ordering::SeqCst).then(|| {
            PortError::new(
                ErrorKind::Transient,
                "fake-outage",
                "SendMessage",
                "503 everywhere",
            )
        })
    }));
    // The first chat's initial message goes through StartChatContact, not SendMessage.
    push_texts(&g.inbound, "549", "m", 6);
    wait_until("the outage is noticed", || {
        dependency::is_down("fake-outage")
    })
    .await;
    // Far longer than six attempts' worth of backoff.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        g.inbound.dead_letters().is_empty(),
        "an outage is not the messages' fault"
    );
    down.store(false, Ordering::SeqCst);
    wait_until("all 6 delivered", || g.delivered() == 6).await;
    assert_eq!(g.connect.texts(), vec![in_order("m", 6)]);
    assert!(g.inbound.dead_letters().is_empty());
}

#[actix_rt::test]
async fn a_crashed_intake_is_restarted_and_counted() {
    let inner = Arc::new(MemoryQueue::new("in", Duration::from_millis(300)));
    let queue: Arc<dyn Queue> = Arc::new(PanicOnceQueue {
        inner: inner.clone(),
        panicked: AtomicBool::new(false),
    });
    let g = start(Options {
        inbound_queue: Some(queue),
        ..Default::default()
    });
    inner.push(eum_event("549", vec![text("549", "a", 1, "after restart")]));
    wait_until("delivery by the restarted intake", || {
        g.connect.texts().len() == 1
    })
    .await;
    let restarts = g.stats().await.restarts["inbound_intake"];
    assert_eq!(restarts, (1, 0), "one restart, for dying");
}

#[actix_rt::test]
async fn a_panicking_executor_is_restarted_in_place_and_work_continues() {
    let g = start(Options::default());
    g.inbound
        .push(eum_event("549", vec![text("549", "a", 1, "one")]));
    wait_until("first delivery", || g.delivered() == 1).await;
    g.inject("connect_upload", Fault::Panic).await;
    g.inbound
        .push(eum_event("549", vec![text("549", "b", 2, "two")]));
    wait_until("delivery through the new incarnation", || {
        g.delivered() == 2
    })
    .await;
    assert_eq!(g.stats().await.restarts["connect_upload"], (1, 0));
    assert!(g.inbound.dead_letters().is_empty());
}

#[actix_rt::test]
async fn a_stuck_executor_is_killed_and_restarted() {
    let g = start(Options {
        stuck_after_secs: Some(1),
        ..Default::default()
    });
    g.inbound
        .push(eum_event("549", vec![text("549", "a", 1, "one")]));
    wait_until("first delivery", || g.delivered() == 1).await;
    g.inject("connect_upload", Fault::Hang).await;
    g.inbound
        .push(eum_event("549", vec![text("549", "b", 2, "two")]));
    wait_until("delivery after the stuck actor was replaced", || {
        g.delivered() == 2
    })
    .await;
    assert_eq!(
        g.stats().await.restarts["connect_upload"],
        (1, 1),
        "one restart, for being stuck"
    );
    assert_eq!(
        g.connect.texts(),
        vec![vec!["one".to_string(), "two".to_string()]]
    );
}

#[actix_rt::test]
async fn a_chat_that_ends_before_it_is_joined_is_replaced_not_retried_forever() {
    let g = start(Options::default());
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

#[actix_rt::test]
async fn two_replicas_on_one_fifo_queue_keep_one_chat_and_the_order_per_customer() {
    let shared = Shared::new();
    let a = shared.start(Options {
        fifo: true,
        ..Default::default()
    });
    let _b = shared.start(Options {
        fifo: true,
        ..Default::default()
    });
    shared.connect.delay_ms.store(3, Ordering::SeqCst);
    let customers = ["5491", "5492", "5493", "5494", "5495"];
    for round in 0..8 {
        for c in customers {
            let id = format!("{c}-{round}");
            shared
                .inbound
                .push(eum_event(c, vec![text(c, &id, 100 + round, &id)]));
        }
    }
    wait_until("40 texts delivered", || a.delivered() == 40).await;
    let chats = shared.connect.texts();
    assert_eq!(
        chats.len(),
        customers.len(),
        "one chat per customer: {chats:?}"
    );
    for c in customers {
        let chat = chats.iter().find(|t| t[0].starts_with(c)).unwrap();
        let expected: Vec<String> = (0..8).map(|r| format!("{c}-{r}")).collect();
        assert_eq!(chat, &expected);
    }
    wait_until("FIFO queue drained", || a.inbound_fifo.depth() == (0, 0)).await;
}

/// `n` texts of one customer, `gap` apart, as separate webhooks.
async fn texts_apart(queue: &MemoryQueue, wa_id: &str, prefix: &str, n: u64, gap: Duration) {
    for i in 0..n {
        queue.push(eum_event(
            wa_id,
            vec![text(
                wa_id,
                &format!("{prefix}{i}"),
                100 + i,
                &format!("{prefix}{i}"),
            )],
        ));
        tokio::time::sleep(gap).await;
    }
}

#[actix_rt::test]
async fn quick_texts_before_an_agent_joins_become_one_message_in_both_stages() {
    for fifo in [false, true] {
        let g = start(Options {
            aggregate: true,
            fifo,
            ..Default::default()
        });
        texts_apart(&g.inbound, "549", "m", 3, Duration::from_millis(100)).await;
        wait_until("the burst", || g.delivered() >= 1).await;
        // One chat, one message (the chat's initial one) holding the three lines in order.
        wait_until("queue drained", || g.inbound.depth() == (0, 0)).await;
        assert_eq!(
            g.connect.texts(),
            vec![vec!["m0\nm1\nm2".to_string()]],
            "fifo={fifo}"
        );
    }
}

#[actix_rt::test]
async fn a_non_text_follows_the_waiting_texts_and_an_agent_stops_the_waiting() {
    let shared = Shared::new();
    let g = shared.start(Options {
        aggregate: true,
        ..Default::default()
    });
    texts_apart(&g.inbound, "549", "a", 2, Duration::from_millis(50)).await;
    g.inbound.push(eum_event(
        "549",
        vec![
            json!({"from": "549", "id": "loc", "timestamp": "200", "type": "location",
                    "location": {"latitude": 1.5, "longitude": 2.5}}),
        ],
    ));
    wait_until("burst then location", || g.delivered() == 2).await;
    let chat = g.connect.texts().remove(0);
    assert_eq!(chat[0], "a0\na1");
    assert!(chat[1].contains("1.5"), "{chat:?}");
    // An agent joins (Connect streams the event): texts go through one by one.
    use waconnect::ports::SessionStore;
    let contact = shared
        .store
        .find_by_customer("phone-number-id-abc", "549")
        .await
        .unwrap()
        .unwrap()
        .contact_id;
    shared.connect_queue.push(
        json!({"Id": "joined-1", "Type": "EVENT",
            "ContentType": "application/vnd.amazonaws.connect.event.participant.joined",
            "ParticipantRole": "AGENT", "DisplayName": "Carla", "ContactId": contact,
            "InitialContactId": contact, "AbsoluteTime": "2026-01-01T00:00:05.000Z"})
        .to_string(),
    );
    for _ in 0..400 {
        let joined = shared.store.find_by_contact(&contact).await.unwrap();
        if joined.is_some_and(|s| s.agent_joined) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    texts_apart(&g.inbound, "549", "b", 3, Duration::from_millis(50)).await;
    wait_until("three separate texts", || g.delivered() == 5).await;
    assert_eq!(&g.connect.texts()[0][2..], ["b0", "b1", "b2"]);
}

/// A regrouper that dies after passing texts on but before deleting their queue messages
/// leaves them to be regrouped again, maybe in a burst of another make-up (so with another
/// FIFO deduplication id), which a replica that never saw them receives for the first
/// time. The regrouped copy says its source was received before, so that replica asks
/// the durable dedupe store and delivers only what is new.
#[actix_rt::test]
async fn texts_regrouped_again_after_a_regrouper_died_reach_the_agent_once() {
    use waconnect::delivery::regroup::{split_units, Unit};

    let shared = Shared::new();
    let a = shared.start(Options {
        fifo: true,
        ..Default::default()
    });
    texts_apart(&a.inbound, "549", "m", 2, Duration::from_millis(50)).await;
    wait_until("m0 and m1 delivered", || a.delivered() == 2).await;
    // Their FIFO messages are deleted only once their dedupe records are stored; in
    // production the copy, in the same FIFO group, cannot be received before that.
    wait_until("m0 and m1 settled", || {
        a.inbound_fifo.depth() == (0, 0) && a.inbound.depth() == (0, 0)
    })
    .await;

    // Another replica: the same store and Connect, queues of its own so that it alone
    // receives the copy (as the one consumer of the customer's FIFO group).
    let other = Shared {
        store: shared.store.clone(),
        connect: shared.connect.clone(),
        ..Shared::new()
    };
    let b = other.start(Options {
        fifo: true,
        ..Default::default()
    });
    for received_before in [true, false] {
        let id = if received_before { "m2" } else { "m3" };
        let body = eum_event(
            "549",
            vec![text("549", "m1", 101, "m1"), text("549", id, 102, id)],
        );
        let mut split = split_units(&body).unwrap().unwrap();
        if received_before {
            split.received_before();
        }
        let units: Vec<&Unit> = split.units.iter().collect();
        b.inbound_fifo
            .send_batch(&[split.message(&units)])
            .await
            .unwrap();
        wait_until("the copy handled", || b.inbound_fifo.depth() == (0, 0)).await;
    }
    // Unmarked, the copy is a first receipt this replica knows nothing of: m1 goes again
    // (a ClientToken of another burst cannot stop it). That is what the mark prevents.
    assert_eq!(
        shared.connect.texts(),
        vec![vec![
            "m0".to_string(),
            "m1".to_string(),
            "m2".to_string(),
            "m1\nm3".to_string()
        ]]
    );
}
