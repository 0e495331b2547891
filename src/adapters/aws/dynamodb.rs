//! [`SessionStore`] and [`DedupeStore`] on DynamoDB, with the reference sample's session
//! schema (reference.md section 5) so both can share a table during a migration.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;

use super::call::observe;
use crate::ports::LeaseStore;
use crate::ports::{
    Claim, DedupeStore, ErrorKind, PortError, PortResult, Session, SessionStore, CHANNEL_WHATSAPP,
    ENDED_SESSION_KEEP,
};

const SERVICE: &str = "dynamodb";
pub const CUSTOMER_INDEX: &str = "customerId-index";
/// BatchWriteItem's limit of put requests per call.
const MAX_BATCH_WRITE: usize = 25;

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn get_s(item: &HashMap<String, AttributeValue>, key: &str) -> String {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn get_n(item: &HashMap<String, AttributeValue>, key: &str) -> i64 {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn to_item(session: &Session) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("contactId".into(), s(&session.contact_id)),
        ("customerId".into(), s(&session.customer_id)),
        ("channel".into(), s(&session.channel)),
        ("participantToken".into(), s(&session.participant_token)),
        ("connectionToken".into(), s(&session.connection_token)),
        ("systemNumber".into(), s(&session.business_number_id)),
        ("name".into(), s(&session.name)),
        (
            "date".into(),
            AttributeValue::N(session.expires_at.to_string()),
        ),
        ("ended".into(), AttributeValue::Bool(session.ended)),
    ]);
    if session.agent_joined {
        item.insert("agentJoined".into(), AttributeValue::Bool(true));
    }
    if let Some(opened_by) = &session.opened_by {
        item.insert("openedBy".into(), s(opened_by));
    }
    item
}

