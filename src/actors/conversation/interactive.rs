//! Bot menus in a conversation ([`crate::domain::interactive`]): an agent's or bot's
//! interactive message goes to WhatsApp as buttons, a list or a numbered text menu, and
//! the customer's choice comes back to the chat as the interactive response the contact
//! flow branches on.
//!
//! A numbered text menu is remembered for [`TEXT_MENU_TTL`] (`menu#<number>#<customer>`
//! in the dedupe table): a customer text that is just one of its numbers is taken as that
//! choice, once.

use std::time::Duration;

use metrics::counter;

use super::ConversationDeps;
use crate::delivery::retrying::retrying;
use crate::delivery::Arrival;
use crate::domain::interactive::{self, looks_like_a_menu_number, Choice, Rendered, TextMenu};
use crate::domain::receipt::text_menu_key;
use crate::domain::{text_message, ChatItem, ContentType, CustomerMessage, MessageContent, Piece};
use crate::metrics as m;
use crate::ports::Session;

/// How long a numbered text menu waits for its answer.
pub const TEXT_MENU_TTL: Duration = Duration::from_secs(3600);

/// An agent MESSAGE item as a WhatsApp body, and what to remember once it is sent.
pub(super) struct AgentBody {
    pub body: serde_json::Value,
    /// `shape` label when the item was a bot menu.
    shape: Option<&'static str>,
    menu: Option<TextMenu>,
}

/// The WhatsApp body of an agent's text (`content`) or bot menu.
pub(super) fn agent_body(item: &ChatItem, to_wa_id: &str, content: &str) -> AgentBody {
    if item.content_kind() != ContentType::Interactive {
        return AgentBody {
            body: text_message(to_wa_id, content, None),
            shape: None,
            menu: None,
        };
    }
    match interactive::render(to_wa_id, content) {
        Rendered::Interactive(body) => {
            let shape = if body["interactive"]["type"] == "button" {
                "buttons"
            } else {
                "list"
            };
            AgentBody {
                body,
                shape: Some(shape),
                menu: None,
            }
        }
        Rendered::Text { body, menu } => AgentBody {
            body: text_message(to_wa_id, &body, None),
            shape: Some(if menu.is_some() { "text_menu" } else { "text" }),
            menu,
        },
    }
}

/// After the body was sent: counts a menu and remembers a numbered one.
pub(super) async fn sent(deps: &ConversationDeps, session: &Session, body: AgentBody) {
    if let Some(shape) = body.shape {
        counter!(m::BOT_MENUS, "shape" => shape).increment(1);
    }
    let Some(menu) = body.menu else { return };
    let key = text_menu_key(&session.business_number_id, &session.customer_id);
    if let Err(e) = deps
        .dedupe
        .put_value(&key, &menu.to_json(), TEXT_MENU_TTL)
        .await
    {
        tracing::warn!(contact_id = %session.contact_id, error = %e,
            "could not remember a text menu; a numbered answer will reach the chat as text");
    }
}

/// The customer's message as an interactive response, when it answers one of our menus:
/// a tap on a button or list row we sent, or the number of a remembered text menu.
pub(super) async fn choice_piece(
    deps: &ConversationDeps,
    arrival: &Arrival,
    msg: &CustomerMessage,
) -> Option<Piece> {
    let (choice, via) = match &msg.content {
        MessageContent::Interactive {
            reply_id, title, ..
        } => (Choice::from_reply(reply_id, title)?, "reply"),
        MessageContent::Text { body } if looks_like_a_menu_number(body) => {
            (remembered_choice(deps, arrival, msg, body).await?, "number")
        }
        _ => return None,
    };
    counter!(m::BOT_MENU_CHOICES, "via" => via).increment(1);
    tracing::info!(wamid = %msg.wamid, template = choice.kind.as_str(), index = choice.index, via,
        "customer chose from a bot menu");
    Some(Piece::Interactive {
        content: choice.response_content(),
        text: choice.title,
    })
}

/// The choice a number names in the customer's remembered text menu; the menu is
/// forgotten once answered.
async fn remembered_choice(
    deps: &ConversationDeps,
    arrival: &Arrival,
    msg: &CustomerMessage,
    text: &str,
) -> Option<Choice> {
    let key = text_menu_key(&msg.business_number_id, &msg.customer_id);
    let ctx = deps.retry_context(arrival);
    // A failed lookup only means the number reaches the chat as text.
    let stored = retrying(&ctx, "text menu lookup", &msg.wamid, || {
        deps.dedupe.get_value(&key)
    })
    .await
    .ok()
    .flatten()?;
    let choice = TextMenu::from_json(&stored)?.choice(text)?;
    if let Err(e) = deps.dedupe.put_value(&key, "", Duration::ZERO).await {
        tracing::warn!(wamid = %msg.wamid, error = %e, "could not forget an answered text menu");
    }
    Some(choice)
}
