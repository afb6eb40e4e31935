//! A scripted year of the campaign rhythm on real parts, with answers computed by hand.
//!
//! Every month of 2026, 思明区's 中华街道 gets two cases on the 5th (the month's "first" and
//! "second"), and on the 20th the first case of the previous month is crossed off. So in month
//! m ≥ 2 the list holds 2m cases registered so far, less the m − 2 crossed off before the month
//! began: 化解率 = 1 ÷ (m + 2); in January 0 ÷ 2. The Monday after each 20th, 思明区 holds its
//! weekly meeting: one case crossed off this week, none the week before, no new cases. Each
//! month's bulletin is published on the 2nd of the next, and at the end of the year every one of
//! them still reads as it did when published. The second quarter's push names January's second
//! case and all of March's, and resolves only March's first (crossed off on 20 April).

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use chrono::{Datelike, NaiveDate, TimeZone, Utc, Weekday};
use serde_json::{Value, json};
use zhzj_tests::figures_check::{
    assert_projection_matches_archive, assert_push_matches_archive,
    assert_siming_agenda_matches_archive,
};
use zhzj_tests::{DbKind, TestApp, register_case, spawn_app, wait_caught_up};

/// Sets the clock to 10:00 China time on `day`.
fn set(app: &TestApp, day: NaiveDate, hour: u32) {
    if let Some(time) = day
        .and_hms_opt(hour - 8, 0, 0)
        .map(|t| Utc.from_utc_datetime(&t))
    {
        app.services.clock.set(time);
    }
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default()
}

/// 思明区's 化解率 `(numerator, denominator)` in a bulletin.
fn siming_resolution(bulletin: &Value) -> (i64, i64) {
    let siming = bulletin["districts"]
        .as_array()
        .and_then(|d| d.iter().find(|a| a["name"] == "思明区"))
        .cloned()
        .unwrap_or_default();
    (
        siming["resolution"]["numerator"].as_i64().unwrap_or(-1),
        siming["resolution"]["denominator"].as_i64().unwrap_or(-1),
    )
}

#[tokio::test]
async fn a_scripted_year_of_meetings_bulletins_and_pushes() -> anyhow::Result<()> {
    scripted_year(DbKind::Sqlite).await
}

#[tokio::test]
async fn a_scripted_year_on_postgres() -> anyhow::Result<()> {
    scripted_year(DbKind::Postgres).await
}

/// The periods the figures are checked over: every month of 2026, every quarter, the year.
fn periods_of_2026() -> Vec<(NaiveDate, NaiveDate)> {
    let mut periods: Vec<(NaiveDate, NaiveDate)> = (1..=12)
        .map(|m| {
            (
                date(2026, m, 1),
                date(2026 + i32::from(m == 12), m % 12 + 1, 1),
            )
        })
        .collect();
    periods.extend([1, 4, 7, 10].map(|m| {
        (
            date(2026, m, 1),
            date(2026 + i32::from(m == 10), (m + 2) % 12 + 1, 1),
        )
    }));
    periods.push((date(2026, 1, 1), date(2027, 1, 1)));
    periods
}