/// The pointer item of a customer of a business number, in the session table under a
/// key no contact id can take. It has no `customerId` attribute, so the customer index
/// does not list it. Attributes: `active` (the live chat's contact id), `activeExpires`,
/// `claimant`, `claimExpires`, and the TTL `date`.
fn pointer_key(business_number_id: &str, customer_id: &str) -> AttributeValue {
    s(&format!(
        "customer#{CHANNEL_WHATSAPP}#{business_number_id}#{customer_id}"
    ))
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Session {
    Session {
        contact_id: get_s(item, "contactId"),
        customer_id: get_s(item, "customerId"),
        channel: get_s(item, "channel"),
        participant_token: get_s(item, "participantToken"),
        connection_token: get_s(item, "connectionToken"),
        business_number_id: get_s(item, "systemNumber"),
        name: get_s(item, "name"),
        expires_at: get_n(item, "date"),
        ended: item
            .get("ended")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        opened_by: item.get("openedBy").and_then(|v| v.as_s().ok()).cloned(),
        agent_joined: item
            .get("agentJoined")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    }
}

/// Sessions as DynamoDB items, found by contact (primary key) or customer (GSI).
pub struct DynamoSessionStore {
    client: Client,
    table: String,
}

impl DynamoSessionStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

#[async_trait]
impl SessionStore for DynamoSessionStore {
    async fn find_by_customer(
        &self,
        business_number_id: &str,
        customer_id: &str,
    ) -> PortResult<Option<Session>> {
        let out = observe(
            SERVICE,
            "Query",
            self.client
                .query()
                .table_name(&self.table)
                .index_name(CUSTOMER_INDEX)
                .key_condition_expression("customerId = :c AND channel = :ch")
                .expression_attribute_values(":c", s(customer_id))
                .expression_attribute_values(":ch", s(CHANNEL_WHATSAPP))
                .send(),
        )
        .await?;
        // TTL deletion lags by up to days, so expired items must be filtered here.
        let now = now_secs();
        Ok(out
            .items()
            .iter()
            .map(from_item)
            .filter(|s| s.expires_at > now && !s.ended && !s.connection_token.is_empty())
            // One chat per business number: the customer's chat with another number is
            // not this one (the reference sample's items carry systemNumber too).
            .filter(|s| s.business_number_id == business_number_id)
            .max_by_key(|s| s.expires_at))
    }

    async fn find_by_contact(&self, contact_id: &str) -> PortResult<Option<Session>> {
        let out = observe(
            SERVICE,
            "GetItem",
            self.client
                .get_item()
                .table_name(&self.table)
                .key("contactId", s(contact_id))
                .consistent_read(true)
                .send(),
        )
        .await?;
        Ok(out.item().map(from_item))
    }

    async fn claim_chat(
        &self,
        business_number_id: &str,
        customer_id: &str,
        replacing: Option<&str>,
        claimant: &str,
        ttl: Duration,
    ) -> PortResult<Claim> {
        let now = now_secs();
        // Free to claim: no other unexpired claim, and no live chat other than the one
        // the caller found dead.
        let mut condition = String::from(
            "(attribute_not_exists(claimant) OR claimExpires < :now OR claimant = :me) AND \
             (attribute_not_exists(active) OR activeExpires < :now",
        );
        let mut call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contactId", pointer_key(business_number_id, customer_id))
            .update_expression("SET claimant = :me, claimExpires = :exp, #date = :keep")
            .expression_attribute_names("#date", "date")
            .expression_attribute_values(":me", s(claimant))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(
                ":exp",
                AttributeValue::N((now + ttl.as_secs() as i64).to_string()),
            )
            // The pointer outlives any chat it names (the longest chat is 7 days).
            .expression_attribute_values(
                ":keep",
                AttributeValue::N((now + 8 * 24 * 3600).to_string()),
            );
        if let Some(dead) = replacing {
            condition.push_str(" OR active = :dead");
            call = call.expression_attribute_values(":dead", s(dead));
        }
        condition.push(')');
        match observe(
            SERVICE,
            "UpdateItem",
            call.condition_expression(condition).send(),
        )
        .await
        {
            Ok(_) => Ok(Claim::Granted),
            Err(e) if e.kind == ErrorKind::Conflict => Ok(Claim::Taken),
            Err(e) => Err(e),
        }
    }

    async fn create(&self, session: &Session, claimant: &str) -> PortResult<()> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(session)))
            .build()
            .map_err(|e| {
                PortError::new(
                    ErrorKind::Invalid,
                    SERVICE,
                    "TransactWriteItems",
                    e.to_string(),
                )
            })?;
        let point = Update::builder()
            .table_name(&self.table)
            .key(
                "contactId",
                pointer_key(&session.business_number_id, &session.customer_id),
            )
            .update_expression(
                "SET active = :cid, activeExpires = :exp REMOVE claimant, claimExpires",
            )
            .condition_expression("claimant = :me")
            .expression_attribute_values(":cid", s(&session.contact_id))
            .expression_attribute_values(":exp", AttributeValue::N(session.expires_at.to_string()))
            .expression_attribute_values(":me", s(claimant))
            .build()
            .map_err(|e| {
                PortError::new(
                    ErrorKind::Invalid,
                    SERVICE,
                    "TransactWriteItems",
                    e.to_string(),
                )
            })?;
        observe(
            SERVICE,
            "TransactWriteItems",
            self.client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put).build())
                .transact_items(TransactWriteItem::builder().update(point).build())
                .send(),
        )
        .await
        .map(|_| ())
        .map_err(|mut e| {
            if e.kind == ErrorKind::Conflict {
                e.message = format!("claim to start the customer's chat lost: {}", e.message);
            }
            e
        })
    }

    async fn end(&self, contact_id: &str) -> PortResult<()> {
        let keep_until = now_secs() + ENDED_SESSION_KEEP.as_secs() as i64;
        let out = observe(
            SERVICE,
            "UpdateItem",
            self.client
                .update_item()
                .table_name(&self.table)
                .key("contactId", s(contact_id))
                .update_expression("SET ended = :t, #date = :keep")
                .condition_expression("attribute_exists(contactId)")
                .expression_attribute_names("#date", "date")
                .expression_attribute_values(":t", AttributeValue::Bool(true))
                .expression_attribute_values(":keep", AttributeValue::N(keep_until.to_string()))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .send(),
        )
        .await;
        let session = match out {
            Ok(out) => out.attributes().map(from_item),
            // Unknown contact: nothing to end.
            Err(e) if e.kind == ErrorKind::Conflict => None,
            Err(e) => return Err(e),
        };
        let Some(session) = session else {
            return Ok(());
        };
        // The customer has no live chat any more (unless a newer one took its place).
        let cleared = observe(
            SERVICE,
            "UpdateItem",
            self.client
                .update_item()
                .table_name(&self.table)
                .key(
                    "contactId",
                    pointer_key(&session.business_number_id, &session.customer_id),
                )
                .update_expression("REMOVE active, activeExpires")
                .condition_expression("active = :cid")
                .expression_attribute_values(":cid", s(contact_id))
                .send(),
        )
        .await;
        match cleared {
            Err(e) if e.kind != ErrorKind::Conflict => Err(e),
            _ => Ok(()),
        }
    }

    async fn mark_agent_joined(&self, contact_id: &str) -> PortResult<()> {
        let marked = observe(
            SERVICE,
            "UpdateItem",
            self.client
                .update_item()
                .table_name(&self.table)
                .key("contactId", s(contact_id))
                .update_expression("SET agentJoined = :t")
                .condition_expression("attribute_exists(contactId)")
                .expression_attribute_values(":t", AttributeValue::Bool(true))
                .send(),
        )
        .await;
        match marked {
            // A chat we do not know: nothing to mark.
            Err(e) if e.kind != ErrorKind::Conflict => Err(e),
            _ => Ok(()),
        }
    }

    async fn ping(&self) -> PortResult<()> {
        observe(
            SERVICE,
            "DescribeTable",
            self.client.describe_table().table_name(&self.table).send(),
        )
        .await
        .map(|_| ())
    }
}

