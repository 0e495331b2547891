//! Bot menus: Connect interactive messages (`ListPicker`, `QuickReply`) to WhatsApp
//! interactive messages, and the customer's choice back to Connect as the interactive
//! response a contact flow branches on.
//!
//! Connect's template (what a contact flow's bot streams, `ContentType`
//! [`CONNECT_INTERACTIVE`]):
//!
//! ```json
//! {"templateType": "ListPicker", "version": "1.0",
//!  "data": {"content": {"title": "What would you like?", "subtitle": "Tap to select",
//!                       "elements": [{"title": "Apple", "subtitle": "$10"}, ...]}}}
//! ```
//!
//! (`data.title` / `data.elements` without `content`, as some client libraries write it,
//! is read too.) How it is shown on WhatsApp, within Meta's limits ([`limits`]):
//!
//! - QuickReply with up to 3 options whose titles fit a button (20 characters, all
//!   different): reply buttons;
//! - otherwise (ListPicker, or a QuickReply that does not fit buttons) up to 10 options
//!   whose titles fit a list row (24 characters): a list message, subtitles as row
//!   descriptions (cut to 72 characters);
//! - otherwise a numbered text menu ("1. Apple\n2. Orange ...") whose options are
//!   remembered, so a reply "2" can still be understood ([`TextMenu`]);
//! - other templates (TimePicker, Panel, Carousel, ...) and unreadable content: readable
//!   text (title, subtitle, the options as a list), never raw JSON.
//!
//! Every button and row gets the id `wc1:<L|Q>:<index>`, so the customer's `button_reply`
//! / `list_reply` names the template and the option without any stored state. The choice
//! goes back to Connect as SendMessage with `ContentType` [`CONNECT_INTERACTIVE_RESPONSE`]
//! and the content of [`response_content`].

use serde_json::{json, Value};

/// Content type of a Connect interactive message (a bot's menu).
pub const CONNECT_INTERACTIVE: &str = "application/vnd.amazonaws.connect.message.interactive";
/// Content type of the customer's answer to one.
pub const CONNECT_INTERACTIVE_RESPONSE: &str =
    "application/vnd.amazonaws.connect.message.interactive.response";

/// Longest template we read (SendMessage caps messages at 20 KB; a bit of room).
const MAX_TEMPLATE_BYTES: usize = 32 * 1024;
/// Options of one menu we read; more are left out of the text menu, with a note.
const MAX_OPTIONS: usize = 50;
/// Longest option title we keep (a menu is for choosing, not for essays).
const MAX_TITLE_CHARS: usize = 300;
/// Prefix of every button and row id we give.
const ID_PREFIX: &str = "wc1:";

/// Meta's limits for interactive messages (characters).
pub mod limits {
    /// Reply buttons per message.
    pub const MAX_BUTTONS: usize = 3;
    pub const BUTTON_TITLE_CHARS: usize = 20;
    pub const BUTTON_ID_CHARS: usize = 256;
    /// Rows of a list message, all sections together.
    pub const MAX_ROWS: usize = 10;
    pub const ROW_TITLE_CHARS: usize = 24;
    pub const ROW_DESCRIPTION_CHARS: usize = 72;
    pub const ROW_ID_CHARS: usize = 200;
    pub const SECTION_TITLE_CHARS: usize = 24;
    /// The button that opens the list.
    pub const LIST_BUTTON_CHARS: usize = 20;
    pub const HEADER_CHARS: usize = 60;
    pub const BODY_CHARS: usize = 1024;
    pub const FOOTER_CHARS: usize = 60;
}

/// The label of the button that opens a list.
pub const LIST_BUTTON_LABEL: &str = "Options";
/// Body of a menu without a title.
const DEFAULT_PROMPT: &str = "Please choose an option:";
/// The last line of a numbered text menu.
const TEXT_MENU_HINT: &str = "Reply with the number of your choice.";

/// The two templates WhatsApp can show as buttons or lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    ListPicker,
    QuickReply,
}

impl TemplateKind {
    /// Connect's `templateType`.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::ListPicker => "ListPicker",
            TemplateKind::QuickReply => "QuickReply",
        }
    }

    fn code(self) -> char {
        match self {
            TemplateKind::ListPicker => 'L',
            TemplateKind::QuickReply => 'Q',
        }
    }

    fn from_code(c: &str) -> Option<Self> {
        match c {
            "L" => Some(TemplateKind::ListPicker),
            "Q" => Some(TemplateKind::QuickReply),
            _ => None,
        }
    }
}

