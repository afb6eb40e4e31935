//! `zhzj bench commits`: commits through the `cases` service, the forwarder and raw publishes.

use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;
use zhzj_proto::{
    AggregateType, Command,
    commands::RecordNote,
    subjects::{CASES_COMMANDS, aggregate_subject},
};
use zhzj_store::EventLog;

use zhzj_local_nats::LocalNats;
use zhzj_trust::nats_access::{NatsRole, nkey_file};

use crate::common::*;
use crate::forwarder::*;

/// Registers `cases` cases through the service with `writers` concurrent writers; their ids.
async fn register_cases(
    client: &async_nats::Client,
    writers: usize,
    cases: usize,
) -> anyhow::Result<Arc<Vec<String>>> {
    let registered = Arc::new(tokio::sync::Mutex::new(vec![String::new(); cases]));
    let (client, registered2) = (client.clone(), registered.clone());
    let (elapsed, hist) = timed_writers(writers, cases, move |_, i| {
        let (client, registered) = (client.clone(), registered2.clone());
        async move {
            let request = request(registration(i));
            send(&client, &request).await?;
            let id = zhzj_cases::service::case_id_for_command(request.command_id);
            registered.lock().await[i] = id.to_string();
            Ok(())
        }
    })
    .await?;
    print_rate("register case (service)", cases, elapsed, &hist);
    let ids = registered.lock().await.clone();
    Ok(Arc::new(ids))
}

/// Each case's last commit as the service wrote it (payload and snapshot header), and its
/// sequence.
async fn last_commits(
    log: &EventLog,
    case_ids: &[String],
) -> anyhow::Result<(Vec<(Bytes, String)>, Vec<std::sync::atomic::AtomicU64>)> {
    let mut payloads = Vec::with_capacity(case_ids.len());
    let mut versions = Vec::with_capacity(case_ids.len());
    for id in case_ids {
        let last = log
            .stream()
            .get_last_raw_message_by_subject(&aggregate_subject(AggregateType::Case, id))
            .await?;
        let snapshot = last
            .headers
            .get(zhzj_proto::subjects::SNAPSHOT_HEADER)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        payloads.push((last.payload, snapshot));
        versions.push(std::sync::atomic::AtomicU64::new(last.sequence));
    }
    Ok((payloads, versions))
}

