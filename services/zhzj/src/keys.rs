//! The master key that wraps petitioners' data keys: where it lives, making one (once, whatever
//! number of processes start together), rotating it; and `zhzj log init`.

use std::sync::Arc;

use anyhow::{Context, bail};
use zhzj_trust::nats_access::NatsRole;

use crate::cli::CommonOptions;
use crate::connections::{connect_log, nats_url};

/// The master key file the options name.
pub fn master_key_path(options: &CommonOptions) -> std::path::PathBuf {
    options
        .security
        .master_key_file
        .clone()
        .unwrap_or_else(|| options.data_dir.join("master.key"))
}

/// The master key that wraps petitioners' data keys: the default one is made on first start
/// (like the signing key), one given with `--master-key-file` must exist. Every process of a
/// deployment must use the same one.
pub fn master_key(options: &CommonOptions) -> anyhow::Result<Arc<zhzj_privacy::MasterKey>> {
    ensure_master_key(options)?;
    let algorithm: zhzj_privacy::Algorithm = options
        .security
        .personal_data_cipher
        .parse()
        .context("--personal-data-cipher")?;
    let path = master_key_path(options);
    Ok(Arc::new(
        zhzj_privacy::MasterKey::load(&path, algorithm).with_context(|| {
            format!(
                "the master key of personal data ({}; `zhzj up` makes one, or give --master-key-file)",
                path.display()
            )
        })?,
    ))
}

/// `zhzj keys new-master-key PATH`.
pub fn new_master_key(path: &std::path::Path) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{} exists; a master key is never overwritten",
            path.display()
        );
    }
    let key = zhzj_privacy::MasterKey::generate_hex()?;
    zhzj_trust::keys::write_private_file(path, &format!("{}\n", key.as_str()))?;
    println!("wrote a new master key to {} (mode 0600)", path.display());
    Ok(())
}

/// `zhzj keys rotate`: every data key wrapped again by the new master key, with the admin
/// credential; the sealed data in the log is not touched.
pub async fn rotate_master_key(
    options: CommonOptions,
    new_key: &std::path::Path,
) -> anyhow::Result<()> {
    let old = master_key(&options)?;
    let new = Arc::new(
        zhzj_privacy::MasterKey::load(new_key, old.algorithm()).context("--new-master-key-file")?,
    );
    let url = nats_url(&options)?;
    let conn = connect_log(&url, &options, NatsRole::Admin).await?;
    let vault =
        zhzj_store::PersonalDataVault::connect(conn.client.clone(), Arc::clone(&new)).await?;
    let rewrapped = vault.rewrap_all(&old).await?;
    conn.client.flush().await?;
    println!(
        "{rewrapped} data keys now wrapped by master key {} (was {}); start every role with \
         --master-key-file {} and destroy the old key",
        new.id(),
        old.id(),
        new_key.display()
    );
    Ok(())
}

/// Makes the default master key file if it is missing. Processes of one data dir start at once
/// (`zhzj run cases` beside `zhzj run gateway`): the key is written to a file of its own (a random
/// name) and linked into place, which fails for all but the first, so every process reads the
/// same complete key.
pub fn ensure_master_key(options: &CommonOptions) -> anyhow::Result<()> {
    let path = master_key_path(options);
    if options.security.master_key_file.is_some() || path.exists() {
        return Ok(());
    }
    let key = zhzj_privacy::MasterKey::generate_hex()?;
    let own = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
    zhzj_trust::keys::write_private_file(&own, &format!("{}\n", key.as_str()))?;
    let linked = std::fs::hard_link(&own, &path);
    std::fs::remove_file(&own).with_context(|| format!("removing {}", own.display()))?;
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "made the master key of personal data; keep a copy offline");
            Ok(())
        }
        // Another process of this data dir made it first: its key is the one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// `zhzj log init`: creates or upgrades the stream with the admin credential.
pub async fn log_init(options: CommonOptions) -> anyhow::Result<()> {
    let url = nats_url(&options)?;
    let conn = connect_log(&url, &options, NatsRole::Admin).await?;
    let last = conn.log.last_position().await?;
    println!(
        "stream {} ready (deny delete, deny purge, seals); last position {last}",
        zhzj_proto::subjects::EVENT_STREAM
    );
    conn.client.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Commands};

    /// Processes of one data dir starting together all end up with the one same master key.
    #[test]
    fn processes_starting_together_share_one_master_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().display().to_string();
        let cli = Cli::try_parse_from(["zhzj", "up", "--data-dir", data.as_str()])?;
        let Commands::Up(up) = cli.command else {
            anyhow::bail!("parsed `up` as another command");
        };
        let options = std::sync::Arc::new(up.options);
        let starters: Vec<_> = (0..8)
            .map(|_| {
                let options = std::sync::Arc::clone(&options);
                std::thread::spawn(move || {
                    super::master_key(&options).map(|key| key.id().to_owned())
                })
            })
            .collect();
        let mut ids = Vec::new();
        for starter in starters {
            ids.push(
                starter
                    .join()
                    .map_err(|_| anyhow::anyhow!("a starter panicked"))??,
            );
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one key: {ids:?}");
        let left: Vec<_> = std::fs::read_dir(dir.path())?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["master.key"], "no temporary file is left");
        Ok(())
    }
}
