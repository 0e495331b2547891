use async_trait::async_trait;

use super::PortResult;

/// AWS End User Messaging Social, the WhatsApp side.
#[async_trait]
pub trait WhatsApp: Send + Sync + 'static {
    /// SendWhatsAppMessage with a Meta Cloud API message body; returns EUM's messageId.
    async fn send(
        &self,
        origination_phone_number_id: &str,
        message: &serde_json::Value,
    ) -> PortResult<String>;
}
