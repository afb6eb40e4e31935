//! The operator's commands that act on a running system: accounts (`zhzj user`), a projection's
//! rebuild, `status`, a raw `command`, erasure and retention, and the checklist printed.

use std::time::Duration;

use anyhow::{Context, bail};
use zhzj_gateway::{Accounts, NewUser};
use zhzj_projector::Projection;
use zhzj_store::ReadStore;
use zhzj_trust::nats_access::NatsRole;

use crate::cli::{CommandArgs, CommonOptions, RebuildArgs, UserAction, UserArgs};
use crate::connections::{connect, connect_nats, database_url, nats_url};
use crate::roles::{accounts, bureau_settings};

/// `zhzj user …`.
pub async fn user(args: UserArgs) -> anyhow::Result<()> {
    let options = match &args.action {
        UserAction::Add { options, .. }
        | UserAction::List { options }
        | UserAction::Set { options, .. }
        | UserAction::ResetPassword { options, .. }
        | UserAction::Unlock { options, .. }
        | UserAction::Disable { options, .. }
        | UserAction::Enable { options, .. }
        | UserAction::EndSessions { options, .. } => options.clone(),
    };
    crate::private_files::private_data_dir(&options.data_dir)?;
    let store = ReadStore::connect(&database_url(&options)).await?;
    // Accounts are recorded in the log through the running system; without it only a new account
    // can be made, pending until the gateway records it.
    let client = match nats_url(&options) {
        Ok(url) => tokio::time::timeout(
            Duration::from_secs(5),
            connect_nats(&url, &options, NatsRole::Cli),
        )
        .await
        .ok()
        .and_then(Result::ok),
        Err(_) => None,
    };
    let result = user_action(&store, client, args.action).await;
    store.close().await;
    result
}

/// `zhzj user add`: the account is recorded in the log, or kept pending when the log cannot be
/// reached (the system is not running yet).
async fn create_user(
    accounts: &Accounts,
    by: &zhzj_proto::Actor,
    user: &NewUser,
) -> anyhow::Result<()> {
    accounts
        .check_directory(user.unit_id.as_deref(), user.leader_id.as_deref())
        .await?;
    let pending = match accounts.add_user(by, user).await {
        Ok(()) => false,
        Err(zhzj_gateway::AccountError::Unavailable(why)) => {
            tracing::debug!(%why, "the log cannot be reached; the account is pending");
            accounts.add_pending(user).await?;
            true
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "已创建用户 {} (角色: {}){}{}",
        user.username,
        user.roles.join(","),
        if user.must_change_password {
            "，首次登录须修改密码"
        } else {
            ""
        },
        if pending {
            "。系统未运行：账号在网关启动或首次登录时写入日志，此前不能使用"
        } else {
            ""
        }
    );
    Ok(())
}

/// `zhzj user list`.
async fn list_users(accounts: &Accounts) -> anyhow::Result<()> {
    println!("用户名\t姓名\t角色\t单位\t对应领导\t状态");
    for account in accounts.list().await? {
        let state = account.state_label();
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            account.user.username,
            account.user.display_name,
            account.user.roles.join(","),
            account.user.unit_id.as_deref().unwrap_or("-"),
            account.user.leader_id.as_deref().unwrap_or("-"),
            state
        );
    }
    Ok(())
}

