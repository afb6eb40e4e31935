//! The key store of petitioners' personal data: a JetStream key-value bucket beside the log, not
//! in it. Every petitioner's fields are sealed under a data key of their own, stored here only
//! wrapped by the master key; erasing a petitioner securely erases their key, after which the
//! sealed fields in the log open for no one (crypto-shredding) and the log stays whole.
//!
//! Keys are made ahead in batches of [`KEYS_PER_BATCH`], one bucket entry per batch (`kb-<id>`,
//! a JSON map from slot to wrapped key; a key's id is `kb-<id>.<slot>`), so that registering a
//! case costs no round trip to the bucket most of the time. Erasing one key rewrites its batch
//! without it and then securely deletes the previous revision (the bucket keeps two revisions, so
//! that the server never drops the old one unerased). Keys made one per entry (`pk-<id>`) by
//! earlier releases are read and erased as before.
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
/// Data keys made, wrapped and stored together in one bucket entry.
pub const KEYS_PER_BATCH: usize = 64;
/// Revisions the bucket keeps of an entry: two, so that rewriting a batch never lets the server
/// drop the previous revision (and the erased key in it) without erasing it.
const BUCKET_HISTORY: i64 = 2;

/// Where a key is kept: its entry, and its slot in a batch entry.
fn locate(key_id: &str) -> (&str, Option<&str>) {
    match key_id.rsplit_once('.') {
        Some((entry, slot)) if entry.starts_with("kb-") => (entry, Some(slot)),
        _ => (key_id, None),
    }
}

/// `petitioner` as the JSON array `[name, id_number, phone, address]`: what is sealed, a third
/// shorter than the object (every byte is stored and copied with each registration). Unsealing
/// reads the array and the object form earlier registrations were sealed in alike.
fn compact_json(petitioner: &Petitioner) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&(
        &petitioner.name,
        &petitioner.id_number,
        &petitioner.phone,
        &petitioner.address,
    ))
}

/// Keys made ahead and not handed out yet, the next one last.
type ReadyKeys = Vec<(String, DataKey)>;

/// The data keys a vault hands out: the batch in hand, and the next one being made.
#[derive(Debug, Default)]
struct KeySupply {
    ready: ReadyKeys,
    ahead: Option<tokio::task::JoinHandle<Result<ReadyKeys, VaultError>>>,
}

/// A new batch of [`KEYS_PER_BATCH`] data keys, stored wrapped in one bucket entry before this
/// returns; handed out from slot 0 up.
async fn make_batch(keys: &kv::Store, master: &MasterKey) -> Result<ReadyKeys, VaultError> {
    let batch_id = format!("kb-{}", zhzj_privacy::random_id()?);
    let mut entry = std::collections::BTreeMap::new();
    let mut made = Vec::with_capacity(KEYS_PER_BATCH);
    for slot in 0..KEYS_PER_BATCH {
        let key_id = format!("{batch_id}.{slot}");
        let key = DataKey::generate()?;
        entry.insert(slot.to_string(), master.wrap(&key_id, &key)?);
        made.push((key_id, key));
    }
    keys.create(&batch_id, serde_json::to_vec(&entry)?.into())
        .await
        .map_err(unavailable)?;
    made.reverse();
    Ok(made)
}

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
    supply: Arc<tokio::sync::Mutex<KeySupply>>,
}

