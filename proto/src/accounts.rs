//! Accounts in the log: the events of the account aggregate (creation, rights, disabling,
//! password resets, logins, failed logins, lockouts) and the command that records them, so that
//! who was given which rights, and who signed in when, is as tamper-evident as the cases.
//!
//! No event carries a password or a password hash: those stay in the gateway's credential table.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::{EncodedEvent, EventData, EventDecodeError, EventJson};

/// The account aggregate id of a username: the username itself when it is a subject token
/// (letters, digits, `-`, `_`, at most 64), otherwise `h-` and 16 hex digits of its SHA-256 (a
/// username with a `.`, or a name typed into a failed login). The events carry the username.
pub fn account_stream_id(username: &str) -> String {
    if crate::ids::is_valid_token_id(username) {
        username.to_owned()
    } else {
        let digest = Sha256::digest(username.as_bytes());
        format!("h-{}", hex::encode(&digest[..8]))
    }
}

/// A role an account may hold. Accounts and actors carry role names (`Role::as_str`) so that a
/// name the log holds but this version does not know is kept and grants nothing; every check of
/// a role goes through this type. `Auditor` reads the audit trail and nothing else; it
/// administers no account (separation of duties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// 系统管理员: the city administrator, who may do everything but read the audit trail.
    Admin,
    /// 审计员: reads the audit trail, nothing else.
    Auditor,
    /// 专班协调员: a task force's coordinator, working the cases of their unit's area.
    Coordinator,
    /// 审核人员: reviews resolution claims at their unit's level.
    Reviewer,
    /// 包案领导: works the cases they own.
    Leader,
    /// 查看人员: reads their unit's area.
    Viewer,
}

impl Role {
    /// Every role, in the order the pages list them.
    pub const ALL: [Role; 6] = [
        Self::Admin,
        Self::Auditor,
        Self::Coordinator,
        Self::Reviewer,
        Self::Leader,
        Self::Viewer,
    ];

    /// Its name in accounts, actors and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Auditor => "auditor",
            Self::Coordinator => "coordinator",
            Self::Reviewer => "reviewer",
            Self::Leader => "leader",
            Self::Viewer => "viewer",
        }
    }

    /// The name users know it by.
    pub fn label(self) -> &'static str {
        match self {
            Self::Admin => "系统管理员",
            Self::Auditor => "审计员",
            Self::Coordinator => "专班协调员",
            Self::Reviewer => "审核人员",
            Self::Leader => "包案领导",
            Self::Viewer => "查看人员",
        }
    }

    /// The inverse of [`Role::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// Whether `names` (an account's or actor's role names) include this role.
    pub fn is_in<S: AsRef<str>>(self, names: &[S]) -> bool {
        names.iter().any(|name| name.as_ref() == self.as_str())
    }

    /// Whether `names` include a role that works with cases: an auditor alone reads the audit
    /// trail and no case, and a name this version does not know grants nothing.
    pub fn any_works_with_cases<S: AsRef<str>>(names: &[S]) -> bool {
        names
            .iter()
            .filter_map(|name| Self::parse(name.as_ref()))
            .any(|role| role != Self::Auditor)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Chinese name of a role name (the name itself when unknown).
pub fn role_label(role: &str) -> &str {
    match Role::parse(role) {
        Some(known) => known.label(),
        None => role,
    }
}

/// What a user's account gives them: roles, the unit they work in, the leader they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountRights {
    /// Role names (`admin`, `auditor`, `coordinator`, `reviewer`, `leader`, `viewer`).
    pub roles: Vec<String>,
    /// The org unit the user works in.
    #[serde(default)]
    pub unit_id: Option<String>,
    /// The leader (from the directory) the user is, for the `leader` role.
    #[serde(default)]
    pub leader_id: Option<String>,
}

/// An account is created (or an account made before accounts were in the log is adopted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountCreated {
    /// Username.
    pub username: String,
    /// The person's name, as shown.
    pub display_name: String,
    /// What the account may do.
    pub rights: AccountRights,
    /// True for an account that existed before accounts were recorded in the log.
    #[serde(default)]
    pub adopted: bool,
}

/// An account's roles, unit or bound leader are changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountRightsChanged {
    /// Username.
    pub username: String,
    /// The rights before.
    pub before: AccountRights,
    /// The rights after.
    pub after: AccountRights,
}

/// An event about one account that carries nothing but its username.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountTouched {
    /// Username.
    pub username: String,
}

/// A sign-in attempt, with the client address the gateway saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LoginAttempt {
    /// The username given (for a failed login, possibly no account's).
    pub username: String,
    /// The client address, when known.
    #[serde(default)]
    pub client_address: Option<String>,
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    /// 密码错误: the account exists, the password is wrong.
    WrongPassword,
    /// 账号不存在: no account has that username.
    UnknownAccount,
    /// 账号已停用: the account is disabled.
    Disabled,
}

