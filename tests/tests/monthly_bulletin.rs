//! The monthly bulletin (月通报) on real parts: a scripted February and March with hand-computed
//! figures per district, town and department (numerators and denominators), the ranking, the
//! rules on publishing, and a published bulletin that exports the same bytes after later events.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use calamine::{Data, Reader, Xlsx};
use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use zhzj_tests::figures_check::assert_projection_matches_archive;
use zhzj_tests::{DbKind, TestApp, register_case, spawn_app, wait_caught_up};

/// Sets the clock to a China time in 2026.
fn set(app: &TestApp, month: u32, day: u32, hour: u32) {
    if let Some(time) = Utc
        .with_ymd_and_hms(2026, month, day, hour - 8, 0, 0)
        .single()
    {
        app.services.clock.set(time);
    }
}

/// Registers test case `n`, in 中华街道 unless another district is given; as a new petition
/// (a notice of acceptance is owed) when asked.
async fn register(
    app: &TestApp,
    n: u32,
    district: Option<&str>,
    new: bool,
) -> anyhow::Result<String> {
    let mut command = serde_json::to_value(register_case(n))?;
    if let Some(district) = district {
        command["district_id"] = json!(district);
        command["town_id"] = Value::Null;
    }
    if new {
        command["list_source"] = json!("new_petition");
    }
    app.command(command).await
}

fn ratio(area: &Value, figure: &str) -> (i64, i64) {
    (
        area[figure]["numerator"].as_i64().unwrap_or(-1),
        area[figure]["denominator"].as_i64().unwrap_or(-1),
    )
}

