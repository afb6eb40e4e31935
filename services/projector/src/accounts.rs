//! The accounts view: each account's rights as the log gives them (`account_rights`, which the
//! gateway authorises with), and the audit trail of every account event (`account_audit`:
//! creations, changes of rights, disabling, password resets, logins, failed logins, lockouts).
//! Both are rebuilt from the log like every view, so the trail survives a rebuild.

use sqlx::AssertSqlSafe;
use zhzj_proto::{
    AccountEvent, DomainEvent,
    accounts::{AccountAction, AccountRights, LockoutScope, role_label},
};
use zhzj_store::{Dialect, china_time, sql::timestamp_text};

use crate::projection::{DeadLetter, ReadCommit};
use crate::sqlbuild::{SqlValue, col, insert_rows, sql_position};

pub(crate) fn create_tables(suffix: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE account_rights{suffix} (
                username     TEXT   PRIMARY KEY,
                display_name TEXT   NOT NULL,
                roles        TEXT   NOT NULL,
                unit_id      TEXT,
                leader_id    TEXT,
                disabled     BIGINT NOT NULL,
                created_at   TEXT   NOT NULL,
                created_by   TEXT   NOT NULL,
                version      BIGINT NOT NULL
            )"
        ),
        format!(
            "CREATE TABLE account_audit{suffix} (
                position       BIGINT NOT NULL,
                event_index    BIGINT NOT NULL,
                occurred_at    TEXT   NOT NULL,
                event_type     TEXT   NOT NULL,
                category       TEXT   NOT NULL,
                username       TEXT   NOT NULL,
                actor          TEXT   NOT NULL,
                client_address TEXT,
                detail         TEXT   NOT NULL,
                PRIMARY KEY (position, event_index)
            )"
        ),
        format!(
            "CREATE INDEX account_audit{suffix}_occurred ON account_audit{suffix} (occurred_at)"
        ),
        format!("CREATE INDEX account_audit{suffix}_username ON account_audit{suffix} (username)"),
    ]
}

/// The audit category of an event: `login`, `login_failure` (failures and lockouts) or
/// `account` (administration and password changes).
pub fn category(event: &AccountEvent) -> &'static str {
    match event {
        AccountEvent::LoginSucceeded(_) => "login",
        AccountEvent::LoginFailed(_) | AccountEvent::LockedOut(_) => "login_failure",
        AccountEvent::Created(_) | AccountEvent::RightsChanged(_) | AccountEvent::Action(..) => {
            "account"
        }
    }
}

fn describe_rights(rights: &AccountRights) -> String {
    let roles: Vec<&str> = rights.roles.iter().map(|r| role_label(r)).collect();
    format!(
        "角色 {}；单位 {}；领导 {}",
        roles.join("、"),
        rights.unit_id.as_deref().unwrap_or("—"),
        rights.leader_id.as_deref().unwrap_or("—")
    )
}

/// What the trail shows for an event, in Chinese.
pub fn describe(event: &AccountEvent) -> String {
    match event {
        AccountEvent::Created(e) => format!(
            "{}账号（{}）：{}",
            if e.adopted { "登记原有" } else { "新建" },
            e.display_name,
            describe_rights(&e.rights)
        ),
        AccountEvent::RightsChanged(e) => format!(
            "变更权限：{} → {}",
            describe_rights(&e.before),
            describe_rights(&e.after)
        ),
        AccountEvent::Action(action, _) => match action {
            AccountAction::Disabled => "停用账号",
            AccountAction::Enabled => "启用账号",
            AccountAction::PasswordReset => "管理员重置密码（下次登录须修改）",
            AccountAction::PasswordChanged => "本人修改密码",
            AccountAction::Unlocked => "解除登录锁定",
            AccountAction::SessionsEnded => "结束全部会话",
        }
        .to_owned(),
        AccountEvent::LoginSucceeded(_) => "登录成功".to_owned(),
        AccountEvent::LoginFailed(e) => format!("登录失败：{}", e.reason.label()),
        AccountEvent::LockedOut(e) => format!(
            "连续登录失败，锁定{}至 {}",
            match e.scope {
                LockoutScope::Account => "账号",
                LockoutScope::Address => "来源地址",
            },
            china_time(e.until).format("%Y-%m-%d %H:%M")
        ),
    }
}

