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
    /// The accounts view is not built yet (the projector has not started, or has not caught up
    /// with the account's adoption): nothing was checked or counted; try again shortly.
    #[error("系统正在启动，账号信息尚未就绪，请稍后重试")]
    NotReady,
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
/// The roles of an account as the `roles` column holds them (comma-separated).
fn roles_of(column: &str) -> Vec<String> {
    column
        .split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

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
            roles: roles_of(&roles),
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

mod adoption;
mod login;
mod passwords;
mod sessions;
mod user;

use passwords::{DECOY_HASH, password_matches};
use sessions::RecentSessions;
pub use user::{AccountSummary, LoginOutcome, NewUser, Session, User};