pub(crate) async fn user_action(
    store: &ReadStore,
    client: Option<async_nats::Client>,
    action: UserAction,
) -> anyhow::Result<()> {
    let default_rules = zhzj_gateway::PasswordPolicy::default();
    let operator = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    let by = zhzj_gateway::AccountJournal::system_admin(&format!("cli:{operator}"));
    let journal = match &client {
        Some(client) => zhzj_gateway::AccountJournal::new(client.clone(), store.clone()),
        None => zhzj_gateway::AccountJournal::offline(store.clone()),
    };
    let accounts = |policy| accounts(store, journal.clone(), policy);
    match action {
        UserAction::Add {
            username,
            password,
            display_name,
            roles,
            unit,
            leader,
            ready_to_use,
            rules,
            ..
        } => {
            let user = NewUser {
                display_name: display_name.unwrap_or_else(|| username.clone()),
                username,
                password,
                roles,
                unit_id: unit,
                leader_id: leader,
                must_change_password: !ready_to_use,
            };
            create_user(&accounts(rules.password_policy()), &by, &user).await?;
        }
        UserAction::List { .. } => list_users(&accounts(default_rules)).await?,
        UserAction::Set {
            username,
            roles,
            unit,
            leader,
            ..
        } => {
            accounts(default_rules)
                .set_assignment(&by, &username, &roles, unit.as_deref(), leader.as_deref())
                .await?;
            println!("已修改用户 {username}: 角色 {}", roles.join(","));
        }
        UserAction::ResetPassword {
            username,
            password,
            rules,
            ..
        } => {
            accounts(rules.password_policy())
                .reset_password(&by, &username, &password)
                .await?;
            println!("已重置用户 {username} 的密码，下次登录须修改；其登录会话已结束");
        }
        UserAction::Unlock { username, .. } => {
            let had = accounts(default_rules).unlock(&by, &username).await?;
            println!(
                "{}",
                if had {
                    format!("已解除用户 {username} 的锁定")
                } else {
                    format!("用户 {username} 未被锁定")
                }
            );
        }
        UserAction::Disable { username, .. } => {
            accounts(default_rules)
                .set_disabled(&by, &username, true)
                .await?;
            println!("已停用用户 {username}，其登录会话已结束");
        }
        UserAction::Enable { username, .. } => {
            accounts(default_rules)
                .set_disabled(&by, &username, false)
                .await?;
            println!("已启用用户 {username}");
        }
        UserAction::EndSessions { username, .. } => {
            let ended = accounts(default_rules).end_sessions(&by, &username).await?;
            println!("已结束用户 {username} 的 {ended} 个登录会话");
        }
    }
    Ok(())
}

/// `zhzj rebuild <projection>`.
pub async fn rebuild(args: RebuildArgs) -> anyhow::Result<()> {
    let Some(projection) = Projection::parse(&args.projection) else {
        let names: Vec<&str> = Projection::ALL.iter().map(|p| p.name()).collect();
        bail!(
            "unknown projection `{}`; choose one of {}",
            args.projection,
            names.join(", ")
        );
    };
    let url = nats_url(&args.options)?;
    let conn = connect(&url, &args.options, NatsRole::Cli).await?;
    let settings = bureau_settings(&args.options)?.projector;
    let report = zhzj_projector::rebuild_with(
        &conn.log,
        conn.read_store("`zhzj rebuild`")?,
        projection,
        &settings,
    )
    .await?;
    println!(
        "rebuilt {}: {} messages to position {} in {:.2}s; generation {} is live",
        projection.name(),
        report.messages,
        report.position,
        report.elapsed.as_secs_f64(),
        report.generation
    );
    Ok(())
}

/// `zhzj status`: where each projection stands, and whether its account of the log adds up;
/// exit code 1 when a projection is missing positions.
pub async fn status(options: CommonOptions) -> anyhow::Result<std::process::ExitCode> {
    let url = nats_url(&options)?;
    let conn = connect(&url, &options, NatsRole::Cli).await?;
    let last = conn.log.last_position().await?;
    println!("log last position: {last}");
    println!(
        "{:<10} {:>10} {:>6} {:>10} {:>12} {:>10} {:>6} {:>8}",
        "projection", "position", "gen", "lag", "dead letters", "applied", "empty", "missing"
    );
    let statuses = zhzj_projector::status(&conn.log, conn.read_store("`zhzj status`")?).await?;
    for s in &statuses {
        let applied = s.applied.map_or("-".to_owned(), |n| n.to_string());
        println!(
            "{:<10} {:>10} {:>6} {:>10} {:>12} {:>10} {:>6} {:>8}",
            s.name,
            s.position,
            s.generation,
            s.lag,
            s.dead_letters,
            applied,
            s.empty_positions,
            s.missing
        );
    }
    let mut code = std::process::ExitCode::SUCCESS;
    let unreadable: Vec<u64> = statuses
        .iter()
        .flat_map(|s| s.unreadable_positions.iter().copied())
        .collect();
    if !unreadable.is_empty() {
        eprintln!(
            "ERROR: unreadable commits at log positions {unreadable:?}; their cases answer \
             corrupt_history until repaired with skip_unreadable_commits (README, Operations)."
        );
        code = std::process::ExitCode::FAILURE;
    }
    for s in statuses.iter().filter(|s| s.missing > 0) {
        eprintln!(
            "ERROR: projection {} is missing {} of the {} positions below its checkpoint; \
             its tables are incomplete. Run `zhzj rebuild {}`.",
            s.name, s.missing, s.position, s.name
        );
        code = std::process::ExitCode::FAILURE;
    }
    Ok(code)
}

