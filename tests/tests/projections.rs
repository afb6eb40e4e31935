//! The projector: resumes after a crash and ends identical to a rebuild, dead-letters poison
//! messages and goes on, swaps a rebuild in under a live projector, and reports its lag — on
//! SQLite and on PostgreSQL.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use zhzj_projector::{Projection, rebuild, status};
use zhzj_proto::{Command, commands::SetResponsibleUnits};
use zhzj_store::ReadStore;
use zhzj_tests::{
    DbKind, Projecting, Services, TestDb, add_measure, assign_leader, complete_measure, dump_view,
    record_note, register_case, run_projections, seeded_stack, wait_caught_up,
};

/// Registers `cases` cases and works each one through a few commands, from 8 concurrent writers.
async fn write_history(services: &Services, cases: u32) -> anyhow::Result<()> {
    let mut writers = Vec::new();
    for writer in 0..8 {
        let services = services.clone();
        writers.push(tokio::spawn(async move {
            for n in (writer..cases).step_by(8) {
                let case_id: Uuid = services.ok(register_case(n)).await?.aggregate_id.parse()?;
                services
                    .ok(assign_leader(case_id, "ldr-siming-1", None))
                    .await?;
                services
                    .ok(Command::SetResponsibleUnits(SetResponsibleUnits {
                        case_id,
                        lead_unit_id: "xm-siming-zhonghua".into(),
                        assisting_unit_ids: vec!["xm-dept-zjj".into()],
                        handler: Some("陈科长".into()),
                    }))
                    .await?;
                for i in 0..2 {
                    services
                        .ok(add_measure(case_id, &format!("措施{i}")))
                        .await?;
                }
                if n % 2 == 0 {
                    services
                        .ok(complete_measure(case_id, "m1", "已完成"))
                        .await?;
                }
                if n % 5 == 0 {
                    services
                        .ok(assign_leader(case_id, "ldr-siming-2", Some("工作调整")))
                        .await?;
                }
                if n % 3 == 0 {
                    for command in lifecycle_commands(case_id, n) {
                        services.ok(command).await?;
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    Ok(())
}

/// Classified, claimed, crossed off after two reviews, and (for some) reopened by a new petition.
fn lifecycle_commands(case_id: Uuid, n: u32) -> Vec<Command> {
    use zhzj_proto::commands::{ClaimResolution, ClassifyCase, RecordPetition, ReviewClaim};
    use zhzj_proto::events::{Channel, ClaimClass, ResolutionGround, ReviewLevel};
    let review = |level| {
        Command::ReviewClaim(ReviewClaim {
            case_id,
            level,
            accept: true,
            reasons: None,
        })
    };
    let mut commands = vec![
        Command::ClassifyCase(ClassifyCase {
            case_id,
            class: ClaimClass::Reasonable,
            category: "征地拆迁".into(),
            reason: None,
        }),
        Command::ClaimResolution(ClaimResolution {
            case_id,
            ground: ResolutionGround::Solved,
            summary: "补偿款已发放".into(),
            evidence: vec![format!("发放凭证 {n}")],
        }),
        review(ReviewLevel::District),
        review(ReviewLevel::City),
    ];
    if n.is_multiple_of(2) {
        commands.push(Command::RecordPetition(RecordPetition {
            case_id,
            received_on: chrono::NaiveDate::from_ymd_opt(2026, 2, 1).unwrap_or_default(),
            channel: Channel::Phone,
            summary: "再次反映补偿问题".into(),
        }));
    }
    commands
}

const ARCHIVE_DUMP: &str = "(SELECT position, event_index, aggregate_type, aggregate_id, \
    aggregate_version, event_id, event_type, schema_version, occurred_at, actor_id, command_id, \
    correlation_id, causation_id, CAST(data AS TEXT) AS data FROM event_archive) AS archive";

async fn dump_all(store: &ReadStore) -> anyhow::Result<Vec<Vec<String>>> {
    Ok(vec![
        dump_view(store, "checklist_rows", "case_id").await?,
        dump_view(store, "org_units", "unit_id").await?,
        dump_view(store, "org_leaders", "leader_id").await?,
        dump_view(store, "case_lifecycle", "case_id").await?,
        dump_view(store, ARCHIVE_DUMP, "position, event_index").await?,
        dump_view(store, "leader_case_state", "case_id").await?,
        dump_view(
            store,
            "leader_place_cases",
            "leader_id, district_id, town_id",
        )
        .await?,
        dump_view(
            store,
            "leader_place_months",
            "leader_id, district_id, town_id, month",
        )
        .await?,
        dump_view(store, "agenda_states", "id").await?,
        dump_view(store, "agenda_spans", "id").await?,
        dump_view(store, "agenda_spans_late", "id").await?,
        dump_view(store, "agenda_flows", "position, event_index").await?,
        dump_view(store, "agenda_leaders", "case_id, position, event_index").await?,
        dump_view(store, "agenda_cases", "case_id").await?,
    ])
}

/// Runs the projector until every projection has reached the log's last position, then stops
/// it cleanly.
async fn project_until_caught_up(services: &Services, store: &ReadStore) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let tasks = run_projections(services.log.clone(), store.clone(), shutdown.clone());
    wait_caught_up(&services.log, store).await?;
    shutdown.cancel();
    for task in tasks {
        task.await?;
    }
    Ok(())
}

async fn projector_killed_mid_stream_equals_rebuild(kind: DbKind) -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    write_history(&services, 200).await?;
    let db = TestDb::create(kind).await?;
    let store = db.store().await?;

    // Run and kill the projector several times at different points of the stream.
    let last = services.log.last_position().await?;
    let mut positions = Vec::new();
    for delay_ms in [5_u64, 20, 60, 150] {
        let shutdown = CancellationToken::new();
        let tasks = run_projections(services.log.clone(), store.clone(), shutdown.clone());
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        for task in &tasks {
            task.abort(); // a crash: no shutdown, open transactions dropped
        }
        for task in tasks {
            let _ = task.await;
        }
        let checklist = status(&services.log, &store)
            .await?
            .into_iter()
            .find(|s| s.name == "checklist")
            .map_or(0, |s| s.position);
        positions.push(checklist);
    }
    assert!(
        positions.windows(2).all(|w| w[0] <= w[1]),
        "a crash never loses applied progress: {positions:?}"
    );
    project_until_caught_up(&services, &store).await?;
    let resumed = dump_all(&store).await?;
    assert_eq!(resumed[0].len(), 200, "one checklist row per case");
    assert!(resumed[4].len() as u64 >= last, "every event archived");
    assert!(!resumed[3].is_empty(), "lifecycle rows");

    for projection in Projection::ALL {
        let report = rebuild(&services.log, &store, projection).await?;
        assert_eq!(report.position, last);
        assert_eq!(report.generation, 2);
    }
    let rebuilt = dump_all(&store).await?;
    assert_eq!(
        resumed, rebuilt,
        "resumed views equal a rebuild from scratch"
    );

    // Spot-check the checklist content.
    let row = &rebuilt[0][0];
    assert!(row.contains("district_name=思明区"), "{row}");
    assert!(row.contains("measures_total=Some(2)"), "{row}");
    assert!(row.contains("assisting_units=市住房局"), "{row}");
    Ok(())
}

async fn poison_message_is_dead_lettered(kind: DbKind) -> anyhow::Result<()> {
    let (nats, services) = seeded_stack().await?;
    let projecting = Projecting::start(&services.log, kind).await?;
    let store = projecting.store.clone();

    let case_id: Uuid = services.ok(register_case(1)).await?.aggregate_id.parse()?;
    let js = async_nats::jetstream::new(nats.connect().await?);
    let poison = [
        Bytes::from_static(b"\xff\xfe not even utf-8"),
        Bytes::from(
            serde_json::json!({"events": [{"event_id": Uuid::new_v4(), "aggregate_type": "case",
                "aggregate_id": "x", "event_type": "CaseTeleported", "schema_version": 1,
                "occurred_at": "2026-01-01T00:00:00Z", "actor": {"user_id": "u"},
                "command_id": Uuid::new_v4(), "correlation_id": Uuid::new_v4(),
                "causation_id": Uuid::new_v4(), "data": {}}]})
            .to_string(),
        ),
    ];
    for body in poison {
        js.publish("zhzj.ev.case.x", body).await?.await?;
    }
    services
        .ok(record_note(case_id, "毒消息之后的事件"))
        .await?;
    services.ok(add_measure(case_id, "入户走访")).await?;
    wait_caught_up(&services.log, &store).await?;

    let report = status(&services.log, &store).await?;
    for projection in &report {
        assert_eq!(projection.lag, 0);
        assert_eq!(projection.dead_letters, 2, "{projection:?}");
    }
    let reasons = dump_view(
        &store,
        "(SELECT projection, position, reason FROM dead_letters WHERE projection = 'checklist') AS d",
        "position",
    )
    .await?;
    assert!(reasons[0].contains("not a commit"), "{reasons:?}");
    assert!(
        reasons[1].contains("unknown event type `CaseTeleported`"),
        "{reasons:?}"
    );
    let rows = dump_view(&store, "checklist_rows", "case_id").await?;
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].contains("measures_total=Some(1)"),
        "later events applied: {rows:?}"
    );
    projecting.stop().await?;
    Ok(())
}

async fn rebuild_swaps_in_under_a_live_projector(kind: DbKind) -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let projecting = Projecting::start(&services.log, kind).await?;
    let store = projecting.store.clone();
    write_history(&services, 40).await?;

    // Keep writing while the rebuild runs, then check nothing was missed.
    let writer = {
        let services = services.clone();
        tokio::spawn(async move { write_history_from(&services, 40, 80).await })
    };
    let report = rebuild(&services.log, &store, Projection::CHECKLIST).await?;
    assert_eq!(report.generation, 2);
    writer.await??;
    wait_caught_up(&services.log, &store).await?;
    let rows = dump_view(&store, "checklist_rows", "case_id").await?;
    assert_eq!(
        rows.len(),
        80,
        "cases written during the rebuild are on the new tables"
    );
    projecting.stop().await?;
    Ok(())
}

async fn write_history_from(services: &Services, from: u32, to: u32) -> anyhow::Result<()> {
    for n in from..to {
        services.ok(register_case(n)).await?;
    }
    Ok(())
}

/// A rebuild can swap in behind the live projector (the projector applied the last writes to the
/// old tables after the rebuild's final read). With no further writes, the projector must still
/// notice and project those events into the new tables. The swap "behind" is made exact here by
/// winding the rebuilt checkpoint back over the last registrations and deleting their rows.
#[tokio::test]
async fn idle_projector_notices_a_swap_behind_it() -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let projecting = Projecting::start(&services.log, DbKind::Sqlite).await?;
    let store = projecting.store.clone();
    write_history(&services, 10).await?;
    let mut last_cases = Vec::new();
    for n in 10..15 {
        last_cases.push(services.ok(register_case(n)).await?.aggregate_id);
    }
    wait_caught_up(&services.log, &store).await?;
    let expected = dump_view(&store, "checklist_rows", "case_id").await?;
    let report = rebuild(&services.log, &store, Projection::CHECKLIST).await?;
    let table = format!("checklist_rows_g{}", report.generation);
    for case_id in &last_cases {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE case_id = $1"
        )))
        .bind(case_id)
        .execute(store.pool())
        .await?;
    }
    sqlx::query("UPDATE projection_checkpoints SET position = $1 WHERE projection = 'checklist'")
        .bind(i64::try_from(report.position)? - 5)
        .execute(store.pool())
        .await?;
    assert_eq!(
        dump_view(&store, "checklist_rows", "case_id").await?.len(),
        expected.len() - 5
    );
    // No writes from here on.
    wait_caught_up(&services.log, &store).await?;
    assert_eq!(
        dump_view(&store, "checklist_rows", "case_id").await?,
        expected,
        "the projector re-applied the events behind the swapped-in checkpoint"
    );
    projecting.stop().await?;
    Ok(())
}

