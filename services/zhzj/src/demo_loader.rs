//! Applies the demo data set (`demo.rs`) to a running system: the directory, then each case's
//! history with every command at its own time (through an in-process cases service whose clock
//! is set per command), then the demo accounts. Loading again adds nothing: a unit, leader or
//! case that exists is skipped.

use std::sync::Arc;

use anyhow::{Context, bail};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use zhzj_cases::CasesService;
use zhzj_gateway::{Accounts, NewUser};
use zhzj_proto::events::ReviewLevel;
use zhzj_proto::{Actor, AggregateType, Command, CommandReply, CommandRequest, ErrorKind};
use zhzj_store::{EventLog, FixedClock, PersonalDataVault};

use zhzj_demo::{DEMO_ACCOUNTS, DemoCase, DemoStep, demo_data};

/// Cases loaded at once.
const WORKERS: usize = 4;

/// What a load did.
#[derive(Debug, Default, Clone, Copy)]
pub struct DemoReport {
    /// Units and leaders added.
    pub directory_added: usize,
    /// Cases added.
    pub cases_added: usize,
    /// Cases that were there already.
    pub cases_present: usize,
    /// Campaign steps (meetings, instructions, feedback, bulletins, the push) applied.
    pub campaign_added: usize,
    /// Accounts created.
    pub accounts_added: usize,
}

fn actor(user_id: &str, role: &str, unit_id: &str) -> Actor {
    Actor {
        user_id: user_id.to_owned(),
        roles: vec![role.to_owned()],
        unit_id: Some(unit_id.to_owned()),
        leader_id: None,
    }
}

/// Who applies a step of a case: reviews by the reviewer of their level (the case's district
/// 联席办, or the city 信访局), everything else by the city coordinator.
fn actor_for(step: &DemoStep, district_id: &str) -> Actor {
    match &step.command {
        Command::ReviewClaim(c) => match c.level {
            ReviewLevel::District => {
                actor(&format!("{district_id}-shenhe"), "reviewer", district_id)
            }
            ReviewLevel::City => actor("shenhe", "reviewer", "xm"),
        },
        _ => actor("xietiao", "coordinator", "xm"),
    }
}

/// The aggregate a step creates, if it creates one.
fn created_aggregate(command: &Command) -> Option<(AggregateType, String)> {
    match command {
        Command::RegisterCase(c) => c.case_id.map(|id| (AggregateType::Case, id.to_string())),
        Command::AddUnit(c) => Some((AggregateType::Unit, c.unit_id.clone())),
        Command::AddLeader(c) => Some((AggregateType::Leader, c.leader_id.clone())),
        _ => None,
    }
}

/// Applies one step at its time; `Ok(false)` when what it creates exists already. (Existence
/// is read from the log: a repeated command id within the log's duplicate window is answered
/// as accepted, so the reply alone cannot tell a first load from a second.)
async fn apply(
    service: &CasesService,
    log: &EventLog,
    clock: &FixedClock,
    step: &DemoStep,
    actor: &Actor,
) -> anyhow::Result<bool> {
    if let Some((kind, id)) = created_aggregate(&step.command)
        && log.load_last(kind, &id).await?.is_some()
    {
        return Ok(false);
    }
    clock.set(step.at);
    let request = CommandRequest {
        command_id: step.command_id,
        correlation_id: None,
        causation_id: None,
        actor: actor.clone(),
        expected_version: None,
        unknown_outcome_retry: false,
        command: step.command.clone(),
    };
    match service.handle(request).await {
        CommandReply::Ok(_) => Ok(true),
        CommandReply::Error(e) if e.kind == ErrorKind::Conflict => Ok(false),
        CommandReply::Error(e) => bail!(
            "demo command {} ({}) refused: {} {}",
            step.command_id,
            step.command.kind(),
            e.message,
            e.field.unwrap_or_default()
        ),
    }
}

/// Loads one case's history; false when the case was there already.
async fn load_case(
    log: &EventLog,
    vault: &PersonalDataVault,
    case: &DemoCase,
) -> anyhow::Result<bool> {
    let Some(first) = case.steps.first() else {
        return Ok(false);
    };
    let clock = FixedClock::new(first.at);
    let service = CasesService::new(log.clone(), Arc::new(clock.clone())).with_vault(vault.clone());
    let district_id = match &first.command {
        Command::RegisterCase(c) => c.district_id.clone(),
        _ => String::new(),
    };
    if !apply(
        &service,
        log,
        &clock,
        first,
        &actor_for(first, &district_id),
    )
    .await?
    {
        return Ok(false);
    }
    for step in &case.steps[1..] {
        apply(&service, log, &clock, step, &actor_for(step, &district_id)).await?;
    }
    Ok(true)
}

/// Loads the demo, stopping early (between cases) on `shutdown`.
pub async fn load(
    log: &EventLog,
    vault: &PersonalDataVault,
    accounts: &Accounts,
    shutdown: &CancellationToken,
) -> anyhow::Result<DemoReport> {
    let data = demo_data(chrono::Utc::now());
    let mut report = DemoReport::default();
    let clock = FixedClock::new(chrono::Utc::now());
    let service = CasesService::new(log.clone(), Arc::new(clock.clone())).with_vault(vault.clone());
    let admin = actor("admin", "admin", "xm");
    for step in &data.directory {
        if apply(&service, log, &clock, step, &admin).await? {
            report.directory_added += 1;
        }
    }
    let mut loads = futures::stream::iter(data.cases)
        .take_until(Box::pin(shutdown.cancelled()))
        .map(|case| {
            let log = log.clone();
            async move {
                load_case(&log, vault, &case)
                    .await
                    .with_context(|| format!("demo case {}", case.case_id))
            }
        })
        .buffer_unordered(WORKERS);
    while let Some(added) = loads.next().await {
        if added? {
            report.cases_added += 1;
        } else {
            report.cases_present += 1;
        }
    }
    // The campaign rhythm, once: skipped whole when its first meeting is in the log (repeating
    // an instruction would issue it again).
    let first_meeting = data.campaign.iter().find_map(|step| match &step.command {
        Command::HoldMeeting(c) => Some(zhzj_cases::campaign::meeting_id(
            &c.unit_id,
            zhzj_store::china_date(step.at),
        )),
        _ => None,
    });
    if let Some(meeting) = first_meeting
        && log
            .load_last(AggregateType::Meeting, &meeting)
            .await?
            .is_none()
        && !shutdown.is_cancelled()
    {
        for step in &data.campaign {
            if apply(&service, log, &clock, step, &admin).await? {
                report.campaign_added += 1;
            }
        }
    }
    for (username, password, display_name, roles, unit) in DEMO_ACCOUNTS {
        let user = NewUser {
            username: (*username).to_owned(),
            password: (*password).to_owned(),
            display_name: (*display_name).to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            unit_id: Some((*unit).to_owned()),
            leader_id: None,
            // The demo's accounts are ready to use: their password is in the README.
            must_change_password: false,
        };
        let by = zhzj_gateway::AccountJournal::system_admin("demo");
        if accounts.ensure_user(&by, &user).await? {
            report.accounts_added += 1;
        }
    }
    Ok(report)
}
