use async_trait::async_trait;

use super::PortResult;

/// What StartChatContact needs to open a chat for a customer.
#[derive(Debug, Clone)]
pub struct NewChatRequest {
    pub customer_id: String,
    pub display_name: String,
    /// EUM phone number id, stored as the `systemNumber` contact attribute; it also picks
    /// the instance, flow and extra attributes of the chat ([`crate::config::BusinessNumbers`]).
    pub business_number_id: String,
    /// InitialMessage content (text/plain, 1..=1024 characters).
    pub initial_text: String,
    /// Idempotency token: the same token returns the same contact.
    pub client_token: String,
}

/// The identifiers StartChatContact returns.
#[derive(Clone)]
pub struct StartedChat {
    /// The Connect instance the chat was started in (the business number's, see
    /// [`crate::config::BusinessNumbers`]).
    pub instance_id: String,
    pub contact_id: String,
    pub participant_id: String,
    pub participant_token: String,
}

/// Where and how to PUT an attachment's bytes (StartAttachmentUpload's UploadMetadata).
#[derive(Clone)]
pub struct AttachmentUpload {
    pub attachment_id: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// Amazon Connect + Connect Participant, as far as a chat for one customer needs them.
#[async_trait]
pub trait ConnectChat: Send + Sync + 'static {
    async fn start_chat_contact(&self, request: &NewChatRequest) -> PortResult<StartedChat>;
    async fn start_contact_streaming(
        &self,
        instance_id: &str,
        contact_id: &str,
        streaming_endpoint_arn: &str,
        client_token: &str,
    ) -> PortResult<()>;
    /// Returns the ConnectionToken for the customer participant.
    async fn create_participant_connection(&self, participant_token: &str) -> PortResult<String>;
    /// Returns the chat item id Connect gave the message.
    async fn send_message(
        &self,
        connection_token: &str,
        content_type: &str,
        content: &str,
        client_token: &str,
    ) -> PortResult<String>;
    async fn send_event(
        &self,
        connection_token: &str,
        content_type: &str,
        content: Option<&str>,
        client_token: &str,
    ) -> PortResult<()>;
    async fn disconnect_participant(
        &self,
        connection_token: &str,
        client_token: &str,
    ) -> PortResult<()>;
    async fn start_attachment_upload(
        &self,
        connection_token: &str,
        content_type: &str,
        size: u64,
        name: &str,
        client_token: &str,
    ) -> PortResult<AttachmentUpload>;
    async fn complete_attachment_upload(
        &self,
        connection_token: &str,
        attachment_id: &str,
        client_token: &str,
    ) -> PortResult<()>;
    /// A pre-signed URL to download an attachment of the chat.
    async fn get_attachment(
        &self,
        connection_token: &str,
        attachment_id: &str,
    ) -> PortResult<String>;
}
