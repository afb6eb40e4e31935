//! What the benchmarks share: histograms, commands, writers, the responder process and CPU
//! accounting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use chrono::NaiveDate;
use hdrhistogram::Histogram;
use uuid::Uuid;
use zhzj_cases::CasesService;
use zhzj_proto::{
    Actor, Command, CommandReply, CommandRequest,
    commands::{AddLeader, AddUnit, RegisterCase},
    events::{Channel, LeaderLevel, ListSource, Petitioner, UnitKind},
    subjects::CASES_COMMANDS,
};
use zhzj_store::EventLog;

use zhzj_local_nats::LocalNats;

/// A database dropped after the run: its URL, and what drops it (PostgreSQL).
pub(crate) type BenchDatabase = (String, Option<(sqlx::PgConnection, String)>);

/// A fresh read store for the run: a SQLite file in `dir`, or a new PostgreSQL database.
pub(crate) async fn bench_database(
    database: &str,
    dir: &std::path::Path,
) -> anyhow::Result<BenchDatabase> {
    Ok(if database == "sqlite" {
        (zhzj_store::sql::sqlite_url(&dir.join("bench.sqlite")), None)
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
        anyhow::bail!("--database is `sqlite` or a postgres:// URL");
    })
}

/// Drops the PostgreSQL database [`bench_database`] made, if it made one.
pub(crate) async fn drop_bench_database(
    cleanup: Option<(sqlx::PgConnection, String)>,
) -> anyhow::Result<()> {
    if let Some((mut admin, name)) = cleanup {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
    }
    Ok(())
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

pub(crate) fn print_rate(
    label: &str,
    count: usize,
    elapsed: Duration,
    hist: &Histogram<u64>,
) -> f64 {
    let rate = count as f64 / elapsed.as_secs_f64();
    println!(
        "{label:<44} {count:>9} in {:>7.2}s = {rate:>9.0}/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        elapsed.as_secs_f64(),
        ms(hist.value_at_quantile(0.5)),
        ms(hist.value_at_quantile(0.99)),
    );
    rate
}

pub(crate) fn actor() -> Actor {
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
pub(crate) fn registration_with_personal_data(n: usize) -> Command {
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

/// The bytes the event stream holds, as nats-server counts them.
pub(crate) async fn log_bytes(log: &EventLog) -> anyhow::Result<u64> {
    let mut stream = log
        .context()
        .get_stream(zhzj_proto::subjects::EVENT_STREAM)
        .await?;
    Ok(stream.info().await?.state.bytes)
}

pub(crate) async fn seed_directory(service: &CasesService) -> anyhow::Result<()> {
    for command in directory_commands() {
        if let CommandReply::Error(e) = service.handle(request(command)).await {
            bail!("seeding the directory failed: {e:?}");
        }
    }
    Ok(())
}

/// The small directory every benchmark registers its cases in.
pub(crate) fn directory_commands() -> [Command; 3] {
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
pub(crate) async fn timed_writers<F, Fut>(
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
pub(crate) fn owned_case(i: usize, writers: usize, cases: usize) -> usize {
    let per_writer = (cases / writers).max(1);
    i % writers + writers * ((i / writers) % per_writer)
}

/// Starts `zhzj <args> --nats-url <url>` as a child process and waits until it answers on
/// `probe_subject` (any reply will do).
pub(crate) async fn start_responder(
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
pub(crate) async fn stop_responder(mut child: tokio::process::Child) -> anyhow::Result<()> {
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
pub(crate) fn process_cpu(pid: u32) -> Option<Duration> {
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
pub(crate) struct CpuMeter {
    pub(crate) processes: Vec<(&'static str, u32, Duration)>,
}

impl CpuMeter {
    /// Notes the CPU time so far of the phase's responder (if any), nats-server and this process
    /// (the writers); a process without a pid or procfs is left out.
    pub(crate) fn start(nats: &LocalNats, responder: Option<(&'static str, Option<u32>)>) -> Self {
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
    pub(crate) fn per_commit(&self, commits: usize) -> String {
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
pub(crate) fn accepted_version(payload: &[u8]) -> anyhow::Result<u64> {
    match serde_json::from_slice(payload)? {
        CommandReply::Ok(ok) => Ok(ok.version),
        CommandReply::Error(e) => bail!("command refused: {e:?}"),
    }
}
