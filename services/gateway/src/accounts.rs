//! Accounts and login sessions: argon2id password hashes and random bearer tokens, kept in the
//! read store's `users` and `sessions` tables (of which only a SHA-256 of each token).

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;
use zhzj_store::sql::timestamp_text;
use zhzj_store::{Clock, ReadStore};

/// Longest username.
const MAX_USERNAME: usize = 64;
/// Shortest password.
const MIN_PASSWORD: usize = 8;
/// Longest password (argon2 takes any length; this bounds the work an attacker can ask for).
const MAX_PASSWORD: usize = 256;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A field breaks a rule.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The rule.
        message: String,
    },
    /// The username is taken.
    #[error("用户名 {0} 已存在")]
    Exists(String),
    /// The read store failed.
    #[error("read store: {0}")]
    Database(#[from] sqlx::Error),
    /// Hashing failed.
    #[error("password hashing: {0}")]
    Hash(String),
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name (letters, digits, `-`, `_`, `.`).
    pub username: String,
    /// Password in clear; only its hash is stored.
    pub password: String,
    /// Name shown in the interface.
    pub display_name: String,
    /// Role names (`admin`, `coordinator`, `viewer`, …).
    pub roles: Vec<String>,
    /// The org unit the user works in.
    pub unit_id: Option<String>,
    /// The leader the user is, for the `leader` role.
    pub leader_id: Option<String>,
}

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct User {
    /// Login name; it is the actor id of the user's commands.
    pub username: String,
    /// Name shown in the interface.
    pub display_name: String,
    /// Role names.
    pub roles: Vec<String>,
    /// The org unit the user works in.
    pub unit_id: Option<String>,
    /// The leader the user is, for the `leader` role.
    pub leader_id: Option<String>,
}

impl User {
    /// Whether the user may send commands. Until roles and scopes arrive, only `viewer`-only
    /// accounts are read-only.
    pub fn may_write(&self) -> bool {
        self.roles.iter().any(|role| role != "viewer")
    }

    /// The actor the user's commands carry.
    pub fn actor(&self) -> zhzj_proto::Actor {
        zhzj_proto::Actor {
            user_id: self.username.clone(),
            roles: self.roles.clone(),
            unit_id: self.unit_id.clone(),
            leader_id: self.leader_id.clone(),
        }
    }
}

/// A new session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token (shown once, never stored).
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Whose it is.
    pub user: User,
}

/// The accounts and sessions in a read store.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: ReadStore,
    clock: Arc<dyn Clock>,
    session_ttl: Duration,
    recent_sessions: Arc<RecentSessions>,
}

/// Sessions this gateway confirmed lately, by token hash: used only while the read store does
/// not answer, so that signed-in people keep working through a short database outage. Whenever
/// the store answers it decides (a logout or expiry there ends the session here too).
#[derive(Debug)]
struct RecentSessions {
    entries: std::sync::Mutex<lru::LruCache<String, RecentSession>>,
}

#[derive(Debug, Clone)]
struct RecentSession {
    user: User,
    expires_at: DateTime<Utc>,
    confirmed_at: DateTime<Utc>,
}

/// Sessions remembered at most.
const RECENT_SESSIONS: usize = 10_000;

/// How long after the store last confirmed a session it is still honoured without the store.
const OUTAGE_GRACE_MINUTES: i64 = 10;

impl RecentSessions {
    fn new() -> Self {
        let capacity =
            std::num::NonZeroUsize::new(RECENT_SESSIONS).unwrap_or(std::num::NonZeroUsize::MIN);
        Self {
            entries: std::sync::Mutex::new(lru::LruCache::new(capacity)),
        }
    }

    fn remember(&self, hash: &str, session: RecentSession) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(hash.to_owned(), session);
        }
    }

    fn forget(&self, hash: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.pop(hash);
        }
    }

    /// The user of a session confirmed within the grace period and not expired at `now`.
    fn during_outage(&self, hash: &str, now: DateTime<Utc>) -> Option<User> {
        let mut entries = self.entries.lock().ok()?;
        let session = entries.get(hash)?;
        (session.expires_at > now
            && now - session.confirmed_at < Duration::minutes(OUTAGE_GRACE_MINUTES))
        .then(|| session.user.clone())
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn check_username(username: &str) -> Result<(), AccountError> {
    let valid = !username.is_empty()
        && username.len() <= MAX_USERNAME
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(AccountError::Invalid {
            field: "username",
            message: format!("用户名须为 1 至 {MAX_USERNAME} 个字母、数字或 - _ ."),
        })
    }
}

fn check_password(password: &str) -> Result<(), AccountError> {
    let length = password.chars().count();
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        Ok(())
    } else {
        Err(AccountError::Invalid {
            field: "password",
            message: format!("密码长度须为 {MIN_PASSWORD} 至 {MAX_PASSWORD} 个字符"),
        })
    }
}

