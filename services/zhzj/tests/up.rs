//! `zhzj up` end to end, as a user runs it: it starts its own nats-server on a free port, takes
//! commands, projects them into SQLite, and stops everything cleanly on SIGINT.
//!
//! (This test lives beside the binary because it needs the binary's path; the other end-to-end
//! tests are in `tests/`.)

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use sqlx::Row;
use tokio::process::Command;

mod common;

use common::zhzj;

#[tokio::test]
async fn up_takes_commands_projects_them_and_stops_cleanly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // A data dir as an earlier version or a careless `mkdir` left it: open to everyone, with a
    // world-readable read store in it.
    let data = &dir.path().join("data");
    std::fs::create_dir(data)?;
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(data.join("zhzj.sqlite"), b"")?;
    std::fs::set_permissions(
        data.join("zhzj.sqlite"),
        std::fs::Permissions::from_mode(0o644),
    )?;
    let mut up = Command::new(env!("CARGO_BIN_EXE_zhzj"))
        .args(["up", "--http", "127.0.0.1:0"])
        .env("ZHZJ_DATA_DIR", data)
        .env_remove("ZHZJ_NATS_URL")
        .env_remove("ZHZJ_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let url_file = data.join("nats.url");
    for _ in 0..100 {
        if url_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = std::fs::read_to_string(&url_file)?;
    assert!(url.starts_with("nats://127.0.0.1:"), "{url}");
    assert_ne!(
        url.trim(),
        "nats://127.0.0.1:4222",
        "a free port, not the default"
    );

    let commands = [
        r#"{"type":"add_unit","unit_id":"xm","name":"厦门市","kind":"city"}"#,
        r#"{"type":"add_unit","unit_id":"xm-huli","parent_id":"xm","name":"湖里区","kind":"district"}"#,
        r#"{"type":"register_case","case_id":"7d1f7c1e-8c1a-4f53-9a55-0b7f3c2f1a01","petitioners":[{"name":"李四"}],"matter":"要求补缴社会保险","category":"劳动社保","district_id":"xm-huli","channel":"letter","first_filed_on":"2025-03-01","list_source":"handed_down"}"#,
        r#"{"type":"add_measure","case_id":"7d1f7c1e-8c1a-4f53-9a55-0b7f3c2f1a01","description":"协调社保部门核查"}"#,
    ];
    // The server's URL is written before the services subscribe: until they do, a command
    // finds no responders, and is sent again (a loaded machine takes a few seconds).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for command in commands {
        let (ok, reply) = loop {
            let (ok, reply) = zhzj(data, &["command", command]).await?;
            if ok || !reply.contains("no responders") || tokio::time::Instant::now() > deadline {
                break (ok, reply);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(ok, "{command} → {reply}");
        assert!(reply.contains(r#""ok""#), "{reply}");
    }
    let (ok, reply) = zhzj(
        data,
        &[
            "command",
            r#"{"type":"complete_measure","case_id":"7d1f7c1e-8c1a-4f53-9a55-0b7f3c2f1a01","measure_id":"m2","result":"x"}"#,
        ],
    )
    .await?;
    assert!(!ok, "a refused command exits non-zero");
    assert!(reply.contains(r#""not_found""#), "{reply}");

    // The projection reaches the checklist.
    let store =
        zhzj_store::ReadStore::connect(&zhzj_store::sql::sqlite_url(&data.join("zhzj.sqlite")))
            .await?;
    let mut found = None;
    for _ in 0..100 {
        let row = sqlx::query(
            "SELECT district_name, measures_total FROM checklist_rows WHERE case_id = $1",
        )
        .bind("7d1f7c1e-8c1a-4f53-9a55-0b7f3c2f1a01")
        .fetch_optional(store.pool())
        .await;
        if let Ok(Some(row)) = row {
            let measures: i64 = row.try_get("measures_total")?;
            if measures == 1 {
                found = Some(row.try_get::<String, _>("district_name")?);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found.as_deref(), Some("湖里区"));
    let (ok, checklist) = zhzj(data, &["checklist"]).await?;
    assert!(ok);
    assert!(checklist.contains("要求补缴社会保险"), "{checklist}");
    store.close().await;

    // Nothing in the data dir is open to other accounts: the dir, the read store (personal
    // data), the nats store and every file in it, the URLs, the nats-server configuration.
    let mut open_to_others = Vec::new();
    let mut pending = vec![data.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path)?;
        if metadata.permissions().mode() & 0o077 != 0 {
            open_to_others.push(format!(
                "{} {:o}",
                path.display(),
                metadata.permissions().mode() & 0o777
            ));
        }
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    assert!(open_to_others.is_empty(), "{open_to_others:#?}");

    // SIGINT: everything stops, and the local nats-server with it.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(up.id().unwrap_or_default())?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT)?;
    let status = tokio::time::timeout(Duration::from_secs(30), up.wait()).await??;
    assert!(status.success(), "clean exit: {status:?}");
    assert!(!url_file.exists(), "the local nats-server was stopped");
    let port = url.trim().rsplit(':').next().unwrap_or_default().to_owned();
    assert!(
        tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .is_err(),
        "nothing listens on the local nats-server's port any more"
    );
    Ok(())
}

/// `zhzj up` killed (SIGKILL: the OOM killer, a power button in a script) cannot stop its
/// nats-server, which keeps running on the data dir's store. The next `zhzj up` on that data
/// dir must stop it before starting its own: two servers on one store would both write it.
#[tokio::test]
async fn up_after_a_kill_stops_the_nats_server_left_running() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = &dir.path().join("data");
    std::fs::create_dir(data)?;
    let mut first = common::Up::start(data, &[]).await?;
    let left = zhzj_local_nats::left_over_server(data)
        .ok_or_else(|| anyhow::anyhow!("the running up's nats-server is not found"))?;
    first.child.kill().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        nix::sys::signal::kill(left, None).is_ok(),
        "the killed up's nats-server outlives it (what this test is about)"
    );

    let second = common::Up::start(data, &[]).await?;
    let gone = async {
        while nix::sys::signal::kill(left, None).is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), gone)
        .await
        .map_err(|_| anyhow::anyhow!("the nats-server left running ({left}) still runs"))?;
    assert!(
        second.log().contains("stopped the local nats-server"),
        "the start says what it stopped:\n{}",
        second.log()
    );
    let mut ready = false;
    for _ in 0..300 {
        ready = reqwest::get(format!("{}/readyz", second.http))
            .await
            .is_ok_and(|answer| answer.status().is_success());
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ready,
        "the second up never became ready:
{}",
        second.log()
    );
    let now = zhzj_local_nats::left_over_server(data);
    assert!(
        now.is_some_and(|pid| pid != left),
        "the second up runs its own server: {now:?}"
    );
    second.stop_with(nix::sys::signal::Signal::SIGTERM).await
}

/// A typo in the supervision rules or the internal limits stopped `zhzj up` only after it had
/// started its nats-server, opened the log and said "zhzj is up". Settings are now read first:
/// nothing starts, and the error naming the setting is the last word.
#[tokio::test]
async fn up_with_a_bad_setting_starts_nothing_and_names_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "this is = not [toml")?;
    let rules = rules.to_string_lossy().into_owned();
    for (flag, value) in [
        ("--supervision-rules", rules.as_str()),
        ("--internal-limits", "handling=zzz"),
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_zhzj"))
            .args(["up", "--http", "127.0.0.1:0", flag, value])
            .env("ZHZJ_DATA_DIR", &data)
            .env_remove("ZHZJ_NATS_URL")
            .env_remove("ZHZJ_DATABASE_URL")
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(60), run).await??;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.status.success(), "{flag}: {text}");
        assert!(text.contains(flag), "{flag} is named: {text}");
        assert!(
            !text.contains("zhzj is up") && !text.contains("nats-server started"),
            "{flag}: nothing started: {text}"
        );
        assert!(
            zhzj_local_nats::left_over_server(&data).is_none() && !data.join("nats.url").exists(),
            "{flag}: no nats-server was started"
        );
    }
    Ok(())
}
