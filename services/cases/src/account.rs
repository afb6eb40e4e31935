//! The account aggregate: who may record what about an account, and the events a
//! `record_account` command becomes. The gateway checks passwords and keeps their hashes; this
//! service only decides whether the record is allowed and appends it.

use serde::{Deserialize, Serialize};
use zhzj_proto::{
    AggregateType, CommandAccepted, CommandError, DomainEvent, ErrorKind,
    accounts::{
        AccountChange, AccountCreated, AccountEvent, AccountRightsChanged, AccountTouched,
        LoginAttempt, LoginFailed, LoginLockedOut, RecordAccount,
    },
    envelope::Actor,
};

use crate::aggregate::Aggregate;
use crate::handle::{Context, HandledCommand};
use crate::validate::check_no_control;

/// Longest username or display name recorded; a longer name in a failed login is cut.
const MAX_NAME_CHARS: usize = 64;

/// An account as the service knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// Whether it was created.
    pub created: bool,
    /// Its rights now.
    pub rights: Option<zhzj_proto::accounts::AccountRights>,
    /// Whether it is disabled.
    pub disabled: bool,
}

impl Aggregate for AccountState {
    const TYPE: AggregateType = AggregateType::Account;
    const SNAPSHOT_VERSION: u32 = 1;

    fn apply(&mut self, event: &DomainEvent) {
        use zhzj_proto::accounts::AccountAction as A;
        let DomainEvent::Account(event) = event else {
            return;
        };
        match event {
            AccountEvent::Created(e) => {
                self.created = true;
                self.rights = Some(e.rights.clone());
            }
            AccountEvent::RightsChanged(e) => self.rights = Some(e.after.clone()),
            AccountEvent::Action(A::Disabled, _) => self.disabled = true,
            AccountEvent::Action(A::Enabled, _) => self.disabled = false,
            AccountEvent::Action(..)
            | AccountEvent::LoginSucceeded(_)
            | AccountEvent::LoginFailed(_)
            | AccountEvent::LockedOut(_) => {}
        }
    }

    /// An account "exists" once created; failed logins naming no account leave it absent.
    fn exists(&self) -> bool {
        self.created
    }
}

fn forbidden(message: &str) -> CommandError {
    CommandError::new(ErrorKind::Forbidden, message)
}

/// Checks that the actor may record `command`: administration needs `admin` (an `auditor` reads
/// the trail but administers nothing); a password change and a successful login are the user's
/// own; failed logins and lockouts are recorded by the gateway itself (`system:…`).
pub fn check(actor: &Actor, command: &RecordAccount) -> Result<(), CommandError> {
    let is_admin = actor.has_role(zhzj_proto::accounts::Role::Admin);
    let is_system = actor.user_id.starts_with("system:");
    let allowed = match &command.change {
        change if change.is_administration() => is_admin,
        AccountChange::LoginFailed { .. } | AccountChange::LockedOut { .. } => is_system,
        // The user's own password change, or their login.
        _ => actor.user_id == command.username,
    };
    if allowed {
        Ok(())
    } else if command.change.is_administration() {
        Err(forbidden("只有系统管理员可以管理用户账号 (admin only)"))
    } else {
        Err(forbidden(
            "登录记录只能由网关为本人写入 (recorded by the gateway only)",
        ))
    }
}

/// Cuts a name given in a failed login to what the trail keeps.
fn cut(name: &str) -> String {
    name.chars().take(MAX_NAME_CHARS).collect()
}

