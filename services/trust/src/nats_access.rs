//! Who may do what on NATS: one NATS user per zhzj role, authenticated by an NKey, allowed only
//! the subjects that role needs; the nats-server configuration that grants it; and the options a
//! role connects with (NKey seed, JWT credentials or user and password, TLS).
//!
//! The stream's own administration (create, update, purge, delete, delete a message) is allowed
//! to the `admin` user alone, which no running service holds: `zhzj up` uses it once at start to
//! create or upgrade the stream, and a cluster's operators keep it offline (`zhzj log init`).

use std::path::{Path, PathBuf};

use crate::keys::{KeyError, write_private_file};

/// The JetStream stream the log lives in (also `zhzj_proto::subjects::EVENT_STREAM`).
const STREAM: &str = "ZHZJ_EVENTS";

/// A NATS identity of zhzj.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatsRole {
    /// The HTTP gateway: sends commands, reads the stream's state.
    Gateway,
    /// The command line (`zhzj command`, `status`, `rebuild`, `verify`): as the gateway.
    Cli,
    /// The cases command service: answers its commands, appends commits and seals.
    Cases,
    /// The campaign command service: as `cases`, on its own command subject.
    Campaign,
    /// The projector: reads the stream, nothing else.
    Projector,
    /// Creates and reconfigures the stream; held by no running service.
    Admin,
}

/// What a NATS user may publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// Subjects it may publish to.
    pub publish: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe: Vec<String>,
    /// Whether it may answer the requests it receives (on their reply subjects only).
    pub allow_responses: bool,
}

/// The JetStream API subjects that read the stream: its state, single messages, and consumers
/// (the projector's and replays' cursors) — never its configuration or its messages' deletion.
fn read_stream_subjects() -> Vec<String> {
    [
        "$JS.API.INFO".to_owned(),
        format!("$JS.API.STREAM.INFO.{STREAM}"),
        format!("$JS.API.STREAM.MSG.GET.{STREAM}"),
        format!("$JS.API.DIRECT.GET.{STREAM}"),
        format!("$JS.API.DIRECT.GET.{STREAM}.>"),
        format!("$JS.API.CONSUMER.CREATE.{STREAM}"),
        format!("$JS.API.CONSUMER.CREATE.{STREAM}.>"),
        format!("$JS.API.CONSUMER.DELETE.{STREAM}.>"),
        format!("$JS.API.CONSUMER.INFO.{STREAM}.>"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}.>"),
    ]
    .into()
}

/// Reading the personal-data key bucket (`zhzj_store::vault`): the gateway opens sealed fields
/// for those allowed to see them, the command services seal and erase.
fn read_key_subjects() -> Vec<String> {
    [
        "$JS.API.STREAM.INFO.KV_ZHZJ_DATA_KEYS".to_owned(),
        "$JS.API.STREAM.MSG.GET.KV_ZHZJ_DATA_KEYS".to_owned(),
        "$JS.API.DIRECT.GET.KV_ZHZJ_DATA_KEYS.>".to_owned(),
    ]
    .into()
}

impl NatsRole {
    /// Every role, in the order the configuration lists them.
    pub const ALL: [Self; 6] = [
        Self::Gateway,
        Self::Cli,
        Self::Cases,
        Self::Campaign,
        Self::Projector,
        Self::Admin,
    ];

    /// Its name: the credential file's stem and the client name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Cli => "cli",
            Self::Cases => "cases",
            Self::Campaign => "campaign",
            Self::Projector => "projector",
            Self::Admin => "admin",
        }
    }

    /// The prefix of its reply inboxes: each role receives only its own replies.
    pub fn inbox_prefix(self) -> String {
        format!("_INBOX_zhzj_{}", self.name())
    }

    /// What it may do; None for the admin, who may do everything.
    pub fn permissions(self) -> Option<Permissions> {
        let inbox = format!("{}.>", self.inbox_prefix());
        let mut publish = read_stream_subjects();
        let (subscribe, allow_responses) = match self {
            Self::Admin => return None,
            Self::Gateway | Self::Cli => {
                publish.push("zhzj.cmd.>".into());
                publish.extend(read_key_subjects());
                (vec![inbox], false)
            }
            Self::Cases | Self::Campaign => {
                publish.extend(["zhzj.ev.>".to_owned(), "zhzj.seal".to_owned()]);
                publish.extend(read_key_subjects());
                // Keys are added; a petitioner's key is securely deleted when an administrator's
                // erasure command is accepted (the command service checks who asks). No more
                // power than writing a key already gives, and no message of the log.
                publish.push("$KV.ZHZJ_DATA_KEYS.>".to_owned());
                if self == Self::Cases {
                    publish.push("$JS.API.STREAM.MSG.DELETE.KV_ZHZJ_DATA_KEYS".to_owned());
                }
                let own = if self == Self::Cases {
                    "zhzj.cmd.cases"
                } else {
                    "zhzj.cmd.campaign"
                };
                (
                    vec![own.to_owned(), "zhzj.cmd.seal".to_owned(), inbox],
                    true,
                )
            }
            Self::Projector => (vec![inbox], false),
        };
        Some(Permissions {
            publish,
            subscribe,
            allow_responses,
        })
    }
}