/// One option of a menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuOption {
    /// Its position among the template's elements (what the response names).
    pub index: usize,
    pub title: String,
    pub subtitle: Option<String>,
}

/// A ListPicker or QuickReply, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    pub kind: TemplateKind,
    pub title: String,
    pub subtitle: Option<String>,
    pub options: Vec<MenuOption>,
}

/// What an agent's (or bot's) interactive message becomes on WhatsApp.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    /// A Meta interactive message body (buttons or list).
    Interactive(Value),
    /// Text; with `menu` when it is a numbered menu whose options should be remembered.
    Text {
        body: String,
        menu: Option<TextMenu>,
    },
}

/// A numbered text menu sent to a customer, remembered so a reply "2" means its second
/// option. Stored as JSON (`{"t":"L","o":["Apple","Orange"]}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMenu {
    pub kind: TemplateKind,
    /// The numbered options, in order: option `n` is `options[n - 1]` (index, title).
    pub options: Vec<(usize, String)>,
}

impl TextMenu {
    pub fn to_json(&self) -> String {
        json!({
            "t": self.kind.code().to_string(),
            "o": self.options.iter().map(|(i, t)| json!([i, t])).collect::<Vec<_>>(),
        })
        .to_string()
    }

    pub fn from_json(text: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(text).ok()?;
        let kind = TemplateKind::from_code(v["t"].as_str()?)?;
        let options = v["o"]
            .as_array()?
            .iter()
            .map(|o| Some((o[0].as_u64()? as usize, o[1].as_str()?.to_string())))
            .collect::<Option<Vec<_>>>()?;
        Some(Self { kind, options })
    }

    /// The option a customer's text names by its number ("2", " 2 ", "2.", "2)").
    pub fn choice(&self, text: &str) -> Option<Choice> {
        let n: usize = text
            .trim()
            .trim_end_matches(['.', ')'])
            .trim()
            .parse()
            .ok()?;
        let (index, title) = self.options.get(n.checked_sub(1)?)?;
        Some(Choice {
            kind: self.kind,
            index: *index,
            title: title.clone(),
        })
    }
}

/// The option a customer chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub kind: TemplateKind,
    pub index: usize,
    pub title: String,
}

impl Choice {
    /// A `button_reply` / `list_reply` to one of our menus: its id (`wc1:<L|Q>:<index>`)
    /// and the title WhatsApp showed. None for ids we did not give.
    pub fn from_reply(reply_id: &str, title: &str) -> Option<Choice> {
        let rest = reply_id.strip_prefix(ID_PREFIX)?;
        let (code, index) = rest.split_once(':')?;
        let kind = TemplateKind::from_code(code)?;
        let index: usize = index.parse().ok()?;
        let title = clean(title, MAX_TITLE_CHARS);
        (index < MAX_OPTIONS && !title.is_empty()).then_some(Choice { kind, index, title })
    }

    /// The interactive response Connect expects for this choice (SendMessage content,
    /// `ContentType` [`CONNECT_INTERACTIVE_RESPONSE`]):
    /// `{"templateType":"ListPicker","version":"1.0","data":{"content":{"title":"Apple","selectedIndex":0}}}`.
    pub fn response_content(&self) -> String {
        response_content(self.kind, self.index, &self.title)
    }
}

/// See [`Choice::response_content`].
pub fn response_content(kind: TemplateKind, index: usize, title: &str) -> String {
    json!({
        "templateType": kind.as_str(),
        "version": "1.0",
        "data": {"content": {"title": title, "selectedIndex": index}},
    })
    .to_string()
}

fn reply_id(kind: TemplateKind, index: usize) -> String {
    format!("{ID_PREFIX}{}:{index}", kind.code())
}

/// Control characters (newlines included: titles are one line) become spaces; trimmed and
/// cut to `max` characters.
fn clean(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.trim().chars().take(max).collect::<String>()
}

/// Multi-line text: control characters other than newlines become spaces.
fn clean_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// `s` cut to `max` characters, with "…" when cut.
fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out = out.trim_end().to_string();
        out.push('…');
        out
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// What a template says, as far as we can read it.
struct Template {
    kind: Option<TemplateKind>,
    type_name: String,
    title: String,
    subtitle: Option<String>,
    options: Vec<MenuOption>,
    more_options: usize,
}

