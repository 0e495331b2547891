//! [`MediaStore`] on a local directory, for local mode: objects are files at
//! `<root>/<bucket>/<key>`, and "pre-signed" links point at the simulator, which serves
//! the same directory under `/sim/media/{bucket}/{key}`.
//!
//! Bucket and key come from messages (media ids, file names), so they are checked before
//! they touch the file system: a key can never name a file outside its bucket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;

use crate::ports::{ErrorKind, MediaStore, PortError, PortResult};

const SERVICE: &str = "media-dir";
/// Where each object's content type is kept: a tree beside the buckets that no valid
/// bucket name can reach (bucket names never start with a dot).
const META_DIR: &str = ".meta";
/// S3's limit on key length, kept so local mode refuses what S3 would.
const MAX_KEY_BYTES: usize = 1024;
/// The content type of an object stored without one (or whose record is lost).
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Media objects in a local directory, linked through the simulator's `/sim/media` route.
#[derive(Debug, Clone)]
pub struct LocalMediaDir {
    /// The directory holding one sub-directory per bucket.
    pub root: PathBuf,
    /// The simulator's URL (e.g. `http://127.0.0.1:8080`): links are built on it.
    pub base_url: String,
}

impl LocalMediaDir {
    pub fn new(root: impl Into<PathBuf>, base_url: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            base_url: base_url.into(),
        }
    }

    /// The file of an object, once bucket and key are known to be safe.
    pub fn object_path(&self, bucket: &str, key: &str) -> PortResult<PathBuf> {
        let bucket = check_bucket(bucket)?;
        let segments = check_key(key)?;
        let mut path = self.root.join(bucket);
        path.extend(segments);
        Ok(path)
    }

    fn meta_path(&self, bucket: &str, key: &str) -> PortResult<PathBuf> {
        let bucket = check_bucket(bucket)?;
        let segments = check_key(key)?;
        let mut path = self.root.join(META_DIR).join(bucket);
        path.extend(segments);
        Ok(path)
    }

    /// Reads an object and its content type (what the simulator's `/sim/media` route
    /// serves). Objects over `max_bytes` are refused from their size, unread.
    pub async fn read_object(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> PortResult<(Vec<u8>, String)> {
        let bytes = read_capped(&self.object_path(bucket, key)?, max_bytes).await?;
        let content_type = match tokio::fs::read_to_string(self.meta_path(bucket, key)?).await {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => DEFAULT_CONTENT_TYPE.to_string(),
        };
        Ok((bytes, content_type))
    }
}

fn invalid(operation: &'static str, message: impl Into<String>) -> PortError {
    PortError::new(ErrorKind::Invalid, SERVICE, operation, message)
}

fn io_error(operation: &'static str, path: &Path, e: &std::io::Error) -> PortError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        _ => ErrorKind::Other,
    };
    PortError::new(kind, SERVICE, operation, format!("{}: {e}", path.display()))
}

/// The "too large" refusal [`MediaStore::get`] documents.
fn too_large(size: u64, max_bytes: u64) -> PortError {
    invalid(
        "GetObject",
        format!("too large: {size} bytes > max {max_bytes}"),
    )
}

/// A bucket is one plain path segment: letters, digits, `.`, `-`, `_`, starting with a
/// letter or digit (so never `.`, `..` or the metadata tree).
fn check_bucket(bucket: &str) -> PortResult<&str> {
    let starts_well = bucket
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let plain = bucket
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !starts_well || !plain || bucket.len() > 255 {
        return Err(invalid(
            "CheckBucket",
            format!("bucket name {bucket:?} is not allowed"),
        ));
    }
    Ok(bucket)
}

/// A key's `/`-separated segments, refusing anything that could leave the bucket or
/// that a file system cannot hold: absolute keys, empty, `.` or `..` segments,
/// backslashes and NUL.
fn check_key(key: &str) -> PortResult<Vec<&str>> {
    let refuse = |why: &str| Err(invalid("CheckKey", format!("key {key:?}: {why}")));
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return refuse("must be 1 to 1024 bytes");
    }
    if key.contains('\0') || key.contains('\\') {
        return refuse("NUL and backslash are not allowed");
    }
    if key.starts_with('/') {
        return refuse("absolute keys are not allowed");
    }
    let segments: Vec<&str> = key.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return refuse("empty, \".\" and \"..\" segments are not allowed");
    }
    Ok(segments)
}

/// Reads a file, refusing it from its size when over `max_bytes`, and never reading more
/// than `max_bytes + 1` bytes should it grow meanwhile.
async fn read_capped(path: &Path, max_bytes: u64) -> PortResult<Vec<u8>> {
    const OP: &str = "GetObject";
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_error(OP, path, &e))?;
    let metadata = file.metadata().await.map_err(|e| io_error(OP, path, &e))?;
    if !metadata.is_file() {
        return Err(PortError::new(
            ErrorKind::NotFound,
            SERVICE,
            OP,
            format!("{} is not an object", path.display()),
        ));
    }
    if metadata.len() > max_bytes {
        return Err(too_large(metadata.len(), max_bytes));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| io_error(OP, path, &e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64, max_bytes));
    }
    Ok(bytes)
}

