//! [`ConnectChat`] on the Amazon Connect and Connect Participant SDK clients.

use async_trait::async_trait;
use aws_sdk_connect::types::{ChatMessage, ChatStreamingConfiguration, ParticipantDetails};
use aws_sdk_connectparticipant::types::ConnectionType;

use super::call::{malformed, observe};
use crate::config::{Behaviour, ConnectTarget};
use crate::ports::{
    AttachmentUpload, ConnectChat, ErrorKind, NewChatRequest, PortError, PortResult, StartedChat,
    CHANNEL_WHATSAPP,
};

const CONNECT: &str = "connect";
const PARTICIPANT: &str = "connectparticipant";

/// Content types our customer participant supports (StartChatContact
/// SupportedMessagingContentTypes): texts, bots' interactive messages (shown on WhatsApp
/// as buttons and lists) and the customer's answers to them.
const SUPPORTED_CONTENT_TYPES: [&str; 4] = [
    "text/plain",
    "text/markdown",
    crate::domain::interactive::CONNECT_INTERACTIVE,
    crate::domain::interactive::CONNECT_INTERACTIVE_RESPONSE,
];

pub struct AwsConnect {
    connect: aws_sdk_connect::Client,
    participant: aws_sdk_connectparticipant::Client,
    target: ConnectTarget,
    chat_duration_minutes: i32,
}

impl AwsConnect {
    pub fn new(
        connect: aws_sdk_connect::Client,
        participant: aws_sdk_connectparticipant::Client,
        target: ConnectTarget,
        behaviour: &Behaviour,
    ) -> Self {
        Self {
            connect,
            participant,
            target,
            chat_duration_minutes: behaviour.chat_duration_minutes as i32,
        }
    }
}

fn build_error(operation: &'static str, e: impl std::fmt::Display) -> PortError {
    PortError::new(ErrorKind::Invalid, CONNECT, operation, e.to_string())
}

#[async_trait]
impl ConnectChat for AwsConnect {
    async fn start_chat_contact(&self, request: &NewChatRequest) -> PortResult<StartedChat> {
        const OP: &str = "StartChatContact";
        let details = ParticipantDetails::builder()
            .display_name(&request.display_name)
            .build()
            .map_err(|e| build_error(OP, e))?;
        let initial = ChatMessage::builder()
            .content_type("text/plain")
            .content(&request.initial_text)
            .build()
            .map_err(|e| build_error(OP, e))?;
        // The business number written to picks instance, flow and extra attributes.
        let target = self
            .target
            .business_numbers
            .target(&request.business_number_id);
        let mut call = self
            .connect
            .start_chat_contact()
            .instance_id(&target.instance_id)
            .contact_flow_id(&target.contact_flow_id);
        for (key, value) in &target.attributes {
            call = call.attributes(key, value);
        }
        let mut call = call
            .attributes("Channel", CHANNEL_WHATSAPP)
            .attributes("customerId", &request.customer_id)
            .attributes("customerName", &request.display_name)
            .attributes("systemNumber", &request.business_number_id)
            .participant_details(details)
            .initial_message(initial)
            .chat_duration_in_minutes(self.chat_duration_minutes)
            .client_token(&request.client_token);
        for content_type in SUPPORTED_CONTENT_TYPES {
            call = call.supported_messaging_content_types(content_type);
        }
        let out = observe(CONNECT, OP, call.send()).await?;
        match (
            out.contact_id(),
            out.participant_id(),
            out.participant_token(),
        ) {
            (Some(contact), Some(participant), Some(token)) => Ok(StartedChat {
                instance_id: target.instance_id.clone(),
                contact_id: contact.to_string(),
                participant_id: participant.to_string(),
                participant_token: token.to_string(),
            }),
            _ => Err(malformed(
                CONNECT,
                OP,
                "ContactId/ParticipantId/ParticipantToken",
            )),
        }
    }

    async fn start_contact_streaming(
        &self,
        instance_id: &str,
        contact_id: &str,
        streaming_endpoint_arn: &str,
        client_token: &str,
    ) -> PortResult<()> {
        const OP: &str = "StartContactStreaming";
        let config = ChatStreamingConfiguration::builder()
            .streaming_endpoint_arn(streaming_endpoint_arn)
            .build()
            .map_err(|e| build_error(OP, e))?;
        observe(
            CONNECT,
            OP,
            self.connect
                .start_contact_streaming()
                .instance_id(instance_id)
                .contact_id(contact_id)
                .chat_streaming_configuration(config)
                .client_token(client_token)
                .send(),
        )
        .await
        .map(|_| ())
    }

