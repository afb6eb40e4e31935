//! Schema evolution: `MeasureAdded` is at version 2 (a measure may name the unit that carries it
//! out). A log that holds version-1 measures, written as the old code wrote them, still loads in
//! the command service (through the upcaster), still projects, and rebuilds to the same views.

use std::sync::Arc;

use uuid::Uuid;
use zhzj_cases::CasesService;
use zhzj_projector::{Projection, rebuild};
use zhzj_proto::{AggregateType, CommandReply, Commit, EventEnvelope};
use zhzj_store::{AppendOutcome, AppendRequest, ExpectedVersion};
use zhzj_tests::{
    DbKind, Projecting, add_measure, complete_measure, dump_view, register_case, request,
    seeded_stack, test_actor, test_epoch, wait_caught_up,
};

/// A commit with one version-1 `MeasureAdded`, without a snapshot header, exactly as the code
/// before version 2 would have stored it (minus the snapshot, so loading must replay it).
fn version_1_measure(case_id: Uuid) -> Commit {
    let command_id = Uuid::new_v4();
    Commit {
        events: vec![EventEnvelope {
            event_id: Uuid::new_v5(&command_id, &0_u64.to_be_bytes()),
            aggregate_type: AggregateType::Case,
            aggregate_id: case_id.to_string(),
            event_type: "MeasureAdded".into(),
            schema_version: 1,
            occurred_at: test_epoch(),
            actor: test_actor(),
            command_id,
            correlation_id: command_id,
            causation_id: command_id,
            data: serde_json::json!({
                "measure_id": "m1",
                "description": "旧版本记录的措施：约访信访人",
                "due_on": "2026-04-01",
            }),
        }],
    }
}

#[tokio::test]
async fn version_1_measures_still_load_project_and_rebuild() -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let projecting = Projecting::start(&services.log, DbKind::Sqlite).await?;
    let registered = services.ok(register_case(1)).await?;
    let case_id: Uuid = registered.aggregate_id.parse()?;

    let old = version_1_measure(case_id);
    let appended = services
        .log
        .append(AppendRequest {
            aggregate_type: AggregateType::Case,
            aggregate_id: &case_id.to_string(),
            expected: ExpectedVersion::Exactly(registered.version),
            previous: None,
            command_id: old.events[0].command_id,
            commit: &old,
            snapshot_json: None,
        })
        .await?;
    assert!(matches!(appended, AppendOutcome::Committed { .. }));

    // A service with nothing cached loads the case from the log: the last commit has no
    // snapshot, so it replays, reading the version-1 measure through the upcaster.
    let fresh = CasesService::new(services.log.clone(), Arc::new(services.clock.clone()));
    for command in [
        add_measure(case_id, "新版本记录的措施：召开听证会"),
        complete_measure(case_id, "m1", "已约访，信访人接受调解"),
    ] {
        match fresh.handle(request(command)).await {
            CommandReply::Ok(_) => {}
            CommandReply::Error(e) => anyhow::bail!("refused after an old measure: {e:?}"),
        }
    }

    wait_caught_up(&services.log, &projecting.store).await?;
    let live = dump_view(&projecting.store, "checklist_rows", "case_id").await?;
    assert_eq!(live.len(), 1);
    assert!(
        live[0].contains("measures_total=Some(2)") && live[0].contains("measures_done=Some(1)"),
        "the old measure counts, the new one is m2: {}",
        live[0]
    );
    let versions = dump_view(
        &projecting.store,
        "(SELECT schema_version, CAST(data AS TEXT) AS data FROM event_archive \
         WHERE event_type = 'MeasureAdded') AS measures",
        "schema_version",
    )
    .await?;
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(versions[0].starts_with("schema_version=Some(1)|") && versions[0].contains("m1"));
    assert!(versions[1].starts_with("schema_version=Some(2)|") && versions[1].contains("m2"));
    let dead = dump_view(&projecting.store, "dead_letters", "position").await?;
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");

    rebuild(&services.log, &projecting.store, Projection::CHECKLIST).await?;
    assert_eq!(
        dump_view(&projecting.store, "checklist_rows", "case_id").await?,
        live,
        "a rebuild over version-1 and version-2 events gives the same view"
    );
    projecting.stop().await?;
    Ok(())
}