/// Decides on `command` against the account as it is.
pub fn decide(
    state: &AccountState,
    command: &RecordAccount,
) -> Result<Vec<DomainEvent>, CommandError> {
    check_no_control("command.username", &command.username)?;
    let username = command.username.clone();
    let must_exist = || {
        if state.created {
            Ok(())
        } else {
            Err(CommandError::not_found(
                "command.username",
                format!("用户 {username} 不存在"),
            ))
        }
    };
    let event = match &command.change {
        AccountChange::Create {
            display_name,
            rights,
            adopted,
        } => {
            if state.created {
                return Err(CommandError::new(
                    ErrorKind::Conflict,
                    format!("用户名 {username} 已存在"),
                ));
            }
            if username.chars().count() > MAX_NAME_CHARS {
                return Err(CommandError::invalid("command.username", "用户名过长"));
            }
            check_no_control("command.change.display_name", display_name)?;
            AccountEvent::Created(AccountCreated {
                username,
                display_name: display_name.clone(),
                rights: rights.clone(),
                adopted: *adopted,
            })
        }
        AccountChange::ChangeRights { rights } => {
            must_exist()?;
            AccountEvent::RightsChanged(AccountRightsChanged {
                username,
                before: state.rights.clone().unwrap_or(rights.clone()),
                after: rights.clone(),
            })
        }
        AccountChange::Action { action } => {
            must_exist()?;
            AccountEvent::Action(*action, AccountTouched { username })
        }
        AccountChange::LoginSucceeded { client_address } => {
            must_exist()?;
            if state.disabled {
                return Err(forbidden("账号已停用"));
            }
            AccountEvent::LoginSucceeded(LoginAttempt {
                username,
                client_address: client_address.clone(),
            })
        }
        AccountChange::LoginFailed {
            client_address,
            reason,
        } => AccountEvent::LoginFailed(LoginFailed {
            attempt: LoginAttempt {
                username: cut(&username),
                client_address: client_address.clone(),
            },
            reason: *reason,
        }),
        AccountChange::LockedOut {
            client_address,
            scope,
            until,
        } => AccountEvent::LockedOut(LoginLockedOut {
            attempt: LoginAttempt {
                username: cut(&username),
                client_address: client_address.clone(),
            },
            scope: *scope,
            until: *until,
        }),
    };
    Ok(vec![DomainEvent::Account(event)])
}

impl HandledCommand for RecordAccount {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let id = zhzj_proto::accounts::account_stream_id(&self.username);
        context
            .decide::<AccountState>(&id, None, |state| decide(state, self))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zhzj_proto::accounts::{AccountAction, AccountRights, LoginFailure};

    fn actor(user: &str, roles: &[&str]) -> Actor {
        Actor {
            user_id: user.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            unit_id: None,
            leader_id: None,
        }
    }

    fn record(username: &str, change: AccountChange) -> RecordAccount {
        RecordAccount {
            username: username.into(),
            change,
        }
    }

    #[test]
    fn only_an_admin_administers_and_an_auditor_does_not() {
        let create = record(
            "wang",
            AccountChange::Create {
                display_name: "王".into(),
                rights: AccountRights {
                    roles: vec!["viewer".into()],
                    unit_id: None,
                    leader_id: None,
                },
                adopted: false,
            },
        );
        assert!(check(&actor("admin", &["admin"]), &create).is_ok());
        for roles in [&["auditor"][..], &["coordinator"], &[]] {
            let refused = check(&actor("someone", roles), &create).expect_err("refused");
            assert_eq!(refused.kind, ErrorKind::Forbidden);
        }
        let reset = record(
            "wang",
            AccountChange::Action {
                action: AccountAction::PasswordReset,
            },
        );
        assert!(check(&actor("wang", &["viewer"]), &reset).is_err());
        let own_change = record(
            "wang",
            AccountChange::Action {
                action: AccountAction::PasswordChanged,
            },
        );
        assert!(check(&actor("wang", &["viewer"]), &own_change).is_ok());
        assert!(check(&actor("li", &["viewer"]), &own_change).is_err());
        let failed = record(
            "wang",
            AccountChange::LoginFailed {
                client_address: None,
                reason: LoginFailure::WrongPassword,
            },
        );
        assert!(check(&actor("system:gateway", &[]), &failed).is_ok());
        assert!(check(&actor("admin", &["admin"]), &failed).is_err());
    }

    #[test]
    fn an_account_is_created_once_and_changed_only_when_it_exists() {
        let mut state = AccountState::default();
        let touch = record(
            "wang",
            AccountChange::Action {
                action: AccountAction::Disabled,
            },
        );
        assert_eq!(
            decide(&state, &touch).expect_err("absent").kind,
            ErrorKind::NotFound
        );
        let create = record(
            "wang",
            AccountChange::Create {
                display_name: "王".into(),
                rights: AccountRights {
                    roles: vec!["viewer".into()],
                    unit_id: None,
                    leader_id: None,
                },
                adopted: false,
            },
        );
        for event in decide(&state, &create).expect("created") {
            state.apply(&event);
        }
        assert!(state.exists());
        assert_eq!(
            decide(&state, &create).expect_err("twice").kind,
            ErrorKind::Conflict
        );
        for event in decide(&state, &touch).expect("disabled") {
            state.apply(&event);
        }
        let login = record(
            "wang",
            AccountChange::LoginSucceeded {
                client_address: None,
            },
        );
        assert_eq!(
            decide(&state, &login).expect_err("disabled").kind,
            ErrorKind::Forbidden
        );
    }
}