impl LoginFailure {
    /// The Chinese label shown to auditors.
    pub fn label(self) -> &'static str {
        match self {
            Self::WrongPassword => "密码错误",
            Self::UnknownAccount => "账号不存在",
            Self::Disabled => "账号已停用",
        }
    }
}

/// A login failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LoginFailed {
    /// Who tried, and from where.
    #[serde(flatten)]
    pub attempt: LoginAttempt,
    /// Why it failed.
    pub reason: LoginFailure,
}

/// What failed logins locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LockoutScope {
    /// The account (too many failures for this username).
    Account,
    /// The client address (too many failures from it).
    Address,
}

/// Failed logins locked an account or a client address until `until`. Attempts while it stays
/// locked are refused without checking the password and are not recorded one by one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LoginLockedOut {
    /// The attempt that reached the limit.
    #[serde(flatten)]
    pub attempt: LoginAttempt,
    /// What is locked.
    pub scope: LockoutScope,
    /// Until when.
    pub until: DateTime<Utc>,
}

/// The data of a `LoginSucceeded` event: who signed in, from where.
pub type LoginSucceeded = LoginAttempt;

crate::events::event_data! {
    AccountCreated => 1,
    AccountRightsChanged => 1,
    LoginSucceeded => 1,
    LoginFailed => 1,
    LoginLockedOut => 1,
    // Stored under the names of [`AccountAction`]; this name is only the schema type's.
    AccountTouched => 1,
}

/// An administrator's action on an account, or the user's own password change, that carries
/// nothing but the username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountAction {
    /// 停用账号.
    Disabled,
    /// 启用账号.
    Enabled,
    /// 重置密码 by an administrator (to be changed at the next login).
    PasswordReset,
    /// 修改密码 by the user.
    PasswordChanged,
    /// 解除锁定 by an administrator.
    Unlocked,
    /// 结束会话 by an administrator.
    SessionsEnded,
}

impl AccountAction {
    /// Every action.
    pub const ALL: [Self; 6] = [
        Self::Disabled,
        Self::Enabled,
        Self::PasswordReset,
        Self::PasswordChanged,
        Self::Unlocked,
        Self::SessionsEnded,
    ];

    /// The event type it is stored as.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Disabled => "AccountDisabled",
            Self::Enabled => "AccountEnabled",
            Self::PasswordReset => "PasswordReset",
            Self::PasswordChanged => "PasswordChanged",
            Self::Unlocked => "AccountUnlocked",
            Self::SessionsEnded => "SessionsEnded",
        }
    }
}

/// Events of the account aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEvent {
    /// See [`AccountCreated`].
    Created(AccountCreated),
    /// See [`AccountRightsChanged`].
    RightsChanged(AccountRightsChanged),
    /// One of [`AccountAction`].
    Action(AccountAction, AccountTouched),
    /// A login succeeded.
    LoginSucceeded(LoginAttempt),
    /// See [`LoginFailed`].
    LoginFailed(LoginFailed),
    /// See [`LoginLockedOut`].
    LockedOut(LoginLockedOut),
}

impl AccountEvent {
    /// The event type it is stored as.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Created(_) => AccountCreated::EVENT_TYPE,
            Self::RightsChanged(_) => AccountRightsChanged::EVENT_TYPE,
            Self::Action(action, _) => action.event_type(),
            Self::LoginSucceeded(_) => LoginSucceeded::EVENT_TYPE,
            Self::LoginFailed(_) => LoginFailed::EVENT_TYPE,
            Self::LockedOut(_) => LoginLockedOut::EVENT_TYPE,
        }
    }

    /// The username the event is about.
    pub fn username(&self) -> &str {
        match self {
            Self::Created(e) => &e.username,
            Self::RightsChanged(e) => &e.username,
            Self::Action(_, e) => &e.username,
            Self::LoginSucceeded(e) => &e.username,
            Self::LoginFailed(e) => &e.attempt.username,
            Self::LockedOut(e) => &e.attempt.username,
        }
    }

    /// Reads an account event, or None when `event_type` is not one.
    pub(crate) fn decode(
        event_type: &str,
        version: u32,
        data: impl EventJson,
    ) -> Option<Result<Self, EventDecodeError>> {
        use crate::events::decode_data as d;
        Some(match event_type {
            AccountCreated::EVENT_TYPE => d(version, data).map(Self::Created),
            AccountRightsChanged::EVENT_TYPE => d(version, data).map(Self::RightsChanged),
            LoginSucceeded::EVENT_TYPE => d(version, data).map(Self::LoginSucceeded),
            LoginFailed::EVENT_TYPE => d(version, data).map(Self::LoginFailed),
            LoginLockedOut::EVENT_TYPE => d(version, data).map(Self::LockedOut),
            other => {
                let action = AccountAction::ALL
                    .into_iter()
                    .find(|a| a.event_type() == other)?;
                d::<AccountTouched>(version, data).map(|e| Self::Action(action, e))
            }
        })
    }

    /// The envelope fields of the event.
    pub(crate) fn encode(&self) -> Result<EncodedEvent, serde_json::Error> {
        use crate::events::encode_data as e;
        match self {
            Self::Created(d) => e(d),
            Self::RightsChanged(d) => e(d),
            Self::Action(action, d) => {
                let (_, version, data) = e(d)?;
                Ok((action.event_type(), version, data))
            }
            Self::LoginSucceeded(d) => e(d),
            Self::LoginFailed(d) => e(d),
            Self::LockedOut(d) => e(d),
        }
    }
}

