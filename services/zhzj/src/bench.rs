//! Benchmarks. Each prints its figure beside a baseline measured in the same run on the same
//! machine, against a nats-server it starts itself (on a free port, in a temp dir).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use zhzj_cases::{CasesService, aggregate::load, case::CaseState};
use zhzj_projector::{Projection, sqlbuild};
use zhzj_proto::{
    Actor, AggregateType, Command, CommandReply, CommandRequest,
    commands::{AddLeader, AddMeasure, AddUnit, RecordNote, RegisterCase},
    events::{Channel, LeaderLevel, ListSource, Petitioner, UnitKind},
    subjects::{CASES_COMMANDS, aggregate_subject},
};
use zhzj_store::{EventLog, LogConfig, ReadStore, SystemClock};

use crate::bench_forwarder::FORWARD_PREFIX;
use crate::cli::{BenchArgs, Benchmark};
use crate::local_nats::LocalNats;
use zhzj_trust::nats_access::{
    ClientCredentials, NatsRole, credentials_dir, ensure_credentials, nkey_file,
};

/// The password of the benchmarks' account (by the default password rules).
pub(crate) const BENCH_PASSWORD: &str = "Xiamen-load-2026";
/// Runs the chosen benchmark.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.benchmark {
        // No log: the assessment reads the archive.
        Benchmark::Assess { cases } => return crate::bench_assess::run(cases).await,
        // Started by the commits benchmark, against its server.
        Benchmark::Forwarder { nats_url, nkey } => {
            return crate::bench_forwarder::serve(&nats_url, &nkey).await;
        }
        _ => {}
    }
    let dir = tempfile::tempdir()?;
    // As deployed: the server admits each role with its own NKey; this process plays the
    // gateway and the raw writer with the admin's.
    let credentials = credentials_dir(dir.path());
    let authorization = ensure_credentials(&credentials)?;
    let admin = ClientCredentials::of_role(&credentials, NatsRole::Admin);
    let nats = LocalNats::start(dir.path(), &authorization, &admin).await?;
    let client = admin
        .apply(async_nats::ConnectOptions::new())
        .await?
        .connect(nats.url())
        .await?;
    let log = EventLog::open(client.clone(), &LogConfig::default()).await?;
    println!(
        "nats-server at {} (store in a temp dir; syncs every commit: {})",
        nats.url(),
        nats.syncs_every_commit
    );
    let result = match args.benchmark {
        Benchmark::Commits {
            cases,
            commits,
            writers,
        } => commits_bench(&nats, &credentials, &client, &log, cases, commits, writers).await,
        Benchmark::Load { events, samples } => load_bench(&log, events, samples).await,
        Benchmark::Http { commands, clients } => http_bench(&client, &log, commands, clients).await,
        Benchmark::Catchup {
            events,
            cases,
            database,
        } => catchup_bench(&client, &log, events, cases, &database).await,
        Benchmark::Verify { events, cases } => verify_bench(&client, &log, events, cases).await,
        Benchmark::Registrations {
            count,
            writers,
            rounds,
        } => registrations_bench(&client, &log, count, writers, rounds).await,
        Benchmark::Logins {
            seconds,
            flooders,
            readers,
        } => crate::bench_logins::run(&client, &log, seconds, flooders, readers).await,
        Benchmark::Assess { .. } | Benchmark::Forwarder { .. } => Ok(()),
    };
    nats.stop().await?;
    result
}

pub(crate) fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

pub(crate) fn record(hist: &mut Histogram<u64>, elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    let _ = hist.record(micros.min(60_000_000));
}

pub(crate) fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn print_rate(label: &str, count: usize, elapsed: Duration, hist: &Histogram<u64>) -> f64 {
    let rate = count as f64 / elapsed.as_secs_f64();
    println!(
        "{label:<44} {count:>9} in {:>7.2}s = {rate:>9.0}/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        elapsed.as_secs_f64(),
        ms(hist.value_at_quantile(0.5)),
        ms(hist.value_at_quantile(0.99)),
    );
    rate
}

