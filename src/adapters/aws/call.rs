//! What every AWS call shares: timing and outcome metrics, and mapping SDK errors to
//! the [`ErrorKind`] actors act on.

use std::future::Future;
use std::time::Instant;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::delivery::dependency::{self, CallResult};
use crate::metrics as m;
use crate::ports::{ErrorKind, PortError, PortResult};

/// Maps an AWS error code (the `x-amzn-ErrorType` / `__type` value, or the `<Code>` of
/// S3's XML errors) to what callers do.
pub fn kind_of_code(code: &str) -> ErrorKind {
    match code {
        // S3 (and STS) say `AccessDenied`; a HEAD answered 403 has no body, so the SDK
        // can only name its status (`Forbidden`).
        "AccessDeniedException" | "AccessDenied" | "Forbidden" => ErrorKind::AccessDenied,
        "ThrottlingException"
        | "ThrottledRequestException"
        | "TooManyRequestsException"
        | "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded"
        | "LimitExceededException"
        | "SlowDown" => ErrorKind::Throttled,
        "InternalServerException"
        | "InternalServiceException"
        | "InternalServerError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "DependencyException"
        | "InternalFailureException"
        | "InternalError" => ErrorKind::Transient,
        "ValidationException"
        | "InvalidParametersException"
        | "InvalidParameterException"
        | "InvalidRequestException"
        | "BadRequestException"
        | "ConflictException" => ErrorKind::Invalid,
        "ConditionalCheckFailedException"
        | "TransactionCanceledException"
        | "TransactionConflictException" => ErrorKind::Conflict,
        "ResourceNotFoundException"
        | "AWS.SimpleQueueService.NonExistentQueue"
        | "QueueDoesNotExist" => ErrorKind::NotFound,
        _ => ErrorKind::Other,
    }
}

/// Classifies any SDK error: service errors by code (then HTTP status), transport
/// failures and timeouts as transient.
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> (ErrorKind, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let code = e.code().unwrap_or("Unknown");
            let mut kind = kind_of_code(code);
            if kind == ErrorKind::Other {
                let status = ctx.raw().status().as_u16();
                if status == 429 {
                    kind = ErrorKind::Throttled;
                } else if status >= 500 {
                    kind = ErrorKind::Transient;
                } else if status == 403 && code == "Unknown" {
                    kind = ErrorKind::AccessDenied;
                }
            }
            (
                kind,
                format!("{code}: {}", e.message().unwrap_or("no message")),
            )
        }
        SdkError::TimeoutError(_) => (ErrorKind::Transient, "timed out".into()),
        SdkError::DispatchFailure(e) => (ErrorKind::Transient, format!("dispatch failure: {e:?}")),
        SdkError::ResponseError(_) => (ErrorKind::Transient, "unreadable response".into()),
        other => (ErrorKind::Other, other.to_string()),
    }
}

/// Runs one AWS call, recording `waconnect_aws_calls_total` and
/// `waconnect_aws_call_duration_seconds`, and maps its error to a [`PortError`].
pub async fn observe<T, E, F>(
    service: &'static str,
    operation: &'static str,
    call: F,
) -> PortResult<T>
where
    F: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let started = Instant::now();
    let result = call.await;
    let kind = result.as_ref().err().map(|e| classify(e).0);
    let outcome = kind.map_or("ok", ErrorKind::as_str);
    m::aws_call(service, operation, outcome, started.elapsed());
    dependency::record(
        service,
        match kind {
            Some(k) if k.is_retryable() => CallResult::Unavailable,
            _ => CallResult::Answered,
        },
    );
    result.map_err(|e| {
        let (kind, message) = classify(&e);
        PortError::new(kind, service, operation, message)
    })
}

/// [`observe`] for a call that keeps its own error type, e.g. a streaming call whose
/// outcome is only known once its response has streamed in (Transcribe Streaming):
/// `kind` classifies its errors for the `outcome` label.
pub async fn observe_with<T, E, F>(
    service: &'static str,
    operation: &'static str,
    call: F,
    kind: impl Fn(&E) -> ErrorKind,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let result = call.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => kind(e).as_str(),
    };
    m::aws_call(service, operation, outcome, started.elapsed());
    result
}

/// For failures found after a call succeeded (a response missing a required field).
pub fn malformed(service: &'static str, operation: &'static str, what: &str) -> PortError {
    PortError::new(
        ErrorKind::Other,
        service,
        operation,
        format!("response lacks {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_codes_get_their_kind_not_other() {
        assert_eq!(kind_of_code("AccessDenied"), ErrorKind::AccessDenied);
        assert_eq!(kind_of_code("Forbidden"), ErrorKind::AccessDenied);
        assert_eq!(kind_of_code("SlowDown"), ErrorKind::Throttled);
        assert_eq!(kind_of_code("InternalError"), ErrorKind::Transient);
        assert_eq!(
            kind_of_code("AccessDeniedException"),
            ErrorKind::AccessDenied
        );
        assert_eq!(kind_of_code("SomethingNew"), ErrorKind::Other);
    }
}
