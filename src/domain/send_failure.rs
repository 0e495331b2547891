//! Why WhatsApp refused a business message, in words an agent understands, and a short
//! class for metrics. Meta reports refusals in `failed` statuses (`errors[].code`); EUM
//! may also refuse a send outright.

/// What went wrong with one agent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// Meta's error codes, in order (empty for a send EUM refused outright).
    pub codes: Vec<i64>,
    /// EUM's own words, for a send it refused outright.
    pub refusal: Option<String>,
}

/// The `code_class` label values of `waconnect_whatsapp_send_failures_total`.
pub const CODE_CLASSES: [&str; 8] = [
    "window_closed",
    "undeliverable",
    "unsupported",
    "media",
    "rate_limited",
    "invalid",
    "refused",
    "other",
];

/// Agent notices start with this, so the agent sees who is talking.
pub const NOTICE_PREFIX: &str = "⚠️ waconnect: ";

/// Words for one Meta error code; None for codes we have no words for.
pub fn describe_code(code: i64) -> Option<&'static str> {
    Some(match code {
        131047 | 470 => {
            "The customer's 24-hour window is closed: WhatsApp only allows template messages now"
        }
        131026 => {
            "WhatsApp could not deliver the message to this customer (the number may not use \
             WhatsApp, or their app may need an update)"
        }
        131051 => "WhatsApp does not support this type of message",
        131052 => "WhatsApp could not download the file of the message",
        131053 => "WhatsApp could not process the file of the message (type or size not accepted)",
        130429 => "WhatsApp's sending rate limit was reached; the message was not sent",
        131056 => "Too many messages were sent to this customer in a short time; the message was not sent",
        131048 => "WhatsApp limited sending from this number (too many messages reported as spam)",
        131008 => "The message was missing a part WhatsApp requires",
        131009 => "WhatsApp refused a value in the message",
        131049 => "WhatsApp chose not to deliver the message, to limit the messages this customer receives",
        131050 => "The customer stopped receiving marketing messages from this business",
        131021 => "The message was sent to the business's own number",
        131031 | 131042 | 131045 | 131057 | 133010 | 368 => {
            "The business's WhatsApp account cannot send right now (see its status in WhatsApp Manager)"
        }
        131000 | 131016 => "WhatsApp had an internal problem and did not send the message",
        _ => return None,
    })
}

/// The `code_class` label of a code.
fn class_of(code: i64) -> &'static str {
    match code {
        131047 | 470 => "window_closed",
        131026 | 131049 | 131050 | 131021 => "undeliverable",
        131051 => "unsupported",
        131052 | 131053 => "media",
        130429 | 131056 | 131048 => "rate_limited",
        131008 | 131009 => "invalid",
        _ => "other",
    }
}

impl SendFailure {
    /// A failure Meta reported in a status.
    pub fn from_codes(codes: Vec<i64>) -> Self {
        Self {
            codes,
            refusal: None,
        }
    }

    /// A send EUM refused outright, with its message.
    pub fn refused(reason: &str) -> Self {
        Self {
            codes: Vec::new(),
            refusal: Some(reason.chars().take(300).collect()),
        }
    }

    /// The bounded label for metrics.
    pub fn code_class(&self) -> &'static str {
        match (self.codes.first(), &self.refusal) {
            (Some(code), _) => class_of(*code),
            (None, Some(_)) => "refused",
            (None, None) => "other",
        }
    }

    /// Why, in words: the first code we can describe, else a generic sentence naming
    /// the codes.
    pub fn reason(&self) -> String {
        if let Some(words) = self.codes.iter().find_map(|c| describe_code(*c)) {
            return words.to_string();
        }
        match (&self.refusal, self.codes.as_slice()) {
            (Some(refusal), _) => format!("WhatsApp refused the message ({refusal})"),
            (None, []) => "WhatsApp reported that the message failed, without a reason".into(),
            (None, codes) => format!(
                "WhatsApp reported that the message failed (error {})",
                codes
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The text put in the chat for the agent.
    pub fn agent_notice(&self) -> String {
        format!(
            "{NOTICE_PREFIX}{}. The customer did not receive your message.",
            self.reason().trim_end_matches('.')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closed_window_is_named_in_words() {
        let f = SendFailure::from_codes(vec![131047]);
        assert_eq!(f.code_class(), "window_closed");
        assert_eq!(
            f.agent_notice(),
            "⚠️ waconnect: The customer's 24-hour window is closed: WhatsApp only allows \
             template messages now. The customer did not receive your message."
        );
        assert_eq!(
            SendFailure::from_codes(vec![470]).code_class(),
            "window_closed"
        );
    }

    #[test]
    fn common_codes_have_words_and_classes() {
        for (code, class) in [
            (131026, "undeliverable"),
            (131051, "unsupported"),
            (131052, "media"),
            (131053, "media"),
            (130429, "rate_limited"),
            (131056, "rate_limited"),
            (131008, "invalid"),
            (131009, "invalid"),
        ] {
            let f = SendFailure::from_codes(vec![code]);
            assert_eq!(f.code_class(), class, "{code}");
            assert!(describe_code(code).is_some(), "{code}");
            assert!(
                !f.reason().contains(&code.to_string()),
                "{code}: words, not numbers"
            );
            assert!(CODE_CLASSES.contains(&class));
        }
    }

    #[test]
    fn unknown_codes_and_refusals_fall_back_to_a_generic_sentence() {
        let f = SendFailure::from_codes(vec![999_999, 123]);
        assert_eq!(f.code_class(), "other");
        assert_eq!(
            f.reason(),
            "WhatsApp reported that the message failed (error 999999, 123)"
        );
        // A code we know further down the list still gives words.
        let f = SendFailure::from_codes(vec![1, 131051]);
        assert_eq!(f.reason(), "WhatsApp does not support this type of message");
        let f = SendFailure::from_codes(vec![]);
        assert!(f.reason().contains("without a reason"));
        let f = SendFailure::refused("InvalidParametersException: bad body");
        assert_eq!(f.code_class(), "refused");
        assert_eq!(
            f.reason(),
            "WhatsApp refused the message (InvalidParametersException: bad body)"
        );
    }
}
