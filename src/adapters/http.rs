//! Plain HTTPS transfers to and from pre-signed URLs (Connect attachment upload and
//! download), only where the configured [`UrlAllowlist`] permits, never following
//! redirects (a redirect could leave the allowlist), with sizes capped while streaming.

use std::time::Duration;

use futures::StreamExt;

use crate::domain::UrlAllowlist;
use crate::ports::{ErrorKind, PortError, PortResult};

const SERVICE: &str = "http";

#[derive(Clone)]
pub struct HttpTransfer {
    client: reqwest::Client,
    allow: UrlAllowlist,
}

fn error(kind: ErrorKind, operation: &'static str, message: impl Into<String>) -> PortError {
    PortError::new(kind, SERVICE, operation, message)
}

/// Keeps the URL's origin and path for logs: pre-signed query strings are credentials.
pub fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or_default().to_string()
}

impl HttpTransfer {
    pub fn new(allow: UrlAllowlist) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client, allow })
    }

    /// Whether the allowlist permits `url`.
    pub fn allows(&self, url: &str) -> bool {
        self.allow.permits(url)
    }

    fn check(&self, operation: &'static str, url: &str) -> PortResult<()> {
        if self.allow.permits(url) {
            Ok(())
        } else {
            Err(error(
                ErrorKind::Invalid,
                operation,
                format!("URL not in the allowlist: {}", redact(url)),
            ))
        }
    }

    fn status_error(operation: &'static str, status: reqwest::StatusCode) -> PortError {
        let kind = if status.is_server_error() || status.as_u16() == 429 {
            ErrorKind::Transient
        } else {
            ErrorKind::Other
        };
        error(kind, operation, format!("HTTP {status}"))
    }

    /// PUTs `bytes` with exactly `headers` (a pre-signed upload).
    pub async fn put(
        &self,
        url: &str,
        headers: &[(String, String)],
        bytes: Vec<u8>,
    ) -> PortResult<()> {
        const OP: &str = "PUT";
        self.check(OP, url)?;
        let mut request = self.client.put(url).body(bytes);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| error(ErrorKind::Transient, OP, e.without_url().to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Self::status_error(OP, response.status()))
        }
    }

    /// GETs at most `max_bytes` (a pre-signed download); a larger body is refused.
    pub async fn get(&self, url: &str, max_bytes: u64) -> PortResult<Vec<u8>> {
        const OP: &str = "GET";
        self.check(OP, url)?;
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| error(ErrorKind::Transient, OP, e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(Self::status_error(OP, response.status()));
        }
        let too_large = |n: u64| {
            error(
                ErrorKind::Invalid,
                OP,
                format!("too large: {n} bytes > max {max_bytes}"),
            )
        };
        if let Some(len) = response.content_length().filter(|l| *l > max_bytes) {
            return Err(too_large(len));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| error(ErrorKind::Transient, OP, e.without_url().to_string()))?;
            if (body.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large((body.len() + chunk.len()) as u64));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