/// Creates the bucket if it is missing (an administrator's step, with the log's stream).
pub async fn create_bucket(client: async_nats::Client, replicas: usize) -> Result<(), VaultError> {
    let js = jetstream::new(client);
    let name = format!("KV_{DATA_KEY_BUCKET}");
    if let Ok(mut existing) = js.get_stream(&name).await {
        // A bucket made by an earlier release kept one revision: keep two from now on.
        let mut config = existing.info().await.map_err(unavailable)?.config.clone();
        if config.max_messages_per_subject < BUCKET_HISTORY {
            config.max_messages_per_subject = BUCKET_HISTORY;
            js.update_stream(&config).await.map_err(unavailable)?;
        }
        return Ok(());
    }
    js.create_stream(stream::Config {
        name,
        subjects: vec![format!("$KV.{DATA_KEY_BUCKET}.>")],
        max_messages_per_subject: BUCKET_HISTORY,
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
            supply: Arc::new(tokio::sync::Mutex::new(KeySupply::default())),
        })
    }

    /// The master key in use.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The wrapped key `key_id`, from its own entry or its batch's.
    async fn wrapped(&self, key_id: &str) -> Result<Option<String>, VaultError> {
        let (entry, slot) = locate(key_id);
        let Some(bytes) = self.keys.get(entry).await.map_err(unavailable)? else {
            return Ok(None);
        };
        match slot {
            None => Ok(Some(
                String::from_utf8(bytes.to_vec()).map_err(unavailable)?,
            )),
            Some(slot) => {
                let mut batch: std::collections::BTreeMap<String, String> =
                    serde_json::from_slice(&bytes)?;
                Ok(batch.remove(slot))
            }
        }
    }

    /// A data key that is stored (wrapped) and used for nothing yet: the next of the batch in
    /// hand. Half-way through a batch the next one is made in the background, so that a
    /// registration waits for the bucket only when keys are used faster than one round trip
    /// per half batch (or on the first registration).
    async fn next_key(&self) -> Result<(String, DataKey), VaultError> {
        let mut supply = self.supply.lock().await;
        if supply.ready.is_empty() {
            let made_ahead = match supply.ahead.take() {
                Some(task) => task
                    .await
                    .unwrap_or_else(|e| Err(VaultError::Unavailable(e.to_string()))),
                None => Err(VaultError::Unavailable("no batch made ahead".into())),
            };
            supply.ready = match made_ahead {
                Ok(batch) => batch,
                // Not made ahead, or that failed: make one now (and report its failure).
                Err(_) => make_batch(&self.keys, &self.master).await?,
            };
        }
        let key = supply
            .ready
            .pop()
            .ok_or_else(|| VaultError::Unavailable("an empty batch of keys".into()))?;
        if supply.ready.len() <= KEYS_PER_BATCH / 2 && supply.ahead.is_none() {
            let (keys, master) = (self.keys.clone(), self.master.clone());
            supply.ahead = Some(tokio::spawn(
                async move { make_batch(&keys, &master).await },
            ));
        }
        Ok(key)
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
        let (key_id, data_key) = self.next_key().await?;
        let sealed = data_key.seal(
            self.master.algorithm(),
            key_id.as_bytes(),
            &compact_json(petitioner)?,
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

    /// Destroys the data key `key_id`: every stored revision holding it is securely erased (the
    /// server overwrites the message); a batch is first written again without it. True if it
    /// was there.
    pub async fn erase(&self, key_id: &str) -> Result<bool, VaultError> {
        let (entry_name, slot) = locate(key_id);
        for _ in 0..8 {
            let Some(entry) = self.keys.entry(entry_name).await.map_err(unavailable)? else {
                return Ok(false);
            };
            let rest = match slot {
                None => None,
                Some(slot) => {
                    let mut batch: std::collections::BTreeMap<String, String> =
                        serde_json::from_slice(&entry.value)?;
                    if batch.remove(slot).is_none() {
                        // Gone already; a revision an interrupted erasure left is erased now.
                        self.erase_revisions_before(entry_name, entry.revision)
                            .await?;
                        return Ok(false);
                    }
                    (!batch.is_empty()).then_some(batch)
                }
            };
            if let Some(rest) = rest {
                match self
                    .keys
                    .update(
                        entry_name,
                        serde_json::to_vec(&rest)?.into(),
                        entry.revision,
                    )
                    .await
                {
                    Ok(revision) => {
                        self.erase_revisions_before(entry_name, revision).await?;
                        return Ok(true);
                    }
                    // Another erasure in the same batch got there first: read it again.
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                    Err(e) => return Err(unavailable(e)),
                }
            }
            self.erase_revisions_before(entry_name, entry.revision + 1)
                .await?;
            return Ok(true);
        }
        Err(VaultError::Unavailable(format!(
            "{entry_name}: too many concurrent erasures, retry"
        )))
    }

    /// Securely erases every stored revision of `entry` older than `revision` (read by sequence:
    /// the command services may get messages, not make consumers).
    async fn erase_revisions_before(&self, entry: &str, revision: u64) -> Result<(), VaultError> {
        let subject = format!("$KV.{DATA_KEY_BUCKET}.{entry}");
        let mut from = 1;
        while from < revision {
            let found = match self
                .keys
                .stream
                .get_first_raw_message_by_subject(&subject, from)
                .await
            {
                Ok(message) => message.sequence,
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(unavailable(e)),
            };
            if found >= revision {
                break;
            }
            self.keys
                .stream
                .delete_message(found)
                .await
                .map_err(unavailable)?;
            from = found + 1;
        }
        Ok(())
    }

    /// Drops the data key `key_id` that sealed nothing the log holds (its registration was
    /// refused). A key of a batch stays in it: what it sealed was never stored. A key with an
    /// entry of its own (earlier releases) is replaced by a purge marker, which the command
    /// services may publish.
    pub async fn discard_unused(&self, key_id: &str) -> Result<(), VaultError> {
        if locate(key_id).1.is_some() {
            return Ok(());
        }
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
            let Some(entry) = self.keys.entry(&name).await.map_err(unavailable)? else {
                continue;
            };
            let (rewrapped, changed) = if name.starts_with("kb-") {
                let mut batch: std::collections::BTreeMap<String, String> =
                    serde_json::from_slice(&entry.value)?;
                let mut changed = 0;
                for (slot, wrapped) in &mut batch {
                    let again = self
                        .master
                        .rewrap(old, &format!("{name}.{slot}"), wrapped)?;
                    if again != *wrapped {
                        *wrapped = again;
                        changed += 1;
                    }
                }
                (serde_json::to_vec(&batch)?, changed)
            } else {
                let wrapped = String::from_utf8(entry.value.to_vec()).map_err(unavailable)?;
                let again = self.master.rewrap(old, &name, &wrapped)?;
                let changed = usize::from(again != wrapped);
                (again.into_bytes(), changed)
            };
            if changed > 0 {
                let revision = self
                    .keys
                    .update(&name, rewrapped.into(), entry.revision)
                    .await
                    .map_err(unavailable)?;
                // The copy wrapped by the old master key goes too.
                self.erase_revisions_before(&name, revision).await?;
                count += changed;
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compact_form_and_the_object_form_both_read_back()
    -> Result<(), Box<dyn std::error::Error>> {
        let petitioner = Petitioner {
            name: "陈某".into(),
            id_number: Some("350203197001010011".into()),
            phone: None,
            address: Some("思明区".into()),
        };
        let compact = compact_json(&petitioner)?;
        assert_eq!(
            String::from_utf8(compact.clone())?,
            r#"["陈某","350203197001010011",null,"思明区"]"#
        );
        let object = serde_json::to_vec(&petitioner)?;
        assert!(compact.len() < object.len());
        for form in [compact, object] {
            assert_eq!(serde_json::from_slice::<Petitioner>(&form)?, petitioner);
        }
        Ok(())
    }
}