/// Sends case `c`'s last commit to the forwarder, which appends it and replies.
async fn forward_one(
    client: &async_nats::Client,
    ids: &[String],
    payloads: &[(Bytes, String)],
    versions: &[std::sync::atomic::AtomicU64],
    c: usize,
) -> anyhow::Result<()> {
    let (payload, snapshot) = &payloads[c];
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        Uuid::new_v4().to_string().as_str(),
    );
    headers.insert(
        async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
        versions[c]
            .load(std::sync::atomic::Ordering::SeqCst)
            .to_string()
            .as_str(),
    );
    headers.insert(zhzj_proto::subjects::SNAPSHOT_HEADER, snapshot.as_str());
    let subject = format!(
        "{FORWARD_PREFIX}{}",
        aggregate_subject(AggregateType::Case, &ids[c])
    );
    let reply = client
        .request_with_headers(subject, headers, payload.clone())
        .await?;
    let version = accepted_version(&reply.payload)?;
    versions[c].store(version, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// Publishes case `c`'s last commit straight to JetStream, expecting the case's last sequence.
async fn publish_one(
    js: &async_nats::jetstream::Context,
    ids: &[String],
    payloads: &[(Bytes, String)],
    versions: &[std::sync::atomic::AtomicU64],
    c: usize,
) -> anyhow::Result<()> {
    let expected = versions[c].load(std::sync::atomic::Ordering::SeqCst);
    let (payload, snapshot) = &payloads[c];
    let publish = async_nats::jetstream::message::PublishMessage::build()
        .payload(payload.clone())
        .header(zhzj_proto::subjects::SNAPSHOT_HEADER, snapshot.as_str())
        .message_id(Uuid::new_v4().to_string())
        .expected_last_subject_sequence(expected);
    let ack = js
        .send_publish(aggregate_subject(AggregateType::Case, &ids[c]), publish)
        .await?
        .await?;
    versions[c].store(ack.sequence, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// One phase's measurements.
struct Phase {
    elapsed: std::time::Duration,
    hist: hdrhistogram::Histogram<u64>,
    cpu: String,
}

/// Prints the three phases side by side, and their ratios.
fn report(commits: usize, service: &Phase, forward: &Phase, raw: &Phase) {
    let service_rate = print_rate(
        "commit via cases service",
        commits,
        service.elapsed,
        &service.hist,
    );
    println!("  CPU per commit: {}", service.cpu);
    let forward_rate = print_rate(
        "reference: forwarder (append + reply only)",
        commits,
        forward.elapsed,
        &forward.hist,
    );
    println!("  CPU per commit: {}", forward.cpu);
    let raw_rate = print_rate(
        "baseline: raw JetStream publish",
        commits,
        raw.elapsed,
        &raw.hist,
    );
    println!("  CPU per commit: {}", raw.cpu);
    println!(
        "ratio service/raw: {:.2} (bar >= 0.5); forwarder/raw: {:.2} (the request/reply architecture's ceiling); service/forwarder: {:.2}",
        service_rate / raw_rate,
        forward_rate / raw_rate,
        service_rate / forward_rate,
    );
}

/// The cases' last commits (ids, payloads and snapshots, sequences), shared by the writers.
type LastCommits<'a> = (
    &'a Arc<Vec<String>>,
    &'a Arc<Vec<(Bytes, String)>>,
    &'a Arc<Vec<std::sync::atomic::AtomicU64>>,
);

/// Reference: the same architecture without the service's work. A forwarder process answers
/// each request by appending the commit it carries and replying (see `bench_forwarder`).
async fn forwarder_phase(
    nats: &LocalNats,
    credentials: &std::path::Path,
    client: &async_nats::Client,
    (case_ids, payloads, versions): LastCommits<'_>,
    writers: usize,
    commits: usize,
) -> anyhow::Result<Phase> {
    let nats_url = nats.url();
    let forwarder = start_responder(
        client,
        &["bench", "forwarder"],
        nats_url,
        None,
        &[
            "--nkey".into(),
            nkey_file(credentials, NatsRole::Admin).into_os_string(),
        ],
        &format!("{FORWARD_PREFIX}probe"),
    )
    .await?;
    let (client2, ids) = (client.clone(), case_ids.clone());
    let (payloads2, versions2) = (payloads.clone(), versions.clone());
    let forward_cpu = CpuMeter::start(nats, Some(("forwarder", forwarder.id())));
    let (forward_elapsed, forward_hist) = timed_writers(writers, commits, move |_, i| {
        let (client, ids) = (client2.clone(), ids.clone());
        let (payloads, versions) = (payloads2.clone(), versions2.clone());
        async move {
            forward_one(
                &client,
                &ids,
                &payloads,
                &versions,
                owned_case(i, writers, ids.len()),
            )
            .await
        }
    })
    .await?;
    stop_responder(forwarder).await?;
    Ok(Phase {
        elapsed: forward_elapsed,
        hist: forward_hist,
        cpu: forward_cpu.per_commit(commits),
    })
}

pub(crate) async fn commits_bench(
    nats: &LocalNats,
    credentials: &std::path::Path,
    client: &async_nats::Client,
    log: &EventLog,
    cases: usize,
    commits: usize,
    writers: usize,
) -> anyhow::Result<()> {
    // The service runs as it is deployed: `zhzj run cases`, a process of its own. The writers
    // share this process's connection, as do the reference and the raw baseline below.
    let nats_url = nats.url();
    let service_dir = tempfile::tempdir()?;
    let service = start_responder(
        client,
        &["run", "cases"],
        nats_url,
        Some(service_dir.path()),
        &[
            "--nats-credentials".into(),
            credentials.as_os_str().to_owned(),
        ],
        CASES_COMMANDS,
    )
    .await?;
    for command in directory_commands() {
        send(client, &request(command)).await?;
    }
    println!(
        "commits through the cases service: {cases} cases, {commits} commits, {writers} concurrent writers over NATS request/reply"
    );

    let case_ids = register_cases(client, writers, cases).await?;

    // Every phase sends bodies prepared before its clock starts: the commands here, the commits
    // as the service wrote them below.
    let bodies = (0..commits)
        .map(|i| {
            let case_id = case_ids[owned_case(i, writers, case_ids.len())].parse()?;
            let command = request(Command::RecordNote(RecordNote {
                case_id,
                text: format!("第{i}次调度记录：已与信访人电话沟通"),
            }));
            Ok(Bytes::from(serde_json::to_vec(&command)?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bodies = Arc::new(bodies);
    let (client2, bodies2) = (client.clone(), bodies.clone());
    let service_cpu = CpuMeter::start(nats, Some(("service", service.id())));
    let (service_elapsed, service_hist) = timed_writers(writers, commits, move |_, i| {
        let (client, bodies) = (client2.clone(), bodies2.clone());
        async move {
            let reply = client.request(CASES_COMMANDS, bodies[i].clone()).await?;
            accepted_version(&reply.payload)?;
            Ok(())
        }
    })
    .await?;
    let service_cpu = service_cpu.per_commit(commits);
    stop_responder(service).await?;

    // The same payloads (each case's last commit as the service wrote it) with the same headers,
    // for the reference and the baseline. Writer w writes only the cases it owns (see
    // `owned_case`), so its expected sequences are always right.
    let (payloads, versions) = last_commits(log, &case_ids).await?;
    let (payloads, versions) = (Arc::new(payloads), Arc::new(versions));
    let mean = |total: usize, count: usize| total / count.max(1);
    println!(
        "mean sizes: command {} B; commit {} B + snapshot header {} B",
        mean(bodies.iter().map(Bytes::len).sum(), bodies.len()),
        mean(payloads.iter().map(|(p, _)| p.len()).sum(), payloads.len()),
        mean(payloads.iter().map(|(_, s)| s.len()).sum(), payloads.len()),
    );

    let forward = forwarder_phase(
        nats,
        credentials,
        client,
        (&case_ids, &payloads, &versions),
        writers,
        commits,
    )
    .await?;

    // Baseline: the same payloads published straight to JetStream by the same number of writers.
    let js = log.context().clone();
    let ids = case_ids.clone();
    let raw_cpu = CpuMeter::start(nats, None);
    let (raw_elapsed, raw_hist) = timed_writers(writers, commits, move |_, i| {
        let (js, ids, payloads, versions) =
            (js.clone(), ids.clone(), payloads.clone(), versions.clone());
        async move {
            publish_one(
                &js,
                &ids,
                &payloads,
                &versions,
                owned_case(i, writers, ids.len()),
            )
            .await
        }
    })
    .await?;
    let raw_cpu = raw_cpu.per_commit(commits);
    report(
        commits,
        &Phase {
            elapsed: service_elapsed,
            hist: service_hist,
            cpu: service_cpu,
        },
        &forward,
        &Phase {
            elapsed: raw_elapsed,
            hist: raw_hist,
            cpu: raw_cpu,
        },
    );
    Ok(())
}
