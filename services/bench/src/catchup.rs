//! `zhzj bench catchup`: projection catch-up and rebuild.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use zhzj_projector::{Projection, sqlbuild};
use zhzj_store::{EventLog, ReadStore};

use crate::common::{bench_database, drop_bench_database};
use crate::verify::*;

/// Reference: how fast this machine hands the log to one pull consumer, nothing else done, and
/// decodes it on one thread.
async fn reference_reads(log: &EventLog, events: usize) -> anyhow::Result<()> {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    let consumer = log
        .stream()
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(zhzj_projector::runner::BATCH)
        .messages()
        .await?;
    let sample = events.min(100_000);
    let mut kept = Vec::with_capacity(sample);
    let mut read = 0;
    while read < events {
        match messages.next().await {
            Some(Ok(message)) => {
                if kept.len() < sample {
                    kept.push((message.subject.to_string(), message.payload.clone()));
                }
                read += 1;
            }
            Some(Err(e)) => bail!("reading the log: {e}"),
            None => bail!("log ended early"),
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{:<44} {events:>9} in {:>7.2}s = {:>9.0} events/s",
        "reference: pull consumer, read only",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );
    let started = Instant::now();
    for (i, (subject, payload)) in kept.iter().enumerate() {
        std::hint::black_box(zhzj_projector::projection::read_message(
            i as u64 + 1,
            subject,
            payload,
        ));
    }
    let elapsed = started.elapsed();
    println!(
        "{:<44} {sample:>9} in {:>7.2}s = {:>9.0} events/s",
        "reference: decode only, one thread",
        elapsed.as_secs_f64(),
        sample as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// The checklist projection catching up from position 0 on an empty store; its rate.
async fn measure_catchup(log: &EventLog, store: &ReadStore, events: usize) -> anyhow::Result<f64> {
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let projector = tokio::spawn(zhzj_projector::run(
        log.clone(),
        store.clone(),
        Projection::CHECKLIST,
        shutdown.clone(),
    ));
    loop {
        let status = zhzj_projector::status(log, store).await?;
        if status
            .iter()
            .any(|s| s.name == "checklist" && s.lag == 0 && s.generation > 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let catchup = started.elapsed();
    shutdown.cancel();
    projector.await??;
    // A fast catch-up that skipped positions would be no result at all.
    let status = zhzj_projector::status(log, store).await?;
    let checklist = status
        .iter()
        .find(|s| s.name == "checklist")
        .context("no checklist status")?;
    if !checklist.is_complete() {
        bail!("the checklist caught up incompletely: {checklist:?}");
    }
    println!(
        "checklist applied {} positions to {}, {} missing",
        checklist.applied.unwrap_or(0),
        checklist.position,
        checklist.missing
    );
    let catchup_rate = events as f64 / catchup.as_secs_f64();
    println!(
        "{:<44} {events:>9} in {:>7.2}s = {catchup_rate:>9.0} events/s",
        "checklist catch-up from position 0",
        catchup.as_secs_f64()
    );
    Ok(catchup_rate)
}

/// Baseline: the same number of checklist-shaped rows, multi-row inserted into a table of the
/// same shape in the same database, in transactions of the projector's batch size; its rate.
async fn raw_insert_rate(store: &ReadStore, events: usize) -> anyhow::Result<f64> {
    let batch = zhzj_projector::runner::BATCH;
    let dialect = store.dialect();
    {
        let mut conn = store.pool().acquire().await?;
        for ddl in Projection::CHECKLIST.create_tables(dialect, 999) {
            sqlx::query(sqlx::AssertSqlSafe(ddl))
                .execute(&mut *conn)
                .await?;
        }
    }
    let columns: Vec<sqlbuild::Column> = [
        "case_id",
        "case_number",
        "matter",
        "category",
        "district_id",
        "district_name",
        "town_id",
        "town_name",
        "leader_id",
        "leader_name",
        "lead_unit_id",
        "lead_unit_name",
        "assisting_units",
        "measures_total",
        "measures_done",
        "registered_at",
        "last_activity_at",
        "version",
    ]
    .into_iter()
    .map(sqlbuild::col)
    .collect();
    let started = Instant::now();
    let stamp = zhzj_store::sql::timestamp_text(Utc::now());
    for chunk_start in (0..events).step_by(batch) {
        use sqlbuild::SqlValue::{Int, OptText, Text};
        let rows = (chunk_start..(chunk_start + batch).min(events))
            .map(|i| {
                vec![
                    Text(Uuid::from_u128(i as u128).to_string()),
                    Text(format!("BENCH-{i:07}")),
                    Text("要求解决房屋征收补偿问题".into()),
                    Text("征地拆迁".into()),
                    Text("xm-siming".into()),
                    Text("思明区".into()),
                    OptText(None),
                    OptText(None),
                    OptText(None),
                    OptText(None),
                    OptText(None),
                    OptText(None),
                    OptText(None),
                    Int(3),
                    Int(1),
                    Text(stamp.clone()),
                    Text(stamp.clone()),
                    Int(i as i64),
                ]
            })
            .collect();
        let mut tx = store.begin_write().await?;
        sqlbuild::insert_rows(&mut tx, dialect, "checklist_rows_g999", &columns, rows, "").await?;
        tx.commit().await?;
    }
    let raw = started.elapsed();
    let raw_rate = events as f64 / raw.as_secs_f64();
    println!(
        "{:<44} {events:>9} in {:>7.2}s = {raw_rate:>9.0} rows/s",
        "baseline: raw multi-row inserts",
        raw.as_secs_f64()
    );
    Ok(raw_rate)
}

pub(crate) async fn catchup_bench(
    client: &async_nats::Client,
    log: &EventLog,
    events: usize,
    cases: usize,
    database: &str,
) -> anyhow::Result<()> {
    println!("generating {events} events over {cases} cases …");
    let generated = generate_log(client, events, cases, None).await?;
    println!(
        "generated in {:.1}s ({:.0} events/s published)",
        generated.as_secs_f64(),
        events as f64 / generated.as_secs_f64()
    );
    reference_reads(log, events).await?;
    let dir = tempfile::tempdir()?;
    let (url, pg_cleanup) = bench_database(database, dir.path()).await?;
    let store = ReadStore::connect(&url).await.context("read store")?;

    let catchup_rate = measure_catchup(log, &store, events).await?;

    let raw_rate = raw_insert_rate(&store, events).await?;
    let dialect = store.dialect();
    println!(
        "ratio catch-up/raw on {}: {:.2} (bar >= 0.5)",
        if dialect == zhzj_store::Dialect::Sqlite {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        catchup_rate / raw_rate
    );

    for projection in [
        Projection::ORG,
        Projection::CHECKLIST,
        Projection::ARCHIVE,
        Projection::FIGURES,
        Projection::AGENDA,
        Projection::LEADERS,
    ] {
        let report = zhzj_projector::rebuild(log, &store, projection).await?;
        let rate = report.messages as f64 / report.elapsed.as_secs_f64();
        println!(
            "rebuild {:<10} {:>9} events in {:>7.2}s = {:>9.0} events/s ({:.2} of raw inserts)",
            projection.name(),
            report.messages,
            report.elapsed.as_secs_f64(),
            rate,
            rate / raw_rate
        );
    }
    store.close().await;
    drop_bench_database(pg_cleanup).await
}