fn read_template(content: &str) -> Option<Template> {
    if content.len() > MAX_TEMPLATE_BYTES {
        return None;
    }
    let v: Value = serde_json::from_str(content).ok()?;
    let type_name = clean(v.get("templateType")?.as_str()?, 64);
    let kind = match type_name.as_str() {
        "ListPicker" => Some(TemplateKind::ListPicker),
        "QuickReply" => Some(TemplateKind::QuickReply),
        _ => None,
    };
    let data = v.get("data")?;
    let body = match data.get("content") {
        Some(c) if c.is_object() => c,
        _ => data,
    };
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .map(clean_text)
            .filter(|s| !s.is_empty())
    };
    let elements = body
        .get("elements")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut options = Vec::new();
    for (index, element) in elements.iter().enumerate().take(MAX_OPTIONS) {
        // Action buttons ("Show more") need a round trip WhatsApp cannot make.
        if element.get("actionDetail").is_some() {
            continue;
        }
        let Some(title) = element
            .get("title")
            .and_then(Value::as_str)
            .map(|t| clean(t, MAX_TITLE_CHARS))
            .filter(|t| !t.is_empty())
        else {
            continue;
        };
        let subtitle = element
            .get("subtitle")
            .and_then(Value::as_str)
            .map(|s| clean(s, MAX_TITLE_CHARS))
            .filter(|s| !s.is_empty());
        options.push(MenuOption {
            index,
            title,
            subtitle,
        });
    }
    Some(Template {
        kind,
        type_name,
        title: text("title").unwrap_or_default(),
        subtitle: text("subtitle"),
        options,
        more_options: elements.len().saturating_sub(MAX_OPTIONS),
    })
}

/// Reads a ListPicker or QuickReply; None for other templates or unreadable content.
pub fn parse_menu(content: &str) -> Option<Menu> {
    let t = read_template(content)?;
    Some(Menu {
        kind: t.kind?,
        title: t.title,
        subtitle: t.subtitle,
        options: t.options,
    })
}

fn envelope(to_wa_id: &str) -> Value {
    let to = if to_wa_id.starts_with('+') {
        to_wa_id.to_string()
    } else {
        format!("+{to_wa_id}")
    };
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
           "type": "interactive"})
}

/// Header (optional) and body of an interactive message for a menu's title and subtitle,
/// or None when they do not fit.
fn header_and_body(menu: &Menu) -> Option<(Option<String>, String)> {
    let (header, body) = match &menu.subtitle {
        Some(sub) if !menu.title.is_empty() && chars(&menu.title) <= limits::HEADER_CHARS => {
            (Some(menu.title.clone()), sub.clone())
        }
        Some(sub) if !menu.title.is_empty() => (None, format!("{}\n{sub}", menu.title)),
        Some(sub) => (None, sub.clone()),
        None if menu.title.is_empty() => (None, DEFAULT_PROMPT.to_string()),
        None => (None, menu.title.clone()),
    };
    (chars(&body) <= limits::BODY_CHARS).then_some((header, body))
}

fn distinct_titles(options: &[MenuOption]) -> bool {
    let mut seen = std::collections::HashSet::new();
    options.iter().all(|o| seen.insert(o.title.as_str()))
}

/// Reply buttons, if the menu fits them.
fn buttons(to: &str, menu: &Menu) -> Option<Value> {
    let fits = menu.kind == TemplateKind::QuickReply
        && (1..=limits::MAX_BUTTONS).contains(&menu.options.len())
        && menu
            .options
            .iter()
            .all(|o| chars(&o.title) <= limits::BUTTON_TITLE_CHARS)
        && distinct_titles(&menu.options);
    if !fits {
        return None;
    }
    let (header, body) = header_and_body(menu)?;
    let buttons: Vec<Value> = menu
        .options
        .iter()
        .map(|o| {
            json!({"type": "reply",
                   "reply": {"id": reply_id(menu.kind, o.index), "title": o.title}})
        })
        .collect();
    let mut interactive = json!({"type": "button", "body": {"text": body},
                                 "action": {"buttons": buttons}});
    if let Some(h) = header {
        interactive["header"] = json!({"type": "text", "text": h});
    }
    let mut v = envelope(to);
    v["interactive"] = interactive;
    Some(v)
}

