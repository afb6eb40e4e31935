//! A projector catching up on a large backlog applies every position: a fresh projector over
//! 100,000 commits of over 100 MB, then the same projector stopped while 100,000 more are written
//! and started again, on SQLite and PostgreSQL, on the machine's nats-server and a current one.
//!
//! An outside chaos drill found a fresh projector over 25,700 commits (32 MB) losing blocks of
//! thousands of positions while reporting lag 0: five pull consumers each asked for 20,000
//! messages on one connection, the server cut it as a slow consumer, and the checkpoint moved
//! past what never arrived. These tests end by checking every position in every projection
//! against the stream, not against the projector's own account of itself.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use sqlx::Row;
use uuid::Uuid;
use zhzj_cases::synthetic::{SyntheticHistory, write_history};
use zhzj_store::{EventLog, LogConfig, ReadStore};
use zhzj_tests::{DbKind, NatsServer, Projecting, TestDb, init_tracing};

/// Commits per phase: four times the backlog that lost positions. `ZHZJ_CATCHUP_COMMITS` sets
/// another size (the drill at ten times that backlog runs with 260000).
fn commits() -> usize {
    std::env::var("ZHZJ_CATCHUP_COMMITS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}
/// Cases they are spread over.
const CASES: usize = 2_000;
/// Note length that makes an average commit (with its snapshot header) over 1 KB.
const NOTE_CHARS: usize = 420;

/// Waits until every projection's status says it is level with the log (lag 0).
async fn wait_level(log: &EventLog, store: &ReadStore, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        // A status request may time out while the server is busy delivering the backlog.
        let status = zhzj_projector::status(log, store).await;
        if let Ok(status) = &status
            && status.iter().all(|s| s.lag == 0 && s.generation > 0)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("projections did not catch up within {within:?}: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks every projection against the stream: the archive holds every position from 1 to the
/// last, the checklist row of every case stands at the case's last commit, and every projection
/// counted every position below its checkpoint.
async fn check_complete(
    log: &EventLog,
    store: &ReadStore,
    cases: &[(Uuid, u64)],
) -> anyhow::Result<()> {
    let last = log.last_position().await?;
    let row = sqlx::query(
        "SELECT COUNT(DISTINCT position) AS n, MIN(position) AS lo, MAX(position) AS hi \
         FROM event_archive",
    )
    .fetch_one(store.pool())
    .await?;
    let (n, lo, hi): (i64, i64, i64) = (row.try_get("n")?, row.try_get("lo")?, row.try_get("hi")?);
    ensure!(
        (n, lo, hi) == (i64::try_from(last)?, 1, i64::try_from(last)?),
        "event_archive holds {n} distinct positions from {lo} to {hi}; the stream has 1..={last} \
         ({} missing)",
        i64::try_from(last)? - n
    );
    // (The lifecycle view's version moves only with lifecycle events; its completeness is the
    // projector's count below.)
    for (view, column) in [("checklist_rows", "version")] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT case_id, {column} AS version FROM {view}"
        )))
        .fetch_all(store.pool())
        .await?;
        let versions: std::collections::HashMap<String, i64> = rows
            .iter()
            .map(|row| Ok((row.try_get("case_id")?, row.try_get("version")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let stale: Vec<_> = cases
            .iter()
            .filter(|(id, position)| {
                versions.get(&id.to_string()).copied()
                    != Some(i64::try_from(*position).unwrap_or(-1))
            })
            .collect();
        ensure!(
            stale.is_empty(),
            "{view}: {} of {} cases do not stand at their last commit, e.g. {:?} at {:?}",
            stale.len(),
            cases.len(),
            stale.first(),
            stale
                .first()
                .and_then(|(id, _)| versions.get(&id.to_string()))
        );
    }
    // The projector's own account agrees: nothing missing, nothing behind.
    for status in zhzj_projector::status(log, store).await? {
        ensure!(
            status.missing == 0 && status.applied.is_some() && status.lag == 0,
            "status of {} reports {status:?}",
            status.name
        );
    }
    Ok(())
}

async fn catch_up_and_resume(binary: PathBuf, kind: DbKind) -> anyhow::Result<()> {
    init_tracing();
    let nats = NatsServer::start_binary(binary).await?;
    let client = nats.connect().await?;
    let log = EventLog::open(client.clone(), &LogConfig::default()).await?;
    let js = async_nats::jetstream::new(client.clone());

    // A backlog of over 100 MB before any projector runs.
    let first = write_history(
        &js,
        SyntheticHistory {
            commits: commits(),
            cases: CASES,
            note_chars: NOTE_CHARS,
            first_case: 0,
        },
    )
    .await?;
    let bytes = log.stream().clone().info().await?.state.bytes;
    ensure!(
        bytes >= commits() as u64 * 1_000,
        "the backlog is only {bytes} bytes; the test needs over 1 KB per commit"
    );

    // A fresh projector catches up on all of it.
    let projecting = Projecting::start(&log, kind).await?;
    wait_level(&log, &projecting.store, Duration::from_secs(300))
        .await
        .context("fresh projector over the backlog")?;
    check_complete(&log, &projecting.store, &first.last_positions)
        .await
        .context("fresh projector over the backlog")?;

    // Stopped while 100,000 more commits arrive from two writers at once, then started again
    // on the same database.
    let (db, _store): (TestDb, ReadStore) = projecting.stop_keeping().await?;
    let more = |first_case| {
        write_history(
            &js,
            SyntheticHistory {
                commits: commits() / 2,
                cases: CASES,
                note_chars: NOTE_CHARS,
                first_case,
            },
        )
    };
    let (second, third) = tokio::try_join!(more(1_000_000), more(2_000_000))?;
    let projecting = Projecting::start_on(&log, db).await?;
    wait_level(&log, &projecting.store, Duration::from_secs(300))
        .await
        .context("projector resumed after 100,000 more commits")?;
    let mut all_cases = first.last_positions;
    all_cases.extend(second.last_positions);
    all_cases.extend(third.last_positions);
    check_complete(&log, &projecting.store, &all_cases)
        .await
        .context("projector resumed after 100,000 more commits")?;
    projecting.stop().await?;
    Ok(())
}

fn current_nats() -> anyhow::Result<PathBuf> {
    zhzj_tests::current_nats_binary()
        .context("ZHZJ_NATS_SERVER_CURRENT is not set: run the tests through deploy/test.sh")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_sqlite_default_nats() -> anyhow::Result<()> {
    catch_up_and_resume(zhzj_tests::default_nats_binary(), DbKind::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_postgres_default_nats() -> anyhow::Result<()> {
    catch_up_and_resume(zhzj_tests::default_nats_binary(), DbKind::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_sqlite_current_nats() -> anyhow::Result<()> {
    catch_up_and_resume(current_nats()?, DbKind::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_postgres_current_nats() -> anyhow::Result<()> {
    catch_up_and_resume(current_nats()?, DbKind::Postgres).await
}