fn actor() -> Actor {
    Actor {
        user_id: "bench".into(),
        roles: vec!["admin".into()],
        unit_id: None,
        leader_id: None,
    }
}

pub(crate) fn request(command: Command) -> CommandRequest {
    CommandRequest {
        command_id: Uuid::new_v4(),
        correlation_id: None,
        causation_id: None,
        actor: actor(),
        expected_version: None,
        unknown_outcome_retry: false,
        command,
    }
}

pub(crate) async fn send(
    client: &async_nats::Client,
    request: &CommandRequest,
) -> anyhow::Result<u64> {
    let reply = client
        .request(CASES_COMMANDS, Bytes::from(serde_json::to_vec(request)?))
        .await?;
    accepted_version(&reply.payload)
}

pub(crate) fn registration(n: usize) -> Command {
    Command::RegisterCase(RegisterCase {
        case_id: None,
        case_number: Some(format!("BENCH-{n:07}")),
        petitioners: vec![Petitioner {
            name: "测试信访人".into(),
            id_number: None,
            phone: None,
            address: None,
        }],
        matter: "要求解决拖欠工资问题".into(),
        category: "劳动社保".into(),
        district_id: "xm-siming".into(),
        town_id: None,
        channel: Channel::Visit,
        first_filed_on: NaiveDate::from_ymd_opt(2025, 1, 2).unwrap_or_default(),
        list_source: ListSource::Screening,
        group_size: None,
    })
}

/// A registration whose petitioner has an ID number, a phone and an address.
fn registration_with_personal_data(n: usize) -> Command {
    let mut command = registration(n);
    if let Command::RegisterCase(c) = &mut command {
        let first17 = format!("350203{}{:03}", 19_700_101 + n % 28, n % 1000);
        let check = zhzj_proto::ids::resident_id_check_char(&first17).unwrap_or('0');
        c.petitioners[0].id_number = Some(format!("{first17}{check}"));
        c.petitioners[0].phone = Some("13905921234".into());
        c.petitioners[0].address = Some("思明区湖滨南路八十八号".into());
    }
    command
}

