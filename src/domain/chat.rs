//! What goes into a customer's Connect chat: who the chat is for and the ordered pieces
//! of one message (text within Connect's limit, or a file).

use std::sync::Arc;

/// Who a chat is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub customer_id: String,
    /// Display name in the chat (the WhatsApp profile name, or a neutral default).
    pub name: String,
    /// EUM phone number id the customer wrote to.
    pub business_number_id: String,
}

/// One thing to put in the chat.
#[derive(Clone)]
pub enum Piece {
    /// Text within Connect's 1024-character limit.
    Text(String),
    File(FileUpload),
    /// The customer's choice in a bot's menu: SendMessage with the interactive response
    /// `content` ([`crate::domain::interactive`]); `text` (the option's title) stands in
    /// for it when it has to open a chat (a chat's first message is text).
    Interactive {
        content: String,
        text: String,
    },
}

/// An attachment's bytes and how the agent sees it.
#[derive(Clone)]
pub struct FileUpload {
    pub name: String,
    pub content_type: String,
    pub bytes: Arc<Vec<u8>>,
}

/// Text that opens a chat whose first piece is a file (InitialMessage must be text).
pub const OPENING_TEXT_FOR_FILE: &str = "📎 New conversation with an attachment";
