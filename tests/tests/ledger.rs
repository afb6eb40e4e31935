//! The ledger (台账) in and out through HTTP on real parts: the template; a 5,000-row ledger with
//! 50 planted errors reports exactly those 50 and writes nothing; a valid ledger imports once
//! (again, it adds nothing); export then import into another system reproduces the cases.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use zhzj_tests::{DbKind, TestApp, registration_json, spawn_app, synthetic_id_number};

const HEADER: &str = "案件编号,信访人姓名,身份证号,联系电话,住址,诉求,类别,区,镇街,信访渠道,首次信访日期,列入方式,涉及人数,包案领导,责任单位";

/// A valid ledger row for case `n`.
fn row(n: u32) -> Vec<String> {
    let leader = if n.is_multiple_of(3) { "李明" } else { "" };
    let unit = if n.is_multiple_of(4) {
        "市住房局"
    } else {
        ""
    };
    [
        format!("TZ-{n:05}"),
        format!("信访人{n}"),
        synthetic_id_number(n),
        "13800000000".to_owned(),
        format!("思明区中华路{n}号"),
        format!("要求解决安置补偿问题（第{n}件）"),
        "征地拆迁".to_owned(),
        "思明区".to_owned(),
        "中华街道".to_owned(),
        "来访".to_owned(),
        "2025-06-01".to_owned(),
        "滚动排查".to_owned(),
        "1".to_owned(),
        leader.to_owned(),
        unit.to_owned(),
    ]
    .to_vec()
}

fn csv(rows: &[Vec<String>]) -> String {
    let mut text = format!("\u{feff}{HEADER}\r\n");
    for row in rows {
        text.push_str(&row.join(","));
        text.push_str("\r\n");
    }
    text
}

