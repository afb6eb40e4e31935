//! Accounts and login sessions: argon2id password hashes and random bearer tokens, kept in the
//! read store's `users` and `sessions` tables (of which only a SHA-256 of each token), with the
//! rules a level-3 system is assessed on: password complexity and first-login change, lockout
//! after failed logins, idle and absolute session timeouts, disabled accounts.

mod journal;
mod login_throttle;
mod password_policy;

use std::net::IpAddr;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;
use zhzj_store::sql::timestamp_text;
use zhzj_store::{Clock, ReadStore};

pub use journal::{AccountJournal, GATEWAY_ACTOR};
pub use login_throttle::LockoutPolicy;
use login_throttle::{HashingGate, LoginThrottle, account_subject, address_subject};
pub use password_policy::PasswordPolicy;
use zhzj_proto::Actor;
use zhzj_proto::accounts::{
    AccountAction, AccountChange, AccountRights, LockoutScope, LoginFailure, Role,
};

/// Longest username.
const MAX_USERNAME: usize = 64;

/// The roles an account may hold, by name.
pub fn role_names() -> impl Iterator<Item = &'static str> {
    Role::ALL.into_iter().map(Role::as_str)
}

fn role_list() -> String {
    role_names().collect::<Vec<_>>().join("、")
}

/// How often a session's last use is written (the idle timeout is counted from it).
const LAST_SEEN_RESOLUTION_SECS: i64 = 60;

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
    /// No such account.
    #[error("没有用户 {0}")]
    NoSuchUser(String),
    /// The current password given to change it was wrong.
    #[error("当前密码不正确")]
    WrongPassword,
    /// Too many logins are waiting for the password hasher.
    #[error("登录请求过多，请稍后重试")]
    Busy,
    /// The read store failed.
    #[error("read store: {0}")]
    Database(#[from] sqlx::Error),
    /// Hashing failed.
    #[error("password hashing: {0}")]
    Hash(String),
    /// The log refused to record the change (the actor may not make it).
    #[error("{0}")]
    Refused(String),
    /// The change could not be recorded in the log, so it was not made.
    #[error("账号变更无法写入日志，未执行: {0}")]
    Unavailable(String),
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
    /// Whether the password is a first one the user must replace at their first login (an
    /// administrator's account for someone else); false for accounts provisioned ready to use.
    pub must_change_password: bool,
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
    /// The password must be changed before anything else (a first or reset password, or one
    /// older than the maximum age).
    pub must_change_password: bool,
}

impl User {
    /// Whether the user may send commands: `viewer` and `auditor` accounts are read-only.
    pub fn may_write(&self) -> bool {
        self.known_roles()
            .any(|role| !matches!(role, Role::Viewer | Role::Auditor))
    }

    /// Whether the user holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        role.is_in(&self.roles)
    }

    /// Whether the user holds any of `roles`.
    pub fn has_any_role(&self, roles: &[Role]) -> bool {
        roles.iter().any(|role| self.has_role(*role))
    }

    /// The roles the user holds that this version knows (a name it does not know grants nothing).
    fn known_roles(&self) -> impl Iterator<Item = Role> + '_ {
        self.roles.iter().filter_map(|name| Role::parse(name))
    }

    /// Whether the user holds a role that works with cases: an auditor alone reads the audit
    /// trail and no case, whatever unit the account names.
    pub fn reads_cases(&self) -> bool {
        self.known_roles().any(|role| role != Role::Auditor)
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

/// An account as an administrator lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct AccountSummary {
    /// The account.
    #[serde(flatten)]
    pub user: User,
    /// When it was disabled, if it is.
    pub disabled_at: Option<String>,
    /// Until when failed logins lock it, if they do now.
    pub locked_until: Option<String>,
    /// When its password was last set.
    pub password_changed_at: Option<String>,
    /// When it was created.
    pub created_at: String,
}

