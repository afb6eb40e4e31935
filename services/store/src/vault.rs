//! The key store of petitioners' personal data: a JetStream key-value bucket beside the log, not
//! in it. Every petitioner's fields are sealed under a data key of their own, stored here only
//! wrapped by the master key; erasing a petitioner securely erases their key's message, after which
//! the sealed fields in the log open for no one (crypto-shredding) and the log stays whole.
//!
//! Why a bucket on NATS and not a table in the read store: the cases service, which seals at the
//! moment it appends, has only NATS; the bucket is replicated and backed up with the log it
//! belongs to (a read store is disposable and rebuildable, keys are not); and its stream allows
//! message erasure while the log's denies it.

use std::sync::Arc;

use async_nats::jetstream::{self, kv, stream};
use zhzj_privacy::{BlindIndexKey, DataKey, MasterKey, PrivacyError};
use zhzj_proto::events::{Petitioner, SealedPetitioner};

/// The bucket's name (its stream is `KV_ZHZJ_DATA_KEYS`).
pub const DATA_KEY_BUCKET: &str = "ZHZJ_DATA_KEYS";
/// The entry holding the blind-index key.
const INDEX_KEY_ENTRY: &str = "blind-index";

/// What the vault can fail with.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// NATS or the bucket did not answer as expected.
    #[error("key store: {0}")]
    Unavailable(String),
    /// Sealing, opening or (un)wrapping failed.
    #[error("personal data: {0}")]
    Crypto(#[from] PrivacyError),
    /// A petitioner could not be written or read as JSON.
    #[error("personal data is not a petitioner: {0}")]
    Json(#[from] serde_json::Error),
}

fn unavailable(e: impl std::fmt::Display) -> VaultError {
    VaultError::Unavailable(e.to_string())
}

/// Seals and opens petitioners' personal data.
#[derive(Debug, Clone)]
pub struct PersonalDataVault {
    keys: kv::Store,
    master: Arc<MasterKey>,
    index: Arc<tokio::sync::OnceCell<BlindIndexKey>>,
}

/// Creates the bucket if it is missing (an administrator's step, with the log's stream).
pub async fn create_bucket(client: async_nats::Client, replicas: usize) -> Result<(), VaultError> {
    let js = jetstream::new(client);
    let name = format!("KV_{DATA_KEY_BUCKET}");
    if js.get_stream(&name).await.is_ok() {
        return Ok(());
    }
    js.create_stream(stream::Config {
        name,
        subjects: vec![format!("$KV.{DATA_KEY_BUCKET}.>")],
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        allow_rollup: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        // Erasure overwrites a key's message: unlike the log, this stream allows deletes.
        deny_delete: false,
        ..Default::default()
    })
    .await
    .map_err(unavailable)?;
    Ok(())
}

impl PersonalDataVault {
    /// The vault on the bucket (which must exist), wrapping keys with `master`.
    pub async fn connect(
        client: async_nats::Client,
        master: Arc<MasterKey>,
    ) -> Result<Self, VaultError> {
        let keys = jetstream::new(client)
            .get_key_value(DATA_KEY_BUCKET)
            .await
            .map_err(|e| {
                VaultError::Unavailable(format!(
                    "bucket {DATA_KEY_BUCKET}: {e} (run `zhzj log init` with the admin credential)"
                ))
            })?;
        Ok(Self {
            keys,
            master,
            index: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// The master key in use.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    async fn wrapped(&self, key_id: &str) -> Result<Option<String>, VaultError> {
        match self.keys.get(key_id).await.map_err(unavailable)? {
            Some(bytes) => Ok(Some(
                String::from_utf8(bytes.to_vec()).map_err(unavailable)?,
            )),
            None => Ok(None),
        }
    }

    /// The blind-index key, made on first use and kept for good.
    async fn index_key(&self) -> Result<&BlindIndexKey, VaultError> {
        self.index
            .get_or_try_init(|| async {
                if let Some(wrapped) = self.wrapped(INDEX_KEY_ENTRY).await? {
                    return Ok(BlindIndexKey::new(
                        self.master.unwrap(INDEX_KEY_ENTRY, &wrapped)?,
                    ));
                }
                let key = DataKey::generate()?;
                let wrapped = self.master.wrap(INDEX_KEY_ENTRY, &key)?;
                match self
                    .keys
                    .create(INDEX_KEY_ENTRY, wrapped.into_bytes().into())
                    .await
                {
                    Ok(_) => Ok(BlindIndexKey::new(key)),
                    // Another process made it first: use theirs.
                    Err(_) => {
                        let wrapped = self.wrapped(INDEX_KEY_ENTRY).await?.ok_or_else(|| {
                            VaultError::Unavailable("the blind-index key could not be made".into())
                        })?;
                        Ok(BlindIndexKey::new(
                            self.master.unwrap(INDEX_KEY_ENTRY, &wrapped)?,
                        ))
                    }
                }
            })
            .await
    }

    /// The blind index of an ID number.
    pub async fn id_index(&self, id_number: &str) -> Result<String, VaultError> {
        Ok(self.index_key().await?.id_number(id_number))
    }

    /// The blind index of a name (in its normal form) in a town.
    pub async fn name_index(
        &self,
        normalized_name: &str,
        town_id: &str,
    ) -> Result<String, VaultError> {
        Ok(self
            .index_key()
            .await?
            .name_in_town(normalized_name, town_id))
    }

    /// `petitioner` sealed under a new data key of their own (stored wrapped before this returns),
    /// with the blind indexes of their ID number and of their name in `town_id`.
    pub async fn seal(
        &self,
        petitioner: &Petitioner,
        town_id: Option<&str>,
    ) -> Result<SealedPetitioner, VaultError> {
        let key_id = format!("pk-{}", uuid::Uuid::new_v4().simple());
        let data_key = DataKey::generate()?;
        let wrapped = self.master.wrap(&key_id, &data_key)?;
        self.keys
            .create(&key_id, wrapped.into_bytes().into())
            .await
            .map_err(unavailable)?;
        let sealed = data_key.seal(
            self.master.algorithm(),
            key_id.as_bytes(),
            &serde_json::to_vec(petitioner)?,
        )?;
        let id_index = match &petitioner.id_number {
            Some(id) => Some(self.id_index(id).await?),
            None => None,
        };
        let name_index = match town_id {
            Some(town) => Some(self.name_index(&petitioner.name, town).await?),
            None => None,
        };
        Ok(SealedPetitioner {
            key_id,
            sealed,
            id_index,
            name_index,
        })
    }

    /// The petitioner sealed in `sealed`; none once they were erased (their key is gone).
    pub async fn unseal(
        &self,
        sealed: &SealedPetitioner,
    ) -> Result<Option<Petitioner>, VaultError> {
        let Some(wrapped) = self.wrapped(&sealed.key_id).await? else {
            return Ok(None);
        };
        let data_key = self.master.unwrap(&sealed.key_id, &wrapped)?;
        let json = data_key.open(sealed.key_id.as_bytes(), &sealed.sealed)?;
        Ok(Some(serde_json::from_slice(&json)?))
    }

    /// Destroys the data key `key_id`: its message is securely erased from the bucket (the
    /// server overwrites it). True if there was one.
    pub async fn erase(&self, key_id: &str) -> Result<bool, VaultError> {
        let Some(entry) = self.keys.entry(key_id).await.map_err(unavailable)? else {
            return Ok(false);
        };
        self.keys
            .stream
            .delete_message(entry.revision)
            .await
            .map_err(unavailable)
    }

    /// Drops the data key `key_id` that sealed nothing the log holds (its registration was
    /// refused): a purge marker replaces it, which the command services may publish. What the
    /// key sealed was never stored, so no secure erase of its bytes is needed.
    pub async fn discard_unused(&self, key_id: &str) -> Result<(), VaultError> {
        self.keys.purge(key_id).await.map_err(unavailable)
    }

    /// Every wrapped key wrapped again by this vault's master key, from `old`'s (rotation); the
    /// sealed data in the log does not change. Returns how many keys were rewrapped.
    pub async fn rewrap_all(&self, old: &MasterKey) -> Result<usize, VaultError> {
        use futures::TryStreamExt as _;
        let names: Vec<String> = self
            .keys
            .keys()
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        let mut count = 0;
        for name in names {
            let Some(wrapped) = self.wrapped(&name).await? else {
                continue;
            };
            let rewrapped = self.master.rewrap(old, &name, &wrapped)?;
            if rewrapped != wrapped {
                self.keys
                    .put(&name, rewrapped.into_bytes().into())
                    .await
                    .map_err(unavailable)?;
                count += 1;
            }
        }
        Ok(count)
    }
}