/// A list message, if the menu fits one.
fn list(to: &str, menu: &Menu) -> Option<Value> {
    let fits = (1..=limits::MAX_ROWS).contains(&menu.options.len())
        && menu
            .options
            .iter()
            .all(|o| chars(&o.title) <= limits::ROW_TITLE_CHARS);
    if !fits {
        return None;
    }
    let (header, body) = header_and_body(menu)?;
    let rows: Vec<Value> = menu
        .options
        .iter()
        .map(|o| {
            let mut row = json!({"id": reply_id(menu.kind, o.index), "title": o.title});
            if let Some(d) = &o.subtitle {
                row["description"] = json!(fit(d, limits::ROW_DESCRIPTION_CHARS));
            }
            row
        })
        .collect();
    let mut interactive = json!({"type": "list", "body": {"text": body},
        "action": {"button": LIST_BUTTON_LABEL, "sections": [{"rows": rows}]}});
    if let Some(h) = header {
        interactive["header"] = json!({"type": "text", "text": h});
    }
    let mut v = envelope(to);
    v["interactive"] = interactive;
    Some(v)
}

/// Title, subtitle and the options as lines.
fn text_menu(
    title: &str,
    subtitle: Option<&str>,
    options: &[MenuOption],
    numbered: bool,
    more: usize,
) -> String {
    let mut out = String::new();
    for part in [Some(title), subtitle].into_iter().flatten() {
        if !part.is_empty() {
            out.push_str(part);
            out.push('\n');
        }
    }
    if !options.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        for (n, o) in options.iter().enumerate() {
            let line = match (&o.subtitle, numbered) {
                (Some(s), true) => format!("{}. {} ({s})", n + 1, o.title),
                (None, true) => format!("{}. {}", n + 1, o.title),
                (Some(s), false) => format!("• {} ({s})", o.title),
                (None, false) => format!("• {}", o.title),
            };
            out.push_str(&line);
            out.push('\n');
        }
        if more > 0 {
            out.push_str(&format!("(and {more} more)\n"));
        }
        if numbered {
            out.push('\n');
            out.push_str(TEXT_MENU_HINT);
        }
    }
    out.trim_end().to_string()
}

/// What an interactive message from Connect becomes for the customer `to_wa_id`; see the
/// module docs. Text results fit a WhatsApp text message (4096 characters).
pub fn render(to_wa_id: &str, content: &str) -> Rendered {
    let Some(t) = read_template(content) else {
        return Rendered::Text {
            body: "[The agent sent an interactive message that cannot be shown here]".into(),
            menu: None,
        };
    };
    let Some(kind) = t.kind else {
        let body = text_menu(&t.title, t.subtitle.as_deref(), &t.options, false, 0);
        let body = if body.is_empty() {
            format!(
                "[The agent sent a {} message that cannot be shown here]",
                if t.type_name.is_empty() {
                    "rich"
                } else {
                    &t.type_name
                }
            )
        } else {
            body
        };
        return Rendered::Text {
            body: fit(&body, crate::domain::WHATSAPP_TEXT_MAX_CHARS),
            menu: None,
        };
    };
    let menu = Menu {
        kind,
        title: t.title,
        subtitle: t.subtitle,
        options: t.options,
    };
    if let Some(v) = buttons(to_wa_id, &menu).or_else(|| list(to_wa_id, &menu)) {
        return Rendered::Interactive(v);
    }
    let body = text_menu(
        &menu.title,
        menu.subtitle.as_deref(),
        &menu.options,
        true,
        t.more_options,
    );
    let remembered = (!menu.options.is_empty()).then(|| TextMenu {
        kind,
        options: menu
            .options
            .iter()
            .map(|o| (o.index, o.title.clone()))
            .collect(),
    });
    Rendered::Text {
        body: fit(
            if body.is_empty() {
                DEFAULT_PROMPT
            } else {
                &body
            },
            crate::domain::WHATSAPP_TEXT_MAX_CHARS,
        ),
        menu: remembered,
    }
}

