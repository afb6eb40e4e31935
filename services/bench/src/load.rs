//! `zhzj bench load`: loading a case with many events: snapshot, raw get, replay.

use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use uuid::Uuid;
use zhzj_cases::{CasesService, aggregate::load, case::CaseState};
use zhzj_proto::{
    AggregateType, Command, CommandReply, commands::AddMeasure, subjects::aggregate_subject,
};
use zhzj_store::{EventLog, SystemClock};

use crate::common::*;

pub(crate) async fn load_bench(
    log: &EventLog,
    events: usize,
    samples: usize,
) -> anyhow::Result<()> {
    let service = CasesService::new(log.clone(), Arc::new(SystemClock));
    seed_directory(&service).await?;
    let CommandReply::Ok(registered) = service.handle(request(registration(1))).await else {
        bail!("registration failed");
    };
    let case_id: Uuid = registered.aggregate_id.parse()?;
    for i in 1..events {
        let reply = service
            .handle(request(Command::AddMeasure(AddMeasure {
                case_id,
                description: format!("措施{i}：约谈信访人并制定化解方案"),
                due_on: None,
                responsible_unit_id: None,
            })))
            .await;
        if let CommandReply::Error(e) = reply {
            bail!("adding events failed: {e:?}");
        }
    }
    let id = case_id.to_string();
    let loaded = load::<CaseState>(log, &id).await?;
    if loaded.state.event_count != events as u64 {
        bail!(
            "case has {} events, expected {events}",
            loaded.state.event_count
        );
    }
    println!("loading a case with {events} events, {samples} samples");
    let mut snapshot_hist = histogram()?;
    let started = Instant::now();
    for _ in 0..samples {
        let t = Instant::now();
        let loaded = load::<CaseState>(log, &id).await?;
        record(&mut snapshot_hist, t.elapsed());
        std::hint::black_box(loaded);
    }
    print_rate(
        "load (last commit + snapshot)",
        samples,
        started.elapsed(),
        &snapshot_hist,
    );

    let subject = aggregate_subject(AggregateType::Case, &id);
    let mut raw_hist = histogram()?;
    let started = Instant::now();
    for _ in 0..samples {
        let t = Instant::now();
        let message = log
            .stream()
            .get_last_raw_message_by_subject(&subject)
            .await?;
        record(&mut raw_hist, t.elapsed());
        std::hint::black_box(message);
    }
    print_rate(
        "baseline: raw get of last message",
        samples,
        started.elapsed(),
        &raw_hist,
    );

    let replays = (samples / 10).max(20);
    let mut replay_hist = histogram()?;
    let started = Instant::now();
    for _ in 0..replays {
        let t = Instant::now();
        let loaded = zhzj_cases::aggregate::replay::<CaseState>(
            log,
            &id,
            loaded.version.unwrap_or_default(),
        )
        .await?;
        record(&mut replay_hist, t.elapsed());
        std::hint::black_box(loaded);
    }
    print_rate(
        "reference: replay by ordered consumer",
        replays,
        started.elapsed(),
        &replay_hist,
    );
    println!(
        "p99 load: {:.2} ms (bar <= 2 ms)",
        ms(snapshot_hist.value_at_quantile(0.99))
    );
    Ok(())
}
