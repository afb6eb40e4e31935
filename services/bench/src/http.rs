//! `zhzj bench http`: writes and reads through the HTTP gateway, and the duplicate check.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use zhzj_cases::CasesService;
use zhzj_proto::{Command, commands::RecordNote};
use zhzj_store::{EventLog, ReadStore, SystemClock};

use crate::BENCH_PASSWORD;
use crate::common::*;

/// One gateway under test, with its session token.
pub(crate) struct BenchGateway {
    pub(crate) base: String,
    pub(crate) token: String,
}

/// What the HTTP benchmarks run on: a read store (`database`: `sqlite`, a file in a temporary
/// directory, or a fresh database on a PostgreSQL server), the `cases` service, every projection
/// and the seeded directory, and the account `bench` (coordinator of 厦门市,
/// [`BENCH_PASSWORD`]). Everything stops with [`BenchStack::finish`].
pub(crate) struct BenchStack {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) store: ReadStore,
    /// The roles, started as `zhzj up` starts them.
    system: zhzj_app::System,
    /// What the gateways connect with.
    conn: zhzj_app::RoleConnections,
    cleanup: Option<(sqlx::PgConnection, String)>,
}

impl BenchStack {
    pub(crate) async fn start(
        client: &async_nats::Client,
        log: &EventLog,
        database: &str,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (url, cleanup) = crate::common::bench_database(database, dir.path()).await?;
        let store = ReadStore::connect(&url).await?;
        let system =
            zhzj_app::System::new(Arc::new(SystemClock), zhzj_app::BureauSettings::default());
        let conn = zhzj_app::RoleConnections {
            client: client.clone(),
            log: log.clone(),
            store: Some(store.clone()),
            sealer: None,
            vault: None,
        };
        system
            .start_command_service(
                zhzj_cases::ServiceRole::Cases,
                &conn,
                Duration::from_secs(3600),
            )
            .await?;
        system.start_projector(&conn).await?;
        seed_directory(&CasesService::new(log.clone(), Arc::new(SystemClock))).await?;
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
            system,
            conn,
            cleanup,
        })
    }

    /// The read store's name, for the benchmark's header.
    pub(crate) fn database_name(&self) -> &'static str {
        match self.store.dialect() {
            zhzj_store::Dialect::Sqlite => "SQLite",
            zhzj_store::Dialect::Postgres => "PostgreSQL",
        }
    }

    /// Stops everything and drops the PostgreSQL database it made.
    pub(crate) async fn finish(self) -> anyhow::Result<()> {
        self.system.stop(Duration::from_secs(10)).await?;
        self.store.close().await;
        crate::common::drop_bench_database(self.cleanup).await
    }
}

/// A gateway with `config` on the benchmark's read store, serving until the stack stops; its
/// base URL.
pub(crate) async fn serve_bench_gateway(
    stack: &BenchStack,
    config: zhzj_gateway::GatewayConfig,
) -> anyhow::Result<String> {
    let settings = zhzj_app::GatewaySettings {
        listen: "127.0.0.1:0".into(),
        metrics_listen: Some("127.0.0.1:0".into()),
        config,
        metrics: None,
        supervision_watch: None,
        data_dir: None,
    };
    let gateway = stack.system.start_gateway(&stack.conn, settings).await?;
    Ok(format!("http://{}", gateway.http))
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

pub(crate) async fn start_bench_gateway(
    stack: &BenchStack,
    read_your_writes: Duration,
) -> anyhow::Result<BenchGateway> {
    let config = zhzj_gateway::GatewayConfig {
        read_your_writes,
        // The benchmark measures what a duplicate check costs, not its rate limit.
        duplicate_checks_per_minute: std::num::NonZeroU32::MAX,
        duplicate_checks_burst: std::num::NonZeroU32::MAX,
        ..zhzj_gateway::GatewayConfig::default()
    };
    let base = serve_bench_gateway(stack, config).await?;
    let token = bench_login(&reqwest::Client::new(), &base).await?;
    Ok(BenchGateway { base, token })
}

/// HTTP writes (`POST /api/v1/cases/{id}/notes`) through the gateway, beside the same commands
/// sent straight to the cases service over NATS, by the same number of concurrent clients.
pub(crate) async fn http_bench(
    client: &async_nats::Client,
    log: &EventLog,
    commands: usize,
    clients: usize,
    database: &str,
) -> anyhow::Result<()> {
    let stack = BenchStack::start(client, log, database).await?;
    let waiting = start_bench_gateway(&stack, Duration::from_secs(5)).await?;
    let not_waiting = start_bench_gateway(&stack, Duration::ZERO).await?;
    let cases = clients * 16;
    let mut ids = Vec::with_capacity(cases);
    for n in 0..cases {
        let request = request(registration(n));
        send(client, &request).await?;
        ids.push(zhzj_cases::service::case_id_for_command(request.command_id));
    }
    let ids = Arc::new(ids);
    println!(
        "HTTP writes vs NATS commands: {commands} notes per path, {clients} concurrent clients, {cases} cases ({} read store)",
        stack.database_name()
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
    stack.finish().await
}

/// A duplicate check by ID number (validated, looked up in and out of the caller's area, and
/// recorded in `personal_data_reads`) beside a plain case read, by the same clients.
pub(crate) async fn duplicate_check_bench(
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
