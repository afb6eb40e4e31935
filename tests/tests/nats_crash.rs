//! nats-server SIGKILLed under load and restarted on the same store directory: every commit that
//! was acknowledged is still in the log, and the projections converge on it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use zhzj_proto::{AggregateType, CommandReply, CommandRequest, subjects::aggregate_subject};
use zhzj_tests::{
    DbKind, NatsServer, Projecting, Services, dump_view, init_tracing, record_note, register_case,
    request, send, serve_cases, wait_caught_up,
};

/// Sends a command, retrying with the same command id until it is answered or `deadline`.
async fn send_until_answered(
    client: &async_nats::Client,
    request: &CommandRequest,
    deadline: Instant,
) -> Option<CommandReply> {
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), send(client, request)).await {
            Ok(Ok(reply @ CommandReply::Ok(_))) => return Some(reply),
            Ok(Ok(CommandReply::Error(e))) if e.kind != zhzj_proto::ErrorKind::Unavailable => {
                return Some(CommandReply::Error(e));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    None
}

#[tokio::test]
async fn acknowledged_commits_survive_a_nats_server_sigkill() -> anyhow::Result<()> {
    init_tracing();
    let mut nats = NatsServer::start().await?;
    let services = Services::open(nats.connect().await?).await?;
    services.seed_directory().await?;
    let projecting = Projecting::start(&services.log, DbKind::Sqlite).await?;
    let store = projecting.store.clone();
    let shutdown = CancellationToken::new();
    let server = serve_cases(
        nats.connect().await?,
        services.cases.clone(),
        shutdown.clone(),
    )
    .await?;

    let load_until = Instant::now() + Duration::from_secs(4);
    let mut writers = Vec::new();
    for writer in 0..8_u32 {
        let client = nats.connect().await?;
        writers.push(tokio::spawn(async move {
            let mut acknowledged: Vec<(String, u64, Uuid)> = Vec::new();
            let mut n = writer * 10_000;
            while Instant::now() < load_until {
                n += 1;
                let registration = request(register_case(n));
                let deadline = Instant::now() + Duration::from_secs(20);
                let Some(CommandReply::Ok(ok)) =
                    send_until_answered(&client, &registration, deadline).await
                else {
                    continue;
                };
                acknowledged.push((ok.aggregate_id.clone(), ok.version, registration.command_id));
                let case_id: Uuid = ok.aggregate_id.parse()?;
                for i in 0..3 {
                    let note = request(record_note(case_id, &format!("记录{i}")));
                    if let Some(CommandReply::Ok(ok)) =
                        send_until_answered(&client, &note, deadline).await
                    {
                        acknowledged.push((ok.aggregate_id, ok.version, note.command_id));
                    }
                }
            }
            anyhow::Ok(acknowledged)
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    nats.kill().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.restart().await?;

    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await??);
    }
    assert!(
        acknowledged.len() > 100,
        "load was applied: {}",
        acknowledged.len()
    );

    // Every acknowledged commit is in the log at the version its reply named.
    let client = nats.connect().await?;
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(zhzj_proto::subjects::EVENT_STREAM).await?;
    let mut cases = HashSet::new();
    for (aggregate_id, version, command_id) in &acknowledged {
        let message = stream.get_raw_message(*version).await?;
        assert_eq!(
            message.subject.as_str(),
            aggregate_subject(AggregateType::Case, aggregate_id)
        );
        let commit: zhzj_proto::Commit = serde_json::from_slice(&message.payload)?;
        assert_eq!(commit.events[0].command_id, *command_id);
        cases.insert(aggregate_id.clone());
    }

    // The projections converge on the log.
    wait_caught_up(&services.log, &store).await?;
    let rows = dump_view(&store, "checklist_rows", "case_id").await?;
    assert_eq!(
        rows.len(),
        cases.len(),
        "one checklist row per acknowledged case"
    );
    let archived = dump_view(
        &store,
        "(SELECT DISTINCT command_id FROM event_archive) AS a",
        "command_id",
    )
    .await?;
    let archived: HashSet<String> = archived
        .into_iter()
        .map(|row| row.trim_start_matches("command_id=").to_owned())
        .collect();
    for (_, _, command_id) in &acknowledged {
        assert!(
            archived.contains(&command_id.to_string()),
            "{command_id} archived"
        );
    }

    shutdown.cancel();
    server.await?;
    projecting.stop().await?;
    Ok(())
}