async fn scripted_year(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    // cases[m - 1] = (first, second) registered in month m.
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut published: Vec<(String, Value)> = Vec::new();
    let mut push_launched = false;
    for month in 1..=12_u32 {
        set(&app, date(2026, month, 5), 10);
        let n = month * 10;
        let first = app.command(serde_json::to_value(register_case(n))?).await?;
        let second = app
            .command(serde_json::to_value(register_case(n + 1))?)
            .await?;
        cases.push((first, second));
        if month >= 2 {
            set(&app, date(2026, month, 20), 11);
            let previous = cases[month as usize - 2].0.clone();
            app.cross_off(&previous).await?;
        }
        // The weekly meeting on the first Monday after the 20th.
        let mut monday = date(2026, month, 21);
        while monday.weekday() != Weekday::Mon {
            monday = monday.succ_opt().unwrap_or(monday);
        }
        set(&app, monday, 10);
        wait_caught_up(&app.services.log, &app.projecting.store).await?;
        let city = app.login("xietiao").await?;
        let meeting = app
            .expect(&city, "/meetings", json!({"unit_id": "xm-siming"}), 201)
            .await?;
        let agenda = app
            .get(
                &city,
                &format!(
                    "/meetings/{}",
                    meeting["aggregate_id"].as_str().unwrap_or("")
                ),
            )
            .await?
            .json;
        let counts = |key: &str| {
            agenda["sections"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["key"] == key))
                .map(|s| (s["this_week"].clone(), s["last_week"].clone()))
        };
        let crossed = if month >= 2 { 1 } else { 0 };
        assert_eq!(
            counts("crossed_off"),
            Some((json!(crossed), json!(0))),
            "month {month}"
        );
        assert_eq!(
            counts("new_cases"),
            Some((json!(0), json!(0))),
            "month {month}"
        );

        // The second quarter's push, launched on 1 April.
        if month == 3 && !push_launched {
            set(&app, date(2026, 4, 1), 10);
            let city = app.login("xietiao").await?;
            let hard = json!([cases[0].1, cases[2].0, cases[2].1]);
            app.expect(
                &city,
                "/pushes",
                json!({"quarter": "2026-Q2", "case_ids": hard, "targets": [{"unit_id": "xm-siming", "cases": 2}]}),
                201,
            )
            .await?;
            push_launched = true;
        }

        // The month's bulletin, published on the 2nd of the next month.
        let label = format!("2026-{month:02}");
        let next = date(2026, month, 1)
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or_default();
        set(&app, next.succ_opt().unwrap_or(next), 9);
        let city = app.login("xietiao").await?;
        app.expect(&city, "/bulletins", json!({"month": label}), 201)
            .await?;
        let bulletin = app.get(&city, &format!("/bulletins/{label}")).await?.json;
        let expected = if month == 1 {
            (0, 2)
        } else {
            (1, i64::from(month) + 2)
        };
        assert_eq!(siming_resolution(&bulletin), expected, "{label}");
        published.push((label, bulletin));
    }

    // The push's final result: of January's second case and March's two, only March's first was
    // crossed off in the quarter (20 April); the target was two.
    let city = app.login("xietiao").await?;
    let push = app.get(&city, "/pushes/2026-Q2").await?.json;
    assert_eq!(push["final_result"], true);
    let statuses: Vec<&str> = push["cases"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(statuses, ["in_progress", "resolved", "in_progress"]);
    assert_eq!(
        push["areas"][0]["resolved"],
        json!({"numerator": 1, "denominator": 3})
    );
    assert_eq!(push["areas"][0]["met"], false);

    // A year on, every published bulletin reads as it did when it was published.
    for (label, bulletin) in &published {
        assert_eq!(
            &app.get(&city, &format!("/bulletins/{label}")).await?.json,
            bulletin,
            "{label}"
        );
    }
    assert_eq!(
        app.get(&city, "/bulletins")
            .await?
            .json
            .as_array()
            .map(Vec::len),
        Some(12)
    );
    assert_eq!(
        app.get(&city, "/meetings")
            .await?
            .json
            .as_array()
            .map(Vec::len),
        Some(12)
    );

    // The figures projection gives every figure the archive computation gives, for every month,
    // quarter and the year, at positions throughout the year.
    let counted =
        assert_projection_matches_archive(&app.projecting.store, &periods_of_2026()).await?;
    assert!(counted > 100, "only {counted} comparisons counted a case");
    // The second quarter's push, read from its hard cases alone, during and after the quarter.
    let nows: Vec<_> = [(5, 15), (12, 31)]
        .into_iter()
        .filter_map(|(month, day)| Utc.with_ymd_and_hms(2026, month, day, 2, 0, 0).single())
        .collect();
    let launched = assert_push_matches_archive(&app.projecting.store, "2026-Q2", &nows).await?;
    assert!(
        launched > 10,
        "the push was launched in only {launched} comparisons"
    );
    // The district's agenda read from the cases the figures projection names, on a day of
    // every other month, at positions throughout the year.
    let held_ats: Vec<_> = (1..=12)
        .step_by(2)
        .filter_map(|month| Utc.with_ymd_and_hms(2026, month, 25, 2, 0, 0).single())
        .collect();
    assert_siming_agenda_matches_archive(&app.projecting.store, &held_ats, 50).await?;
    app.stop().await
}
