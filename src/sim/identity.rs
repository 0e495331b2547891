//! Who the simulator pretends to be: one AWS account with one WhatsApp business number.

/// The business number's ids as Meta, EUM and Connect know them.
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
    /// Meta's id of the business phone number (`metadata.phone_number_id`).
    pub meta_phone_number_id: String,
    /// The business number as customers see it (`metadata.display_phone_number`).
    pub display_phone_number: String,
    /// EUM's ARN of the business phone number.
    pub phone_number_arn: String,
}

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
        }
    }
}

impl SimIdentity {
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
    /// EUM answers ResourceNotFoundException for a phone number it does not know.
    pub fn check_phone_number(&self, id_or_arn: &str) -> Result<(), super::AwsError> {
        if self.is_own_phone_number(id_or_arn) {
            Ok(())
        } else {
            Err(super::AwsError::new(
                "ResourceNotFoundException",
                format!("Phone number {id_or_arn} not found"),
            ))
        }
    }

    pub fn is_own_phone_number(&self, id_or_arn: &str) -> bool {
        id_or_arn == self.phone_number_arn || id_or_arn == self.phone_number_id()
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
}