/// Registrations straight through the service's handler, in plaintext (the baseline) and with
/// each petitioner sealed under a data key of their own (taken from a batch stored ahead in the
/// key bucket), in `rounds` alternating rounds.
async fn registrations_bench(
    client: &async_nats::Client,
    log: &EventLog,
    count: usize,
    writers: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let plain = CasesService::new(log.clone(), Arc::new(SystemClock));
    seed_directory(&plain).await?;
    let master = Arc::new(zhzj_privacy::MasterKey::from_hex(
        &zhzj_privacy::MasterKey::generate_hex()?,
        zhzj_privacy::Algorithm::default(),
    )?);
    let vault = zhzj_store::PersonalDataVault::connect(client.clone(), master).await?;
    let sealed = CasesService::new(log.clone(), Arc::new(SystemClock)).with_vault(vault);
    let rounds = rounds.max(1);
    let per_round = (count / rounds).max(1);
    println!(
        "Registrations: {} per path, {writers} concurrent writers, one petitioner each; \
         {rounds} rounds of {per_round} per path, plaintext first in odd rounds and sealed first \
         in even ones (the log grows as it runs)",
        per_round * rounds
    );
    let paths = [
        ("register, plaintext (baseline)", plain),
        ("register, petitioner sealed (AES-256-GCM)", sealed),
    ];
    let mut totals = [
        (Duration::ZERO, histogram()?),
        (Duration::ZERO, histogram()?),
    ];
    let mut stored_bytes = [0_u64; 2];
    let mut round_ratios = Vec::with_capacity(rounds);
    let mut next = 0;
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut round_elapsed = [Duration::ZERO; 2];
        for path in order {
            let service = paths[path].1.clone();
            let first = next;
            next += per_round;
            let bytes_before = log_bytes(log).await?;
            let (elapsed, hist) = timed_writers(writers, per_round, move |_, i| {
                let service = service.clone();
                async move {
                    match service
                        .handle(request(registration_with_personal_data(first + i)))
                        .await
                    {
                        zhzj_proto::CommandReply::Ok(_) => Ok(()),
                        zhzj_proto::CommandReply::Error(e) => {
                            bail!("registration refused: {e:?}")
                        }
                    }
                }
            })
            .await?;
            round_elapsed[path] = elapsed;
            totals[path].0 += elapsed;
            totals[path].1.add(&hist)?;
            stored_bytes[path] += log_bytes(log).await?.saturating_sub(bytes_before);
        }
        // Same count on both paths: the rate ratio is the inverse ratio of the times.
        round_ratios.push(round_elapsed[0].as_secs_f64() / round_elapsed[1].as_secs_f64());
    }
    let total = per_round * rounds;
    let mut rates = Vec::new();
    for ((label, _), (elapsed, hist)) in paths.iter().zip(&totals) {
        rates.push(print_rate(label, total, *elapsed, hist));
    }
    let per_commit = |bytes: u64| bytes / u64::try_from(total).unwrap_or(1);
    println!(
        "stored per registration (commit with headers, as nats-server counts it): plaintext {} B, sealed {} B",
        per_commit(stored_bytes[0]),
        per_commit(stored_bytes[1])
    );
    round_ratios.sort_by(f64::total_cmp);
    let listed: Vec<String> = round_ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "ratio sealed / plaintext per round, sorted: {}",
        listed.join(" ")
    );
    if let [plain, sealed] = rates[..] {
        println!(
            "ratio sealed / plaintext: {:.2} over all rounds, median of rounds {:.2}",
            sealed / plain,
            round_ratios[round_ratios.len() / 2]
        );
    }
    Ok(())
}

/// The bytes the event stream holds, as nats-server counts them.
async fn log_bytes(log: &EventLog) -> anyhow::Result<u64> {
    let mut stream = log
        .context()
        .get_stream(zhzj_proto::subjects::EVENT_STREAM)
        .await?;
    Ok(stream.info().await?.state.bytes)
}

async fn seed_directory(service: &CasesService) -> anyhow::Result<()> {
    for command in directory_commands() {
        if let CommandReply::Error(e) = service.handle(request(command)).await {
            bail!("seeding the directory failed: {e:?}");
        }
    }
    Ok(())
}

/// The small directory every benchmark registers its cases in.
fn directory_commands() -> [Command; 3] {
    [
        Command::AddUnit(AddUnit {
            unit_id: "xm".into(),
            parent_id: None,
            name: "厦门市".into(),
            kind: UnitKind::City,
        }),
        Command::AddUnit(AddUnit {
            unit_id: "xm-siming".into(),
            parent_id: Some("xm".into()),
            name: "思明区".into(),
            kind: UnitKind::District,
        }),
        Command::AddLeader(AddLeader {
            leader_id: "ldr-1".into(),
            unit_id: "xm-siming".into(),
            name: "李明".into(),
            title: "副区长".into(),
            level: LeaderLevel::District,
        }),
    ]
}

/// Runs `writers` tasks, each over its share of `0..total`, timing every call.
async fn timed_writers<F, Fut>(
    writers: usize,
    total: usize,
    work: F,
) -> anyhow::Result<(Duration, Histogram<u64>)>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let work = Arc::new(work);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram()?;
            for i in (writer..total).step_by(writers) {
                let t = Instant::now();
                work(writer, i).await?;
                record(&mut hist, t.elapsed());
            }
            anyhow::Ok(hist)
        }));
    }
    let mut hist = histogram()?;
    for task in tasks {
        hist.add(task.await??)?;
    }
    Ok((started.elapsed(), hist))
}

