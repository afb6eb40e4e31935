//! The checklist exported through HTTP as a real XLSX workbook (read back with calamine) and as
//! CSV with a byte-order mark — with the checklist's filters, and only within the user's scope.

use calamine::{Data, Reader, Xlsx};
use serde_json::json;
use zhzj_tests::{DbKind, TestApp, registration_json, spawn_app};

/// The raw body of a `GET`, with its status and content type.
async fn download(
    app: &TestApp,
    token: &str,
    path: &str,
) -> anyhow::Result<(u16, String, Vec<u8>)> {
    let response = app
        .http
        .get(app.api(path))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((status, content_type, response.bytes().await?.to_vec()))
}

#[tokio::test]
async fn the_checklist_exports_as_xlsx_and_csv_within_scope() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    let town = app.login("zhonghua").await?;
    let in_town = app.post(&city, "/cases", &registration_json(1)).await?;
    let mut district_only = registration_json(2);
    district_only.as_object_mut().map(|o| o.remove("town_id"));
    app.post(&city, "/cases", &district_only).await?;
    let case = format!(
        "/cases/{}",
        in_town.json["aggregate_id"].as_str().unwrap_or("")
    );
    app.post(
        &city,
        &format!("{case}/leader"),
        &json!({"leader_id": "ldr-siming-1"}),
    )
    .await?;
    app.post(
        &city,
        &format!("{case}/measures"),
        &json!({"description": "核查"}),
    )
    .await?;
    let number = app.get(&city, &case).await?.json["case_number"]
        .as_str()
        .unwrap_or("")
        .to_owned();

    // The city coordinator's workbook: both cases, typed cells, Chinese headers.
    let (status, content_type, bytes) = download(&app, &city, "/checklist/export.xlsx").await?;
    assert_eq!(status, 200);
    assert!(content_type.contains("spreadsheetml"), "{content_type}");
    let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes))?;
    let sheet = workbook.worksheet_range("清单")?;
    assert_eq!(sheet.height(), 3, "a header and two cases");
    let headers: Vec<String> = (0..sheet.width())
        .map(|c| {
            sheet
                .get_value((0, c as u32))
                .map(ToString::to_string)
                .unwrap_or_default()
        })
        .collect();
    let column = |name: &str| headers.iter().position(|h| h == name).map(|c| c as u32);
    let row = (1..3)
        .find(|r| sheet.get_value((*r, 0)) == Some(&Data::String(number.clone())))
        .ok_or_else(|| anyhow::anyhow!("case {number} not exported"))?;
    let cell = |name: &str| column(name).and_then(|c| sheet.get_value((row, c)).cloned());
    assert_eq!(cell("包案领导"), Some(Data::String("李明".into())));
    assert_eq!(cell("措施总数"), Some(Data::Float(1.0)));
    assert_eq!(cell("已落实措施"), Some(Data::Float(0.0)));
    assert_eq!(cell("状态"), Some(Data::String("化解中".into())));
    assert_eq!(cell("期限类型"), Some(Data::String("办理期限".into())));
    assert_eq!(cell("剩余天数"), Some(Data::Float(65.0)));
    let Some(Data::DateTime(due)) = cell("下一期限") else {
        panic!("the deadline is a date: {:?}", cell("下一期限"));
    };
    assert_eq!(
        due.as_datetime().map(|d| d.date().to_string()),
        Some("2026-05-06".to_owned())
    );

    // The town coordinator's CSV: the BOM, the header, and only the case in the town.
    let (status, content_type, bytes) = download(&app, &town, "/checklist/export.csv").await?;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let text = String::from_utf8(bytes)?;
    assert!(text.starts_with("\u{feff}案件编号,诉求,"), "{text}");
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[1].starts_with(&format!("{number},")), "{text}");

    // The filters apply; a bad filter is refused as on the checklist; no session, no export.
    let (_, _, bytes) = download(&app, &city, "/checklist/export.csv?overdue=true").await?;
    assert_eq!(
        String::from_utf8(bytes)?.trim_end().split("\r\n").count(),
        1
    );
    let (status, _, _) = download(&app, &city, "/checklist/export.csv?status=lost").await?;
    assert_eq!(status, 400);
    let (status, _, _) = download(&app, "no-such-token", "/checklist/export.xlsx").await?;
    assert_eq!(status, 401);
    app.stop().await
}