fn client_address(event: &AccountEvent) -> Option<String> {
    match event {
        AccountEvent::LoginSucceeded(e) => e.client_address.clone(),
        AccountEvent::LoginFailed(e) => e.attempt.client_address.clone(),
        AccountEvent::LockedOut(e) => e.attempt.client_address.clone(),
        AccountEvent::Created(_) | AccountEvent::RightsChanged(_) | AccountEvent::Action(..) => {
            None
        }
    }
}

pub(crate) async fn apply(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    batch: &[ReadCommit],
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let mut trail = Vec::new();
    for commit in batch {
        let position = sql_position(commit.position);
        for (index, (envelope, event)) in commit.envelopes.iter().zip(&commit.events).enumerate() {
            let DomainEvent::Account(event) = event else {
                continue;
            };
            let at = timestamp_text(envelope.occurred_at);
            trail.push(vec![
                SqlValue::Int(position),
                SqlValue::Int(i64::try_from(index).unwrap_or(i64::MAX)),
                SqlValue::Text(at.clone()),
                SqlValue::Text(envelope.event_type.clone()),
                SqlValue::Text(category(event).to_owned()),
                SqlValue::Text(event.username().to_owned()),
                SqlValue::Text(envelope.actor.user_id.clone()),
                SqlValue::OptText(client_address(event)),
                SqlValue::Text(describe(event)),
            ]);
            apply_rights(conn, suffix, event, &at, &envelope.actor.user_id, position).await?;
        }
    }
    let columns = [
        col("position"),
        col("event_index"),
        col("occurred_at"),
        col("event_type"),
        col("category"),
        col("username"),
        col("actor"),
        col("client_address"),
        col("detail"),
    ];
    insert_rows(
        conn,
        dialect,
        &format!("account_audit{suffix}"),
        &columns,
        trail,
        "ON CONFLICT DO NOTHING",
    )
    .await?;
    Ok(Vec::new())
}

/// Keeps `account_rights` as the account's events leave it.
async fn apply_rights(
    conn: &mut sqlx::AnyConnection,
    suffix: &str,
    event: &AccountEvent,
    at: &str,
    actor: &str,
    position: i64,
) -> Result<(), sqlx::Error> {
    match event {
        AccountEvent::Created(e) => {
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO account_rights{suffix} (username, display_name, roles, unit_id, \
                 leader_id, disabled, created_at, created_by, version) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8) ON CONFLICT DO NOTHING"
            )))
            .bind(&e.username)
            .bind(&e.display_name)
            .bind(e.rights.roles.join(","))
            .bind(&e.rights.unit_id)
            .bind(&e.rights.leader_id)
            .bind(at)
            .bind(actor)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        AccountEvent::RightsChanged(e) => {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE account_rights{suffix} SET roles = $1, unit_id = $2, leader_id = $3, \
                 version = $4 WHERE username = $5"
            )))
            .bind(e.after.roles.join(","))
            .bind(&e.after.unit_id)
            .bind(&e.after.leader_id)
            .bind(position)
            .bind(&e.username)
            .execute(&mut *conn)
            .await?;
        }
        AccountEvent::Action(action @ (AccountAction::Disabled | AccountAction::Enabled), e) => {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE account_rights{suffix} SET disabled = $1, version = $2 WHERE username = $3"
            )))
            .bind(i64::from(*action == AccountAction::Disabled))
            .bind(position)
            .bind(&e.username)
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

crate::projection::projection_kind! {
    /// The accounts view: rights as the log gives them, and the audit trail.
    AccountsView {
        name: "accounts",
        tables: ["account_rights", "account_audit"],
        create: |_dialect, suffix| create_tables(suffix),
        apply: |conn, dialect, suffix, batch, _run| apply(conn, dialect, suffix, batch).await,
    }
}