    async fn create_participant_connection(&self, participant_token: &str) -> PortResult<String> {
        const OP: &str = "CreateParticipantConnection";
        let out = observe(
            PARTICIPANT,
            OP,
            self.participant
                .create_participant_connection()
                .participant_token(participant_token)
                .r#type(ConnectionType::ConnectionCredentials)
                .connect_participant(true)
                .send(),
        )
        .await?;
        out.connection_credentials()
            .and_then(|c| c.connection_token())
            .map(str::to_string)
            .ok_or_else(|| malformed(PARTICIPANT, OP, "ConnectionCredentials.ConnectionToken"))
    }

    async fn send_message(
        &self,
        connection_token: &str,
        content_type: &str,
        content: &str,
        client_token: &str,
    ) -> PortResult<String> {
        const OP: &str = "SendMessage";
        let out = observe(
            PARTICIPANT,
            OP,
            self.participant
                .send_message()
                .connection_token(connection_token)
                .content_type(content_type)
                .content(content)
                .client_token(client_token)
                .send(),
        )
        .await?;
        Ok(out.id().unwrap_or_default().to_string())
    }

    async fn send_event(
        &self,
        connection_token: &str,
        content_type: &str,
        content: Option<&str>,
        client_token: &str,
    ) -> PortResult<()> {
        observe(
            PARTICIPANT,
            "SendEvent",
            self.participant
                .send_event()
                .connection_token(connection_token)
                .content_type(content_type)
                .set_content(content.map(str::to_string))
                .client_token(client_token)
                .send(),
        )
        .await
        .map(|_| ())
    }

    async fn disconnect_participant(
        &self,
        connection_token: &str,
        client_token: &str,
    ) -> PortResult<()> {
        observe(
            PARTICIPANT,
            "DisconnectParticipant",
            self.participant
                .disconnect_participant()
                .connection_token(connection_token)
                .client_token(client_token)
                .send(),
        )
        .await
        .map(|_| ())
    }

    async fn start_attachment_upload(
        &self,
        connection_token: &str,
        content_type: &str,
        size: u64,
        name: &str,
        client_token: &str,
    ) -> PortResult<AttachmentUpload> {
        const OP: &str = "StartAttachmentUpload";
        let out = observe(
            PARTICIPANT,
            OP,
            self.participant
                .start_attachment_upload()
                .connection_token(connection_token)
                .content_type(content_type)
                .attachment_size_in_bytes(size as i64)
                .attachment_name(name)
                .client_token(client_token)
                .send(),
        )
        .await?;
        let (Some(id), Some(meta)) = (out.attachment_id(), out.upload_metadata()) else {
            return Err(malformed(PARTICIPANT, OP, "AttachmentId/UploadMetadata"));
        };
        let Some(url) = meta.url() else {
            return Err(malformed(PARTICIPANT, OP, "UploadMetadata.Url"));
        };
        let mut headers: Vec<(String, String)> = meta
            .headers_to_include()
            .map(|h| h.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        headers.sort();
        Ok(AttachmentUpload {
            attachment_id: id.to_string(),
            url: url.to_string(),
            headers,
        })
    }

    async fn complete_attachment_upload(
        &self,
        connection_token: &str,
        attachment_id: &str,
        client_token: &str,
    ) -> PortResult<()> {
        observe(
            PARTICIPANT,
            "CompleteAttachmentUpload",
            self.participant
                .complete_attachment_upload()
                .connection_token(connection_token)
                .attachment_ids(attachment_id)
                .client_token(client_token)
                .send(),
        )
        .await
        .map(|_| ())
    }

    async fn get_attachment(
        &self,
        connection_token: &str,
        attachment_id: &str,
    ) -> PortResult<String> {
        const OP: &str = "GetAttachment";
        let out = observe(
            PARTICIPANT,
            OP,
            self.participant
                .get_attachment()
                .connection_token(connection_token)
                .attachment_id(attachment_id)
                .send(),
        )
        .await?;
        out.url()
            .map(str::to_string)
            .ok_or_else(|| malformed(PARTICIPANT, OP, "Url"))
    }
}