impl AccountSummary {
    /// The account's state in words: 已停用, 已锁定至 …, 待修改密码 or 正常.
    pub fn state_label(&self) -> String {
        match (&self.disabled_at, &self.locked_until) {
            (Some(_), _) => "已停用".to_owned(),
            (None, Some(until)) => format!("已锁定至 {until}"),
            (None, None) if self.user.must_change_password => "待修改密码".to_owned(),
            (None, None) => "正常".to_owned(),
        }
    }
}

/// A new session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token (shown once, never stored).
    pub token: String,
    /// When it stops working (unless it is idle longer than the idle timeout first).
    pub expires_at: DateTime<Utc>,
    /// Whose it is.
    pub user: User,
}

/// What a login attempt came to.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Signed in.
    SignedIn(Session),
    /// A wrong username or password, or a disabled account (told apart from nothing).
    Refused,
    /// The account or the client address is locked by failed logins for this long; answered as
    /// a wrong password, with `Retry-After`.
    Locked(Duration),
}

/// The account rules of a gateway.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// How long a login lasts at most.
    pub session_ttl: Duration,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// What a password must be.
    pub password_policy: PasswordPolicy,
    /// A password older than this must be changed at the next login (none: no maximum age).
    pub password_max_age: Option<Duration>,
    /// When failed logins lock.
    pub lockout: LockoutPolicy,
    /// Password hashes computed at once (the rest of the CPU stays with signed-in users).
    pub concurrent_hashes: usize,
    /// Logins queued for a hash beyond which a login is answered 503.
    pub max_waiting_logins: usize,
}

impl Default for AccountSettings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            session_ttl: Duration::hours(12),
            idle_timeout: Duration::minutes(30),
            password_policy: PasswordPolicy::default(),
            password_max_age: None,
            lockout: LockoutPolicy::default(),
            concurrent_hashes: (cores / 2).max(1),
            max_waiting_logins: 32,
        }
    }
}