/// `zhzj command '<json>'`: wraps the command in a request with a new command id and the actor,
/// sends it, prints the reply; exit code 1 when it is refused.
pub async fn send_command(args: CommandArgs) -> anyhow::Result<std::process::ExitCode> {
    let command: zhzj_proto::Command = serde_json::from_str(&args.command)
        .context("the command is not valid JSON for a command")?;
    let request = zhzj_proto::CommandRequest {
        command_id: uuid::Uuid::new_v4(),
        correlation_id: None,
        causation_id: None,
        actor: zhzj_proto::Actor {
            user_id: args.actor,
            roles: args.roles,
            unit_id: args.unit,
            leader_id: None,
        },
        expected_version: args.expected_version,
        unknown_outcome_retry: false,
        command,
    };
    let client = connect_nats(&nats_url(&args.options)?, &args.options, NatsRole::Cli).await?;
    let reply = request_command(&client, &request).await?;
    println!("{}", serde_json::to_string(&reply)?);
    Ok(exit_code(&reply))
}

/// Sends one command request and reads the reply.
pub(crate) async fn request_command(
    client: &async_nats::Client,
    request: &zhzj_proto::CommandRequest,
) -> anyhow::Result<zhzj_proto::CommandReply> {
    let reply = client
        .request(
            zhzj_proto::subjects::CASES_COMMANDS,
            serde_json::to_vec(request)?.into(),
        )
        .await
        .context("no answer from the cases service")?;
    Ok(serde_json::from_slice(&reply.payload)?)
}

/// Success when the command was accepted.
pub(crate) fn exit_code(reply: &zhzj_proto::CommandReply) -> std::process::ExitCode {
    match reply {
        zhzj_proto::CommandReply::Ok(_) => std::process::ExitCode::SUCCESS,
        zhzj_proto::CommandReply::Error(_) => std::process::ExitCode::FAILURE,
    }
}

/// An erasure request from the administrator `actor`.
pub(crate) fn erasure_request(
    actor: &str,
    case_id: uuid::Uuid,
    petitioner: u32,
    reason: &str,
) -> zhzj_proto::CommandRequest {
    zhzj_proto::CommandRequest {
        command_id: uuid::Uuid::new_v4(),
        correlation_id: None,
        causation_id: None,
        actor: zhzj_proto::Actor {
            user_id: actor.to_owned(),
            roles: vec![zhzj_proto::accounts::Role::Admin.as_str().into()],
            unit_id: None,
            leader_id: None,
        },
        expected_version: None,
        unknown_outcome_retry: false,
        command: zhzj_proto::Command::ErasePetitioner(zhzj_proto::commands::ErasePetitioner {
            case_id,
            petitioner,
            reason: reason.to_owned(),
        }),
    }
}

/// Refuses an erasure in the name of anyone but an enabled administrator account (as the
/// accounts view holds them): an erasure cannot be undone, and its record must name a real
/// administrator, not whatever `--actor` says.
async fn ensure_administrator(store: &ReadStore, actor: &str) -> anyhow::Result<()> {
    let accounts = accounts(
        store,
        zhzj_gateway::AccountJournal::offline(store.clone()),
        zhzj_gateway::PasswordPolicy::default(),
    );
    let is_admin = accounts.list().await?.iter().any(|account| {
        account.user.username == actor
            && account.disabled_at.is_none()
            && account.user.has_role(zhzj_proto::accounts::Role::Admin)
    });
    if !is_admin {
        bail!(
            "--actor {actor}：不是启用中的系统管理员账号。删除不可撤销，须以管理员账号的名义进行（`zhzj user list` 列出账号）"
        );
    }
    Ok(())
}