#[tokio::test]
async fn two_read_stores_on_one_log_each_get_every_event() -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let first = Projecting::start(&services.log, DbKind::Sqlite).await?;
    let second = Projecting::start(&services.log, DbKind::Postgres).await?;
    write_history(&services, 30).await?;
    wait_caught_up(&services.log, &first.store).await?;
    wait_caught_up(&services.log, &second.store).await?;
    let a = dump_view(&first.store, "checklist_rows", "case_id").await?;
    let b = dump_view(&second.store, "checklist_rows", "case_id").await?;
    assert_eq!(
        a.len(),
        30,
        "each store has every case, not a share of them"
    );
    assert_eq!(a, b);
    first.stop().await?;
    second.stop().await?;
    Ok(())
}

#[tokio::test]
async fn concurrent_rebuilds_never_mix_their_tables() -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let projecting = Projecting::start(&services.log, DbKind::Sqlite).await?;
    write_history(&services, 60).await?;
    wait_caught_up(&services.log, &projecting.store).await?;
    let before = dump_view(&projecting.store, "checklist_rows", "case_id").await?;
    let (a, b) = tokio::join!(
        rebuild(&services.log, &projecting.store, Projection::CHECKLIST),
        rebuild(&services.log, &projecting.store, Projection::CHECKLIST),
    );
    let outcomes = [a.is_ok(), b.is_ok()];
    assert!(
        outcomes.contains(&true),
        "one rebuild swaps in: {a:?} / {b:?}"
    );
    for outcome in [&a, &b] {
        if let Err(e) = outcome {
            assert!(
                matches!(e, zhzj_projector::ProjectorError::RebuildRaced(_)),
                "{e}"
            );
        }
    }
    wait_caught_up(&services.log, &projecting.store).await?;
    let after = dump_view(&projecting.store, "checklist_rows", "case_id").await?;
    assert_eq!(before, after);
    projecting.stop().await?;
    Ok(())
}