/// Done-markers keyed `id`, expiring through the table's TTL attribute `expires`.
pub struct DynamoDedupeStore {
    client: Client,
    table: String,
}

impl DynamoDedupeStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// The item under `key` unless its `expires` has passed (DynamoDB's TTL deletes
    /// expired items only eventually). A consistent read: a redelivery right after a
    /// record must see it.
    async fn unexpired(&self, key: &str) -> PortResult<Option<HashMap<String, AttributeValue>>> {
        let out = observe(
            SERVICE,
            "GetItem",
            self.client
                .get_item()
                .table_name(&self.table)
                .key("id", s(key))
                .consistent_read(true)
                .send(),
        )
        .await?;
        Ok(out.item.filter(|item| get_n(item, "expires") > now_secs()))
    }
}

#[async_trait]
impl DedupeStore for DynamoDedupeStore {
    async fn is_done(&self, key: &str) -> PortResult<bool> {
        Ok(self.unexpired(key).await?.is_some())
    }

    async fn mark_done(&self, key: &str, ttl: Duration) -> PortResult<()> {
        let expires = now_secs() + ttl.as_secs() as i64;
        observe(
            SERVICE,
            "PutItem",
            self.client
                .put_item()
                .table_name(&self.table)
                .item("id", s(key))
                .item("expires", AttributeValue::N(expires.to_string()))
                .send(),
        )
        .await
        .map(|_| ())
    }