/// An argon2id PHC string of `password` with a fresh random salt.
fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Verified against when the username is unknown, so that a wrong name takes as long as a wrong
/// password and does not tell which names exist.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$o1m0m4v1JcZcJm3qbUQk2cTtCkP6o0V6w1dW1HnU6uA";

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    let roles: String = row.try_get("roles")?;
    Ok(User {
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        unit_id: row.try_get("unit_id")?,
        leader_id: row.try_get("leader_id")?,
    })
}

impl Accounts {
    /// Accounts in `store`; sessions last `session_ttl`.
    pub fn new(store: ReadStore, clock: Arc<dyn Clock>, session_ttl: Duration) -> Self {
        Self {
            store,
            clock,
            session_ttl,
            recent_sessions: Arc::new(RecentSessions::new()),
        }
    }

    /// Creates an account; [`AccountError::Exists`] if the username is taken.
    pub async fn add_user(&self, user: &NewUser) -> Result<(), AccountError> {
        if self.insert_user(user).await? {
            Ok(())
        } else {
            Err(AccountError::Exists(user.username.clone()))
        }
    }

    /// Creates an account unless the username exists; true if it was created.
    pub async fn ensure_user(&self, user: &NewUser) -> Result<bool, AccountError> {
        self.insert_user(user).await
    }

    async fn insert_user(&self, user: &NewUser) -> Result<bool, AccountError> {
        check_username(&user.username)?;
        check_password(&user.password)?;
        if user.display_name.trim().is_empty() {
            return Err(AccountError::Invalid {
                field: "display_name",
                message: "姓名不能为空".into(),
            });
        }
        let password = user.password.clone();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| AccountError::Hash(e.to_string()))??;
        let inserted = sqlx::query(
            "INSERT INTO users \
             (username, display_name, password_hash, roles, unit_id, leader_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(hash)
        .bind(user.roles.join(","))
        .bind(&user.unit_id)
        .bind(&user.leader_id)
        .bind(timestamp_text(self.clock.now()))
        .execute(self.store.pool())
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Checks a username and password; on success opens a session.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<Session>, AccountError> {
        let row = sqlx::query(
            "SELECT username, display_name, password_hash, roles, unit_id, leader_id FROM users \
             WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(self.store.pool())
        .await?;
        let (user, hash) = match &row {
            Some(row) => (
                Some(user_from_row(row)?),
                row.try_get::<String, _>("password_hash")?,
            ),
            None => (None, DECOY_HASH.to_owned()),
        };
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || password_matches(&password, &hash))
            .await
            .map_err(|e| AccountError::Hash(e.to_string()))?;
        let Some(user) = user.filter(|_| matches) else {
            return Ok(None);
        };
        let mut token_bytes = [0_u8; 32];
        getrandom::fill(&mut token_bytes).map_err(|e| AccountError::Hash(e.to_string()))?;
        let token = hex::encode(token_bytes);
        let now = self.clock.now();
        let expires_at = now + self.session_ttl;
        sqlx::query(
            "INSERT INTO sessions (token_hash, username, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256_hex(&token))
        .bind(&user.username)
        .bind(timestamp_text(now))
        .bind(timestamp_text(expires_at))
        .execute(self.store.pool())
        .await?;
        Ok(Some(Session {
            token,
            expires_at,
            user,
        }))
    }

    /// The user a token belongs to, if the session is open. While the read store does not
    /// answer, a session it confirmed in the last minutes still counts (see `RecentSessions`).
    pub async fn session_user(&self, token: &str) -> Result<Option<User>, AccountError> {
        let hash = sha256_hex(token);
        let now = self.clock.now();
        let row = sqlx::query(
            "SELECT u.username, u.display_name, u.roles, u.unit_id, u.leader_id, s.expires_at \
             FROM sessions s JOIN users u ON u.username = s.username \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(&hash)
        .bind(timestamp_text(now))
        .fetch_optional(self.store.pool())
        .await;
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                if let Some(user) = self.recent_sessions.during_outage(&hash, now) {
                    tracing::warn!(error = %e, username = %user.username, "read store unavailable; honouring a recently confirmed session");
                    return Ok(Some(user));
                }
                return Err(e.into());
            }
        };
        let Some(row) = row else {
            self.recent_sessions.forget(&hash);
            return Ok(None);
        };
        let user = user_from_row(&row)?;
        let expires_at: String = row.try_get("expires_at")?;
        if let Ok(expires_at) = DateTime::parse_from_rfc3339(&expires_at) {
            self.recent_sessions.remember(
                &hash,
                RecentSession {
                    user: user.clone(),
                    expires_at: expires_at.with_timezone(&Utc),
                    confirmed_at: now,
                },
            );
        }
        Ok(Some(user))
    }

    /// Ends a session (and any expired ones).
    pub async fn logout(&self, token: &str) -> Result<(), AccountError> {
        self.recent_sessions.forget(&sha256_hex(token));
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_at <= $2")
            .bind(sha256_hex(token))
            .bind(timestamp_text(self.clock.now()))
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}
