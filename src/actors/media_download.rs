//! MediaDownload: fetches a customer's media through EUM (GetWhatsAppMessageMedia writes
//! it into the media bucket) and reads it back, refusing a file over the cap from the size
//! EUM reports, before any byte is read.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use crate::domain::eum_object_key;
use crate::metrics::ActorMetrics;
use crate::ports::{MediaStore, PortError, WhatsApp};
use crate::supervision::{suffer, unavailable, Fault, Probe};

const METRICS: ActorMetrics = ActorMetrics::new("media_download");

/// Where EUM puts customer media.
#[derive(Debug, Clone)]
pub struct MediaLocation {
    pub bucket: String,
    pub prefix: String,
}

#[derive(Message)]
#[rtype(result = "Result<Downloaded, DownloadError>")]
pub struct Download {
    pub business_number_id: String,
    pub media_id: String,
    /// The MIME type in the webhook, used when EUM does not report one.
    pub declared_mime: String,
}

#[derive(Debug, Clone)]
pub struct Downloaded {
    pub bytes: Vec<u8>,
    pub mime: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("media is {size} bytes, over the {max}-byte limit")]
    TooLarge { size: u64, max: u64, mime: String },
    #[error(transparent)]
    Port(#[from] PortError),
}

pub struct MediaDownload {
    whatsapp: Arc<dyn WhatsApp>,
    store: Arc<dyn MediaStore>,
    location: MediaLocation,
    max_bytes: u64,
    probe: Arc<Probe>,
}

impl MediaDownload {
    pub fn new(
        whatsapp: Arc<dyn WhatsApp>,
        store: Arc<dyn MediaStore>,
        location: MediaLocation,
        max_bytes: u64,
        probe: Arc<Probe>,
    ) -> Self {
        Self {
            probe,
            whatsapp,
            store,
            location,
            max_bytes,
        }
    }
}

impl Actor for MediaDownload {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        METRICS.heartbeat();
    }
}

impl Handler<Fault> for MediaDownload {
    type Result = ();

    fn handle(&mut self, fault: Fault, ctx: &mut Self::Context) {
        let probe = self.probe.clone();
        suffer(fault, &probe, self, ctx);
    }
}

impl Handler<Download> for MediaDownload {
    type Result = ResponseFuture<Result<Downloaded, DownloadError>>;

    fn handle(&mut self, req: Download, _: &mut Self::Context) -> Self::Result {
        let (whatsapp, store) = (self.whatsapp.clone(), self.store.clone());
        let (location, max) = (self.location.clone(), self.max_bytes);
        let work = async move {
            let started = Instant::now();
            let result = async {
                let info = whatsapp
                    .get_media(
                        &req.business_number_id,
                        &req.media_id,
                        &location.bucket,
                        &location.prefix,
                    )
                    .await?;
                let mime = if info.mime_type.is_empty() {
                    req.declared_mime
                } else {
                    info.mime_type
                };
                if info.size > max {
                    return Err(DownloadError::TooLarge {
                        size: info.size,
                        max,
                        mime,
                    });
                }
                let key = eum_object_key(&location.prefix, &req.media_id, &mime);
                let bytes = store.get(&location.bucket, &key, max).await?;
                Ok(Downloaded { bytes, mime })
            }
            .await;
            match &result {
                Ok(_) => METRICS.handled("ok", started.elapsed()),
                Err(DownloadError::TooLarge { .. }) => {
                    METRICS.handled("too_large", started.elapsed())
                }
                Err(DownloadError::Port(e)) => {
                    METRICS.error(e.kind.as_str());
                    METRICS.handled("error", started.elapsed());
                }
            }
            result
        };
        Box::pin(self.probe.track(work, || {
            Err(DownloadError::Port(unavailable(
                "media_download",
                "restarted while the download ran",
            )))
        }))
    }
}
