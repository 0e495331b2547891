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
    /// GetWhatsAppMessageMedia into `bucket` under `key_prefix`; answers the media's MIME
    /// type and size as EUM reports them.
    async fn get_media(
        &self,
        origination_phone_number_id: &str,
        media_id: &str,
        bucket: &str,
        key_prefix: &str,
    ) -> PortResult<MediaInfo>;
}

/// What GetWhatsAppMessageMedia reports about a media object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    pub mime_type: String,
    pub size: u64,
}
