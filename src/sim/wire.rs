//! Error responses on the wire: AWS REST-JSON errors for the AWS endpoints, and plain
//! `{"error": "..."}` for the control API.

use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// The HTTP status AWS models give an error code, for the codes the simulated operations
/// (and tests injecting faults) use. `None` for codes this table does not know.
pub fn status_for_code(code: &str) -> Option<u16> {
    let status = match code {
        "ValidationException"
        | "InvalidParametersException"
        | "InvalidParameterException"
        | "InvalidRequestException"
        | "BadRequestException"
        | "SerializationException" => 400,
        "ServiceQuotaExceededException" => 402,
        "AccessDeniedException" | "AccessDeniedByMetaException" => 403,
        "ResourceNotFoundException" | "UnknownOperationException" => 404,
        "ConflictException" | "DuplicateResourceException" | "IdempotencyException" => 409,
        "RequestEntityTooLargeException" => 413,
        "ThrottlingException" | "ThrottledRequestException" | "LimitExceededException" => 429,
        "InternalServerException" | "InternalServiceException" | "InternalFailureException" => 500,
        "DependencyException" => 502,
        "ServiceUnavailableException" => 503,
        _ => return None,
    };
    Some(status)
}

/// An AWS service error: answered with `x-amzn-ErrorType: <code>` and `{"message": ...}`,
/// which is what the SDKs' REST-JSON error parsers read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct AwsError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl AwsError {
    /// An error with the status its code has in the AWS models (400 if unknown).
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            status: status_for_code(code).unwrap_or(400),
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn access_denied() -> Self {
        Self::new(
            "AccessDeniedException",
            "You do not have sufficient access to perform this action.",
        )
    }

    /// The answer to a body the extractor could not read (too large, broken stream).
    pub fn from_rejection(rejection: &BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new("RequestEntityTooLargeException", "Request Entity Too Large")
        } else {
            Self::new("SerializationException", rejection.body_text())
        }
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (
            status,
            [("content-type", "application/json")],
            serde_json::json!({ "message": self.message }).to_string(),
        )
            .into_response();
        if let Ok(code) = HeaderValue::from_str(&self.code) {
            response.headers_mut().insert("x-amzn-errortype", code);
        }
        response
    }
}

/// Parses an AWS request body; a body that does not fit the input shape is answered
/// with `code` (each service names its own validation error).
pub fn parse_aws<T: DeserializeOwned>(body: &[u8], code: &str) -> Result<T, AwsError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| AwsError::new(code, format!("Invalid request: {e}")))
}

/// A control API failure, answered as `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ControlError {
    pub status: u16,
    pub message: String,
}

impl ControlError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            message: message.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: 409,
            message: message.into(),
        }
    }

    /// The sink behind the simulator (SQS, SNS) refused what we tried to deliver.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self {
            status: 502,
            message: message.into(),
        }
    }

    pub fn from_rejection(rejection: &BytesRejection) -> Self {
        Self {
            status: rejection.status().as_u16(),
            message: rejection.body_text(),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (
            status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// Parses a control API body; an empty body reads as `{}` so optional-only bodies may be
/// omitted.
pub fn parse_control<T: DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ControlError::bad_request(format!("bad body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_have_their_model_status() {
        assert_eq!(AwsError::access_denied().status, 403);
        assert_eq!(AwsError::new("ThrottlingException", "x").status, 429);
        assert_eq!(
            AwsError::new("ServiceQuotaExceededException", "x").status,
            402
        );
        assert_eq!(AwsError::new("DependencyException", "x").status, 502);
        assert_eq!(AwsError::new("SomethingNew", "x").status, 400);
    }

    #[test]
    fn aws_error_response_carries_the_code_header() {
        let response = AwsError::new("ValidationException", "too long").into_response();
        assert_eq!(response.status(), 400);
        assert_eq!(
            response.headers().get("x-amzn-errortype").unwrap(),
            "ValidationException"
        );
    }
}
