//! Who a user is: a new account as given, a signed-in user with the roles and scope their
//! commands carry, an account as the administrator's list shows it, a session and a login's outcome.

use super::*;

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
        Role::any_works_with_cases(&self.roles)
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
