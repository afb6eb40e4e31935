//! `zhzj up --demo` as a new user runs it: the demo organisation, about 300 cases with a year of
//! history and the demo logins; starting with `--demo` again adds nothing. Also `zhzj user add`.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

mod common;

use common::{Up, api_get as get, demo_loaded, login, zhzj};
use nix::sys::signal::Signal;
use serde_json::Value;

const DEMO_PASSWORD: &str = "zhzj-demo-2026";

async fn last_position(up: &Up) -> anyhow::Result<u64> {
    let client = up.admin_client().await?;
    let log = zhzj_store::EventLog::open(client, &zhzj_store::LogConfig::default()).await?;
    Ok(log.last_position().await?)
}

/// All checklist rows (the demo has fewer than 400).
async fn all_rows(up: &Up, token: &str) -> anyhow::Result<Vec<Value>> {
    let mut rows = Vec::new();
    for page in 1..=2 {
        let answer = get(up, token, &format!("/checklist?per_page=200&page={page}")).await?;
        rows.extend(answer["rows"].as_array().cloned().unwrap_or_default());
    }
    Ok(rows)
}

#[tokio::test]
async fn the_demo_loads_once_and_loading_it_again_adds_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    let add = [
        "user",
        "add",
        "--username",
        "wangke",
        "--password",
        "Xiamen-Kezhang-1",
        "--display-name",
        "王科长",
    ];
    let (ok, out) = zhzj(data, &add).await?;
    assert!(ok, "{out}");
    let (ok, out) = zhzj(data, &add).await?;
    assert!(!ok, "a taken username is refused");
    assert!(out.contains("已存在"), "{out}");
    // Weak passwords, unknown roles and units are refused, each with its reason.
    for (args, reason) in [
        (&["--password", "1234"][..], "至少 10 个字符"),
        (&["--password", "11111111"][..], "至少 10 个字符"),
        (&["--password", "passwordpassword"][..], "至少 3 类"),
        (&["--password", "Short-user-2026"][..], "不能包含用户名"),
        (
            &["--password", "Xiamen-Kezhang-2", "--roles", "admn,supreme"][..],
            "没有角色",
        ),
    ] {
        let mut command = vec!["user", "add", "--username", "short"];
        command.extend_from_slice(args);
        let (ok, out) = zhzj(data, &command).await?;
        assert!(!ok && out.contains(reason), "{args:?}: {out}");
    }

    let up = Up::start(data, &["--demo"]).await?;
    let first = demo_loaded(&up, 1).await?;
    assert!(first.contains("cases_added=300"), "{first}");
    let token = login(&up.http, "admin", DEMO_PASSWORD).await?;
    // With the directory there, a unit or leader it does not hold is refused.
    for (args, reason) in [
        (&["--unit", "no-such-unit"][..], "没有单位"),
        (
            &["--unit", "xm", "--leader", "no-such-leader"][..],
            "没有领导",
        ),
    ] {
        let mut command = vec![
            "user",
            "add",
            "--username",
            "short",
            "--password",
            "Xiamen-Kezhang-2",
        ];
        command.extend_from_slice(args);
        let (ok, out) = zhzj(data, &command).await?;
        assert!(!ok && out.contains(reason), "{args:?}: {out}");
    }
    // An account made by `zhzj user add` must change its password at the first login.
    let wangke = reqwest::Client::new()
        .post(format!("{}/api/v1/session", up.http))
        .json(&serde_json::json!({"username": "wangke", "password": "Xiamen-Kezhang-1"}))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    assert_eq!(wangke["user"]["must_change_password"], true, "{wangke}");

    let rows = all_rows(&up, &token).await?;
    assert_eq!(rows.len(), 300);
    let org = get(&up, &token, "/org").await?;
    let names: Vec<&str> = org["units"]
        .as_array()
        .map(|u| u.iter().filter_map(|u| u["name"].as_str()).collect())
        .unwrap_or_default();
    for district in ["思明区", "湖里区", "集美区", "海沧区", "同安区", "翔安区"] {
        assert!(names.contains(&district), "{district}");
    }
    for town in ["鼓浪屿街道", "灌口镇", "大嶝街道"] {
        assert!(names.contains(&town), "{town}");
    }
    // Histories spread over the past year, in every district, with work on them.
    let now = chrono::Utc::now();
    let ages: Vec<i64> = rows
        .iter()
        .filter_map(|r| r["registered_at"].as_str())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| (now - t.with_timezone(&chrono::Utc)).num_days())
        .collect();
    assert!(
        ages.iter().any(|&d| d > 300) && ages.iter().any(|&d| d < 30),
        "{ages:?}"
    );
    assert!(ages.iter().all(|&d| (0..=366).contains(&d)), "{ages:?}");
    let owned = rows.iter().filter(|r| !r["leader"].is_null()).count();
    let done = rows
        .iter()
        .filter(|r| r["status"] == "measures_done")
        .count();
    assert!(
        owned > 200 && done > 10,
        "owned {owned}, all measures done {done}"
    );
    let crossed = rows.iter().filter(|r| r["status"] == "crossed_off").count();
    let relapsed = rows.iter().filter(|r| r["relapse_count"] != 0).count();
    let classified = rows.iter().filter(|r| !r["class"].is_null()).count();
    assert!(
        crossed > 20 && relapsed > 0 && classified > 150,
        "crossed off {crossed}, relapsed {relapsed}, classified {classified}"
    );
    // A working bureau's board: most cases run a statutory clock, a few of the open ones are
    // overdue, and some claims wait for review.
    let open = rows.len() - crossed;
    let overdue = rows.iter().filter(|r| r["overdue"] == true).count();
    let running = rows
        .iter()
        .filter(|r| !r["next_deadline"].is_null())
        .count();
    let reviewing = rows
        .iter()
        .filter(|r| r["status"] == "under_review")
        .count();
    assert!(
        overdue > 0 && overdue * 4 <= open && running * 2 >= rows.len() && reviewing > 0,
        "overdue {overdue} of {open} open, {running} clocks running, {reviewing} under review"
    );
    let leaders = get(&up, &token, "/leaders").await?;
    let active = leaders["leaders"].as_array().map_or(0, |l| {
        l.iter()
            .filter(|l| !l["last_activity_on"].is_null())
            .count()
    });
    assert!(active > 20, "leaders with logged work: {active}");
    // The campaign rhythm: three weekly meetings of 思明区 with their agendas, the published
    // bulletins of the last two complete months, this quarter's push.
    let meetings = get(&up, &token, "/meetings").await?;
    assert_eq!(meetings.as_array().map(Vec::len), Some(3), "{meetings}");
    let latest = meetings[0]["meeting_id"].as_str().unwrap_or("");
    let agenda = get(&up, &token, &format!("/meetings/{latest}")).await?;
    assert_eq!(
        agenda["sections"].as_array().map(Vec::len),
        Some(7),
        "{agenda}"
    );
    assert!(
        agenda["instructions"]
            .as_array()
            .is_some_and(|i| !i.is_empty()),
        "instructions of earlier meetings: {agenda}"
    );
    let bulletins = get(&up, &token, "/bulletins").await?;
    assert_eq!(bulletins.as_array().map(Vec::len), Some(2), "{bulletins}");
    let month = bulletins[0]["month"].as_str().unwrap_or("");
    let bulletin = get(&up, &token, &format!("/bulletins/{month}")).await?;
    assert_eq!(
        bulletin["districts"].as_array().map(Vec::len),
        Some(6),
        "{bulletin}"
    );
    let pushes = get(&up, &token, "/pushes").await?;
    assert_eq!(pushes[0]["cases"], 12, "{pushes}");
    // The ledger from the command line: exported, it imports nowhere here (every case is
    // already on the list), and the refusal lists the rows.
    let ledger = data.join("台账.csv");
    let ledger_path = ledger.to_string_lossy().into_owned();
    let as_city = ["--username", "xietiao", "--password", DEMO_PASSWORD];
    let (ok, out) = zhzj(
        data,
        &[&["export", ledger_path.as_str()][..], &as_city[..]].concat(),
    )
    .await?;
    assert!(ok, "{out}");
    let exported = std::fs::read_to_string(&ledger)?;
    // A header and a row per petitioner (the case number first): the 300 cases, some on two rows.
    let numbers: std::collections::HashSet<&str> = exported
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .collect();
    assert_eq!(numbers.len(), 300, "{}", exported.lines().count());
    assert!(
        exported.lines().count() > 301,
        "some cases have two petitioners"
    );
    let (ok, out) = zhzj(
        data,
        &[&["import", ledger_path.as_str()][..], &as_city[..]].concat(),
    )
    .await?;
    assert!(!ok, "{out}");
    assert!(
        out.contains("疑似重复") && out.contains("第 301 行"),
        "{out}"
    );
    // The directory from the command line: exported as TOML, it imports into the same system
    // adding nothing; a file with an entry that differs is refused whole.
    let directory = data.join("组织架构.toml");
    let directory_path = directory.to_string_lossy().into_owned();
    let as_admin = ["--username", "admin", "--password", DEMO_PASSWORD];
    let (ok, out) = zhzj(
        data,
        &[
            &["org", "export", directory_path.as_str()][..],
            &as_admin[..],
        ]
        .concat(),
    )
    .await?;
    assert!(ok && out.contains("已导出组织架构"), "{out}");
    let file = std::fs::read_to_string(&directory)?;
    assert!(
        file.contains("[[units]]") && file.contains("思明区"),
        "{file}"
    );
    let (ok, out) = zhzj(
        data,
        &[
            &["org", "import", directory_path.as_str()][..],
            &as_admin[..],
        ]
        .concat(),
    )
    .await?;
    assert!(ok && out.contains("新增 0 项"), "{out}");
    std::fs::write(&directory, file.replacen("思明区", "思明新区", 1))?;
    let (ok, out) = zhzj(
        data,
        &[
            &["org", "import", directory_path.as_str()][..],
            &as_admin[..],
        ]
        .concat(),
    )
    .await?;
    assert!(!ok && out.contains("已存在"), "{out}");
    // The assessment from the command line: six districts ranked, and the workbook.
    let workbook = data.join("考核.xlsx");
    let workbook_path = workbook.to_string_lossy().into_owned();
    let year_start = format!("{}-01-01", chrono::Utc::now().format("%Y"));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (ok, out) = zhzj(
        data,
        &[
            "assess",
            "--scheme",
            "dachuan",
            "--from",
            &year_start,
            "--to",
            &today,
            "--output",
            &workbook_path,
        ],
    )
    .await?;
    assert!(ok, "{out}");
    assert!(
        out.contains("达川区信访工作目标考核") && out.contains("思明区"),
        "{out}"
    );
    assert!(std::fs::metadata(&workbook)?.len() > 0);
    let broken = data.join("broken.toml");
    std::fs::write(
        &broken,
        "name = \"x\"\nversion = \"1\"\n[[indicators]]\nkey = \"a\"\nname = \"A\"\nweight = 5\nscore = \"weight * nothing\"\n",
    )?;
    let broken_path = broken.to_string_lossy().into_owned();
    let (ok, out) = zhzj(
        data,
        &[
            "assess",
            "--scheme",
            &broken_path,
            "--from",
            &year_start,
            "--to",
            &today,
        ],
    )
    .await?;
    assert!(!ok && out.contains("第 7 行"), "{out}");
    let position = last_position(&up).await?;
    up.stop_with(Signal::SIGINT).await?;

    let up = Up::start(data, &["--demo"]).await?;
    let second = demo_loaded(&up, 2).await?;
    for added in [
        "directory_added=0",
        "cases_added=0",
        "campaign_added=0",
        "accounts_added=0",
    ] {
        assert!(second.contains(added), "{second}");
    }
    assert_eq!(last_position(&up).await?, position, "nothing appended");
    let token = login(&up.http, "chakan", DEMO_PASSWORD).await?;
    assert_eq!(all_rows(&up, &token).await?.len(), 300);
    up.stop_with(Signal::SIGINT).await
}
