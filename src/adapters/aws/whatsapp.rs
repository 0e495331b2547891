//! [`WhatsApp`] on AWS End User Messaging Social (SendWhatsAppMessage).

use async_trait::async_trait;
use aws_smithy_types::Blob;

use super::call::{malformed, observe};
use crate::ports::{ErrorKind, PortError, PortResult, WhatsApp};

const SERVICE: &str = "socialmessaging";

pub struct EumWhatsApp {
    client: aws_sdk_socialmessaging::Client,
    meta_api_version: String,
}

impl EumWhatsApp {
    pub fn new(client: aws_sdk_socialmessaging::Client, meta_api_version: String) -> Self {
        Self {
            client,
            meta_api_version,
        }
    }
}

#[async_trait]
impl WhatsApp for EumWhatsApp {
    async fn send(
        &self,
        origination_phone_number_id: &str,
        message: &serde_json::Value,
    ) -> PortResult<String> {
        const OP: &str = "SendWhatsAppMessage";
        let bytes = serde_json::to_vec(message)
            .map_err(|e| PortError::new(ErrorKind::Invalid, SERVICE, OP, e.to_string()))?;
        let out = observe(
            SERVICE,
            OP,
            self.client
                .send_whats_app_message()
                .origination_phone_number_id(origination_phone_number_id)
                .message(Blob::new(bytes))
                .meta_api_version(&self.meta_api_version)
                .send(),
        )
        .await?;
        out.message_id()
            .map(str::to_string)
            .ok_or_else(|| malformed(SERVICE, OP, "messageId"))
    }
}
