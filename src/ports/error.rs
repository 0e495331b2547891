use std::fmt;

/// How a caller should react to a failed call: the only thing actors branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The remote asked us to slow down (ThrottlingException, ThrottledRequestException, 429).
    Throttled,
    /// A transient fault (5xx, timeouts, connection errors): retry later.
    Transient,
    /// The chat is expired or ended (Connect Participant AccessDeniedException).
    AccessDenied,
    /// The request itself is wrong (ValidationException, InvalidParametersException):
    /// retrying the same request cannot succeed.
    Invalid,
    /// The addressed resource does not exist.
    NotFound,
    /// A conditional write lost to another writer (a claim taken, a record changed):
    /// read again and decide afresh.
    Conflict,
    /// Anything else (misconfiguration, permissions, unknown errors).
    Other,
}

impl ErrorKind {
    /// Stable lowercase name, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::Transient => "transient",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Other => "other",
        }
    }

    /// Whether the same call may succeed if simply tried again later.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call to an external system, named by service and operation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service}.{operation} failed ({kind}): {message}")]
pub struct PortError {
    pub kind: ErrorKind,
    pub service: &'static str,
    pub operation: &'static str,
    pub message: String,
}

impl PortError {
    /// Whether the call may have taken effect although it failed (an answer lost to a
    /// timeout or a reset, a 5xx after the request was read), as opposed to a refusal
    /// that certainly changed nothing (throttling, a bad request).
    pub fn may_have_taken_effect(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    pub fn new(
        kind: ErrorKind,
        service: &'static str,
        operation: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            service,
            operation,
            message: message.into(),
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;