/// `zhzj erase`: erases one petitioner; prints the reply; exit code 1 when it is refused.
pub async fn erase(args: crate::cli::EraseArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = ReadStore::connect(&database_url(&args.options)).await?;
    ensure_administrator(&store, &args.actor).await?;
    let client = connect_nats(&nats_url(&args.options)?, &args.options, NatsRole::Cli).await?;
    let request = erasure_request(&args.actor, args.case_id, args.petitioner, &args.reason);
    let reply = request_command(&client, &request).await?;
    println!("{}", serde_json::to_string(&reply)?);
    Ok(exit_code(&reply))
}

/// `zhzj retention`: the petitioners due under the retention rule, erased unless `--dry-run`.
/// Prints one line per petitioner (no personal data); exit code 1 if any erasure was refused.
pub async fn retention(args: crate::cli::RetentionArgs) -> anyhow::Result<std::process::ExitCode> {
    use zhzj_gateway::retention::{RETENTION_REASON, cut_off, due_for_erasure};
    let today = args
        .as_of
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let before = cut_off(today, args.retention_years)
        .context("--retention-years reaches before the calendar")?;
    let store = ReadStore::connect(&database_url(&args.options)).await?;
    let due = due_for_erasure(&store, before).await?;
    println!(
        "保存期限 {} 年：{before} 之前销号、仍为销号状态的案件，待删除的信访人 {} 位{}",
        args.retention_years,
        due.len(),
        if args.dry_run {
            "（试运行，不删除）"
        } else {
            ""
        }
    );
    let client = if args.dry_run || due.is_empty() {
        None
    } else {
        ensure_administrator(&store, &args.actor).await?;
        Some(connect_nats(&nats_url(&args.options)?, &args.options, NatsRole::Cli).await?)
    };
    let mut code = std::process::ExitCode::SUCCESS;
    for entry in &due {
        let line = format!(
            "{}\t{}\t销号于 {}\t第 {} 位信访人",
            entry.case_number, entry.case_id, entry.crossed_off_at, entry.petitioner
        );
        if !entry.sealed {
            println!("{line}\t登记于加密之前，日志中为明文，无法删除");
            continue;
        }
        let Some(client) = &client else {
            println!("{line}\t待删除");
            continue;
        };
        let case_id = uuid::Uuid::parse_str(&entry.case_id)?;
        let request = erasure_request(&args.actor, case_id, entry.petitioner, RETENTION_REASON);
        match request_command(client, &request).await? {
            zhzj_proto::CommandReply::Ok(_) => println!("{line}\t已删除"),
            zhzj_proto::CommandReply::Error(e) => {
                println!("{line}\t未删除：{}", e.message);
                code = std::process::ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

/// `zhzj checklist`: the checklist view as text.
pub async fn print_checklist(options: CommonOptions) -> anyhow::Result<()> {
    use sqlx::Row;
    let store = ReadStore::connect(&database_url(&options)).await?;
    let rows = sqlx::query(
        "SELECT case_number, matter, district_name, town_name, leader_name, lead_unit_name, \
         measures_done, measures_total, last_activity_at, version \
         FROM checklist_rows ORDER BY registered_at, case_id",
    )
    .fetch_all(store.pool())
    .await
    .context("no checklist yet: has the projector run?")?;
    println!("案件编号\t诉求\t区\t镇街\t包案领导\t责任单位\t措施完成\t最近动态\t版本");
    for row in rows {
        let text = |name: &str| -> String {
            row.try_get::<Option<String>, _>(name)
                .ok()
                .flatten()
                .unwrap_or_else(|| "-".into())
        };
        let done: i64 = row.try_get("measures_done")?;
        let total: i64 = row.try_get("measures_total")?;
        let version: i64 = row.try_get("version")?;
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{done}/{total}\t{}\t{version}",
            text("case_number"),
            text("matter"),
            text("district_name"),
            text("town_name"),
            text("leader_name"),
            text("lead_unit_name"),
            text("last_activity_at"),
        );
    }
    Ok(())
}