/// The case that commit `i` goes to: writer `i % writers` owns the cases `≡ w (mod writers)`,
/// so no two writers ever write the same case (the raw baseline needs that to keep its expected
/// sequences right; the service phase uses the same mapping to compare like with like).
fn owned_case(i: usize, writers: usize, cases: usize) -> usize {
    let per_writer = (cases / writers).max(1);
    i % writers + writers * ((i / writers) % per_writer)
}

/// Starts `zhzj <args> --nats-url <url>` as a child process and waits until it answers on
/// `probe_subject` (any reply will do).
async fn start_responder(
    client: &async_nats::Client,
    args: &[&str],
    nats_url: &str,
    data_dir: Option<&std::path::Path>,
    credential_args: &[std::ffi::OsString],
    probe_subject: &str,
) -> anyhow::Result<tokio::process::Child> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command.args(args).args(["--nats-url", nats_url]);
    if let Some(dir) = data_dir {
        command.arg("--data-dir").arg(dir);
    }
    command.args(credential_args);
    let child = command
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let started = Instant::now();
    while client
        .request(probe_subject.to_owned(), Bytes::from_static(b"{}"))
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("`zhzj {}` did not come up", args.join(" "));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(child)
}

/// Stops a responder started by [`start_responder`] with SIGTERM and waits for it.
async fn stop_responder(mut child: tokio::process::Child) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid)?),
            nix::sys::signal::Signal::SIGTERM,
        )?;
    }
    child.wait().await?;
    Ok(())
}

/// CPU time (user and system, all threads) a process has used so far, from `/proc/<pid>/stat`;
/// `None` where there is no procfs or the process is gone.
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (in parentheses, and it may hold spaces): utime and
    // stime are the 14th and 15th fields of the line, the 12th and 13th after the name.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let ticks_per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some(Duration::from_secs_f64(
        ticks as f64 / ticks_per_second as f64,
    ))
}

/// The CPU the processes taking part in one timed phase use, so that a phase's rate can be read
/// beside what it costs: on a machine whose cores are all busy, the rate follows the cost.
struct CpuMeter {
    processes: Vec<(&'static str, u32, Duration)>,
}

impl CpuMeter {
    /// Notes the CPU time so far of the phase's responder (if any), nats-server and this process
    /// (the writers); a process without a pid or procfs is left out.
    fn start(nats: &LocalNats, responder: Option<(&'static str, Option<u32>)>) -> Self {
        let processes = responder
            .into_iter()
            .chain([
                ("nats-server", nats.pid()),
                ("writers", Some(std::process::id())),
            ])
            .filter_map(|(name, pid)| {
                let pid = pid?;
                Some((name, pid, process_cpu(pid)?))
            })
            .collect();
        Self { processes }
    }

    /// Each process's CPU since `start`, in microseconds per commit, and their sum.
    fn per_commit(&self, commits: usize) -> String {
        let mut parts = Vec::new();
        let mut total = 0.0;
        for (name, pid, started) in &self.processes {
            let Some(now) = process_cpu(*pid) else {
                continue;
            };
            let micros = now.saturating_sub(*started).as_secs_f64() * 1e6 / commits.max(1) as f64;
            total += micros;
            parts.push(format!("{name} {micros:.0} µs"));
        }
        if parts.is_empty() {
            return "not measured (no /proc)".into();
        }
        format!("{} = {total:.0} µs", parts.join(" + "))
    }
}

/// Parses a command reply: the version the commit got.
fn accepted_version(payload: &[u8]) -> anyhow::Result<u64> {
    match serde_json::from_slice(payload)? {
        CommandReply::Ok(ok) => Ok(ok.version),
        CommandReply::Error(e) => bail!("command refused: {e:?}"),
    }
}

async fn commits_bench(
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

    let case_ids: Arc<Vec<String>> = {
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
        Arc::new(ids)
    };

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
    let mut payloads = Vec::with_capacity(cases);
    let mut versions = Vec::with_capacity(cases);
    for id in case_ids.iter() {
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
    let (payloads, versions) = (Arc::new(payloads), Arc::new(versions));
    let mean = |total: usize, count: usize| total / count.max(1);
    println!(
        "mean sizes: command {} B; commit {} B + snapshot header {} B",
        mean(bodies.iter().map(Bytes::len).sum(), bodies.len()),
        mean(payloads.iter().map(|(p, _)| p.len()).sum(), payloads.len()),
        mean(payloads.iter().map(|(_, s)| s.len()).sum(), payloads.len()),
    );

    // Reference: the same architecture without the service's work. A forwarder process answers
    // each request by appending the commit it carries and replying (see `bench_forwarder`).
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
            let c = owned_case(i, writers, ids.len());
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
    })
    .await?;
    let forward_cpu = forward_cpu.per_commit(commits);
    stop_responder(forwarder).await?;

