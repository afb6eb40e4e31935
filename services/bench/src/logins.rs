//! `zhzj bench logins`: what a flood of bad logins does to signed-in users. Signed-in readers
//! page through the checklist, one request at a time each, first alone (the baseline), then while
//! many clients send wrong passwords: with password hashing unbounded (as before the bound), with
//! the gateway's bound on concurrent hashing, and with the lockout on (the flood from one address
//! is locked and answered without hashing). Then a script sends 200 wrong passwords for one
//! account and reports when it was locked out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use zhzj_store::EventLog;

use crate::BENCH_PASSWORD;
use crate::common::{histogram, ms, record, registration, request, send};
use crate::http::{BenchStack, bench_login, serve_bench_gateway};

/// Cases in the checklist the readers page through.
const CASES: usize = 1_000;

/// A gateway with `accounts` on the benchmark's read store; its base URL.
async fn gateway(
    stack: &BenchStack,
    accounts: zhzj_gateway::AccountSettings,
) -> anyhow::Result<String> {
    let config = zhzj_gateway::GatewayConfig {
        accounts,
        ..zhzj_gateway::GatewayConfig::default()
    };
    serve_bench_gateway(stack, config).await
}

/// What the flood got back.
#[derive(Debug, Default)]
struct FloodAnswers {
    refused: AtomicUsize,
    locked: AtomicUsize,
    busy: AtomicUsize,
    other: AtomicUsize,
}

