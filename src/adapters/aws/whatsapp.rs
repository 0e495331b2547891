//! [`WhatsApp`] on AWS End User Messaging Social (SendWhatsAppMessage).

use async_trait::async_trait;
use aws_sdk_socialmessaging::types::S3File;
use aws_smithy_types::Blob;

use super::call::{malformed, observe};
use crate::ports::{ErrorKind, MediaInfo, PortError, PortResult, WhatsApp};

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

    async fn get_media(
        &self,
        origination_phone_number_id: &str,
        media_id: &str,
        bucket: &str,
        key_prefix: &str,
    ) -> PortResult<MediaInfo> {
        const OP: &str = "GetWhatsAppMessageMedia";
        let destination = S3File::builder()
            .bucket_name(bucket)
            .key(key_prefix)
            .build()
            .map_err(|e| PortError::new(ErrorKind::Invalid, SERVICE, OP, e.to_string()))?;
        let out = observe(
            SERVICE,
            OP,
            self.client
                .get_whats_app_message_media()
                .media_id(media_id)
                .origination_phone_number_id(origination_phone_number_id)
                .destination_s3_file(destination)
                .send(),
        )
        .await?;
        Ok(MediaInfo {
            mime_type: out.mime_type().unwrap_or_default().to_string(),
            size: out.file_size().unwrap_or(0).max(0) as u64,
        })
    }
}
