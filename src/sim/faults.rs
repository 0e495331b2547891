//! Injected faults: per AWS operation, answer with an error and/or add latency, with a
//! probability and an optional budget, so tests can exercise retries and recovery.

use std::time::Duration;

use serde::Deserialize;

use super::wire::{status_for_code, AwsError, ControlError};

/// The operations the simulator answers (and may be faulted). `*` matches all of them.
pub const OPERATIONS: &[&str] = &[
    "StartChatContact",
    "StartContactStreaming",
    "CreateParticipantConnection",
    "SendMessage",
    "SendEvent",
    "DisconnectParticipant",
    "StartAttachmentUpload",
    "CompleteAttachmentUpload",
    "GetAttachment",
    "SendWhatsAppMessage",
    "GetWhatsAppMessageMedia",
    "StartStreamTranscription",
];

/// `POST /sim/faults` body.
#[derive(Debug, Clone, Deserialize)]
pub struct FaultSpec {
    pub operation: String,
    /// AWS error code to answer with; none means latency only.
    #[serde(default)]
    pub error: Option<String>,
    /// HTTP status for codes the simulator does not know.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub message: Option<String>,
    /// Probability in 0..=1 that a call is affected.
    #[serde(default = "one")]
    pub rate: f64,
    #[serde(default)]
    pub latency_ms: u64,
    /// Apply at most this many times, then the fault is gone.
    #[serde(default)]
    pub count: Option<u64>,
    /// Only calls whose request body contains this text (e.g. one poisoned message).
    #[serde(default, rename = "match")]
    pub matches: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// An active fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub id: u64,
    pub operation: String,
    pub error: Option<AwsError>,
    pub rate: f64,
    pub latency: Duration,
    pub remaining: Option<u64>,
    pub matches: Option<String>,
}

impl Fault {
    /// Checks a spec; the error is the control API's 400 answer.
    pub fn from_spec(id: u64, spec: FaultSpec) -> Result<Self, ControlError> {
        if spec.operation != "*" && !OPERATIONS.contains(&spec.operation.as_str()) {
            return Err(ControlError::bad_request(format!(
                "unknown operation {:?}; known: {}",
                spec.operation,
                OPERATIONS.join(", ")
            )));
        }
        if !(0.0..=1.0).contains(&spec.rate) {
            return Err(ControlError::bad_request("rate must be within 0..=1"));
        }
        let error = match spec.error {
            None => None,
            Some(code) => {
                let status = match spec.status.or_else(|| status_for_code(&code)) {
                    Some(status) if (400..=599).contains(&status) => status,
                    Some(status) => {
                        return Err(ControlError::bad_request(format!(
                            "status {status} is not an error status"
                        )))
                    }
                    None => {
                        return Err(ControlError::bad_request(format!(
                            "unknown error code {code:?}: give its \"status\""
                        )))
                    }
                };
                let message = spec
                    .message
                    .unwrap_or_else(|| format!("Injected fault: {code}"));
                Some(AwsError {
                    status,
                    code,
                    message,
                })
            }
        };
        Ok(Self {
            id,
            operation: spec.operation,
            error,
            rate: spec.rate,
            latency: Duration::from_millis(spec.latency_ms),
            remaining: spec.count,
            matches: spec.matches.filter(|m| !m.is_empty()),
        })
    }
}

/// What the active faults do to one call.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub latency: Duration,
    pub error: Option<AwsError>,
}

/// Decides the faults for one call of `operation` with request `body`, spending their
/// budgets.
///
/// Every matching fault rolls on its own (`roll` yields uniform numbers in 0..1): latencies
/// add up, the first error wins. Exhausted faults are removed.
pub fn apply(
    faults: &mut Vec<Fault>,
    operation: &str,
    body: &[u8],
    mut roll: impl FnMut() -> f64,
) -> Outcome {
    let mut outcome = Outcome::default();
    for fault in faults.iter_mut() {
        if fault.operation != "*" && fault.operation != operation {
            continue;
        }
        if let Some(needle) = &fault.matches {
            let found = body.windows(needle.len()).any(|w| w == needle.as_bytes());
            if !found {
                continue;
            }
        }
        if fault.remaining == Some(0) || roll() >= fault.rate {
            continue;
        }
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining -= 1;
        }
        outcome.latency += fault.latency;
        if outcome.error.is_none() {
            outcome.error = fault.error.clone();
        }
    }
    faults.retain(|f| f.remaining != Some(0));
    outcome
}