/// Checks a Meta interactive message (`type: button | list`) against Meta's limits;
/// the first breach, in words. The simulator refuses what Meta would.
pub fn check_meta_interactive(interactive: &Value) -> Result<(), String> {
    let too_long = |what: &str, v: &Value, max: usize| -> Result<(), String> {
        match v.as_str() {
            Some(s) if chars(s) <= max => Ok(()),
            Some(s) => Err(format!(
                "{what} is {} characters, the limit is {max}",
                chars(s)
            )),
            None => Err(format!("{what} must be a string")),
        }
    };
    let body = &interactive["body"]["text"];
    if body.as_str().is_none_or(|s| s.trim().is_empty()) {
        return Err("interactive.body.text is required".into());
    }
    too_long("interactive.body.text", body, limits::BODY_CHARS)?;
    if let Some(h) = interactive.get("header") {
        if h["type"] == "text" {
            too_long("interactive.header.text", &h["text"], limits::HEADER_CHARS)?;
        }
    }
    if let Some(f) = interactive.get("footer") {
        too_long("interactive.footer.text", &f["text"], limits::FOOTER_CHARS)?;
    }
    let action = &interactive["action"];
    let mut ids = std::collections::HashSet::new();
    match interactive["type"].as_str() {
        Some("button") => {
            let buttons = action["buttons"]
                .as_array()
                .ok_or("interactive.action.buttons is required")?;
            if !(1..=limits::MAX_BUTTONS).contains(&buttons.len()) {
                return Err(format!(
                    "{} buttons, a message takes 1 to {}",
                    buttons.len(),
                    limits::MAX_BUTTONS
                ));
            }
            let mut titles = std::collections::HashSet::new();
            for b in buttons {
                let reply = &b["reply"];
                too_long("button title", &reply["title"], limits::BUTTON_TITLE_CHARS)?;
                too_long("button id", &reply["id"], limits::BUTTON_ID_CHARS)?;
                if !ids.insert(reply["id"].to_string()) {
                    return Err("button ids must be unique".into());
                }
                if !titles.insert(reply["title"].to_string()) {
                    return Err("button titles must be unique".into());
                }
            }
        }
        Some("list") => {
            too_long(
                "interactive.action.button",
                &action["button"],
                limits::LIST_BUTTON_CHARS,
            )?;
            let sections = action["sections"]
                .as_array()
                .ok_or("interactive.action.sections is required")?;
            let mut rows_total = 0;
            for s in sections {
                if let Some(t) = s.get("title") {
                    too_long("section title", t, limits::SECTION_TITLE_CHARS)?;
                } else if sections.len() > 1 {
                    return Err("sections need titles when there are several".into());
                }
                for r in s["rows"].as_array().ok_or("section rows are required")? {
                    rows_total += 1;
                    too_long("row title", &r["title"], limits::ROW_TITLE_CHARS)?;
                    too_long("row id", &r["id"], limits::ROW_ID_CHARS)?;
                    if let Some(d) = r.get("description") {
                        too_long("row description", d, limits::ROW_DESCRIPTION_CHARS)?;
                    }
                    if !ids.insert(r["id"].to_string()) {
                        return Err("row ids must be unique".into());
                    }
                }
            }
            if !(1..=limits::MAX_ROWS).contains(&rows_total) {
                return Err(format!(
                    "{rows_total} rows, a list takes 1 to {}",
                    limits::MAX_ROWS
                ));
            }
        }
        other => return Err(format!("interactive type {other:?} is not simulated")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(kind: &str, titles: &[&str]) -> String {
        let elements: Vec<Value> = titles.iter().map(|t| json!({"title": t})).collect();
        json!({"templateType": kind, "version": "1.0",
               "data": {"content": {"title": "¿Qué necesitás?", "elements": elements}}})
        .to_string()
    }

    fn interactive(r: Rendered) -> Value {
        match r {
            Rendered::Interactive(v) => v,
            other => panic!("expected interactive, got {other:?}"),
        }
    }

    #[test]
    fn list_picker_with_five_options_is_a_list_within_limits() {
        let content = json!({"templateType": "ListPicker", "version": "1.0", "data": {
            "replyMessage": {"title": "Gracias"},
            "content": {"title": "¿Qué fruta querés?", "subtitle": "Tocá para elegir",
                "imageType": "URL", "imageData": "https://example.com/x.png",
                "elements": [
                    {"title": "Manzana", "subtitle": "$10"},
                    {"title": "Naranja", "subtitle": "$12"},
                    {"title": "Banana"},
                    {"title": "Pera", "subtitle": "x".repeat(100)},
                    {"title": "Uva"}]}}})
        .to_string();
        let v = interactive(render("5491100", &content));
        assert_eq!(v["type"], "interactive");
        assert_eq!(v["to"], "+5491100");
        let i = &v["interactive"];
        assert_eq!(i["type"], "list");
        assert_eq!(i["header"]["text"], "¿Qué fruta querés?");
        assert_eq!(i["body"]["text"], "Tocá para elegir");
        let rows = i["action"]["sections"][0]["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[0],
            json!({"id": "wc1:L:0", "title": "Manzana", "description": "$10"})
        );
        assert_eq!(rows[2], json!({"id": "wc1:L:2", "title": "Banana"}));
        let d = rows[3]["description"].as_str().unwrap();
        assert_eq!(d.chars().count(), 72);
        assert!(d.ends_with('…'));
        check_meta_interactive(i).unwrap();
    }

    #[test]
    fn quick_reply_with_two_options_is_buttons() {
        let v = interactive(render("1", &template("QuickReply", &["Sí", "No"])));
        let i = &v["interactive"];
        assert_eq!(i["type"], "button");
        assert_eq!(i["body"]["text"], "¿Qué necesitás?");
        assert_eq!(
            i["action"]["buttons"],
            json!([{"type": "reply", "reply": {"id": "wc1:Q:0", "title": "Sí"}},
                   {"type": "reply", "reply": {"id": "wc1:Q:1", "title": "No"}}])
        );
        check_meta_interactive(i).unwrap();
    }

    #[test]
    fn menus_that_do_not_fit_buttons_become_lists_then_numbered_text() {
        // Four quick replies: a list.
        let v = interactive(render("1", &template("QuickReply", &["a", "b", "c", "d"])));
        assert_eq!(v["interactive"]["type"], "list");
        // A button title over 20 characters: a list.
        let long = "Hablar con un asesor ya";
        let v = interactive(render("1", &template("QuickReply", &["Sí", long])));
        assert_eq!(v["interactive"]["type"], "list");
        // Duplicate titles cannot be buttons.
        let v = interactive(render("1", &template("QuickReply", &["Sí", "Sí"])));
        assert_eq!(v["interactive"]["type"], "list");
        // A row title over 24 characters: numbered text.
        let Rendered::Text { body, menu } = render(
            "1",
            &template("ListPicker", &["ok", "una opción con un título larguísimo"]),
        ) else {
            panic!("expected text")
        };
        assert!(
            body.contains("2. una opción con un título larguísimo"),
            "{body}"
        );
        assert_eq!(menu.unwrap().options.len(), 2);
    }

    #[test]
    fn fifteen_options_become_a_numbered_text_menu() {
        let titles: Vec<String> = (1..=15).map(|n| format!("Opción {n}")).collect();
        let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
        let Rendered::Text { body, menu } = render("1", &template("ListPicker", &titles)) else {
            panic!("expected text")
        };
        assert!(
            body.starts_with("¿Qué necesitás?\n\n1. Opción 1\n2. Opción 2\n"),
            "{body}"
        );
        assert!(body.contains("\n15. Opción 15\n"), "{body}");
        assert!(body.ends_with(TEXT_MENU_HINT));
        let menu = menu.unwrap();
        assert_eq!(menu.options.len(), 15);
        let back = TextMenu::from_json(&menu.to_json()).unwrap();
        assert_eq!(back, menu);
        assert_eq!(
            back.choice(" 12. "),
            Some(Choice {
                kind: TemplateKind::ListPicker,
                index: 11,
                title: "Opción 12".into()
            })
        );
        assert_eq!(back.choice("16"), None);
        assert_eq!(back.choice("0"), None);
        assert_eq!(back.choice("doce"), None);
    }

    #[test]
    fn unknown_templates_and_garbage_become_readable_text() {
        let time = json!({"templateType": "TimePicker", "version": "1.0",
            "data": {"content": {"title": "¿Cuándo?", "timeslots": [{"date": "x"}]}}})
        .to_string();
        assert_eq!(
            render("1", &time),
            Rendered::Text {
                body: "¿Cuándo?".into(),
                menu: None
            }
        );
        let panel = json!({"templateType": "Panel", "data": {"content": {"title": "Ayuda",
            "elements": [{"title": "Uno"}, {"title": "Dos"}]}}})
        .to_string();
        let Rendered::Text { body, menu: None } = render("1", &panel) else {
            panic!()
        };
        assert_eq!(body, "Ayuda\n\n• Uno\n• Dos");
        for bad in [
            "not json",
            "[]",
            "{}",
            r#"{"templateType": 5}"#,
            r#"{"templateType":"ListPicker"}"#,
        ] {
            let Rendered::Text { body, menu: None } = render("1", bad) else {
                panic!("{bad}")
            };
            assert!(body.contains("cannot be shown"), "{body}");
        }
        let empty = json!({"templateType": "Carousel", "data": {"content": {}}}).to_string();
        let Rendered::Text { body, .. } = render("1", &empty) else {
            panic!()
        };
        assert_eq!(
            body,
            "[The agent sent a Carousel message that cannot be shown here]"
        );
    }

    #[test]
    fn the_data_without_content_shape_and_hostile_titles() {
        let content = json!({"templateType": "QuickReply", "version": "1.0",
            "data": {"title": "Elegí\u{0}", "elements": [{"title": "A\nB", "id": "a"},
                     {"title": ""}, {"subtitle": "x"}, {"title": "C"},
                     {"title": "Show more", "actionDetail": "SHOW_MORE"}]}})
        .to_string();
        let menu = parse_menu(&content).unwrap();
        assert_eq!(menu.title, "Elegí");
        let titles: Vec<_> = menu
            .options
            .iter()
            .map(|o| (o.index, o.title.as_str()))
            .collect();
        assert_eq!(titles, [(0, "A B"), (3, "C")]);
        let v = interactive(render("1", &content));
        assert_eq!(
            v["interactive"]["action"]["buttons"][1]["reply"]["id"],
            "wc1:Q:3"
        );
    }

    #[test]
    fn replies_to_our_menus_name_the_option() {
        let c = Choice::from_reply("wc1:L:4", "Uva").unwrap();
        assert_eq!(
            c,
            Choice {
                kind: TemplateKind::ListPicker,
                index: 4,
                title: "Uva".into()
            }
        );
        let response: Value = serde_json::from_str(&c.response_content()).unwrap();
        assert_eq!(
            response,
            json!({"templateType": "ListPicker", "version": "1.0",
                   "data": {"content": {"title": "Uva", "selectedIndex": 4}}})
        );
        for (id, title) in [
            ("yes", "Sí"),
            ("wc1:X:1", "a"),
            ("wc1:Q:", "a"),
            ("wc1:Q:-1", "a"),
            ("wc1:Q:999", "a"),
            ("wc1:Q:1", "  "),
        ] {
            assert_eq!(Choice::from_reply(id, title), None, "{id}");
        }
    }

    #[test]
    fn meta_limits_are_checked() {
        let ok = json!({"type": "button", "body": {"text": "x"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}});
        check_meta_interactive(&ok).unwrap();
        let mut four = ok.clone();
        four["action"]["buttons"] = json!([
            {"reply": {"id": "1", "title": "1"}}, {"reply": {"id": "2", "title": "2"}},
            {"reply": {"id": "3", "title": "3"}}, {"reply": {"id": "4", "title": "4"}}]);
        assert!(check_meta_interactive(&four).is_err());
        let mut long = ok.clone();
        long["action"]["buttons"][0]["reply"]["title"] = json!("x".repeat(21));
        assert!(check_meta_interactive(&long).unwrap_err().contains("20"));
        let rows: Vec<Value> = (0..11)
            .map(|i| json!({"id": i.to_string(), "title": "t"}))
            .collect();
        let list = json!({"type": "list", "body": {"text": "x"},
            "action": {"button": "Options", "sections": [{"rows": rows}]}});
        assert!(check_meta_interactive(&list)
            .unwrap_err()
            .contains("11 rows"));
        let no_body = json!({"type": "list", "action": {}});
        assert!(check_meta_interactive(&no_body).is_err());
    }
}

/// Longest text read as the number of a text menu's option ("12", "3.", "3)").
const MAX_NUMBER_CHARS: usize = 6;

/// Whether a customer text may be the number of an option of a numbered text menu: such
/// a text goes to the chat on its own (never joined into a burst), as the option's
/// response when a menu is remembered.
pub fn looks_like_a_menu_number(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty()
        && t.chars().count() <= MAX_NUMBER_CHARS
        && t.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod menu_number_tests {
    use super::looks_like_a_menu_number;

    #[test]
    fn numbers_are_short_digit_texts() {
        for yes in ["1", " 2 ", "12.", "3)"] {
            assert!(looks_like_a_menu_number(yes), "{yes}");
        }
        for no in ["", "uno", "a1", "1234567", "   "] {
            assert!(!looks_like_a_menu_number(no), "{no}");
        }
    }
}
