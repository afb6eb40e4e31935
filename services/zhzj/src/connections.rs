//! Connecting a role to its parts: the NATS URL and this role's credentials, the event log (with
//! its signer and trusted keys), and the read store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use zhzj_app::RoleConnections;
use zhzj_local_nats::url_file;
use zhzj_store::{CommitSigner, EventLog, LogConfig, ReadStore, sql::sqlite_url};
use zhzj_trust::nats_access::{self, ClientCredentials, NatsRole};

use crate::cli::CommonOptions;
use crate::keys::master_key;

/// The read-store URL the options name.
pub fn database_url(options: &CommonOptions) -> String {
    options
        .database_url
        .clone()
        .unwrap_or_else(|| sqlite_url(&options.data_dir.join("zhzj.sqlite")))
}

/// The NATS URL the options name, or the one a running `zhzj up` wrote into the data dir.
pub fn nats_url(options: &CommonOptions) -> anyhow::Result<String> {
    if let Some(url) = &options.nats_url {
        return Ok(url.clone());
    }
    std::fs::read_to_string(url_file(&options.data_dir))
        .map(|s| s.trim().to_owned())
        .with_context(|| {
            format!(
                "no --nats-url given and no running `zhzj up` found in {}",
                options.data_dir.display()
            )
        })
}

/// The credentials `role` connects with: an explicit one (`--nats-nkey`, `--nats-creds`,
/// `--nats-user`), else the role's file in the credentials directory, else none (a server without
/// authentication); and TLS when configured.
pub fn credentials_for(options: &CommonOptions, role: NatsRole) -> ClientCredentials {
    let security = &options.security;
    let explicit = security.nats_nkey.is_some()
        || security.nats_creds.is_some()
        || security.nats_user.is_some();
    let mut credentials = if explicit {
        ClientCredentials {
            nkey_file: security.nats_nkey.clone(),
            creds_file: security.nats_creds.clone(),
            user: security.nats_user.clone(),
            password: security.nats_password.clone(),
            ..ClientCredentials::default()
        }
    } else {
        let dir = security.nats_credentials.clone().or_else(|| {
            let dir = nats_access::credentials_dir(&options.data_dir);
            dir.exists().then_some(dir)
        });
        dir.map_or_else(ClientCredentials::default, |dir| {
            ClientCredentials::of_role(&dir, role)
        })
    };
    credentials.tls_ca.clone_from(&security.nats_tls_ca);
    credentials.tls_cert.clone_from(&security.nats_tls_cert);
    credentials.tls_key.clone_from(&security.nats_tls_key);
    let authenticates = credentials.authenticates();
    credentials.inbox_prefix = security
        .nats_inbox_prefix
        .clone()
        .or(credentials.inbox_prefix)
        .or_else(|| authenticates.then(|| role.inbox_prefix()));
    credentials
}

/// Connects to NATS at `url` (one URL or a cluster's comma-separated list) as `role`.
pub async fn connect_nats(
    url: &str,
    options: &CommonOptions,
    role: NatsRole,
) -> anyhow::Result<async_nats::Client> {
    let settings = zhzj_store::nats::NatsConnectOptions {
        name: format!("zhzj-{}", role.name()),
        request_timeout: Duration::from_millis(options.nats_request_timeout_ms.max(1)),
        credentials: credentials_for(options, role),
    };
    Ok(zhzj_store::nats::connect(url, &settings).await?)
}

/// Connects to NATS as `role` (opening the stream) and to the read store (migrating it).
pub async fn connect(
    url: &str,
    options: &CommonOptions,
    role: NatsRole,
) -> anyhow::Result<RoleConnections> {
    let mut conn = connect_log(url, options, role).await?;
    conn.store = Some(ReadStore::connect(&database_url(options)).await?);
    Ok(conn)
}

/// How long a starting process keeps trying to open the stream while JetStream does not answer
/// (a cluster still electing its leaders) before it gives up.
pub(crate) const OPEN_LOG_PATIENCE: Duration = Duration::from_secs(30);

/// Opens the stream, trying again while JetStream is unavailable; a misconfigured stream fails
/// at once.
pub(crate) async fn open_log(
    client: &async_nats::Client,
    config: &LogConfig,
) -> anyhow::Result<EventLog> {
    let deadline = tokio::time::Instant::now() + OPEN_LOG_PATIENCE;
    loop {
        let e = match EventLog::open(client.clone(), config).await {
            Ok(log) => return Ok(log),
            Err(e @ zhzj_store::LogError::Unavailable(_)) => e,
            Err(e) => return Err(e.into()),
        };
        // A refused request is never answered: no retry helps once NATS said why.
        if let Some(refused) = zhzj_store::nats::last_permission_violation() {
            bail!(
                "NATS refused this credential an operation opening the log needs ({refused}); \
                 creating or upgrading the stream takes the admin credential: \
                 `zhzj log init --nats-nkey admin.nk`"
            );
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(e.into());
        }
        tracing::warn!(error = %e, "the event stream does not answer yet; trying again");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The commit signing key of the command services, made under the data dir on first start.
pub fn signer(options: &CommonOptions) -> anyhow::Result<Arc<CommitSigner>> {
    let security = &options.security;
    let trusted = trusted_keys_path(options);
    let signer = match &security.signing_key {
        Some(path) => {
            let signer = CommitSigner::load(path).context("--signing-key / ZHZJ_SIGNING_KEY")?;
            signer.trust_in(&trusted)?;
            signer
        }
        None => CommitSigner::load_or_create(&options.data_dir.join("signing.key"), &trusted)?,
    };
    Ok(Arc::new(signer))
}

/// The trusted-keys file the options name.
pub fn trusted_keys_path(options: &CommonOptions) -> std::path::PathBuf {
    options
        .security
        .trusted_keys
        .clone()
        .unwrap_or_else(|| options.data_dir.join("trusted-keys"))
}

/// Connects to NATS as `role` and opens the stream, without the read store. The command
/// services' log signs what it appends.
pub(crate) async fn connect_log(
    url: &str,
    options: &CommonOptions,
    role: NatsRole,
) -> anyhow::Result<RoleConnections> {
    crate::private_files::private_data_dir(&options.data_dir)?;
    let client = connect_nats(url, options, role).await?;
    let authenticated = credentials_for(options, role).authenticates();
    let config = LogConfig {
        replicas: options.stream_replicas,
        // Only the admin credential may shape the stream; without authentication anyone may.
        administer: role == NatsRole::Admin || !authenticated,
        ..LogConfig::default()
    };
    let mut log = open_log(&client, &config).await?;
    let mut sealer = None;
    if matches!(role, NatsRole::Cases | NatsRole::Campaign) {
        let signer = signer(options)?;
        log = log.with_signer(Arc::clone(&signer));
        sealer = Some(zhzj_store::Sealer::new(log.clone(), signer));
    }
    let vault = if matches!(
        role,
        NatsRole::Cases | NatsRole::Campaign | NatsRole::Gateway
    ) {
        Some(zhzj_store::PersonalDataVault::connect(client.clone(), master_key(options)?).await?)
    } else {
        None
    };
    Ok(RoleConnections {
        client,
        log,
        store: None,
        sealer,
        vault,
    })
}