/// The credentials directory `zhzj up` keeps under its data dir.
pub fn credentials_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("nats-credentials")
}

/// The NKey seed file of a role in a credentials directory.
pub fn nkey_file(dir: &Path, role: NatsRole) -> PathBuf {
    dir.join(format!("{}.nk", role.name()))
}

/// The nats-server configuration fragment in a credentials directory.
pub fn authorization_file(dir: &Path) -> PathBuf {
    dir.join("authorization.conf")
}

fn seed_of(path: &Path) -> Result<nkeys::KeyPair, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    nkeys::KeyPair::from_seed(text.trim()).map_err(|e| KeyError::Malformed {
        path: path.display().to_string(),
        reason: format!("not an NKey user seed: {e}"),
    })
}

/// Makes the credentials of every role in `dir` (0700) — each `<role>.nk` an NKey user seed
/// (0600), kept if already there so that they are stable across restarts — and writes
/// `authorization.conf`, the nats-server configuration that admits them. Returns that
/// configuration.
pub fn ensure_credentials(dir: &Path) -> Result<String, KeyError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|source| KeyError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    let mut users = Vec::new();
    for role in NatsRole::ALL {
        let path = nkey_file(dir, role);
        let pair = if path.exists() {
            seed_of(&path)?
        } else {
            let pair = nkeys::KeyPair::new_user();
            let seed = pair.seed().map_err(|e| KeyError::Random(e.to_string()))?;
            write_private_file(&path, &format!("{seed}\n"))?;
            pair
        };
        users.push((role, pair.public_key()));
    }
    let config = authorization_config(&users);
    write_private_file(&authorization_file(dir), &config)?;
    Ok(config)
}

fn quoted_list(subjects: &[String]) -> String {
    subjects
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The nats-server `authorization` block admitting each role's NKey with its permissions.
pub fn authorization_config(users: &[(NatsRole, String)]) -> String {
    let mut text = String::from(
        "# zhzj's NATS users, one per role (written by zhzj; see README, \"Security\").\n\
         authorization {\n  users = [\n",
    );
    for (role, public_key) in users {
        text.push_str(&format!("    # {}\n", role.name()));
        match role.permissions() {
            None => text.push_str(&format!("    {{ nkey: \"{public_key}\" }}\n")),
            Some(p) => {
                text.push_str(&format!(
                    "    {{ nkey: \"{public_key}\", permissions: {{\n      publish: {{ allow: [{}] }}\n      subscribe: {{ allow: [{}] }}\n",
                    quoted_list(&p.publish),
                    quoted_list(&p.subscribe)
                ));
                if p.allow_responses {
                    text.push_str("      allow_responses: true\n");
                }
                text.push_str("    } }\n");
            }
        }
    }
    text.push_str("  ]\n}\n");
    text
}

/// How a process authenticates to NATS and secures the connection.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    /// A file holding an NKey user seed (what `zhzj nats-credentials` writes).
    pub nkey_file: Option<PathBuf>,
    /// A JWT credentials file (operator mode).
    pub creds_file: Option<PathBuf>,
    /// A user name, with `password`.
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<String>,
    /// The CA certificate(s) the server's certificate must chain to; implies TLS.
    pub tls_ca: Option<PathBuf>,
    /// This client's certificate, for servers that verify clients.
    pub tls_cert: Option<PathBuf>,
    /// This client's private key.
    pub tls_key: Option<PathBuf>,
    /// Reply inbox prefix; it must be one the user may subscribe to.
    pub inbox_prefix: Option<String>,
}

/// The credentials given cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A file could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The combination of settings makes no sense.
    #[error("{0}")]
    Invalid(String),
}

impl ClientCredentials {
    /// The credentials of `role` in a directory `ensure_credentials` wrote.
    pub fn of_role(dir: &Path, role: NatsRole) -> Self {
        Self {
            nkey_file: Some(nkey_file(dir, role)),
            inbox_prefix: Some(role.inbox_prefix()),
            ..Self::default()
        }
    }

    /// Whether any means of authentication is set.
    pub fn authenticates(&self) -> bool {
        self.nkey_file.is_some() || self.creds_file.is_some() || self.user.is_some()
    }