/// Reads by `readers` signed-in users for `seconds`, while `flooders` clients send bad logins
/// (none: the baseline); the readers' latencies and what the flood got.
async fn phase(
    base: &str,
    seconds: u64,
    readers: usize,
    flooders: usize,
) -> anyhow::Result<(Histogram<u64>, FloodAnswers, usize)> {
    let http = reqwest::Client::new();
    let token = bench_login(&http, base).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(FloodAnswers::default());
    let sent = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for client in 0..flooders {
        let (http, base, stop, answers, sent) = (
            reqwest::Client::new(),
            base.to_owned(),
            stop.clone(),
            answers.clone(),
            sent.clone(),
        );
        flood.push(tokio::spawn(async move {
            let mut n = 0_usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let answer = http
                    .post(format!("{base}/api/v1/session"))
                    .json(&serde_json::json!({
                        "username": format!("guess-{client}-{n}"),
                        "password": "Wrong-password-1",
                    }))
                    .send()
                    .await;
                sent.fetch_add(1, Ordering::Relaxed);
                let counter = match answer {
                    Ok(a) if a.status() == 401 && a.headers().contains_key("retry-after") => {
                        &answers.locked
                    }
                    Ok(a) if a.status() == 401 => &answers.refused,
                    Ok(a) if a.status() == 503 => &answers.busy,
                    _ => &answers.other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let the flood reach its pace before the readers' clock starts.
    if flooders > 0 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut reading = Vec::new();
    for reader in 0..readers {
        let (http, base, token) = (http.clone(), base.to_owned(), token.clone());
        reading.push(tokio::spawn(async move {
            let mut hist = histogram()?;
            let mut page = reader % 20 + 1;
            while Instant::now() < deadline {
                let started = Instant::now();
                http.get(format!("{base}/api/v1/checklist?per_page=50&page={page}"))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
                record(&mut hist, started.elapsed());
                page = page % 20 + 1;
            }
            anyhow::Ok(hist)
        }));
    }
    let mut hist = histogram()?;
    for task in reading {
        hist.add(task.await??)?;
    }
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        task.await?;
    }
    let sent = sent.load(Ordering::Relaxed);
    Ok((hist, Arc::try_unwrap(answers).unwrap_or_default(), sent))
}

/// `zhzj bench logins`.
pub async fn run(
    client: &async_nats::Client,
    log: &EventLog,
    seconds: u64,
    flooders: usize,
    readers: usize,
) -> anyhow::Result<()> {
    let stack = BenchStack::start(client, log, "sqlite").await?;
    let store = &stack.store;
    for n in 0..CASES {
        send(client, &request(registration(n))).await?;
    }
    let defaults = zhzj_gateway::AccountSettings::default();
    // Let the projector catch up with the registrations.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let no_lockout = zhzj_gateway::LockoutPolicy {
        max_failures_per_account: u32::MAX,
        max_failures_per_address: u32::MAX,
        ..zhzj_gateway::LockoutPolicy::default()
    };
    let unbounded = zhzj_gateway::AccountSettings {
        lockout: no_lockout.clone(),
        concurrent_hashes: 512,
        max_waiting_logins: usize::MAX,
        ..defaults.clone()
    };
    let bounded = zhzj_gateway::AccountSettings {
        lockout: no_lockout,
        ..defaults.clone()
    };
    println!(
        "signed-in readers ({readers}, GET /checklist?per_page=50 over {CASES} cases, one at a time each) \
         during {flooders} clients sending bad logins; {seconds} s per phase; hashing bound: {} at once, {} waiting",
        defaults.concurrent_hashes, defaults.max_waiting_logins
    );
    println!(
        "{:<46} {:>9} {:>9} {:>9} {:>10} {:>9} {:>8} {:>7} {:>6}",
        "phase", "reads/s", "p50 ms", "p99 ms", "logins/s", "refused", "locked", "busy", "other"
    );
    for (label, settings, flood) in [
        ("baseline: no flood", defaults.clone(), 0),
        ("flood, hashing unbounded, no lockout", unbounded, flooders),
        ("flood, hashing bounded, no lockout", bounded, flooders),
        (
            "flood, bounded + lockout (the default)",
            defaults.clone(),
            flooders,
        ),
    ] {
        let base = gateway(&stack, settings).await?;
        let (hist, answers, sent) = phase(&base, seconds, readers, flood).await?;
        let secs = seconds as f64;
        println!(
            "{label:<46} {:>9.0} {:>9.2} {:>9.2} {:>10.0} {:>9} {:>8} {:>7} {:>6}",
            hist.len() as f64 / secs,
            ms(hist.value_at_quantile(0.5)),
            ms(hist.value_at_quantile(0.99)),
            sent as f64 / (secs + 1.0),
            answers.refused.load(Ordering::Relaxed),
            answers.locked.load(Ordering::Relaxed),
            answers.busy.load(Ordering::Relaxed),
            answers.other.load(Ordering::Relaxed),
        );
        // Each phase starts with no lock left by the one before.
        sqlx::query("DELETE FROM login_failures")
            .execute(store.pool())
            .await?;
    }

    // A script of 200 wrong passwords for one account.
    let base = gateway(&stack, defaults.clone()).await?;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut first_locked = None;
    let mut statuses = std::collections::BTreeMap::new();
    for attempt in 1..=200 {
        let answer = http
            .post(format!("{base}/api/v1/session"))
            .json(&serde_json::json!({"username": "bench", "password": "Wrong-password-1"}))
            .send()
            .await?;
        let locked = answer.headers().contains_key("retry-after");
        if locked && first_locked.is_none() {
            first_locked = Some(attempt);
        }
        *statuses
            .entry(format!(
                "{}{}",
                answer.status().as_u16(),
                if locked { "+Retry-After" } else { "" }
            ))
            .or_insert(0) += 1;
    }
    let right = http
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": "bench", "password": BENCH_PASSWORD}))
        .send()
        .await?;
    println!(
        "200 wrong passwords for one account in {:.2} s: {statuses:?}; locked from attempt {}; \
         the right password then: {} {}",
        started.elapsed().as_secs_f64(),
        first_locked.map_or_else(|| "never".to_owned(), |a| a.to_string()),
        right.status().as_u16(),
        if right.headers().contains_key("retry-after") {
            "(locked, Retry-After)"
        } else {
            ""
        }
    );
    stack.finish().await
}
