use std::time::Duration;

use async_trait::async_trait;

use super::PortResult;

/// Object storage for media: S3 in production and tests, a local directory in local mode.
///
/// EUM's GetWhatsAppMessageMedia writes customer media here; waconnect reads it back, and
/// stores converted agent audio here to send by a pre-signed link.
#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> PortResult<()>;
    /// Reads an object. One over `max_bytes` is refused (`ErrorKind::Invalid`, message
    /// starting "too large") from its size, before its bytes are read.
    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> PortResult<Vec<u8>>;
    /// A time-limited URL from which anyone holding it can read the object.
    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: Duration,
    ) -> PortResult<String>;
}