/// The accounts and sessions in a read store.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: ReadStore,
    clock: Arc<dyn Clock>,
    settings: AccountSettings,
    throttle: LoginThrottle,
    hashing: HashingGate,
    recent_sessions: Arc<RecentSessions>,
    journal: AccountJournal,
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

    /// Forgets every session of `username` (its account changed or its sessions ended).
    fn forget_user(&self, username: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            let hashes: Vec<String> = entries
                .iter()
                .filter(|(_, session)| session.user.username == username)
                .map(|(hash, _)| hash.clone())
                .collect();
            for hash in hashes {
                entries.pop(&hash);
            }
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

/// Refuses a role that is not one of [`role_names`], and an account with none.
fn check_roles(roles: &[String]) -> Result<(), AccountError> {
    if roles.is_empty() {
        return Err(AccountError::Invalid {
            field: "roles",
            message: format!("至少要有一个角色（{}）", role_list()),
        });
    }
    match roles
        .iter()
        .find(|role| !role_names().any(|name| name == role.as_str()))
    {
        Some(unknown) => Err(AccountError::Invalid {
            field: "roles",
            message: format!("没有角色 {unknown:?}；可选: {}", role_list()),
        }),
        None => Ok(()),
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

/// The columns of a credential row `users u` that [`Accounts::adopt`] records.
macro_rules! pending_columns {
    () => {
        "u.username, u.display_name, u.roles, u.unit_id, u.leader_id, u.disabled_at FROM users u"
    };
}

/// The columns `Accounts::user_from_row` reads: the rights from the accounts view
/// `account_rights a` (what the log gave the account), the password's state from the credential
/// table `users u`.
macro_rules! user_columns {
    () => {
        "a.username, a.display_name, a.roles, a.unit_id, a.leader_id, \
         COALESCE(u.must_change_password, 1) AS must_change_password, \
         COALESCE(u.password_changed_at, a.created_at) AS password_changed_at, \
         a.created_at"
    };
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Accounts {
    /// Accounts in `store`, by `settings`.
    pub fn new(
        store: ReadStore,
        clock: Arc<dyn Clock>,
        settings: AccountSettings,
        journal: AccountJournal,
    ) -> Self {
        Self {
            journal,
            throttle: LoginThrottle::new(store.clone(), settings.lockout.clone()),
            hashing: HashingGate::new(settings.concurrent_hashes, settings.max_waiting_logins),
            store,
            clock,
            settings,
            recent_sessions: Arc::new(RecentSessions::new()),
        }
    }

    /// The rules in force.
    pub fn settings(&self) -> &AccountSettings {
        &self.settings
    }

    fn user_from_row(&self, row: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
        let roles: String = row.try_get("roles")?;
        let must_change: i64 = row.try_get("must_change_password")?;
        let changed_at: Option<String> = row.try_get("password_changed_at")?;
        let created_at: String = row.try_get("created_at")?;
        let too_old = self.settings.password_max_age.is_some_and(|max_age| {
            parse_time(changed_at.as_deref().unwrap_or(&created_at))
                .is_none_or(|changed| self.clock.now() - changed > max_age)
        });
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
            must_change_password: must_change != 0 || too_old,
        })
    }

    /// Creates an account as `by` (an administrator); [`AccountError::Exists`] if the username
    /// is taken. The creation is recorded in the log first.
    pub async fn add_user(&self, by: &Actor, user: &NewUser) -> Result<(), AccountError> {
        self.insert_user(by, user).await
    }

    /// Creates an account unless the username exists; true if it was created.
    pub async fn ensure_user(&self, by: &Actor, user: &NewUser) -> Result<bool, AccountError> {
        match self.insert_user(by, user).await {
            Ok(()) => Ok(true),
            Err(AccountError::Exists(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Once the accounts view has reached `log_position` (the log's end when the gateway
    /// started), records the accounts it lacks as adopted ([`Accounts::adopt_unrecorded`]). On a
    /// fresh system the view may not exist yet: a failure is tried again every half second, for
    /// a minute. Gives up quietly at `shutdown`.
    pub async fn adopt_when_caught_up(
        &self,
        log_position: u64,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        const RETRIES: u32 = 120;
        let mut failures = 0;
        loop {
            let caught_up = matches!(
                self.journal.accounts_view_position().await,
                Ok(reached) if reached >= log_position
            );
            if caught_up {
                match self.adopt_unrecorded().await {
                    Ok(0) => return,
                    Ok(adopted) => {
                        tracing::info!(
                            adopted,
                            "accounts made before the log recorded them are now in the log"
                        );
                        return;
                    }
                    Err(e) if failures >= RETRIES => {
                        tracing::error!(error = %e, "accounts not in the log could not be recorded; they are recorded at their first login or the gateway's next start");
                        return;
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::debug!(error = %e, "accounts not in the log: trying again");
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            }
        }
    }

    /// Records in the log, as adopted, every account of the credential table the log does not
    /// hold yet (accounts made before accounts were recorded in the log); how many it recorded.
    pub async fn adopt_unrecorded(&self) -> Result<usize, AccountError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            pending_columns!(),
            " WHERE NOT EXISTS \
             (SELECT 1 FROM account_rights a WHERE a.username = u.username)"
        ))
        .fetch_all(self.store.pool())
        .await?;
        let mut adopted = 0;
        for row in rows {
            if self.adopt(&row).await? {
                adopted += 1;
            }
        }
        Ok(adopted)
    }

    /// Records one account of the credential table that the log does not hold ([`Accounts::
    /// adopt_unrecorded`]) and waits until the accounts view shows it: a login of an account
    /// made by `zhzj user add` while the system was not running. False when it has no such row.
    async fn adopt_pending(&self, username: &str) -> Result<bool, AccountError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            pending_columns!(),
            " WHERE u.username = $1 \
             AND NOT EXISTS (SELECT 1 FROM account_rights a WHERE a.username = u.username)"
        ))
        .bind(username)
        .fetch_optional(self.store.pool())
        .await?;
        match row {
            Some(row) => {
                self.adopt(&row).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Records a credential row as an adopted account (and disabled, if it is); false when the
    /// log already held it.
    async fn adopt(&self, row: &sqlx::any::AnyRow) -> Result<bool, AccountError> {
        let actor = AccountJournal::system_admin("adopt");
        let username: String = row.try_get("username")?;
        let roles: String = row.try_get("roles")?;
        let change = AccountChange::Create {
            display_name: row.try_get("display_name")?,
            rights: AccountRights {
                roles: roles
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect(),
                unit_id: row.try_get("unit_id")?,
                leader_id: row.try_get("leader_id")?,
            },
            adopted: true,
        };
        match self
            .journal
            .record_visible(actor.clone(), &username, change)
            .await
        {
            Ok(_) => {}
            Err(AccountError::Exists(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        if row.try_get::<Option<String>, _>("disabled_at")?.is_some() {
            let disabled = AccountChange::Action {
                action: AccountAction::Disabled,
            };
            self.journal
                .record_visible(actor, &username, disabled)
                .await?;
        }
        Ok(true)
    }

    /// Creates an account in the credential table only, for `zhzj user add` while the log cannot
    /// be reached (the system is not running yet: its first administrator). It has no rights
    /// until the log records it, which the gateway does at its start or at the account's first
    /// login (as 登记原有账号). [`AccountError::Exists`] if the username is taken.
    pub async fn add_pending(&self, user: &NewUser) -> Result<(), AccountError> {
        self.check_new_user(user)?;
        let hash = self.hash(&user.password).await?;
        let inserted = self.write_credentials(user, &hash, false).await?;
        if inserted == 0 {
            return Err(AccountError::Exists(user.username.clone()));
        }
        Ok(())
    }

    /// Refuses a password the rules do not allow for `username`, with the reason.
    pub fn check_password(&self, username: &str, password: &str) -> Result<(), AccountError> {
        match self.settings.password_policy.refusal(username, password) {
            Some(message) => Err(AccountError::Invalid {
                field: "password",
                message,
            }),
            None => Ok(()),
        }
    }

    /// Refuses a unit or a leader the org directory does not hold. A system whose directory is
    /// still empty (its first administrator is made before the directory is imported) checks
    /// nothing and says so in the log.
    pub async fn check_directory(
        &self,
        unit_id: Option<&str>,
        leader_id: Option<&str>,
    ) -> Result<(), AccountError> {
        if (unit_id.is_some() || leader_id.is_some())
            && !self
                .directory_holds("SELECT unit_id FROM org_units LIMIT 1", "")
                .await?
        {
            tracing::warn!(
                unit = ?unit_id,
                leader = ?leader_id,
                "the org directory is empty: the account's unit and leader are not checked"
            );
            return Ok(());
        }
        if let Some(unit) = unit_id {
            let known = self
                .directory_holds("SELECT unit_id FROM org_units WHERE unit_id = $1", unit)
                .await?;
            if !known {
                return Err(AccountError::Invalid {
                    field: "unit",
                    message: format!(
                        "组织目录中没有单位 {unit:?}（先导入组织目录，或检查单位编号）"
                    ),
                });
            }
        }
        if let Some(leader) = leader_id {
            let known = self
                .directory_holds(
                    "SELECT leader_id FROM org_leaders WHERE leader_id = $1",
                    leader,
                )
                .await?;
            if !known {
                return Err(AccountError::Invalid {
                    field: "leader",
                    message: format!("组织目录中没有领导 {leader:?}"),
                });
            }
        }
        Ok(())
    }

    /// Whether `query` (with `id` as `$1`, or none if empty) finds a row; false before the
    /// directory's projection made its tables.
    async fn directory_holds(&self, query: &'static str, id: &str) -> Result<bool, AccountError> {
        let mut lookup = sqlx::query_scalar::<_, String>(query);
        if !id.is_empty() {
            lookup = lookup.bind(id);
        }
        match lookup.fetch_optional(self.store.pool()).await {
            Ok(found) => Ok(found.is_some()),
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("42P01")
                    || e.message().contains("no such table") =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn hash(&self, password: &str) -> Result<String, AccountError> {
        let password = password.to_owned();
        self.hashing
            .run(move || hash_password(&password))
            .await
            .map_err(|_| AccountError::Busy)?
    }

    /// Writes the credential row of a new account; with `replace`, over one already there (the
    /// log has just accepted the account, so a row left from before is stale). Rows written.
    async fn write_credentials(
        &self,
        user: &NewUser,
        hash: &str,
        replace: bool,
    ) -> Result<u64, AccountError> {
        let conflict = if replace {
            "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, \
             must_change_password = excluded.must_change_password, \
             password_changed_at = excluded.password_changed_at"
        } else {
            "ON CONFLICT DO NOTHING"
        };
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO users (username, display_name, password_hash, roles, unit_id, leader_id, \
             created_at, must_change_password, password_changed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7) {conflict}"
        )))
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(hash)
        .bind(user.roles.join(","))
        .bind(&user.unit_id)
        .bind(&user.leader_id)
        .bind(timestamp_text(self.clock.now()))
        .bind(i64::from(user.must_change_password))
        .execute(self.store.pool())
        .await?
        .rows_affected())
    }

    /// Refuses a new account whose username, roles, password or name break a rule.
    fn check_new_user(&self, user: &NewUser) -> Result<(), AccountError> {
        check_username(&user.username)?;
        check_roles(&user.roles)?;
        self.check_password(&user.username, &user.password)?;
        if user.display_name.trim().is_empty() {
            return Err(AccountError::Invalid {
                field: "display_name",
                message: "姓名不能为空".into(),
            });
        }
        Ok(())
    }

    async fn insert_user(&self, by: &Actor, user: &NewUser) -> Result<(), AccountError> {
        self.check_new_user(user)?;
        let hash = self.hash(&user.password).await?;
        let rights = AccountRights {
            roles: user.roles.clone(),
            unit_id: user.unit_id.clone(),
            leader_id: user.leader_id.clone(),
        };
        let create = AccountChange::Create {
            display_name: user.display_name.clone(),
            rights,
            adopted: false,
        };
        self.journal
            .record_visible(by.clone(), &user.username, create)
            .await?;
        // The credential row; `roles`, `unit_id` and `leader_id` there are as created, for
        // reference only: rights are read from `account_rights`.
        self.write_credentials(user, &hash, true).await?;
        Ok(())
    }

    /// Checks a username and password from `client`; on success opens a session. Failed logins
    /// are counted against the account (known or not) and the client address; either locked
    /// answers [`LoginOutcome::Locked`] without checking the password at all.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<LoginOutcome, AccountError> {
        let now = self.clock.now();
        let account = account_subject(username);
        let address = client.map(address_subject);
        let subjects: Vec<String> = std::iter::once(account.clone())
            .chain(address.clone())
            .collect();
        if let Some(left) = self.throttle.locked_for(&subjects, now).await? {
            tracing::warn!(%username, client = ?client, "login refused: locked by failed logins");
            return Ok(LoginOutcome::Locked(left));
        }
        let mut row = self.credentials_and_rights(username).await?;
        if row.is_none() && self.adopt_pending(username).await? {
            row = self.credentials_and_rights(username).await?;
        }
        let (user, hash, disabled) = match &row {
            Some(row) => (
                Some(self.user_from_row(row)?),
                row.try_get::<String, _>("password_hash")?,
                row.try_get::<i64, _>("disabled")? != 0,
            ),
            None => (None, DECOY_HASH.to_owned(), false),
        };
        let client_address = client.map(|ip| ip.to_string());
        let given = password.to_owned();
        let matches = self
            .hashing
            .run(move || password_matches(&given, &hash))
            .await
            .map_err(|_| AccountError::Busy)?;
        let Some(user) = user.clone().filter(|_| matches && !disabled) else {
            let reason = match (&user, disabled) {
                (None, _) => LoginFailure::UnknownAccount,
                (Some(_), true) => LoginFailure::Disabled,
                (Some(_), false) => LoginFailure::WrongPassword,
            };
            self.record_failure(
                username,
                AccountChange::LoginFailed {
                    client_address: client_address.clone(),
                    reason,
                },
            )
            .await;
            let policy = self.throttle.policy();
            let mut locked = self
                .throttle
                .record_failure(&account, policy.max_failures_per_account, now)
                .await?
                .map(|until| (until, LockoutScope::Account));
            if let Some(address) = &address {
                let by_address = self
                    .throttle
                    .record_failure(address, policy.max_failures_per_address, now)
                    .await?
                    .map(|until| (until, LockoutScope::Address));
                locked = locked.or(by_address);
            }
            match locked {
                Some((until, scope)) => {
                    tracing::warn!(%username, client = ?client, %until, "failed login; locked");
                    self.record_failure(
                        username,
                        AccountChange::LockedOut {
                            client_address,
                            scope,
                            until,
                        },
                    )
                    .await;
                    return Ok(LoginOutcome::Locked(until - now));
                }
                None => {
                    tracing::info!(%username, client = ?client, disabled, "failed login");
                    return Ok(LoginOutcome::Refused);
                }
            }
        };
        // A login the log cannot record does not happen (fail closed: the trail must be whole).
        self.journal
            .record(
                user.actor(),
                &user.username,
                AccountChange::LoginSucceeded { client_address },
            )
            .await?;
        self.throttle.clear(&account).await?;
        let mut token_bytes = [0_u8; 32];
        getrandom::fill(&mut token_bytes).map_err(|e| AccountError::Hash(e.to_string()))?;
        let token = hex::encode(token_bytes);
        let expires_at = now + self.settings.session_ttl;
        sqlx::query(
            "INSERT INTO sessions (token_hash, username, created_at, expires_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $3)",
        )
        .bind(sha256_hex(&token))
        .bind(&user.username)
        .bind(timestamp_text(now))
        .bind(timestamp_text(expires_at))
        .execute(self.store.pool())
        .await?;
        Ok(LoginOutcome::SignedIn(Session {
            token,
            expires_at,
            user,
        }))
    }

    /// The account's rights (from the log) and password hash, for a login.
    async fn credentials_and_rights(
        &self,
        username: &str,
    ) -> Result<Option<sqlx::any::AnyRow>, AccountError> {
        Ok(sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", u.password_hash, a.disabled \
             FROM account_rights a JOIN users u ON u.username = a.username \
             WHERE a.username = $1"
        ))
        .bind(username)
        .fetch_optional(self.store.pool())
        .await?)
    }

    /// Records a failed login or a lockout in the log, as the gateway. Best effort: the login is
    /// refused either way, and a log that cannot be reached is said in the service's log.
    async fn record_failure(&self, username: &str, change: AccountChange) {
        if let Err(e) = self
            .journal
            .record(AccountJournal::gateway_actor(), username, change)
            .await
        {
            tracing::error!(error = %e, %username, "a failed login could not be recorded in the log");
        }
    }

    /// The user a token belongs to, if the session is open: not expired, not idle longer than
    /// the idle timeout, the account not disabled. While the read store does not answer, a
    /// session it confirmed in the last minutes still counts (see `RecentSessions`).
    pub async fn session_user(&self, token: &str) -> Result<Option<User>, AccountError> {
        let hash = sha256_hex(token);
        let now = self.clock.now();
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", s.expires_at, s.last_seen_at, s.created_at AS opened_at \
             FROM sessions s JOIN account_rights a ON a.username = s.username \
             LEFT JOIN users u ON u.username = s.username \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND a.disabled = 0"
        ))
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
        let last_seen: Option<String> = row.try_get("last_seen_at")?;
        let opened_at: String = row.try_get("opened_at")?;
        let last_seen = parse_time(last_seen.as_deref().unwrap_or(&opened_at));
        if last_seen.is_none_or(|seen| now - seen > self.settings.idle_timeout) {
            tracing::info!("session ended: idle longer than the idle timeout");
            self.end_session_hash(&hash).await?;
            return Ok(None);
        }
        if last_seen.is_some_and(|seen| (now - seen).num_seconds() >= LAST_SEEN_RESOLUTION_SECS) {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(timestamp_text(now))
                .bind(&hash)
                .execute(self.store.pool())
                .await?;
        }
        let user = self.user_from_row(&row)?;
        let expires_at: String = row.try_get("expires_at")?;
        if let Some(expires_at) = parse_time(&expires_at) {
            self.recent_sessions.remember(
                &hash,
                RecentSession {
                    user: user.clone(),
                    expires_at,
                    confirmed_at: now,
                },
            );
        }
        Ok(Some(user))
    }

    async fn end_session_hash(&self, hash: &str) -> Result<(), AccountError> {
        self.recent_sessions.forget(hash);
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_at <= $2")
            .bind(hash)
            .bind(timestamp_text(self.clock.now()))
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Ends a session (and any expired ones).
    pub async fn logout(&self, token: &str) -> Result<(), AccountError> {
        self.end_session_hash(&sha256_hex(token)).await
    }

    /// Ends every session of `username` as `by` (an administrator), recorded in the log; how
    /// many there were.
    pub async fn end_sessions(&self, by: &Actor, username: &str) -> Result<u64, AccountError> {
        self.administer(by, username, AccountAction::SessionsEnded)
            .await?;
        self.drop_sessions(username).await
    }

    /// Deletes every session of `username`; how many there were.
    async fn drop_sessions(&self, username: &str) -> Result<u64, AccountError> {
        self.recent_sessions.forget_user(username);
        Ok(sqlx::query("DELETE FROM sessions WHERE username = $1")
            .bind(username)
            .execute(self.store.pool())
            .await?
            .rows_affected())
    }

    /// Records an administrator's action in the log and waits until the accounts view shows it.
    async fn administer(
        &self,
        by: &Actor,
        username: &str,
        action: AccountAction,
    ) -> Result<u64, AccountError> {
        self.journal
            .record_visible(by.clone(), username, AccountChange::Action { action })
            .await
    }

    /// The user's own change of their password: the current one must be right, the new one
    /// follow the rules and differ from it. Their other sessions end. Recorded in the log.
    pub async fn change_password(
        &self,
        token: &str,
        username: &str,
        current: &str,
        new: &str,
    ) -> Result<(), AccountError> {
        let hash: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(self.store.pool())
                .await?;
        let hash = hash.ok_or_else(|| AccountError::NoSuchUser(username.to_owned()))?;
        let given = current.to_owned();
        let matches = self
            .hashing
            .run(move || password_matches(&given, &hash))
            .await
            .map_err(|_| AccountError::Busy)?;
        if !matches {
            return Err(AccountError::WrongPassword);
        }
        if current == new {
            return Err(AccountError::Invalid {
                field: "new_password",
                message: "新密码不能与当前密码相同".into(),
            });
        }
        self.check_password(username, new)?;
        let hash = self.hash(new).await?;
        let own = Actor {
            user_id: username.to_owned(),
            roles: Vec::new(),
            unit_id: None,
            leader_id: None,
        };
        self.journal
            .record(
                own,
                username,
                AccountChange::Action {
                    action: AccountAction::PasswordChanged,
                },
            )
            .await?;
        self.store_password(username, &hash, false).await?;
        sqlx::query("DELETE FROM sessions WHERE username = $1 AND token_hash <> $2")
            .bind(username)
            .bind(sha256_hex(token))
            .execute(self.store.pool())
            .await?;
        self.recent_sessions.forget_user(username);
        Ok(())
    }

    /// An administrator's reset: the new password follows the rules, must be changed at the
    /// next login, and every session of the account ends. The log records that it was reset
    /// (never the password). An account the log holds without a credential row (its read store
    /// was rebuilt from the log) gets one.
    pub async fn reset_password(
        &self,
        by: &Actor,
        username: &str,
        new: &str,
    ) -> Result<(), AccountError> {
        self.check_password(username, new)?;
        let hash = self.hash(new).await?;
        self.administer(by, username, AccountAction::PasswordReset)
            .await?;
        self.store_password(username, &hash, true).await?;
        self.drop_sessions(username).await?;
        Ok(())
    }

    /// Writes a password hash for an account of `account_rights`, creating its credential row
    /// when it has none.
    async fn store_password(
        &self,
        username: &str,
        hash: &str,
        must_change: bool,
    ) -> Result<(), AccountError> {
        let now = timestamp_text(self.clock.now());
        let written = sqlx::query(
            "INSERT INTO users (username, display_name, password_hash, roles, unit_id, leader_id, \
             created_at, must_change_password, password_changed_at) \
             SELECT a.username, a.display_name, $1, a.roles, a.unit_id, a.leader_id, \
             a.created_at, $2, $3 FROM account_rights a WHERE a.username = $4 \
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, \
             must_change_password = excluded.must_change_password, \
             password_changed_at = excluded.password_changed_at",
        )
        .bind(hash)
        .bind(i64::from(must_change))
        .bind(&now)
        .bind(username)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        if written == 0 {
            return Err(AccountError::NoSuchUser(username.to_owned()));
        }
        Ok(())
    }

    /// Lifts a lockout of the account by failed logins, as `by` (recorded in the log); true if
    /// it had failures recorded.
    pub async fn unlock(&self, by: &Actor, username: &str) -> Result<bool, AccountError> {
        self.administer(by, username, AccountAction::Unlocked)
            .await?;
        Ok(self.throttle.clear(&account_subject(username)).await?)
    }

    /// Disables (true) or enables an account as `by`, recorded in the log; disabling ends its
    /// sessions.
    pub async fn set_disabled(
        &self,
        by: &Actor,
        username: &str,
        disabled: bool,
    ) -> Result<(), AccountError> {
        let action = if disabled {
            AccountAction::Disabled
        } else {
            AccountAction::Enabled
        };
        self.administer(by, username, action).await?;
        let at = disabled.then(|| timestamp_text(self.clock.now()));
        sqlx::query(
            "UPDATE users SET disabled_at = CASE WHEN CAST($1 AS TEXT) IS NULL THEN NULL \
             ELSE COALESCE(disabled_at, CAST($1 AS TEXT)) END WHERE username = $2",
        )
        .bind(at)
        .bind(username)
        .execute(self.store.pool())
        .await?;
        if disabled {
            self.drop_sessions(username).await?;
        }
        Ok(())
    }

    /// Changes an account's roles, unit and bound leader as `by` (checked like a new
    /// account's, recorded in the log); its sessions carry the change from their next request.
    pub async fn set_assignment(
        &self,
        by: &Actor,
        username: &str,
        roles: &[String],
        unit_id: Option<&str>,
        leader_id: Option<&str>,
    ) -> Result<(), AccountError> {
        check_roles(roles)?;
        self.check_directory(unit_id, leader_id).await?;
        let rights = AccountRights {
            roles: roles.to_vec(),
            unit_id: unit_id.map(str::to_owned),
            leader_id: leader_id.map(str::to_owned),
        };
        self.journal
            .record_visible(by.clone(), username, AccountChange::ChangeRights { rights })
            .await?;
        sqlx::query(
            "UPDATE users SET roles = $1, unit_id = $2, leader_id = $3 WHERE username = $4",
        )
        .bind(roles.join(","))
        .bind(unit_id)
        .bind(leader_id)
        .bind(username)
        .execute(self.store.pool())
        .await?;
        self.recent_sessions.forget_user(username);
        Ok(())
    }

    /// Every account the log holds, by username, with whether it is disabled or locked now.
    pub async fn list(&self) -> Result<Vec<AccountSummary>, AccountError> {
        let now = timestamp_text(self.clock.now());
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", CASE WHEN a.disabled <> 0 THEN COALESCE(u.disabled_at, a.created_at) END \
             AS disabled_at, \
             (SELECT f.locked_until FROM login_failures f \
              WHERE f.subject = 'user:' || a.username AND f.locked_until > $1) AS locked_until \
             FROM account_rights a LEFT JOIN users u ON u.username = a.username \
             ORDER BY a.username"
        ))
        .bind(&now)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AccountSummary {
                    user: self.user_from_row(row)?,
                    disabled_at: row.try_get("disabled_at")?,
                    locked_until: row.try_get("locked_until")?,
                    password_changed_at: row.try_get("password_changed_at")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(AccountError::from)
    }
}