/// An export seals the log, so its last message is often a seal, which no projection reads. A
/// rebuild must finish there: it waited 30 s for an event that never came and failed ("replay
/// stalled"), found by `zhzj rebuild figures` after an XLSX export on `zhzj up --demo`.
#[tokio::test]
async fn a_rebuild_finishes_when_the_log_ends_with_a_seal() -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let projecting = Projecting::start(&services.log, DbKind::Sqlite).await?;
    let store = projecting.store.clone();
    write_history(&services, 5).await?;
    let signer = std::sync::Arc::new(zhzj_store::CommitSigner::generate()?);
    zhzj_store::Sealer::new(services.log.clone(), signer)
        .seal(None, "export")
        .await?;
    let report = tokio::time::timeout(
        Duration::from_secs(20),
        rebuild(&services.log, &store, Projection::FIGURES),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the rebuild did not finish in 20 s"))??;
    assert_eq!(report.generation, 2);
    wait_caught_up(&services.log, &store).await?;
    let states: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT case_id) FROM figure_states")
        .fetch_one(store.pool())
        .await?;
    assert_eq!(states, 5, "every case is on the rebuilt tables");
    projecting.stop().await?;
    Ok(())
}

/// Runs one projection alone until it has reached the log's last position.
async fn catch_up_alone(
    services: &Services,
    store: &ReadStore,
    projection: Projection,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(zhzj_projector::run(
        services.log.clone(),
        store.clone(),
        projection,
        shutdown.clone(),
    ));
    let last = services.log.last_position().await?;
    for _ in 0..600 {
        let report = status(&services.log, store).await?;
        if report
            .iter()
            .any(|s| s.name == projection.name() && s.position >= last)
        {
            shutdown.cancel();
            task.await??;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{} did not reach position {last}", projection.name())
}

/// The projector reads the log once for all its projections, from the lowest checkpoint: each
/// projection must skip what it already holds. Here three stand at three different positions
/// (the others at 0) when the projector starts; every view must end equal to a rebuild, and
/// every projection must account for each position exactly once.
async fn projections_at_different_positions_catch_up_together(kind: DbKind) -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let db = TestDb::create(kind).await?;
    let store = db.store().await?;
    write_history(&services, 30).await?;
    catch_up_alone(&services, &store, Projection::CHECKLIST).await?;
    write_history_from(&services, 30, 45).await?;
    catch_up_alone(&services, &store, Projection::LIFECYCLE).await?;
    write_history_from(&services, 45, 50).await?;
    catch_up_alone(&services, &store, Projection::ARCHIVE).await?;
    write_history_from(&services, 50, 60).await?;
    let start = status(&services.log, &store).await?;
    let positions: std::collections::BTreeSet<u64> = start.iter().map(|s| s.position).collect();
    assert!(positions.len() >= 4, "not level: {start:?}");

    project_until_caught_up(&services, &store).await?;
    for projection in status(&services.log, &store).await? {
        assert_eq!(
            projection
                .applied
                .map(|applied| applied + projection.empty_positions),
            Some(projection.position),
            "each position applied once: {projection:?}"
        );
    }
    let together = dump_all(&store).await?;
    assert_eq!(together[0].len(), 60, "one checklist row per case");
    for projection in Projection::ALL {
        rebuild(&services.log, &store, projection).await?;
    }
    assert_eq!(together, dump_all(&store).await?, "equal to a rebuild");
    Ok(())
}

/// One reader feeds every projection, so a projection whose own statements keep failing must
/// not hold the others back: after a few failures in a row it is read on its own. Here the
/// checklist's live table is gone; the other views still follow the log, the checklist is
/// reported failing, and a rebuild of it brings it back.
#[tokio::test]
async fn a_projection_that_keeps_failing_does_not_hold_the_others_back() -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let db = TestDb::create(DbKind::Sqlite).await?;
    let store = db.store().await?;
    zhzj_projector::prepare(&store).await?;
    sqlx::query("DROP TABLE checklist_rows_g1")
        .execute(store.pool())
        .await?;
    let shutdown = CancellationToken::new();
    let tasks = run_projections(services.log.clone(), store.clone(), shutdown.clone());
    write_history(&services, 20).await?;
    let last = services.log.last_position().await?;
    let mut report = Vec::new();
    for _ in 0..300 {
        report = status(&services.log, &store).await?;
        if report
            .iter()
            .all(|s| s.name == "checklist" || s.position == last)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for projection in &report {
        if projection.name == "checklist" {
            // The directory's events before the first case touch no checklist table.
            assert!(projection.position < last, "{projection:?}");
        } else {
            assert_eq!(projection.position, last, "the others go on: {report:?}");
        }
    }
    // Each attempt clears the fault when it starts and sets it again when it fails.
    let mut reported = false;
    for _ in 0..100 {
        reported |= store
            .projection_faults()
            .current()
            .contains_key("checklist");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reported, "the checklist is reported failing");
    rebuild(&services.log, &store, Projection::CHECKLIST).await?;
    write_history_from(&services, 20, 25).await?;
    wait_caught_up(&services.log, &store).await?;
    let rows = dump_view(&store, "checklist_rows", "case_id").await?;
    assert_eq!(
        rows.len(),
        25,
        "the checklist follows again after its rebuild"
    );
    assert!(
        !store
            .projection_faults()
            .current()
            .contains_key("checklist"),
        "no longer reported failing"
    );
    shutdown.cancel();
    for task in tasks {
        task.await?;
    }
    Ok(())
}

/// The projections are rebuilt from the log, so on PostgreSQL their commits need not wait for
/// the disk (a crash loses at most the last ones, checkpoints with them, and the projector
/// applies them again); every other write still waits. SQLite's read store runs in WAL mode
/// with `synchronous = NORMAL` (1) for every write.
#[tokio::test]
async fn only_the_projections_commits_skip_waiting_for_the_disk() -> anyhow::Result<()> {
    let db = TestDb::create(DbKind::Postgres).await?;
    let store = db.store().await?;
    let setting = "SELECT current_setting('synchronous_commit')";
    let mut projection = store.begin_rebuildable_write().await?;
    let relaxed: String = sqlx::query_scalar(setting)
        .fetch_one(&mut *projection)
        .await?;
    projection.commit().await?;
    let mut other = store.begin_write().await?;
    let strict: String = sqlx::query_scalar(setting).fetch_one(&mut *other).await?;
    other.commit().await?;
    assert_eq!((relaxed.as_str(), strict.as_str()), ("off", "on"));

    let db = TestDb::create(DbKind::Sqlite).await?;
    let store = db.store().await?;
    let mut projection = store.begin_rebuildable_write().await?;
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *projection)
        .await?;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *projection)
        .await?;
    projection.commit().await?;
    assert_eq!((synchronous, journal.as_str()), (1, "wal"));
    Ok(())
}

