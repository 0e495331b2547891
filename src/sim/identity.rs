//! Who the simulator pretends to be: one AWS account with one or more WhatsApp business
//! numbers.

/// The business's ids as Meta, EUM and Connect know them; the phone number fields are
/// those of its first business number (see [`SimIdentity::numbers`] for all of them).
///
/// Defaults are fixed made-up values so tests and fixtures can name them literally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimIdentity {
    /// AWS account id, reported in EUM events and Connect stream attributes.
    pub account_id: String,
    /// Meta's WhatsApp Business Account id (the webhook entry `id`).
    pub waba_id: String,
    /// EUM's ARN for that WABA (`context.MetaWabaIds[].arn`).
    pub waba_arn: String,
    /// Meta's id of the first business phone number (`metadata.phone_number_id`).
    pub meta_phone_number_id: String,
    /// The first business number as customers see it (`metadata.display_phone_number`).
    pub display_phone_number: String,
    /// EUM's ARN of the first business phone number.
    pub phone_number_arn: String,
    /// How many business numbers the business has (at least 1; `--business-numbers`).
    pub business_numbers: usize,
}

/// The most business numbers a simulator owns.
pub const MAX_BUSINESS_NUMBERS: usize = 20;

impl Default for SimIdentity {
    fn default() -> Self {
        Self {
            account_id: "123456789012".into(),
            waba_id: "102290129340398".into(),
            waba_arn: "arn:aws:social-messaging:us-east-1:123456789012:waba/7c1b2e3d4f5a4b6c8d9e0f1a2b3c4d5e"
                .into(),
            meta_phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
            phone_number_arn: "arn:aws:social-messaging:us-east-1:123456789012:phone-number-id/5a1b2c3d4e5f40718293a4b5c6d7e8f9".into(),
            business_numbers: 1,
        }
    }
}

/// One business phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessNumber {
    /// Meta's id (`metadata.phone_number_id`).
    pub meta_phone_number_id: String,
    /// As customers see it (`metadata.display_phone_number`).
    pub display_phone_number: String,
    /// EUM's ARN.
    pub phone_number_arn: String,
}

impl BusinessNumber {
    /// The EUM phone number id (`phone-number-id-<suffix>`), derived from the ARN because
    /// that is how EUM itself relates the two.
    pub fn phone_number_id(&self) -> String {
        let suffix = self
            .phone_number_arn
            .rsplit_once("phone-number-id/")
            .map_or(self.phone_number_arn.as_str(), |(_, s)| s);
        format!("phone-number-id-{suffix}")
    }

    /// EUM accepts either the id or the ARN wherever a phone number is named.
    pub fn is(&self, id_or_arn: &str) -> bool {
        id_or_arn == self.phone_number_arn || id_or_arn == self.phone_number_id()
    }
}

/// `base` + `n` for a numeric id; `base-n` otherwise.
fn offset(base: &str, n: usize) -> String {
    match base.parse::<u64>() {
        Ok(v) => (v + n as u64).to_string(),
        Err(_) => format!("{base}-{n}"),
    }
}

impl SimIdentity {
    /// Every business number, the first being the one the fields name. Number `n` (from
    /// 0) of the others: Meta id and display number are the first's plus `n`, the ARN's
    /// suffix ends in `n` as four hex digits.
    pub fn numbers(&self) -> Vec<BusinessNumber> {
        let count = self.business_numbers.clamp(1, MAX_BUSINESS_NUMBERS);
        (0..count)
            .map(|n| {
                if n == 0 {
                    return BusinessNumber {
                        meta_phone_number_id: self.meta_phone_number_id.clone(),
                        display_phone_number: self.display_phone_number.clone(),
                        phone_number_arn: self.phone_number_arn.clone(),
                    };
                }
                let arn = match self.phone_number_arn.rsplit_once("phone-number-id/") {
                    Some((head, suffix)) if suffix.len() > 4 => {
                        format!(
                            "{head}phone-number-id/{}{n:04x}",
                            &suffix[..suffix.len() - 4]
                        )
                    }
                    _ => format!("{}{n:04x}", self.phone_number_arn),
                };
                BusinessNumber {
                    meta_phone_number_id: offset(&self.meta_phone_number_id, n),
                    display_phone_number: offset(&self.display_phone_number, n),
                    phone_number_arn: arn,
                }
            })
            .collect()
    }

    /// The first business number.
    pub fn first_number(&self) -> BusinessNumber {
        self.numbers().swap_remove(0)
    }

    /// The EUM phone number id of the first business number.
    pub fn phone_number_id(&self) -> String {
        self.first_number().phone_number_id()
    }

    /// The business number `id_or_arn` names (EUM accepts the id or the ARN).
    pub fn number(&self, id_or_arn: &str) -> Option<BusinessNumber> {
        self.numbers().into_iter().find(|n| n.is(id_or_arn))
    }

    /// The business number, or EUM's answer for a phone number it does not know
    /// (ResourceNotFoundException).
    pub fn check_phone_number(&self, id_or_arn: &str) -> Result<BusinessNumber, super::AwsError> {
        self.number(id_or_arn).ok_or_else(|| {
            super::AwsError::new(
                "ResourceNotFoundException",
                format!("Phone number {id_or_arn} not found"),
            )
        })
    }

    pub fn is_own_phone_number(&self, id_or_arn: &str) -> bool {
        self.number(id_or_arn).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_number_id_comes_from_the_arn() {
        let id = SimIdentity::default();
        assert_eq!(
            id.phone_number_id(),
            "phone-number-id-5a1b2c3d4e5f40718293a4b5c6d7e8f9"
        );
        assert!(id.is_own_phone_number(&id.phone_number_arn));
        assert!(id.is_own_phone_number("phone-number-id-5a1b2c3d4e5f40718293a4b5c6d7e8f9"));
        assert!(!id.is_own_phone_number("phone-number-id-other"));
    }

    #[test]
    fn further_numbers_are_derived_and_distinct() {
        let id = SimIdentity {
            business_numbers: 3,
            ..SimIdentity::default()
        };
        let numbers = id.numbers();
        assert_eq!(numbers.len(), 3);
        assert_eq!(numbers[0].phone_number_arn, id.phone_number_arn);
        assert_eq!(numbers[1].meta_phone_number_id, "106540352242923");
        assert_eq!(numbers[2].display_phone_number, "15550783883");
        assert_eq!(
            numbers[1].phone_number_id(),
            "phone-number-id-5a1b2c3d4e5f40718293a4b5c6d70001"
        );
        for n in &numbers {
            assert!(id.is_own_phone_number(&n.phone_number_id()));
            assert!(id.is_own_phone_number(&n.phone_number_arn));
            // What the router derives from the ARN is the id the simulator answers to.
            assert_eq!(
                crate::domain::eum_phone_number_id_from_arn(&n.phone_number_arn),
                Some(n.phone_number_id())
            );
        }
        assert_eq!(
            id.number(&numbers[2].phone_number_id()),
            Some(numbers[2].clone())
        );
        assert!(SimIdentity::default()
            .number(&numbers[1].phone_number_id())
            .is_none());
    }
}