    /// Applies them to connect options.
    pub async fn apply(
        &self,
        mut options: async_nats::ConnectOptions,
    ) -> Result<async_nats::ConnectOptions, CredentialsError> {
        let means = [
            self.nkey_file.is_some(),
            self.creds_file.is_some(),
            self.user.is_some(),
        ];
        if means.iter().filter(|set| **set).count() > 1 {
            return Err(CredentialsError::Invalid(
                "give one of --nats-nkey, --nats-creds and --nats-user, not several".into(),
            ));
        }
        if let Some(path) = &self.nkey_file {
            let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
                path: path.display().to_string(),
                source,
            })?;
            seed_of(path)?;
            options = options.nkey(text.trim().to_owned());
        }
        if let Some(path) = &self.creds_file {
            options = options
                .credentials_file(path)
                .await
                .map_err(|source| KeyError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
        }
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => {
                options = options.user_and_password(user.clone(), password.clone());
            }
            (Some(_), None) => {
                return Err(CredentialsError::Invalid(
                    "--nats-user needs --nats-password".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(CredentialsError::Invalid(
                    "--nats-password needs --nats-user".into(),
                ));
            }
            (None, None) => {}
        }
        for path in [&self.tls_ca, &self.tls_cert, &self.tls_key]
            .into_iter()
            .flatten()
        {
            if !path.exists() {
                return Err(KeyError::Io {
                    path: path.display().to_string(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                }
                .into());
            }
        }
        if self.tls_ca.is_some() || self.tls_cert.is_some() {
            install_crypto_provider();
        }
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                options = options
                    .add_client_certificate(cert.clone(), key.clone())
                    .require_tls(true);
            }
            (None, None) => {}
            _ => {
                return Err(CredentialsError::Invalid(
                    "--nats-tls-cert and --nats-tls-key go together".into(),
                ));
            }
        }
        if let Some(prefix) = &self.inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        Ok(options)
    }
}

/// Installs rustls's ring provider as the process default, once (later calls, or a provider
/// installed before, leave it as it is): TLS then never depends on which other crate of the
/// build enabled which provider.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_command_services_may_append_and_only_gateway_and_cli_may_command() {
        for role in NatsRole::ALL {
            let Some(p) = role.permissions() else {
                assert_eq!(role, NatsRole::Admin);
                continue;
            };
            let appends = p.publish.iter().any(|s| s == "zhzj.ev.>");
            assert_eq!(
                appends,
                matches!(role, NatsRole::Cases | NatsRole::Campaign),
                "{role:?}"
            );
            let commands = p.publish.iter().any(|s| s.starts_with("zhzj.cmd"));
            assert_eq!(
                commands,
                matches!(role, NatsRole::Gateway | NatsRole::Cli),
                "{role:?}"
            );
            for subject in &p.publish {
                for forbidden in ["STREAM.CREATE", "STREAM.UPDATE", "STREAM.DELETE", "PURGE"] {
                    assert!(!subject.contains(forbidden), "{role:?} may {subject}");
                }
                // Only a key of the bucket may be deleted, only by the case service (erasure).
                if subject.contains("MSG.DELETE") {
                    assert_eq!(role, NatsRole::Cases, "{role:?} may {subject}");
                    assert_eq!(subject, "$JS.API.STREAM.MSG.DELETE.KV_ZHZJ_DATA_KEYS");
                }
                assert_ne!(subject, ">", "{role:?}");
            }
            assert!(
                p.subscribe
                    .iter()
                    .all(|s| !s.starts_with("_INBOX.") && s != ">"),
                "{role:?} reads others' replies"
            );
        }
    }

    #[test]
    fn credentials_are_private_and_stable() -> Result<(), KeyError> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().map_err(|e| KeyError::Random(e.to_string()))?;
        let creds = dir.path().join("creds");
        let first = ensure_credentials(&creds)?;
        let second = ensure_credentials(&creds)?;
        assert_eq!(first, second, "stable across restarts");
        assert_eq!(first.matches("nkey:").count(), NatsRole::ALL.len());
        for role in NatsRole::ALL {
            let mode = std::fs::metadata(nkey_file(&creds, role))
                .map_err(|e| KeyError::Random(e.to_string()))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{role:?}");
            let seed = std::fs::read_to_string(nkey_file(&creds, role))
                .map_err(|e| KeyError::Random(e.to_string()))?;
            assert!(seed.starts_with("SU"), "{role:?}: a user seed");
            assert!(
                !first.contains(seed.trim()),
                "no seed in the server configuration"
            );
        }
        Ok(())
    }
}
