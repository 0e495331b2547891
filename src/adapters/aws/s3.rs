//! [`MediaStore`] on Amazon S3: where GetWhatsAppMessageMedia puts customer media, and
//! where converted agent audio waits for WhatsApp to fetch it by a pre-signed link.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use super::call::{classify, observe};
use crate::ports::{ErrorKind, MediaStore, PortError, PortResult};

const SERVICE: &str = "s3";

/// Media objects in S3 buckets.
#[derive(Debug, Clone)]
pub struct S3MediaStore {
    pub client: aws_sdk_s3::Client,
}

impl S3MediaStore {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }

    /// A store on `sdk`. With a custom endpoint (`AWS_ENDPOINT_URL[_S3]`: moto, MinIO,
    /// LocalStack) buckets are addressed by path, since `<bucket>.<endpoint host>` does
    /// not resolve there.
    pub fn from_sdk_config(sdk: &aws_types::SdkConfig) -> Self {
        let custom_endpoint =
            sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(custom_endpoint)
            .build();
        Self::new(aws_sdk_s3::Client::from_conf(config))
    }
}

/// The "too large" refusal [`MediaStore::get`] documents.
fn too_large(size: u64, max_bytes: u64) -> PortError {
    PortError::new(
        ErrorKind::Invalid,
        SERVICE,
        "GetObject",
        format!("too large: {size} bytes > max {max_bytes}"),
    )
}

/// S3 names missing objects and buckets with codes the shared AWS mapping does not know
/// (HeadObject's 404 has no body at all, so its code is `NotFound`); they are NotFound.
fn s3_not_found(mut error: PortError) -> PortError {
    let code = error.message.split(':').next().unwrap_or_default();
    if error.kind == ErrorKind::Other && matches!(code, "NotFound" | "NoSuchKey" | "NoSuchBucket") {
        error.kind = ErrorKind::NotFound;
    }
    error
}

#[async_trait]
impl MediaStore for S3MediaStore {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> PortResult<()> {
        observe(
            SERVICE,
            "PutObject",
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type(content_type)
                .body(ByteStream::from(bytes))
                .send(),
        )
        .await
        .map_err(s3_not_found)?;
        Ok(())
    }

    /// HeadObject first so an oversized object is refused without downloading it; the
    /// download itself stops past `max_bytes` too, in case the object changed between.
    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> PortResult<Vec<u8>> {
        let head = observe(
            SERVICE,
            "HeadObject",
            self.client.head_object().bucket(bucket).key(key).send(),
        )
        .await
        .map_err(s3_not_found)?;
        let declared = head.content_length().map(|n| n.max(0) as u64);
        if let Some(size) = declared.filter(|&size| size > max_bytes) {
            return Err(too_large(size, max_bytes));
        }
        let out = observe(
            SERVICE,
            "GetObject",
            self.client.get_object().bucket(bucket).key(key).send(),
        )
        .await
        .map_err(s3_not_found)?;
        if let Some(size) = out.content_length().map(|n| n.max(0) as u64) {
            if size > max_bytes {
                return Err(too_large(size, max_bytes));
            }
        }
        let capacity = declared.unwrap_or(0).min(max_bytes) as usize;
        let mut bytes = Vec::with_capacity(capacity);
        let mut body = out.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| {
            PortError::new(
                ErrorKind::Transient,
                SERVICE,
                "GetObject",
                format!("reading the body: {e}"),
            )
        })? {
            let size = (bytes.len() + chunk.len()) as u64;
            if size > max_bytes {
                return Err(too_large(size, max_bytes));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Presigning is local computation, not a call, so it records no call metric.
    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: Duration,
    ) -> PortResult<String> {
        const OP: &str = "PresignGetObject";
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| PortError::new(ErrorKind::Invalid, SERVICE, OP, e.to_string()))?;
        let presigned = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| {
                let (kind, message) = classify(&e);
                PortError::new(kind, SERVICE, OP, message)
            })?;
        Ok(presigned.uri().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_missing_codes_become_not_found() {
        let missing = PortError::new(
            ErrorKind::Other,
            SERVICE,
            "HeadObject",
            "NotFound: no message",
        );
        assert_eq!(s3_not_found(missing).kind, ErrorKind::NotFound);
        let key = PortError::new(ErrorKind::Other, SERVICE, "GetObject", "NoSuchKey: gone");
        assert_eq!(s3_not_found(key).kind, ErrorKind::NotFound);
        let denied = PortError::new(
            ErrorKind::AccessDenied,
            SERVICE,
            "GetObject",
            "AccessDenied: no",
        );
        assert_eq!(s3_not_found(denied).kind, ErrorKind::AccessDenied);
        let throttled = PortError::new(ErrorKind::Throttled, SERVICE, "GetObject", "NotFound: x");
        assert_eq!(s3_not_found(throttled).kind, ErrorKind::Throttled);
    }

    fn sdk_config(endpoint: &str) -> aws_types::SdkConfig {
        aws_types::SdkConfig::builder()
            .region(aws_types::region::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new("a", "b", None, None, "test"),
                ),
            )
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .build()
    }

    /// A loopback peer that answers every request the way S3 answers a caller its bucket
    /// policy or IAM denies: 403 with an `AccessDenied` XML error (no body for HEAD).
    async fn denying_s3() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // The head is enough to answer; a request body is read and dropped.
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&request).to_string();
                    let body = if head.starts_with("HEAD ") {
                        String::new()
                    } else {
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                         <Message>Access Denied</Message><RequestId>R1</RequestId>\
                         <HostId>H1</HostId></Error>"
                            .to_string()
                    };
                    let response = format!(
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n\
                         Content-Length: {}\r\nx-amz-request-id: R1\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        format!("http://{addr}")
    }

    /// What the pod's role lacks (s3:GetObject / s3:PutObject on the media prefix) shows
    /// as `access_denied`, the kind the runbook's IAM advice is filed under.
    #[tokio::test]
    async fn s3_access_denied_is_classified_as_access_denied() {
        let store = S3MediaStore::from_sdk_config(&sdk_config(&denying_s3().await));
        let put = store
            .put("media", "in/a.jpg", b"x".to_vec(), "image/jpeg")
            .await
            .unwrap_err();
        assert_eq!(put.kind, ErrorKind::AccessDenied, "{put}");
        assert!(put.message.starts_with("AccessDenied"), "{put}");
        let get = store.get("media", "in/a.jpg", 1024).await.unwrap_err();
        assert_eq!(get.kind, ErrorKind::AccessDenied, "HeadObject: {get}");
    }

    #[tokio::test]
    async fn presigned_links_carry_a_signature_and_expiry() {
        let store = S3MediaStore::from_sdk_config(&sdk_config("http://127.0.0.1:1"));
        let url = store
            .presign_get("media", "out/a b.wav", Duration::from_secs(300))
            .await
            .unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:1/media/out/a%20b.wav?"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Expires=300"), "{url}");
        assert!(url.contains("X-Amz-Signature="), "{url}");
        let too_long = store
            .presign_get("media", "k", Duration::from_secs(8 * 24 * 3600))
            .await
            .unwrap_err();
        assert_eq!(too_long.kind, ErrorKind::Invalid);
    }
}