/// Record something about an account. Administrative changes need the `admin` role; a password
/// change and a login are the user's own; failed logins and lockouts are recorded by the gateway
/// (an actor `system:…`). The gateway validates passwords and keeps the hashes; this command
/// only records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordAccount {
    /// The account's username (for a failed login: the name given).
    pub username: String,
    /// What happened.
    pub change: AccountChange,
}

/// What [`RecordAccount`] records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AccountChange {
    /// Create the account.
    Create {
        /// The person's name.
        display_name: String,
        /// Roles, unit and leader.
        rights: AccountRights,
        /// An account that existed before accounts were in the log.
        #[serde(default)]
        adopted: bool,
    },
    /// Change its roles, unit and bound leader.
    ChangeRights {
        /// The new rights.
        rights: AccountRights,
    },
    /// One of the actions that carry nothing else.
    Action {
        /// Which.
        action: AccountAction,
    },
    /// A login succeeded.
    LoginSucceeded {
        /// Client address.
        #[serde(default)]
        client_address: Option<String>,
    },
    /// A login failed.
    LoginFailed {
        /// Client address.
        #[serde(default)]
        client_address: Option<String>,
        /// Why.
        reason: LoginFailure,
    },
    /// Failed logins locked the account or the address.
    LockedOut {
        /// Client address.
        #[serde(default)]
        client_address: Option<String>,
        /// What is locked.
        scope: LockoutScope,
        /// Until when.
        until: DateTime<Utc>,
    },
}

impl AccountChange {
    /// Whether only an administrator may record it.
    pub fn is_administration(&self) -> bool {
        match self {
            Self::Create { .. } | Self::ChangeRights { .. } => true,
            Self::Action { action } => *action != AccountAction::PasswordChanged,
            Self::LoginSucceeded { .. } | Self::LoginFailed { .. } | Self::LockedOut { .. } => {
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DomainEvent;

    #[test]
    fn role_names_round_trip_and_an_unknown_name_grants_nothing() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(role_label(role.as_str()), role.label());
        }
        assert_eq!(Role::parse("Admin"), None, "names are exact");
        assert_eq!(role_label("superuser"), "superuser");
        let actor = crate::Actor {
            user_id: "wang".into(),
            roles: vec!["superuser".into(), "viewer".into()],
            unit_id: None,
            leader_id: None,
        };
        assert!(actor.has_role(Role::Viewer));
        assert!(Role::ALL[..5].iter().all(|role| !actor.has_role(*role)));
    }

    #[test]
    fn account_events_round_trip() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let attempt = LoginAttempt {
            username: "siming".into(),
            client_address: Some("10.0.0.7".into()),
        };
        let rights = AccountRights {
            roles: vec!["coordinator".into()],
            unit_id: Some("siming".into()),
            leader_id: None,
        };
        let mut events = vec![
            AccountEvent::Created(AccountCreated {
                username: "siming".into(),
                display_name: "思明区专班".into(),
                rights: rights.clone(),
                adopted: false,
            }),
            AccountEvent::RightsChanged(AccountRightsChanged {
                username: "siming".into(),
                before: rights.clone(),
                after: AccountRights {
                    roles: vec!["viewer".into()],
                    ..rights
                },
            }),
            AccountEvent::LoginSucceeded(attempt.clone()),
            AccountEvent::LoginFailed(LoginFailed {
                attempt: attempt.clone(),
                reason: LoginFailure::WrongPassword,
            }),
            AccountEvent::LockedOut(LoginLockedOut {
                attempt,
                scope: LockoutScope::Address,
                until: at,
            }),
        ];
        events.extend(AccountAction::ALL.map(|action| {
            AccountEvent::Action(
                action,
                AccountTouched {
                    username: "siming".into(),
                },
            )
        }));
        for event in events {
            let event = DomainEvent::Account(event);
            let (kind, version, data) = event.encode().expect("encode");
            let back = DomainEvent::decode(kind, version, &*data).expect("decode");
            assert_eq!(back, event, "{kind}");
        }
    }

    #[test]
    fn usernames_that_are_not_tokens_get_a_hashed_stream_id() {
        assert_eq!(account_stream_id("siming-1"), "siming-1");
        let dotted = account_stream_id("wang.wei");
        assert!(dotted.starts_with("h-") && dotted.len() == 18, "{dotted}");
        assert_ne!(dotted, account_stream_id("wang.wej"));
        assert!(crate::ids::is_valid_token_id(&account_stream_id("a b.c*>")));
    }
}
