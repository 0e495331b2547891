//! In-process adapters for local mode (`waconnect local`): no AWS account, no network.

mod embedded_store;
mod media_dir;
mod memory_queue;

pub use embedded_store::EmbeddedStore;
pub use media_dir::LocalMediaDir;
pub use memory_queue::{DeadLetter, MemoryQueue};