fn area<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|areas| areas.iter().find(|a| a["name"] == name))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn a_month_of_figures_published_and_frozen() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    app.command(json!({"type": "add_unit", "unit_id": "xm-huli", "parent_id": "xm", "name": "湖里区", "kind": "district"})).await?;

    // February: S0 put on the list and crossed off — not on March's list.
    set(&app, 2, 20, 10);
    let s0 = register(&app, 10, None, false).await?;
    set(&app, 2, 25, 10);
    app.cross_off(&s0).await?;

    // 2 March: S1 and S2 come as new petitions (notice due 17 March), S3 from screening; 湖里
    // gets H1 and H2.
    set(&app, 3, 2, 11);
    let s1 = register(&app, 1, None, true).await?;
    let s2 = register(&app, 2, None, true).await?;
    let s3 = register(&app, 3, None, false).await?;
    let h1 = register(&app, 4, Some("xm-huli"), false).await?;
    register(&app, 5, Some("xm-huli"), false).await?;
    // S3 is led by 市住房局.
    app.command(json!({"type": "set_responsible_units", "case_id": s3, "lead_unit_id": "xm-dept-zjj", "assisting_unit_ids": []})).await?;
    // 3–4 March: three activities on S2, two of them receptions on the same day.
    set(&app, 3, 4, 10);
    for (kind, day) in [
        ("reception", "2026-03-03"),
        ("reception", "2026-03-03"),
        ("home_visit", "2026-03-04"),
    ] {
        app.command(json!({"type": "record_activity", "case_id": s2, "leader_id": "ldr-siming-2", "kind": kind, "held_on": day, "summary": "工作记录"})).await?;
    }
    // 5 March: S1 notified in time; 6 March: S3 replied, well before its deadline.
    set(&app, 3, 6, 10);
    app.command(json!({"type": "record_procedure_step", "case_id": s1, "step": "acceptance_notified", "on": "2026-03-05", "summary": "告知"})).await?;
    app.command(json!({"type": "record_procedure_step", "case_id": s3, "step": "replied", "on": "2026-03-06", "summary": "答复"})).await?;
    // 10 March: S1 crossed off; 12 March: S1 rated 满意, S3 未评价; 15 March: H1 crossed off.
    set(&app, 3, 10, 10);
    app.cross_off(&s1).await?;
    set(&app, 3, 12, 10);
    for (case, rating) in [(&s1, "satisfied"), (&s3, "not_rated")] {
        app.command(json!({"type": "rate_satisfaction", "case_id": case, "rating": rating, "rated_on": "2026-03-12", "rated_by": "电话回访"})).await?;
    }
    set(&app, 3, 15, 10);
    app.cross_off(&h1).await?;
    // 20 March: S1's petitioner comes back (重复信访, 回潮).
    set(&app, 3, 20, 10);
    app.command(json!({"type": "record_petition", "case_id": s1, "received_on": "2026-03-20", "channel": "visit", "summary": "再次来访"})).await?;

    // Not before the month is over, not by a town, once.
    set(&app, 3, 31, 10);
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let city = app.login("xietiao").await?;
    let publish = json!({"month": "2026-03"});
    assert_eq!(app.post(&city, "/bulletins", &publish).await?.status, 422);
    set(&app, 4, 1, 10);
    let city = app.login("xietiao").await?;
    let town = app.login("zhonghua").await?;
    assert_eq!(app.post(&town, "/bulletins", &publish).await?.status, 403);
    assert_eq!(
        app.post(&city, "/bulletins", &json!({"month": "2026-13"}))
            .await?
            .status,
        422
    );
    assert_eq!(app.post(&city, "/bulletins", &publish).await?.status, 201);
    assert_eq!(app.post(&city, "/bulletins", &publish).await?.status, 409);

    let bulletin = app.get(&city, "/bulletins/2026-03").await?.json;
    assert!(bulletin["published_at"].is_string(), "{bulletin}");
    let siming = area(&bulletin["districts"], "思明区");
    let huli = area(&bulletin["districts"], "湖里区");
    // 思明: S1, S2, S3 on the list (S0 was crossed off in February); S1 crossed off.
    assert_eq!(ratio(siming, "resolution"), (1, 3));
    // S1 notified in time; S2's notice, due 17 March, never given.
    assert_eq!(ratio(siming, "timely_acceptance"), (1, 2));
    // S3 replied by its deadline; no other handling period ended in March.
    assert_eq!(ratio(siming, "on_time_completion"), (1, 1));
    assert_eq!(
        (
            siming["repeat_petitions"].clone(),
            siming["relapses"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(ratio(siming, "satisfaction"), (1, 1));
    assert_eq!(ratio(siming, "participation"), (1, 2));
    assert_eq!(
        (
            siming["leader_activities"].clone(),
            siming["reception_days"].clone()
        ),
        (json!(3), json!(1))
    );
    // 湖里 resolved 1 of 2 (50%) and ranks above 思明 (33.3%).
    assert_eq!(ratio(huli, "resolution"), (1, 2));
    assert_eq!(
        (huli["rank"].clone(), siming["rank"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(bulletin["districts"][0]["name"], "湖里区");
    // 中华街道 holds all of 思明's cases; 市住房局 leads S3.
    let zhonghua = area(&bulletin["towns"], "中华街道");
    assert_eq!(
        (ratio(zhonghua, "resolution"), zhonghua["district"].clone()),
        ((1, 3), json!("思明区"))
    );
    let department = area(&bulletin["departments"], "市住房局");
    assert_eq!(ratio(department, "resolution"), (0, 1));
    assert_eq!(ratio(department, "on_time_completion"), (1, 1));
    assert_eq!(ratio(department, "participation"), (0, 1));

    // March assessed with the 达川区 scheme at the bulletin's log position, by hand:
    // 思明区 5×1/2 + 10×1/1 + (10 − max(0, 1 repeat − 1 month)) + 10×1/1 + 5×1/2 + 4 (its one
    // owned case, S1, resolved: 100% ≥ 85%) = 39; 湖里区 counted nothing against it (rates of
    // 0/0 count as 1) and its owned case H1 was resolved: 44.
    let position = bulletin["as_of_position"].as_i64().unwrap_or(0);
    let assess =
        format!("scheme=dachuan&level=district&from=2026-03-01&to=2026-03-31&position={position}");
    let assessment = app
        .get(&city, &format!("/assessments?{assess}"))
        .await?
        .json;
    assert_eq!(assessment["scheme_version"], "2024-1");
    let total = |name: &str| {
        assessment["units"]
            .as_array()
            .and_then(|u| u.iter().find(|u| u["name"] == name))
            .map(|u| (u["total"].clone(), u["rank"].clone()))
    };
    assert_eq!(total("湖里区"), Some((json!(44.0), json!(1))));
    assert_eq!(total("思明区"), Some((json!(39.0), json!(2))));
    let siming_scores: Vec<f64> = assessment["units"][1]["scores"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["score"].as_f64()).collect())
        .unwrap_or_default();
    assert_eq!(siming_scores, [2.5, 10.0, 10.0, 10.0, 2.5, 4.0]);
    // Each figure drills down to its cases, paged (the assessment itself carries only how many
    // were counted: the cases made the city's answer megabytes long): S2's notice was never given.
    let siming = &assessment["units"][1];
    assert!(siming.get("counted").is_none(), "{siming}");
    let counted_cases = siming["counted_cases"].as_u64().unwrap_or(0);
    assert!(counted_cases > 2, "{siming}");
    let unit = siming["unit_id"].as_str().unwrap_or("").to_owned();
    let drill = format!("/assessments/counted?{assess}&unit_id={unit}");
    let all = app.get(&city, &drill).await?;
    assert_eq!(all.status, 200, "{all:?}");
    assert_eq!(all.json["total"].as_u64(), Some(counted_cases), "{all:?}");
    let mut paged = Vec::new();
    for page in 1.. {
        let answer = app
            .get(&city, &format!("{drill}&per_page=2&page={page}"))
            .await?;
        let rows = answer.json["rows"].as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= 2, "{answer:?}");
        paged.extend(rows);
    }
    assert_eq!(
        Some(&paged),
        all.json["rows"].as_array(),
        "pages add up to the whole"
    );
    let counted = app
        .get(&city, &format!("{drill}&figure=timely_acceptance"))
        .await?
        .json;
    let missed: Vec<&Value> = counted["rows"]
        .as_array()
        .map(|c| c.iter().filter(|c| c["numerator"] == false).collect())
        .unwrap_or_default();
    assert_eq!(missed.len(), 1, "{counted}");
    assert_eq!(missed[0]["case_id"], json!(s2));
    assert_eq!(missed[0]["reason"], "告知期限 2026-03-17 已过，未告知");
    let town = app.login("zhonghua").await?;
    let refused = app.get(&town, &format!("/assessments?{assess}")).await?;
    assert_eq!(refused.status, 403);
    let assessed = app
        .download(&city, &format!("/assessments/export.xlsx?{assess}"))
        .await?;

    // Published means frozen: April's events change nothing in March's bulletin or its file.
    let workbook = app
        .download(&city, "/bulletins/2026-03/export.xlsx")
        .await?;
    set(&app, 4, 2, 10);
    app.cross_off(&s2).await?;
    app.command(json!({"type": "record_petition", "case_id": h1, "received_on": "2026-03-30", "channel": "letter", "summary": "补登三月来信"})).await?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let city = app.login("xietiao").await?;
    assert_eq!(app.get(&city, "/bulletins/2026-03").await?.json, bulletin);
    // The assessment at the same position: the same figures, the same bytes.
    assert_eq!(
        app.get(&city, &format!("/assessments?{assess}"))
            .await?
            .json,
        assessment
    );
    assert_eq!(
        app.download(&city, &format!("/assessments/export.xlsx?{assess}"))
            .await?,
        assessed
    );
    assert_eq!(
        app.get(&city, &drill).await?.json,
        all.json,
        "the drill-down too"
    );
    let unknown = app
        .get(
            &city,
            &format!("/assessments/counted?{assess}&unit_id=no-such-unit"),
        )
        .await?;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(assessed))?;
    let ranking = book.worksheet_range("排名")?;
    assert_eq!(
        ranking.get_value((1, 1)),
        Some(&Data::String("湖里区".into()))
    );
    assert_eq!(ranking.get_value((2, 2)), Some(&Data::Float(39.0)));
    let detail = book.worksheet_range("明细")?;
    assert!(detail.height() > 10, "every counted case is listed");
    // The counted cases of the ranked districts and of no other unit: a case counts in its
    // town too, and the towns' lists are not in a district assessment's workbook.
    let ranked = assessment["units"].as_array().cloned().unwrap_or_default();
    let counted: u64 = ranked
        .iter()
        .filter_map(|u| u["counted_cases"].as_u64())
        .sum();
    assert_eq!(detail.height() as u64 - 1, counted, "{ranked:?}");
    let names: Vec<&str> = ranked.iter().filter_map(|u| u["name"].as_str()).collect();
    for row in detail.rows().skip(1) {
        let unit = match row.first() {
            Some(Data::String(unit)) => unit.clone(),
            other => format!("{other:?}"),
        };
        assert!(
            names.contains(&unit.as_str()),
            "{unit} is not ranked: {names:?}"
        );
    }
    assert_eq!(
        app.download(&city, "/bulletins/2026-03/export.xlsx")
            .await?,
        workbook
    );
    // April's draft sees them: S1 (reopened), S2 and S3 on the list, S2 crossed off.
    let april = app.get(&city, "/bulletins/2026-04").await?.json;
    assert_eq!(april["published_at"], Value::Null);
    assert_eq!(
        ratio(area(&april["districts"], "思明区"), "resolution"),
        (1, 3)
    );

    // The workbook reads back: a sheet per level, numbers as numbers.
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(workbook))?;
    let districts = book.worksheet_range("区")?;
    assert_eq!(
        districts.get_value((0, 4)),
        Some(&Data::String("化解率(%)".into()))
    );
    assert_eq!(
        districts.get_value((1, 0)),
        Some(&Data::String("湖里区".into()))
    );
    assert_eq!(districts.get_value((1, 4)), Some(&Data::Float(50.0)));
    assert_eq!(districts.get_value((2, 4)), Some(&Data::Float(33.3)));
    assert_eq!(districts.get_value((2, 2)), Some(&Data::Float(1.0)));
    assert_eq!(districts.get_value((2, 3)), Some(&Data::Float(3.0)));
    let csv = String::from_utf8(
        app.download(&city, "/bulletins/2026-03/export.csv?part=towns")
            .await?,
    )?;
    assert!(
        csv.starts_with("\u{feff}区,镇街,排名,化解数,清单案件数,化解率(%)"),
        "{csv}"
    );
    assert!(
        csv.contains("\r\n思明区,中华街道,1,1,3,33.3,1,2,50,1,1,100,"),
        "{csv}"
    );
    let list = app.get(&city, "/bulletins").await?.json;
    assert_eq!(list[0]["month"], "2026-03");

    // What the running sums must follow: S1 (reopened in March) crossed off again in April,
    // so twice in March–April but one case; S2, with March's activities, handed to 市住房局;
    // and a note on S3 recorded with the clock set back a month (the sums cannot order it).
    set(&app, 4, 3, 10);
    app.command(
        json!({"type": "claim_resolution", "case_id": s1, "ground": "solved",
        "summary": "再次化解", "evidence": ["回访记录"]}),
    )
    .await?;
    for level in ["district", "city"] {
        app.command(json!({"type": "review_claim", "case_id": s1, "level": level, "accept": true}))
            .await?;
    }
    app.command(json!({"type": "set_responsible_units", "case_id": s2, "lead_unit_id": "xm-dept-zjj", "assisting_unit_ids": []})).await?;
    set(&app, 3, 3, 10);
    app.command(json!({"type": "record_activity", "case_id": s3, "leader_id": "ldr-siming-2", "kind": "reception", "held_on": "2026-03-03", "summary": "补记接访"})).await?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;

    // The figures projection gives every figure the archive computation gives, over February,
    // March, April, March–April and the quarter, at every position.
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2026, m, d).unwrap_or_default();
    let periods = [
        (day(2, 1), day(3, 1)),
        (day(3, 1), day(4, 1)),
        (day(4, 1), day(5, 1)),
        (day(3, 1), day(5, 1)),
        (day(1, 1), day(4, 1)),
    ];
    let counted = assert_projection_matches_archive(&app.projecting.store, &periods).await?;
    assert!(counted > 10, "only {counted} comparisons counted a case");
    app.stop().await
}