async fn upload(
    app: &TestApp,
    token: &str,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> anyhow::Result<(u16, Value)> {
    let response = app
        .http
        .post(app.api(path))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Imports an exported ledger into a fresh system, which adds `cases` and exports the same rows.
async fn imports_elsewhere_unchanged(exported: &str, cases: u64) -> anyhow::Result<()> {
    let other = spawn_app(DbKind::Sqlite).await?;
    let city = other.login("xietiao").await?;
    let (status, report) = upload(&other, &city, "/ledger/import.csv", exported.to_owned()).await?;
    assert_eq!(
        (status, report["added"].clone()),
        (200, json!(cases)),
        "{report}"
    );
    let again = String::from_utf8(other.download(&city, "/ledger/export.csv").await?)?;
    let lines = |text: &str| text.lines().map(str::to_owned).collect::<BTreeSet<_>>();
    assert_eq!(
        lines(&again),
        lines(exported),
        "export → import → export reproduces the cases"
    );
    other.stop().await
}

#[tokio::test]
async fn a_ledger_with_planted_errors_reports_exactly_them() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    // An existing case whose petitioner a ledger row repeats.
    let mut existing = registration_json(90_000);
    existing["petitioners"][0]["id_number"] = json!(synthetic_id_number(9_999));
    app.expect(&city, "/cases", existing, 201).await?;

    let template = String::from_utf8(app.download(&city, "/ledger/template.csv").await?)?;
    assert_eq!(template, format!("\u{feff}{HEADER}\r\n"));

    let mut rows: Vec<Vec<String>> = (1..=5_000).map(row).collect();
    let mut planted: BTreeSet<(usize, String)> = BTreeSet::new();
    let mut plant = |index: usize, column: usize, value: String, rows: &mut Vec<Vec<String>>| {
        rows[index][column] = value;
        // Spreadsheet rows: the header is row 1.
        planted.insert((
            index + 2,
            HEADER.split(',').nth(column).unwrap_or("").to_owned(),
        ));
    };
    for k in 0..10 {
        let i = 17 + k * 97;
        let mut id = synthetic_id_number(u32::try_from(i).unwrap_or(0) + 1);
        let last = id.pop().unwrap_or('0');
        id.push(if last == '1' { '2' } else { '1' });
        plant(i, 2, id, &mut rows);
        plant(i + 1_000, 7, "火星区".into(), &mut rows);
        plant(i + 2_000, 5, String::new(), &mut rows);
        plant(i + 3_000, 13, "张无忌".into(), &mut rows);
    }
    for k in 0..5 {
        let i = 4_100 + k * 131;
        plant(i, 2, synthetic_id_number(9_999), &mut rows);
        plant(i + 30, 8, "不存在街道".into(), &mut rows);
    }
    assert_eq!(planted.len(), 50);

    let before = app.log_position().await?;
    let (status, answer) = upload(&app, &city, "/ledger/import.csv", csv(&rows)).await?;
    assert_eq!(status, 422, "{answer}");
    let reported: BTreeSet<(usize, String)> = answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        usize::try_from(e["row"].as_u64().unwrap_or(0)).unwrap_or(0),
                        e["column"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(reported, planted);
    assert_eq!(answer["errors"].as_array().map(Vec::len), Some(50));
    assert_eq!(app.log_position().await?, before, "nothing written");
    assert_eq!(app.get(&city, "/checklist").await?.json["total"], 1);

    // Not a coordinator, not CSV, a missing column: refused before anything else.
    let viewer = app.login("chakan").await?;
    assert_eq!(
        upload(&app, &viewer, "/ledger/import.csv", csv(&rows[..1]))
            .await?
            .0,
        403
    );
    let (status, answer) = upload(
        &app,
        &city,
        "/ledger/import.csv",
        "案件编号,诉求\r\nX,Y\r\n",
    )
    .await?;
    assert_eq!(status, 422);
    assert!(
        answer["errors"]
            .as_array()
            .is_some_and(|e| e.iter().all(|e| e["row"] == 1)),
        "{answer}"
    );
    app.stop().await
}

#[tokio::test]
async fn a_ledger_imports_once_and_round_trips() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    let rows: Vec<Vec<String>> = (1..=300).map(row).collect();
    let (status, report) = upload(&app, &city, "/ledger/import.csv", csv(&rows)).await?;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["added"].clone(), report["visible"].clone()),
        (json!(300), json!(true))
    );
    let checklist = app.get(&city, "/checklist?q=TZ-00012").await?.json;
    let imported = &checklist["rows"][0];
    assert_eq!(imported["matter"], "要求解决安置补偿问题（第12件）");
    assert_eq!(imported["leader"]["name"], "李明");
    assert_eq!(imported["lead_unit"]["name"], "市住房局");
    assert_eq!(app.get(&city, "/checklist").await?.json["total"], 300);

    // The same ledger again: every case is there already; nothing is written.
    let before = app.log_position().await?;
    let (status, report) = upload(&app, &city, "/ledger/import.csv", csv(&rows)).await?;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["added"].clone(), report["already_imported"].clone()),
        (json!(0), json!(300))
    );
    assert_eq!(app.log_position().await?, before);

    // Export (a department may not: it would learn who petitions), then import elsewhere.
    let department = app.login("zhufang").await?;
    let refused = app
        .http
        .get(app.api("/ledger/export.csv"))
        .bearer_auth(&department)
        .send()
        .await?;
    assert_eq!(refused.status().as_u16(), 403);
    let exported = String::from_utf8(app.download(&city, "/ledger/export.csv").await?)?;
    let reads: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM personal_data_reads")
        .fetch_one(app.projecting.store.pool())
        .await?;
    assert_eq!(reads, 300, "every exported case is a logged read");
    imports_elsewhere_unchanged(&exported, 300).await?;
    assert!(exported.contains("TZ-00012,信访人12,"), "{exported}");
    app.stop().await
}

/// What a clerk's Excel or WPS saves: the title row (often merged across the columns) and a
/// blank row above the header, and the CSV in GBK.
fn clerks_file(rows: &[Vec<String>]) -> Vec<u8> {
    let mut text = String::from("思明区信访积案台账,,,,,,,,,,,,,,\r\n,,,,,,,,,,,,,,\r\n");
    text.push_str(&csv(rows).replace('\u{feff}', ""));
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable, "the test ledger is GBK-encodable");
    bytes.into_owned()
}