zhzj_tests::on_both_databases!(
    projector_killed_mid_stream_equals_rebuild,
    poison_message_is_dead_lettered,
    rebuild_swaps_in_under_a_live_projector,
    projections_at_different_positions_catch_up_together
);

/// At start every projection computed under other settings is rebuilt, all at once. One whose
/// rebuild fails must not cut the others' short: a rebuild dropped half-way leaves its tables
/// behind and never swaps in, so each retry would leave more. Here the org view's rebuild fails
/// at once (its next generation's table is already there) while the checklist's runs.
#[tokio::test]
async fn a_failing_rebuild_at_start_does_not_cut_the_others_short() -> anyhow::Result<()> {
    let (nats, services) = seeded_stack().await?;
    // Enough log for the checklist's rebuild to outlast the org view's failure.
    zhzj_cases::synthetic::write_history(
        &async_nats::jetstream::new(nats.connect().await?),
        zhzj_cases::synthetic::SyntheticHistory {
            commits: 100_000,
            cases: 200,
            note_chars: 40,
            first_case: 0,
        },
    )
    .await?;
    let db = TestDb::create(DbKind::Sqlite).await?;
    let store = db.store().await?;
    zhzj_projector::prepare(&store).await?;
    for projection in [Projection::CHECKLIST, Projection::ORG] {
        zhzj_projector::checkpoint::record_settings(&store, projection, 1, "other settings")
            .await?;
    }
    sqlx::query("CREATE TABLE org_units_g2 (blocking INTEGER)")
        .execute(store.pool())
        .await?;
    let shutdown = CancellationToken::new();
    let tasks = run_projections(services.log.clone(), store.clone(), shutdown.clone());
    let last = services.log.last_position().await?;
    let mut checklist = None;
    for _ in 0..200 {
        checklist = status(&services.log, &store)
            .await?
            .into_iter()
            .find(|s| s.name == "checklist");
        if checklist
            .as_ref()
            .is_some_and(|s| s.generation > 1 && s.position == last)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    for task in tasks {
        task.await?;
    }
    let checklist = checklist.context("no checklist status")?;
    assert!(
        checklist.generation > 1 && checklist.position == last,
        "the checklist was rebuilt and caught up: {checklist:?}"
    );
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'checklist_rows_g%'",
    )
    .fetch_all(store.pool())
    .await?;
    assert_eq!(
        tables,
        vec![format!("checklist_rows_g{}", checklist.generation)],
        "only the live generation's tables are left"
    );
    Ok(())
}