    // Baseline: the same payloads published straight to JetStream by the same number of writers.
    let js = log.context().clone();
    let ids = case_ids.clone();
    let raw_cpu = CpuMeter::start(nats, None);
    let (raw_elapsed, raw_hist) = timed_writers(writers, commits, move |_, i| {
        let (js, ids, payloads, versions) =
            (js.clone(), ids.clone(), payloads.clone(), versions.clone());
        async move {
            let c = owned_case(i, writers, ids.len());
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
    })
    .await?;
    let raw_cpu = raw_cpu.per_commit(commits);
    let service_rate = print_rate(
        "commit via cases service",
        commits,
        service_elapsed,
        &service_hist,
    );
    println!("  CPU per commit: {service_cpu}");
    let forward_rate = print_rate(
        "reference: forwarder (append + reply only)",
        commits,
        forward_elapsed,
        &forward_hist,
    );
    println!("  CPU per commit: {forward_cpu}");
    let raw_rate = print_rate(
        "baseline: raw JetStream publish",
        commits,
        raw_elapsed,
        &raw_hist,
    );
    println!("  CPU per commit: {raw_cpu}");
    println!(
        "ratio service/raw: {:.2} (bar >= 0.5); forwarder/raw: {:.2} (the request/reply architecture's ceiling); service/forwarder: {:.2}",
        service_rate / raw_rate,
        forward_rate / raw_rate,
        service_rate / forward_rate,
    );
    Ok(())
}

async fn load_bench(log: &EventLog, events: usize, samples: usize) -> anyhow::Result<()> {
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

/// `zhzj verify` of a signed log of `events` commits, against reading the same log through the
/// same ordered consumer with nothing checked.
async fn verify_bench(
    client: &async_nats::Client,
    log: &EventLog,
    events: usize,
    cases: usize,
) -> anyhow::Result<()> {
    println!("generating {events} signed, chained commits (one event each) over {cases} cases …");
    let signer = Arc::new(zhzj_store::CommitSigner::generate()?);
    let generated = generate_log(client, events, cases, Some(&signer)).await?;
    println!(
        "generated in {:.1}s ({:.0} commits/s signed and published)",
        generated.as_secs_f64(),
        events as f64 / generated.as_secs_f64()
    );
    let sealer = zhzj_store::Sealer::new(log.clone(), Arc::clone(&signer));
    let started = Instant::now();
    sealer.seal(None, "bench").await?;
    println!(
        "first seal of the whole log: {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let keys = signer.trusted();
    // Reference: the whole log read through an ordered consumer, nothing done with it.
    let started = Instant::now();
    let read = zhzj_store::seals::count_messages(log).await?;
    let reading = started.elapsed();
    println!(
        "reference: read the log, nothing checked     {read:>9} messages in {:>6.2}s = {:>9.0}/s",
        reading.as_secs_f64(),
        read as f64 / reading.as_secs_f64()
    );
    let started = Instant::now();
    let verdict = zhzj_store::verify_log(log, keys, &[]).await?;
    let verifying = started.elapsed();
    let verified =
        verdict.map_err(|finding| anyhow::anyhow!("the log did not verify: {finding}"))?;
    println!(
        "zhzj verify (hashes, chain, signatures)      {:>9} messages in {:>6.2}s = {:>9.0}/s ({:.2} of reading)",
        verified.through,
        verifying.as_secs_f64(),
        verified.through as f64 / verifying.as_secs_f64(),
        reading.as_secs_f64() / verifying.as_secs_f64()
    );
    println!(
        "bar: {events} events verified in <= 30 s: {}",
        if verifying.as_secs() <= 30 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

/// Generates a realistic history straight into the stream (see [`zhzj_cases::synthetic`]).
async fn generate_log(
    client: &async_nats::Client,
    events: usize,
    cases: usize,
    signer: Option<&zhzj_store::CommitSigner>,
) -> anyhow::Result<Duration> {
    let js = async_nats::jetstream::new(client.clone());
    let history = zhzj_cases::synthetic::SyntheticHistory {
        commits: events,
        cases,
        note_chars: 0,
        first_case: 0,
    };
    Ok(
        zhzj_cases::synthetic::write_signed_history(&js, history, signer)
            .await?
            .elapsed,
    )
}

async fn catchup_bench(
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
    // Reference: how fast this machine hands the log to one pull consumer, nothing else done.
    {
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
    }
    let dir = tempfile::tempdir()?;
    let (url, pg_cleanup) = if database == "sqlite" {
        (
            zhzj_store::sql::sqlite_url(&dir.path().join("bench.sqlite")),
            None,
        )
    } else if database.starts_with("postgres") {
        use sqlx::Connection;
        let name = format!("zhzj_bench_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(database).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        let base = database.rsplit_once('/').map_or(database, |(b, _)| b);
        (format!("{base}/{name}"), Some((admin, name)))
    } else {
        bail!("--database is `sqlite` or a postgres:// URL");
    };
    let store = ReadStore::connect(&url).await.context("read store")?;

    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let projector = tokio::spawn(zhzj_projector::run(
        log.clone(),
        store.clone(),
        Projection::CHECKLIST,
        shutdown.clone(),
    ));
    loop {
        let status = zhzj_projector::status(log, &store).await?;
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
    let status = zhzj_projector::status(log, &store).await?;
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

    // Baseline: the same number of checklist-shaped rows, multi-row inserted into a table of
    // the same shape in the same database, in transactions of the projector's batch size.
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
    println!(
        "ratio catch-up/raw on {}: {:.2} (bar >= 0.5)",
        if dialect == zhzj_store::Dialect::Sqlite {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        catchup_rate / raw_rate
    );

    for projection in [Projection::ORG, Projection::CHECKLIST, Projection::ARCHIVE] {
        let report = zhzj_projector::rebuild(log, &store, projection).await?;
        println!(
            "rebuild {:<10} {:>9} events in {:>7.2}s = {:>9.0} events/s",
            projection.name(),
            report.messages,
            report.elapsed.as_secs_f64(),
            report.messages as f64 / report.elapsed.as_secs_f64()
        );
    }
    store.close().await;
    if let Some((mut admin, name)) = pg_cleanup {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
    }
    Ok(())
}

/// One gateway under test, with its session token.
struct BenchGateway {
    base: String,
    token: String,
}

/// What the HTTP benchmarks run on: a SQLite read store in a temporary directory, the `cases`
/// service, every projection and the seeded directory, and the account `bench` (coordinator of
/// 厦门市, [`BENCH_PASSWORD`]). Everything stops with `shutdown`.
pub(crate) struct BenchStack {
    _dir: tempfile::TempDir,
    pub(crate) store: ReadStore,
    pub(crate) shutdown: CancellationToken,
}

impl BenchStack {
    pub(crate) async fn start(client: &async_nats::Client, log: &EventLog) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store = ReadStore::connect(&zhzj_store::sql::sqlite_url(
            &dir.path().join("bench.sqlite"),
        ))
        .await?;
        let shutdown = CancellationToken::new();
        let service = CasesService::new(log.clone(), Arc::new(SystemClock));
        zhzj_cases::spawn(client.clone(), service.clone(), shutdown.clone()).await?;
        for projection in Projection::ALL {
            tokio::spawn(zhzj_projector::run(
                log.clone(),
                store.clone(),
                projection,
                shutdown.clone(),
            ));
        }
        seed_directory(&service).await?;
        zhzj_gateway::Accounts::new(
            store.clone(),
            Arc::new(SystemClock),
            zhzj_gateway::AccountSettings::default(),
            zhzj_gateway::AccountJournal::new(client.clone(), store.clone()),
        )
        .add_user(
            &zhzj_gateway::AccountJournal::system_admin("bench"),
            &zhzj_gateway::NewUser {
                username: "bench".into(),
                password: BENCH_PASSWORD.into(),
                display_name: "压测".into(),
                roles: vec!["coordinator".into()],
                unit_id: Some("xm".into()),
                leader_id: None,
                must_change_password: false,
            },
        )
        .await?;
        Ok(Self {
            _dir: dir,
            store,
            shutdown,
        })
    }
}

/// A gateway with `config` on the benchmark's read store, serving until `shutdown`; its base URL.
pub(crate) async fn serve_bench_gateway(
    client: &async_nats::Client,
    log: &EventLog,
    store: &ReadStore,
    config: zhzj_gateway::GatewayConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = zhzj_gateway::AppState::new(
        zhzj_gateway::GatewayParts {
            client: client.clone(),
            log: log.clone(),
            store: store.clone(),
            clock: Arc::new(SystemClock),
            metrics: None,
            vault: None,
            config,
        },
        shutdown.clone(),
    );
    tokio::spawn(zhzj_gateway::serve(listener, state, shutdown.clone()));
    Ok(base)
}

/// Signs in as `bench` at the gateway `base`; the bearer token.
pub(crate) async fn bench_login(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": "bench", "password": BENCH_PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(login["token"]
        .as_str()
        .context("login answered no token")?
        .to_owned())
}

async fn start_bench_gateway(
    client: &async_nats::Client,
    log: &EventLog,
    store: &ReadStore,
    read_your_writes: Duration,
    shutdown: &CancellationToken,
) -> anyhow::Result<BenchGateway> {
    let config = zhzj_gateway::GatewayConfig {
        read_your_writes,
        // The benchmark measures what a duplicate check costs, not its rate limit.
        duplicate_checks_per_minute: std::num::NonZeroU32::MAX,
        duplicate_checks_burst: std::num::NonZeroU32::MAX,
        ..zhzj_gateway::GatewayConfig::default()
    };
    let base = serve_bench_gateway(client, log, store, config, shutdown).await?;
    let token = bench_login(&reqwest::Client::new(), &base).await?;
    Ok(BenchGateway { base, token })
}

/// HTTP writes (`POST /api/v1/cases/{id}/notes`) through the gateway, beside the same commands
/// sent straight to the cases service over NATS, by the same number of concurrent clients.
async fn http_bench(
    client: &async_nats::Client,
    log: &EventLog,
    commands: usize,
    clients: usize,
) -> anyhow::Result<()> {
    let stack = BenchStack::start(client, log).await?;
    let (store, shutdown) = (&stack.store, &stack.shutdown);
    let waiting = start_bench_gateway(client, log, store, Duration::from_secs(5), shutdown).await?;
    let not_waiting = start_bench_gateway(client, log, store, Duration::ZERO, shutdown).await?;
    let cases = clients * 16;
    let mut ids = Vec::with_capacity(cases);
    for n in 0..cases {
        let request = request(registration(n));
        send(client, &request).await?;
        ids.push(zhzj_cases::service::case_id_for_command(request.command_id));
    }
    let ids = Arc::new(ids);
    println!(
        "HTTP writes vs NATS commands: {commands} notes per path, {clients} concurrent clients, {cases} cases (SQLite read store)"
    );
    let note = |i: usize| format!("第{i}次调度记录：已与信访人电话沟通");

    let (nats_client, nats_ids) = (client.clone(), ids.clone());
    let (elapsed, hist) = timed_writers(clients, commands, move |_, i| {
        let (client, ids) = (nats_client.clone(), nats_ids.clone());
        async move {
            let case_id = ids[owned_case(i, clients, ids.len())];
            send(
                &client,
                &request(Command::RecordNote(RecordNote {
                    case_id,
                    text: note(i),
                })),
            )
            .await?;
            Ok(())
        }
    })
    .await?;
    let baseline = print_rate(
        "record note, NATS request (baseline)",
        commands,
        elapsed,
        &hist,
    );

    let mut rates = Vec::new();
    for (label, gateway) in [
        ("record note, HTTP (waits for read views)", &waiting),
        ("record note, HTTP (reply without waiting)", &not_waiting),
    ] {
        let http = reqwest::Client::new();
        let (base, token, http_ids) = (gateway.base.clone(), gateway.token.clone(), ids.clone());
        let (elapsed, hist) = timed_writers(clients, commands, move |_, i| {
            let (http, base, token, ids) =
                (http.clone(), base.clone(), token.clone(), http_ids.clone());
            async move {
                let case_id = ids[owned_case(i, clients, ids.len())];
                let response = http
                    .post(format!("{base}/api/v1/cases/{case_id}/notes"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"text": note(i)}))
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!(
                        "HTTP write refused: {} {}",
                        response.status(),
                        response.text().await?
                    );
                }
                Ok(())
            }
        })
        .await?;
        rates.push((label, print_rate(label, commands, elapsed, &hist)));
    }
    for (label, rate) in rates {
        println!("ratio {label} / NATS: {:.2}", rate / baseline);
    }
    duplicate_check_bench(&not_waiting, &ids, commands / 4, clients).await?;
    shutdown.cancel();
    Ok(())
}

/// A duplicate check by ID number (validated, looked up in and out of the caller's area, and
/// recorded in `personal_data_reads`) beside a plain case read, by the same clients.
async fn duplicate_check_bench(
    gateway: &BenchGateway,
    ids: &Arc<Vec<uuid::Uuid>>,
    reads: usize,
    clients: usize,
) -> anyhow::Result<()> {
    println!("HTTP reads: {reads} per path, {clients} concurrent clients");
    let mut rates = Vec::new();
    for (label, kind) in [
        ("signed-in GET /session, HTTP (baseline)", 0),
        ("duplicate check by ID number, HTTP (recorded)", 1),
        ("read case with its history, HTTP", 2),
    ] {
        let http = reqwest::Client::new();
        let (base, token, ids) = (gateway.base.clone(), gateway.token.clone(), ids.clone());
        let (elapsed, hist) = timed_writers(clients, reads, move |_, i| {
            let (http, base, token, ids) = (http.clone(), base.clone(), token.clone(), ids.clone());
            async move {
                let path = match kind {
                    0 => "/session".to_owned(),
                    1 => {
                        let first17 = format!("350203{}{:03}", 19_700_101 + i % 28, i % 1000);
                        let check =
                            zhzj_proto::ids::resident_id_check_char(&first17).unwrap_or('0');
                        format!("/cases/duplicates?id_number={first17}{check}")
                    }
                    _ => format!("/cases/{}", ids[i % ids.len()]),
                };
                let response = http
                    .get(format!("{base}/api/v1{path}"))
                    .bearer_auth(&token)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!(
                        "HTTP read refused: {} {}",
                        response.status(),
                        response.text().await?
                    );
                }
                Ok(())
            }
        })
        .await?;
        rates.push(print_rate(label, reads, elapsed, &hist));
    }
    if let [baseline, check, case] = rates[..] {
        println!(
            "ratio duplicate check / GET /session: {:.2}",
            check / baseline
        );
        println!("ratio case read / GET /session: {:.2}", case / baseline);
    }
    Ok(())
}
