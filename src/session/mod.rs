//! Sessions and refresh tokens: the validated metadata map ([`metadata`]), the records
//! ([`records`]), the async [`Store`] trait ([`store`]) with its backends ([`memory`],
//! [`embedded`], [`redis`]), and the logout outbox entries ([`outbox`]). Nothing here knows about
//! HTTP.

pub mod embedded;
pub mod memory;
pub mod metadata;
pub mod options;
pub mod outbox;
pub mod records;
pub mod redis;
pub mod store;
pub mod user_id;

pub use metadata::{Metadata, MetadataEdit, MetadataError, RecordKind};
pub use outbox::{Leased, OutboxEntry};
pub use records::{
    refresh_token_id, session_id, ClientRef, Device, Lifetimes, RefreshToken, ResourceServer, Session, Timestamp,
    Tombstone, Versioned,
};
pub use store::{Cursor, MetadataChange, Page, Store, StoreError};
pub use user_id::UserIdEncoding;

use std::sync::Arc;

use options::{Backend, StoreConfig};

/// Opens the backend `[store]` names.
pub async fn open_store(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    let ttl = config.tombstone_ttl.0;
    Ok(match config.backend {
        Backend::Memory => Arc::new(memory::MemoryStore::new(ttl)),
        Backend::Embedded => Arc::new(embedded::EmbeddedStore::open(&config.path, ttl)?),
        Backend::Redis => {
            let url =
                config.redis_url.as_deref().ok_or_else(|| StoreError::Backend("store.redis_url is not set".into()))?;
            Arc::new(redis::RedisStore::connect(url, &config.redis_key_prefix, ttl, config.redis_timeout.0).await?)
        }
    })
}
