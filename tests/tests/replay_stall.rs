//! A projection whose consumer stops delivering reopens it where it was: a rebuild instead of
//! failing, a live projector instead of lagging for ever.
//!
//! `zhzj bench catchup` once failed a rebuild of 1,000,000 events with "replay stalled": the
//! ordered consumer replaying the log delivered nothing for 30 s while the log held the rest,
//! and nothing but the operator running the rebuild again would get past it. Here the server is
//! told to stop feeding the rebuild's consumer (consumer pause, nats-server 2.11+) while it keeps
//! the consumer alive and its heartbeats coming, so the client library sees nothing wrong — the
//! same silence.

use std::time::Duration;

use anyhow::{Context, ensure};
use zhzj_cases::synthetic::{SyntheticHistory, write_history};
use zhzj_projector::Projection;
use zhzj_store::{EventLog, LogConfig};
use zhzj_tests::{DbKind, NatsServer, TestDb, init_tracing};

/// The tests of this file one at a time: each pauses consumers while the other's projections
/// would compete for the two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cases of the log the tests replay.
const CASES: i64 = 200;

/// A current nats-server (consumer pause is 2.11+) whose log holds 20,000 commits over
/// [`CASES`] cases; the server, a connection, the log and the stream's name.
async fn log_of_200_cases() -> anyhow::Result<(NatsServer, async_nats::Client, EventLog, String)> {
    let binary = zhzj_tests::current_nats_binary()
        .context("ZHZJ_NATS_SERVER_CURRENT is not set: run the tests through deploy/test.sh")?;
    let nats = NatsServer::start_binary(binary).await?;
    let client = nats.connect().await?;
    let log = EventLog::open(client.clone(), &LogConfig::default()).await?;
    write_history(
        &async_nats::jetstream::new(client.clone()),
        SyntheticHistory {
            commits: 20_000,
            cases: usize::try_from(CASES)?,
            note_chars: 40,
            first_case: 0,
        },
    )
    .await?;
    let stream = log.stream().cached_info().config.name.clone();
    Ok((nats, client, log, stream))
}

/// The reopenings counted for `projection` by this test process.
fn reopenings(metrics: &metrics_exporter_prometheus::PrometheusHandle, projection: &str) -> f64 {
    let series = format!("zhzj_projection_reopenings_total{{projection=\"{projection}\"}}");
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with(&series))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Pauses, for an hour, every consumer of the event stream that has delivered messages up to
/// position `delivered` at least and that `seen` does not list; returns how many it paused.
async fn pause_new_consumers(
    client: &async_nats::Client,
    stream: &str,
    delivered: u64,
    seen: &mut std::collections::HashSet<String>,
) -> anyhow::Result<usize> {
    let js = async_nats::jetstream::new(client.clone());
    let listing: serde_json::Value = js
        .request(format!("CONSUMER.NAMES.{stream}"), &serde_json::json!({}))
        .await?;
    let names: Vec<String> = listing["consumers"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let mut paused = 0;
    for name in names {
        if seen.contains(&name) {
            continue;
        }
        let info: serde_json::Value = js
            .request(
                format!("CONSUMER.INFO.{stream}.{name}"),
                &serde_json::json!({}),
            )
            .await?;
        if info["delivered"]["stream_seq"].as_u64().unwrap_or(0) < delivered {
            continue;
        }
        seen.insert(name.clone());
        let answer: serde_json::Value = js
            .request(
                format!("CONSUMER.PAUSE.{stream}.{name}"),
                &serde_json::json!({ "pause_until": until }),
            )
            .await?;
        ensure!(
            answer["paused"] == true,
            "consumer {name} not paused: {answer}"
        );
        paused += 1;
    }
    Ok(paused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_whose_consumer_goes_silent_reopens_it_and_completes() -> anyhow::Result<()> {
    let _alone = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (_nats, client, log, stream) = log_of_200_cases().await?;
    let last = log.last_position().await?;

    let db = TestDb::create(DbKind::Sqlite).await?;
    let store = db.store().await?;
    // The first consumer the rebuild opens goes silent as soon as it exists (a replay reads
    // ahead: paused later, it could have all it needs already).
    let metrics = zhzj_tests::test_metrics().context("a metrics recorder")?;
    let before = reopenings(&metrics, "checklist");
    let pauser = {
        let (client, stream) = (client.clone(), stream.clone());
        tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            loop {
                if pause_new_consumers(&client, &stream, 0, &mut seen).await? > 0 {
                    return anyhow::Ok(());
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        zhzj_projector::rebuild(&log, &store, Projection::CHECKLIST),
    )
    .await
    .context("the rebuild did not end within 120 s")?
    .context("the rebuild failed")?;
    pauser.await??;
    ensure!(
        report.position == last,
        "rebuilt to {} of {last}",
        report.position
    );
    ensure!(
        reopenings(&metrics, "checklist") > before,
        "the replay never reopened its consumer"
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checklist_rows")
        .fetch_one(store.pool())
        .await?;
    ensure!(rows == CASES, "{rows} checklist rows for {CASES} cases");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_whose_consumer_goes_silent_reads_again_from_its_checkpoint()
-> anyhow::Result<()> {
    let _alone = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let metrics = zhzj_tests::test_metrics().context("a metrics recorder")?;
    let before = reopenings(&metrics, "checklist");
    let (_nats, client, log, stream) = log_of_200_cases().await?;
    // The projector's first consumer (one for all its projections) goes silent once it has
    // delivered something; the consumer it opens after is left alone.
    let pauser = {
        let (client, stream) = (client.clone(), stream.clone());
        tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            let mut paused = 0;
            while paused < 1 {
                paused += pause_new_consumers(&client, &stream, 1, &mut seen).await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            anyhow::Ok(())
        })
    };
    let projecting = zhzj_tests::Projecting::start(&log, DbKind::Sqlite).await?;
    zhzj_tests::wait_caught_up(&log, &projecting.store)
        .await
        .context("the projections did not catch up with their consumers paused")?;
    pauser.abort();
    ensure!(
        reopenings(&metrics, "checklist") > before,
        "the checklist projection never reopened its consumer"
    );
    projecting.stop().await?;
    Ok(())
}