/// Writes through a temporary file and a rename, so a concurrent reader (the simulator
/// serving a link) sees the old object or the new one, never half of one.
async fn write_atomically(operation: &'static str, path: &Path, bytes: &[u8]) -> PortResult<()> {
    let parent = path
        .parent()
        .ok_or_else(|| invalid(operation, format!("{} has no parent", path.display())))?;
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| io_error(operation, parent, &e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent.join(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple()));
    if let Err(e) = tokio::fs::write(&temp, bytes).await {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(io_error(operation, &temp, &e));
    }
    if let Err(e) = tokio::fs::rename(&temp, path).await {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(io_error(operation, path, &e));
    }
    Ok(())
}

/// Percent-encodes one URL path segment (RFC 3986 unreserved characters stay).
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[async_trait]
impl MediaStore for LocalMediaDir {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> PortResult<()> {
        const OP: &str = "PutObject";
        let path = self.object_path(bucket, key)?;
        write_atomically(OP, &path, &bytes).await?;
        write_atomically(OP, &self.meta_path(bucket, key)?, content_type.as_bytes()).await
    }

    async fn get(&self, bucket: &str, key: &str, max_bytes: u64) -> PortResult<Vec<u8>> {
        read_capped(&self.object_path(bucket, key)?, max_bytes).await
    }

    /// A link to the simulator's `/sim/media` route. Local links do not expire:
    /// `expires_in` is only checked to be what S3 would accept (at most 7 days).
    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: Duration,
    ) -> PortResult<String> {
        const OP: &str = "PresignGetObject";
        if expires_in.is_zero() || expires_in > Duration::from_secs(7 * 24 * 3600) {
            return Err(invalid(OP, "expires_in must be within 1 s..=7 days"));
        }
        let bucket = check_bucket(bucket)?;
        let key: Vec<String> = check_key(key)?.into_iter().map(encode_segment).collect();
        Ok(format!(
            "{}/sim/media/{}/{}",
            self.base_url.trim_end_matches('/'),
            encode_segment(bucket),
            key.join("/")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalMediaDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalMediaDir::new(dir.path().join("media"), "http://127.0.0.1:9/");
        (dir, store)
    }

    #[tokio::test]
    async fn put_then_get_and_read_back_the_content_type() {
        let (_dir, store) = store();
        store
            .put("media", "in/abc/123.ogg", b"OggS...".to_vec(), "audio/ogg")
            .await
            .unwrap();
        assert_eq!(
            store.get("media", "in/abc/123.ogg", 100).await.unwrap(),
            b"OggS..."
        );
        let (bytes, content_type) = store
            .read_object("media", "in/abc/123.ogg", 100)
            .await
            .unwrap();
        assert_eq!(
            (bytes.as_slice(), content_type.as_str()),
            (b"OggS...".as_slice(), "audio/ogg")
        );
        assert!(store.root.join("media/in/abc/123.ogg").is_file());

        // Overwrite: the new object wins, no temporary file is left behind.
        store
            .put("media", "in/abc/123.ogg", b"new".to_vec(), "audio/ogg")
            .await
            .unwrap();
        assert_eq!(
            store.get("media", "in/abc/123.ogg", 100).await.unwrap(),
            b"new"
        );
        let names: Vec<_> = std::fs::read_dir(store.root.join("media/in/abc"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[tokio::test]
    async fn too_large_objects_are_refused_by_size() {
        let (_dir, store) = store();
        store
            .put("b", "big.bin", vec![7; 100], "application/octet-stream")
            .await
            .unwrap();
        let err = store.get("b", "big.bin", 99).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(
            err.message.starts_with("too large: 100 bytes > max 99"),
            "{err}"
        );
        assert_eq!(store.get("b", "big.bin", 100).await.unwrap().len(), 100);
    }

    #[tokio::test]
    async fn missing_objects_are_not_found() {
        let (_dir, store) = store();
        let err = store.get("b", "nope", 10).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        store.put("b", "dir/x", vec![1], "x/y").await.unwrap();
        assert_eq!(
            store.get("b", "dir", 10).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn keys_and_buckets_that_could_escape_are_refused() {
        let (_dir, store) = store();
        for key in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a/",
            "",
            "a\0b",
            "a\\..\\b",
        ] {
            let err = store.put("b", key, vec![1], "x/y").await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Invalid, "key {key:?}");
            assert_eq!(
                store.get("b", key, 10).await.unwrap_err().kind,
                ErrorKind::Invalid
            );
        }
        for bucket in ["..", ".meta", "a/b", "", "-x"] {
            let err = store.put(bucket, "k", vec![1], "x/y").await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Invalid, "bucket {bucket:?}");
        }
        assert!(!store.root.join("x").exists());
    }

    #[tokio::test]
    async fn presigned_links_point_at_the_simulator_with_encoded_segments() {
        let (_dir, store) = store();
        let url = store
            .presign_get("media", "out/voz nota ñ.wav", Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(
            url,
            "http://127.0.0.1:9/sim/media/media/out/voz%20nota%20%C3%B1.wav"
        );
        assert!(store
            .presign_get("media", "../x", Duration::from_secs(1))
            .await
            .is_err());
        assert!(store
            .presign_get("media", "x", Duration::ZERO)
            .await
            .is_err());
    }
}