    /// BatchWriteItem of up to 25 puts per call; what DynamoDB leaves unprocessed (its
    /// throttling) is tried again a few times, then the call fails.
    async fn mark_done_many(&self, keys: &[String], ttl: Duration) -> PortResult<()> {
        let expires = AttributeValue::N((now_secs() + ttl.as_secs() as i64).to_string());
        let mut unique: Vec<&String> = keys.iter().collect();
        // DynamoDB refuses a batch naming one key twice.
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(MAX_BATCH_WRITE) {
            let mut requests = chunk
                .iter()
                .map(|key| {
                    PutRequest::builder()
                        .item("id", s(key))
                        .item("expires", expires.clone())
                        .build()
                        .map(|put| WriteRequest::builder().put_request(put).build())
                        .map_err(|e| {
                            PortError::new(
                                ErrorKind::Invalid,
                                SERVICE,
                                "BatchWriteItem",
                                e.to_string(),
                            )
                        })
                })
                .collect::<PortResult<Vec<_>>>()?;
            for attempt in 0.. {
                metrics::histogram!(crate::metrics::BATCH_SIZE, "operation" => "BatchWriteItem")
                    .record(requests.len() as f64);
                let out = observe(
                    SERVICE,
                    "BatchWriteItem",
                    self.client
                        .batch_write_item()
                        .request_items(&self.table, requests)
                        .send(),
                )
                .await?;
                requests = out
                    .unprocessed_items()
                    .and_then(|items| items.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt >= 4 {
                    return Err(PortError::new(
                        ErrorKind::Throttled,
                        SERVICE,
                        "BatchWriteItem",
                        format!("{} item(s) left unprocessed", requests.len()),
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
        }
        Ok(())
    }

    async fn put_value(&self, key: &str, value: &str, ttl: Duration) -> PortResult<()> {
        let expires = now_secs() + ttl.as_secs() as i64;
        observe(
            SERVICE,
            "PutItem",
            self.client
                .put_item()
                .table_name(&self.table)
                .item("id", s(key))
                .item("value", s(value))
                .item("expires", AttributeValue::N(expires.to_string()))
                .send(),
        )
        .await
        .map(|_| ())
    }

    async fn get_value(&self, key: &str) -> PortResult<Option<String>> {
        Ok(self
            .unexpired(key)
            .await?
            .and_then(|item| item.get("value").and_then(|v| v.as_s().ok()).cloned()))
    }
}

/// Leases live in the dedupe table as `lease#<name>` items (owner, expiry); the table's
/// TTL removes abandoned ones.
#[async_trait]
impl LeaseStore for DynamoDedupeStore {
    async fn acquire(&self, name: &str, owner: &str, ttl: Duration) -> PortResult<bool> {
        let now = now_secs();
        let taken = observe(
            SERVICE,
            "PutItem",
            self.client
                .put_item()
                .table_name(&self.table)
                .item("id", s(&format!("lease#{name}")))
                .item("owner", s(owner))
                .item(
                    "expires",
                    AttributeValue::N((now + ttl.as_secs().max(1) as i64).to_string()),
                )
                .condition_expression("attribute_not_exists(id) OR expires < :now OR #o = :me")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .expression_attribute_values(":me", s(owner))
                .send(),
        )
        .await;
        match taken {
            Ok(_) => Ok(true),
            Err(e) if e.kind == ErrorKind::Conflict => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn release(&self, name: &str, owner: &str) -> PortResult<()> {
        let released = observe(
            SERVICE,
            "DeleteItem",
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("id", s(&format!("lease#{name}")))
                .condition_expression("#o = :me")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_values(":me", s(owner))
                .send(),
        )
        .await;
        match released {
            Err(e) if e.kind != ErrorKind::Conflict => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_item_round_trips_with_reference_attribute_names() {
        let session = Session {
            contact_id: "c1".into(),
            customer_id: "5491100".into(),
            channel: CHANNEL_WHATSAPP.into(),
            participant_token: "pt".into(),
            connection_token: "ct".into(),
            business_number_id: "phone-number-id-abc".into(),
            name: "Ana".into(),
            expires_at: 1_900_000_000,
            ended: false,
            opened_by: Some("wamid.A:0".into()),
            agent_joined: true,
        };
        let item = to_item(&session);
        for key in [
            "contactId",
            "customerId",
            "channel",
            "participantToken",
            "connectionToken",
            "systemNumber",
            "name",
            "date",
        ] {
            assert!(item.contains_key(key), "{key}");
        }
        assert_eq!(from_item(&item), session);
    }
}