/// A uniform number in 0..1 from the OS-seeded UUID generator (no extra RNG dependency).
pub fn random_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75; // 53 random bits
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> FaultSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn count_limits_how_often_a_fault_applies() {
        let f = Fault::from_spec(
            1,
            spec(serde_json::json!({"operation": "SendMessage", "error": "AccessDeniedException", "count": 2})),
        )
        .unwrap();
        let mut faults = vec![f];
        for _ in 0..2 {
            let out = apply(&mut faults, "SendMessage", b"", || 0.5);
            assert_eq!(out.error.unwrap().status, 403);
        }
        assert!(faults.is_empty());
        assert_eq!(
            apply(&mut faults, "SendMessage", b"", || 0.5),
            Outcome::default()
        );
    }

    #[test]
    fn a_match_limits_a_fault_to_calls_carrying_that_text() {
        let f = Fault::from_spec(
            1,
            spec(serde_json::json!({"operation": "SendMessage", "error": "InternalServerException", "match": "POISON"})),
        )
        .unwrap();
        let mut faults = vec![f];
        assert!(apply(
            &mut faults,
            "SendMessage",
            br#"{"Content":"a POISON pill"}"#,
            || 0.0
        )
        .error
        .is_some());
        assert!(
            apply(&mut faults, "SendMessage", br#"{"Content":"fine"}"#, || 0.0)
                .error
                .is_none()
        );
    }

    #[test]
    fn rate_decides_per_call_and_other_operations_are_untouched() {
        let f = Fault::from_spec(
            1,
            spec(serde_json::json!({"operation": "SendMessage", "error": "ThrottlingException", "rate": 0.3})),
        )
        .unwrap();
        let mut faults = vec![f];
        assert!(apply(&mut faults, "SendMessage", b"", || 0.1)
            .error
            .is_some());
        assert!(apply(&mut faults, "SendMessage", b"", || 0.3)
            .error
            .is_none());
        assert!(apply(&mut faults, "SendEvent", b"", || 0.0).error.is_none());
        let never = Fault::from_spec(
            2,
            spec(serde_json::json!({"operation": "SendEvent", "error": "ThrottlingException", "rate": 0.0})),
        )
        .unwrap();
        let mut faults = vec![never];
        assert!(apply(&mut faults, "SendEvent", b"", || 0.0).error.is_none());
    }

    #[test]
    fn latencies_add_and_the_first_error_wins() {
        let mut faults = vec![
            Fault::from_spec(1, spec(serde_json::json!({"operation": "*", "latency_ms": 5})))
                .unwrap(),
            Fault::from_spec(
                2,
                spec(serde_json::json!({"operation": "SendWhatsAppMessage", "error": "ThrottledRequestException", "latency_ms": 7})),
            )
            .unwrap(),
            Fault::from_spec(
                3,
                spec(serde_json::json!({"operation": "SendWhatsAppMessage", "error": "InternalServiceException"})),
            )
            .unwrap(),
        ];
        let out = apply(&mut faults, "SendWhatsAppMessage", b"", || 0.0);
        assert_eq!(out.latency, Duration::from_millis(12));
        assert_eq!(out.error.unwrap().code, "ThrottledRequestException");
    }

    #[test]
    fn bad_specs_are_refused() {
        let unknown_op = spec(serde_json::json!({"operation": "Nope"}));
        assert!(Fault::from_spec(1, unknown_op).is_err());
        let bad_rate = spec(serde_json::json!({"operation": "SendMessage", "rate": 2.0}));
        assert!(Fault::from_spec(1, bad_rate).is_err());
        let unknown_code = spec(serde_json::json!({"operation": "SendMessage", "error": "Weird"}));
        assert!(Fault::from_spec(1, unknown_code).is_err());
        let with_status =
            spec(serde_json::json!({"operation": "SendMessage", "error": "Weird", "status": 503}));
        assert_eq!(
            Fault::from_spec(1, with_status)
                .unwrap()
                .error
                .unwrap()
                .status,
            503
        );
    }

    #[test]
    fn random_unit_stays_in_range() {
        for _ in 0..1000 {
            let x = random_unit();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