/// `(row, column)` of every problem a refused import reports.
fn problems(report: &Value) -> Vec<(u64, String)> {
    report["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["row"].as_u64().unwrap_or(0),
                        e["column"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn what_clerks_really_upload_is_read_and_every_petitioner_kept() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    // Case 1 has two petitioners (two rows, the second leaving the case columns blank), and a
    // name typed with a full-width space.
    let mut second = vec![String::new(); 15];
    second[0] = "TZ-00001".into();
    second[1] = "庄　辉珠".into();
    second[2] = synthetic_id_number(901);
    let rows = vec![row(1), second, row(2)];

    // With real errors in it, they are reported at their real rows (the title rows count).
    let mut wrong = row(3);
    wrong[9] = "飞鸽".into();
    let mut bad_rows = rows.clone();
    bad_rows.push(wrong);
    let (status, report) =
        upload(&app, &city, "/ledger/import.csv", clerks_file(&bad_rows)).await?;
    assert_eq!(status, 422, "{report}");
    assert_eq!(problems(&report), [(7, "信访渠道".to_owned())], "{report}");

    let (status, report) = upload(&app, &city, "/ledger/import.csv", clerks_file(&rows)).await?;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["added"], 2, "two cases, not three rows: {report}");
    let case_id = zhzj_ledger_case_id(&app, &city, "TZ-00001").await?;
    let case = app
        .get(&city, &format!("/cases/{case_id}?reveal=personal"))
        .await?;
    let names: Vec<&str> = case.json["petitioners"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["信访人1", "庄辉珠"], "{}", case.json);
    let found = app
        .get(
            &city,
            "/cases/duplicates?name=庄辉珠&town=xm-siming-zhonghua&category=征地拆迁",
        )
        .await?;
    assert_eq!(
        found.json["cases"][0]["case_id"],
        case_id.as_str(),
        "{found:?}"
    );

    // The export writes one row per petitioner; another instance imports both.
    let exported = String::from_utf8(app.download(&city, "/ledger/export.csv").await?)?;
    assert_eq!(exported.matches("TZ-00001,").count(), 2, "{exported}");
    imports_elsewhere_unchanged(&exported, 2).await?;

    // A later ledger re-using a case number with other contents is refused, cell by cell, and
    // the case keeps its data.
    let mut reused = row(2);
    reused[1] = "另一个人".into();
    reused[2] = "110105194912310021".into(); // a wrong check digit
    reused[5] = "另一件事".into();
    reused[8] = "不存在街道".into();
    reused[10] = "2099-01-01".into();
    reused[13] = "无此人".into();
    let before = app.log_position().await?;
    let (status, report) = upload(&app, &city, "/ledger/import.csv", csv(&[reused])).await?;
    assert_eq!(status, 422, "{report}");
    let columns: BTreeSet<String> = problems(&report).into_iter().map(|(_, c)| c).collect();
    for column in ["身份证号", "诉求", "镇街", "首次信访日期", "包案领导"] {
        assert!(columns.contains(column), "{column}: {report}");
    }
    // Another person under the number: named by row and column, the stored name not shown.
    let mut renamed = row(2);
    renamed[1] = "另一个人".into();
    renamed[2] = synthetic_id_number(777);
    let (status, report) = upload(&app, &city, "/ledger/import.csv", csv(&[renamed])).await?;
    assert_eq!(status, 422, "{report}");
    assert!(
        problems(&report).contains(&(2, "信访人姓名".to_owned())),
        "{report}"
    );
    assert!(!report.to_string().contains("信访人2"), "{report}");
    assert_eq!(app.log_position().await?, before, "nothing written");
    let kept = app.get(&city, "/checklist?q=TZ-00002").await?.json;
    assert_eq!(kept["rows"][0]["matter"], "要求解决安置补偿问题（第2件）");

    // A file no encoding reads is refused in Chinese only.
    let (status, report) = upload(
        &app,
        &city,
        "/ledger/import.csv",
        vec![0xff, 0xfe, 0x00, 0x81, 0x30],
    )
    .await?;
    assert_eq!(status, 422, "{report}");
    let message = report["errors"][0]["message"].as_str().unwrap_or_default();
    // Format names (CSV, GBK, XLSX) are fine; English parser text is not.
    let english = message
        .split(|c: char| !c.is_ascii_alphabetic())
        .any(|word| word.len() > 4);
    assert!(message.contains("无法读取") && !english, "{report}");
    app.stop().await
}

/// The id of the case with `number`, from the checklist.
async fn zhzj_ledger_case_id(app: &TestApp, token: &str, number: &str) -> anyhow::Result<String> {
    let listing = app
        .get(token, &format!("/checklist?q={number}"))
        .await?
        .json;
    listing["rows"][0]["case_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no case {number}: {listing}"))
}
