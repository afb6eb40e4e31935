//! The agenda's fold runs where it holds no worker of the async runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::TimeZone;
use zhzj_proto::events::{CaseRegistered, Channel, ListSource};

use super::*;

/// On a one-thread runtime (as `#[tokio::test]` gives), a task that counts its turns: it
/// gets none unless the agenda's fold of the open cases runs somewhere else than on the
/// runtime (it did not: a June meeting of 100,000 cases held a worker for 2.5 s).
#[tokio::test]
async fn other_tasks_run_while_an_agenda_is_drawn() -> Result<(), String> {
    tasks_run_while_an_agenda_is_drawn().await
}

/// The same on a multi-threaded runtime of one worker, the agenda drawn by a task on that
/// worker (as the gateway's handlers are): the worker must hand its other tasks on.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn other_tasks_run_while_an_agenda_is_drawn_on_the_only_worker() -> Result<(), String> {
    tokio::spawn(tasks_run_while_an_agenda_is_drawn())
        .await
        .map_err(|e| e.to_string())?
}

async fn tasks_run_while_an_agenda_is_drawn() -> Result<(), String> {
    const CASES: i64 = 20_000;
    let district = UnitRef {
        id: "xm-siming".into(),
        name: "思明区".into(),
    };
    let held_at = Utc
        .with_ymd_and_hms(2026, 6, 10, 2, 0, 0)
        .single()
        .ok_or("a moment")?;
    let filed_on = NaiveDate::from_ymd_opt(2026, 4, 1).ok_or("a day")?;
    let limits = Limits::statutory();
    let events: Vec<ArchivedEvent> = (0..CASES)
        .map(|n| ArchivedEvent {
            position: n + 1,
            aggregate_type: "case".into(),
            aggregate_id: format!("case-{n:05}"),
            occurred_at: held_at - Duration::days(60),
            event: DomainEvent::Case(CaseEvent::Registered(CaseRegistered {
                case_number: format!("XM-2026-{n:05}"),
                petitioners: Vec::new(),
                matter: "征地补偿".into(),
                category: "征地拆迁".into(),
                district: district.clone(),
                town: None,
                channel: Channel::Visit,
                first_filed_on: filed_on,
                list_source: ListSource::Screening,
                group_size: 1,
            })),
        })
        .collect();
    let request = AgendaRequest {
        meeting_id: "meeting-1".into(),
        title: "第24周调度会".into(),
        week: "2026-W24".into(),
        unit: district,
        held_at,
        as_of_position: CASES,
        idle_days: 30,
        limits,
    };
    let turns = Arc::new(AtomicUsize::new(0));
    let counter = {
        let turns = Arc::clone(&turns);
        tokio::spawn(async move {
            loop {
                turns.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    let agenda = agenda_off_the_runtime(events, &request)
        .await
        .map_err(|e| e.to_string())?;
    let during = turns.load(Ordering::Relaxed);
    counter.abort();
    let listed: usize = agenda.sections.iter().map(|s| s.rows.len()).sum();
    assert!(listed > 0, "the open cases are on the agenda");
    assert!(
        during > 0,
        "the runtime ran nothing else while the agenda was drawn"
    );
    Ok(())
}
