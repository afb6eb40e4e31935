//! The trust boundary on `zhzj up --demo`, as an attacker on the same machine and an auditor
//! would meet it: NATS admits no one without a credential and the projector's cannot write; an
//! exported 考核表 states the log digest at its position, which `zhzj verify --at` reproduces from
//! the log; and a commit the holder of the admin credential forges onto a case is named by
//! `zhzj verify`, which exits 1.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

mod common;

use std::time::Duration;

use calamine::Reader;
use common::{Up, api_get, demo_loaded, login, zhzj};
use zhzj_trust::nats_access::NatsRole;

const DEMO_PASSWORD: &str = "zhzj-demo-2026";

#[tokio::test]
async fn the_demo_log_verifies_states_its_digest_in_exports_and_names_a_forgery()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    let up = Up::start(data, &["--demo"]).await?;
    demo_loaded(&up, 1).await?;

    // No credential, no connection; the projector's may not append.
    let anonymous = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(&up.nats_url)
        .await;
    assert!(anonymous.is_err(), "connected without a credential");
    let mut projector = async_nats::jetstream::new(up.client_as(NatsRole::Projector).await?);
    projector.set_timeout(Duration::from_secs(1));
    let appended = match projector
        .publish(
            "zhzj.ev.case.00000000-0000-0000-0000-000000000001",
            "{}".into(),
        )
        .await
    {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    assert!(!appended, "the projector's credential appended to the log");

    // Only the admin credential shapes the stream, and a role's is told so at once.
    let projector_key = zhzj_trust::nats_access::nkey_file(
        &zhzj_trust::nats_access::credentials_dir(data),
        NatsRole::Projector,
    );
    let started = std::time::Instant::now();
    let (ok, out) = zhzj(
        data,
        &[
            "log",
            "init",
            "--nats-nkey",
            &projector_key.display().to_string(),
        ],
    )
    .await?;
    assert!(!ok, "the projector's credential initialised the log: {out}");
    assert!(out.contains("admin credential"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(15), "slow: {out}");

    // The assessment workbook states its position and the digest there.
    let token = login(&up.http, "admin", DEMO_PASSWORD).await?;
    let response = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/assessments/export.xlsx?from=2026-01-01&to=2026-12-31",
            up.http
        ))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;
    let header_digest = response
        .headers()
        .get("x-zhzj-log-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await?;
    let mut workbook = calamine::open_workbook_from_rs::<calamine::Xlsx<_>, _>(
        std::io::Cursor::new(bytes.to_vec()),
    )?;
    let sheet = workbook.worksheet_range("日志封印")?;
    let cell = |row: u32| {
        sheet
            .get_value((row, 1))
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    let (position, digest) = (cell(1), cell(2));
    assert_eq!(digest.len(), 64, "a SHA-256 digest in hex: {digest:?}");
    assert_eq!(header_digest.as_deref(), Some(digest.as_str()));

    // The seal the export appended is the log's last message: nothing for a projection to apply,
    // so no lag.
    let mut lags = Vec::new();
    for _ in 0..50 {
        let (_, out) = zhzj(data, &["status"]).await?;
        lags = out
            .lines()
            .skip(2)
            .filter_map(|line| line.split_whitespace().nth(3).map(str::to_owned))
            .collect();
        if !lags.is_empty() && lags.iter().all(|lag| lag == "0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !lags.is_empty() && lags.iter().all(|lag| lag == "0"),
        "projections lag behind a trailing seal: {lags:?}"
    );

    // `zhzj verify` reproduces it from the whole log, and names the last seal.
    let (ok, out) = zhzj(data, &["verify", "--at", &position]).await?;
    assert!(ok, "{out}");
    assert!(out.contains("verified up to position"), "{out}");
    assert!(out.contains("seal "), "{out}");
    assert!(
        out.contains(&format!("log digest through position {position}: {digest}")),
        "{out}"
    );

    // The admin credential can still publish: a commit copied onto another case is named.
    let admin = async_nats::jetstream::new(up.admin_client().await?);
    let mut stream = admin.get_stream(zhzj_proto::subjects::EVENT_STREAM).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut copied = None;
    let mut target = None;
    for position in (1..=last).rev() {
        let message = stream.get_raw_message(position).await?;
        if message.subject.starts_with("zhzj.ev.case.") {
            match &copied {
                None => copied = Some(message),
                Some(first) if first.subject != message.subject => {
                    target = Some(message.subject.to_string());
                    break;
                }
                Some(_) => {}
            }
        }
    }
    let (copied, target) = (
        copied.expect("a case commit"),
        target.expect("another case"),
    );
    // Its chain headers and signature come along; what JetStream checked on the way in does not.
    let mut headers = async_nats::HeaderMap::new();
    for (name, values) in copied.headers.iter() {
        if !name.to_string().starts_with("Nats-") {
            for value in values {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
    let forged = admin
        .publish_with_headers(target.clone(), headers, copied.payload.clone())
        .await?
        .await?;
    let (ok, out) = zhzj(data, &["verify"]).await?;
    assert!(!ok, "a forged commit verified: {out}");
    assert!(
        out.contains(&format!("position {}:", forged.sequence)),
        "{out}"
    );
    let case = target.trim_start_matches("zhzj.ev.");
    assert!(out.contains(case), "names {case}: {out}");
    drop(stream);
    up.stop_with(nix::sys::signal::Signal::SIGTERM).await?;
    Ok(())
}

/// `zhzj erase --actor` recorded whoever the operator typed: `--actor nobody` erased a petitioner
/// in the name of an account that does not exist. An erasure cannot be undone, so it is now done
/// only in the name of an enabled administrator account, and a refused one erases nothing.
#[tokio::test]
async fn an_erasure_is_done_only_in_the_name_of_an_administrator() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    let up = Up::start(data, &["--demo"]).await?;
    demo_loaded(&up, 1).await?;
    let token = login(&up.http, "xietiao", DEMO_PASSWORD).await?;
    let checklist = api_get(&up, &token, "/checklist").await?;
    let case_id = checklist["rows"][0]["case_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let history = || async {
        let events = api_get(&up, &token, &format!("/cases/{case_id}/events")).await?;
        anyhow::Ok(events.as_array().map_or(0, Vec::len))
    };
    let before = history().await?;
    let erase = |actor: &'static str| {
        let case_id = case_id.clone();
        async move {
            zhzj(
                data,
                &[
                    "erase",
                    "--case",
                    &case_id,
                    "--petitioner",
                    "1",
                    "--reason",
                    "信访人申请删除",
                    "--actor",
                    actor,
                ],
            )
            .await
        }
    };
    for actor in ["nobody", "chakan"] {
        let (ok, out) = erase(actor).await?;
        assert!(!ok, "--actor {actor} erased: {out}");
        assert!(out.contains("不是启用中的系统管理员账号"), "{actor}: {out}");
    }
    assert_eq!(history().await?, before, "a refused erasure erased nothing");
    let (ok, out) = erase("admin").await?;
    assert!(ok, "the administrator's erasure: {out}");
    // The command line does not wait for the read views: the archive shows it shortly.
    let mut after = history().await?;
    for _ in 0..100 {
        if after > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = history().await?;
    }
    assert_eq!(after, before + 1, "PetitionerErased appended");
    up.stop_with(nix::sys::signal::Signal::SIGTERM).await?;
    Ok(())
}
