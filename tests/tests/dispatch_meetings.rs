//! Weekly dispatch meetings (周调度) on real parts, over three scripted weeks with hand-computed
//! agendas: new cases, crossing off, relapse, claims waiting, deadlines, idle owned cases,
//! instructions with feedback and their deadlines; every refusal appends nothing; an agenda
//! regenerated after later events is the one produced at the meeting, and so is its workbook,
//! byte for byte.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use calamine::{Data, Reader, Xlsx};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use zhzj_proto::events::UnitRef;
use zhzj_tests::figures_check::{
    assert_agenda_matches_archive, assert_siming_agenda_matches_archive,
};
use zhzj_tests::{DbKind, TestApp, registration_json, row_column, spawn_app, wait_caught_up};

/// Sets the clock to a China time on a day of March 2026 and logs `user` in afresh.
async fn at(app: &TestApp, day: u32, hour: u32, user: &str) -> anyhow::Result<String> {
    let time = Utc
        .with_ymd_and_hms(2026, 3, day, hour - 8, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("no such time"))?;
    app.services.clock.set(time);
    app.login(user).await
}

async fn register(app: &TestApp, token: &str, n: u32, new: bool) -> anyhow::Result<String> {
    let mut body = registration_json(n);
    if new {
        // A new petition owes a notice of acceptance within 15 days.
        body["list_source"] = json!("new_petition");
    }
    let reply = app.expect(token, "/cases", body, 201).await?;
    Ok(format!(
        "/cases/{}",
        reply["aggregate_id"].as_str().unwrap_or("")
    ))
}

/// `(this_week, last_week, [case numbers])` of a section.
fn section(agenda: &Value, key: &str) -> (u64, u64, Vec<String>) {
    let found = agenda["sections"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["key"] == key))
        .cloned()
        .unwrap_or_default();
    let numbers = row_column(&found, "case_number");
    (
        found["this_week"].as_u64().unwrap_or(99),
        found["last_week"].as_u64().unwrap_or(99),
        numbers,
    )
}

#[tokio::test]
async fn three_weeks_of_dispatch_meetings() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let leader = json!({"leader_id": "ldr-siming-1"});
    let claim = json!({"ground": "solved", "summary": "已解决", "evidence": ["回访记录"]});

    // Mon 2 March 11:00: cases A and B; A owned by 李明. Thu 5 March: case C, a new petition
    // whose notice of acceptance is due Fri 20 March; B owned and claimed resolved.
    let t = at(&app, 2, 11, "xietiao").await?;
    let a = register(&app, &t, 1, false).await?;
    let b = register(&app, &t, 2, false).await?;
    app.expect(&t, &format!("{a}/leader"), leader.clone(), 200)
        .await?;
    let t = at(&app, 5, 9, "xietiao").await?;
    let c = register(&app, &t, 3, true).await?;
    app.expect(&t, &format!("{b}/leader"), leader.clone(), 200)
        .await?;
    app.expect(&t, &format!("{b}/claims"), claim, 201).await?;
    let number = |path: String| {
        let app = &app;
        let t = t.clone();
        async move {
            anyhow::Ok(
                app.get(&t, &path).await?.json["case_number"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        }
    };
    let (na, nb, nc) = (
        number(a.clone()).await?,
        number(b.clone()).await?,
        number(c.clone()).await?,
    );

    // Mon 9 March 10:00 (2026-W11): the district's first meeting.
    let t = at(&app, 9, 10, "xietiao").await?;
    let hold = json!({"unit_id": "xm-siming"});
    let held = app.post(&t, "/meetings", &hold).await?;
    assert_eq!(held.status, 201, "{held:?}");
    let m1 = held.json["aggregate_id"].as_str().unwrap_or("").to_owned();
    assert_eq!(m1, "xm-siming-2026w11");
    // Where the new meeting is, as 201 says: its own page, not a case's.
    assert_eq!(
        held.headers.get("location").and_then(|v| v.to_str().ok()),
        Some("/api/v1/meetings/xm-siming-2026w11"),
        "{held:?}"
    );
    // Once a week; not by a viewer, not by a town for its district.
    app.expect(&t, "/meetings", hold.clone(), 409).await?;
    let viewer = app.login("chakan").await?;
    app.expect(&viewer, "/meetings", hold.clone(), 403).await?;
    let town = app.login("zhonghua").await?;
    app.expect(&town, "/meetings", hold.clone(), 403).await?;

    let agenda1 = app.get(&t, &format!("/meetings/{m1}")).await?.json;
    assert_eq!(agenda1["title"], "思明区2026年第11周调度会");
    assert_eq!(
        section(&agenda1, "new_cases"),
        (3, 0, vec![na.clone(), nb.clone(), nc.clone()])
    );
    assert_eq!(
        section(&agenda1, "awaiting_review"),
        (1, 0, vec![nb.clone()])
    );
    for key in [
        "crossed_off",
        "relapses",
        "overdue",
        "due_soon",
        "idle_owned",
    ] {
        assert_eq!(section(&agenda1, key), (0, 0, vec![]), "{key}");
    }
    assert_eq!(agenda1["instructions"], json!([]));

    // Instructions: to 中华街道 about A (feedback by Fri 13 March), to 王芳 (by Fri 20 March).
    let instructions = format!("/meetings/{m1}/instructions");
    let a_id = a.trim_start_matches("/cases/");
    app.expect(
        &t,
        &instructions,
        json!({"text": "无承办", "feedback_due_on": "2026-03-13"}),
        422,
    )
    .await?;
    app.expect(
        &t,
        &instructions,
        json!({"unit_id": "xm-siming-zhonghua", "text": "x", "feedback_due_on": "2026-03-08"}),
        422,
    )
    .await?;
    app.expect(&t,
        &instructions,
        json!({"case_id": a_id, "unit_id": "xm-siming-zhonghua", "text": "约访信访人，核实补偿标准", "feedback_due_on": "2026-03-13"}),
        201,
    )
    .await?;
    app.expect(&t,
        &instructions,
        json!({"leader_id": "ldr-siming-2", "text": "牵头研究集体土地征收遗留问题", "feedback_due_on": "2026-03-20"}),
        201,
    )
    .await?;

    // Tue 10 March: B is crossed off; Wed 11: 中华街道 answers instruction 1 (李明 may not
    // answer 王芳's); Thu 12: B's petitioner comes back (回潮).
    let district = at(&app, 10, 10, "shenhe-qu").await?;
    let city = app.login("shenhe-shi").await?;
    app.expect(
        &district,
        &format!("{b}/claims/review"),
        json!({"level": "district", "accept": true}),
        200,
    )
    .await?;
    app.expect(
        &city,
        &format!("{b}/claims/review"),
        json!({"level": "city", "accept": true}),
        200,
    )
    .await?;
    let town = at(&app, 11, 10, "zhonghua").await?;
    let feedback = |n: u32| format!("/meetings/{m1}/instructions/{n}/feedback");
    // The clerk writes the petitioner's phone into the feedback; the agenda masks it.
    let answer =
        json!({"text": "已约访，信访人同意按新标准核算（电话13912345678）", "on": "2026-03-11"});
    app.expect(&town, &feedback(9), answer.clone(), 404).await?;
    app.expect(
        &town,
        &feedback(1),
        json!({"text": "x", "on": "2026-03-12"}),
        422,
    )
    .await?;
    let liming = app.login("liming").await?;
    app.expect(&liming, &feedback(2), answer.clone(), 403)
        .await?;
    app.expect(&town, &feedback(1), answer, 201).await?;
    let t = at(&app, 12, 10, "xietiao").await?;
    let petition =
        json!({"received_on": "2026-03-12", "channel": "visit", "summary": "补偿款未到位"});
    app.expect(&t, &format!("{b}/petitions"), petition, 201)
        .await?;

    // Mon 16 March 10:00 (W12).
    let t = at(&app, 16, 10, "xietiao").await?;
    let m2 = app.expect(&t, "/meetings", hold.clone(), 201).await?;
    let m2 = m2["aggregate_id"].as_str().unwrap_or("").to_owned();
    let agenda2 = app.get(&t, &format!("/meetings/{m2}")).await?.json;
    let shown = agenda2["instructions"].to_string();
    assert!(
        shown.contains("139****5678") && !shown.contains("13912345678"),
        "{shown}"
    );
    assert_eq!(section(&agenda2, "new_cases"), (0, 3, vec![]));
    assert_eq!(section(&agenda2, "crossed_off"), (1, 0, vec![nb.clone()]));
    assert_eq!(section(&agenda2, "relapses"), (1, 0, vec![nb.clone()]));
    assert_eq!(section(&agenda2, "awaiting_review"), (0, 1, vec![]));
    // C's notice is due in 4 days; B's new one (27 March) in 11, not yet "due soon".
    assert_eq!(section(&agenda2, "due_soon"), (1, 0, vec![nc.clone()]));
    assert_eq!(section(&agenda2, "overdue"), (0, 0, vec![]));
    let statuses: Vec<(u64, String)> = agenda2["instructions"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|i| {
                    (
                        i["number"].as_u64().unwrap_or(0),
                        i["status"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        statuses,
        [(1, "answered".to_owned()), (2, "open".to_owned())]
    );
    assert_eq!(agenda2["open_instructions"], json!([1, 2]));
    assert_eq!(agenda2["overdue_instructions"], json!([0, 0]));
    let workbook2 = app
        .download(&t, &format!("/meetings/{m2}/agenda.xlsx"))
        .await?;

    // Mon 23 March 10:00 (W13), listing owned cases idle for more than 10 days.
    let t = at(&app, 23, 10, "xietiao").await?;
    let m3 = app.expect(&t, "/meetings", hold.clone(), 201).await?;
    let m3 = m3["aggregate_id"].as_str().unwrap_or("").to_owned();
    let agenda3 = app
        .get(&t, &format!("/meetings/{m3}?idle_days=10"))
        .await?
        .json;
    // A owned 21 days and B 18 days without activity; a week earlier 14 and 11.
    assert_eq!(
        section(&agenda3, "idle_owned"),
        (2, 2, vec![na.clone(), nb.clone()])
    );
    // C's notice was due 20 March and never given; B's, due 27 March, is 4 days away (a week
    // earlier C's was).
    assert_eq!(section(&agenda3, "overdue"), (1, 0, vec![nc.clone()]));
    let overdue = &agenda3["sections"][3]["rows"][0];
    assert_eq!(
        (overdue["date"].clone(), overdue["detail"].clone()),
        (json!("2026-03-20"), json!("告知是否受理已超期3天"))
    );
    assert_eq!(section(&agenda3, "due_soon"), (1, 1, vec![nb.clone()]));
    // Instruction 1 was answered before this week; instruction 2 is past its deadline.
    assert_eq!(agenda3["instructions"].as_array().map(Vec::len), Some(1));
    assert_eq!(agenda3["instructions"][0]["status_label"], "逾期未反馈");
    assert_eq!(agenda3["overdue_instructions"], json!([1, 0]));
    let csv = app
        .download(&t, &format!("/meetings/{m3}/agenda.csv?part=instructions"))
        .await?;
    let csv = String::from_utf8(csv)?;
    assert!(
        csv.starts_with("\u{feff}会议周次,编号,承办单位,承办领导,指令内容,反馈期限,状态"),
        "{csv}"
    );
    assert!(
        csv.contains("2026-W11,2,,王芳,牵头研究集体土地征收遗留问题,2026-03-20,逾期未反馈,,"),
        "{csv}"
    );

    // Later events change nothing in an earlier meeting's agenda or its workbook.
    app.expect(
        &t,
        &format!("{a}/activities"),
        json!({"kind": "reception", "held_on": "2026-03-23", "summary": "接访"}),
        201,
    )
    .await?;
    let wang = feedback(2);
    app.expect(
        &t,
        &wang,
        json!({"text": "已召开专题会", "on": "2026-03-23"}),
        201,
    )
    .await?;
    assert_eq!(app.get(&t, &format!("/meetings/{m2}")).await?.json, agenda2);
    assert_eq!(
        app.download(&t, &format!("/meetings/{m2}/agenda.xlsx"))
            .await?,
        workbook2
    );
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(workbook2))?;
    let overview = book.worksheet_range("议程概览")?;
    let row = (1..overview.height() as u32)
        .find(|r| overview.get_value((*r, 0)) == Some(&Data::String("销号案件".into())))
        .ok_or_else(|| anyhow::anyhow!("no 销号案件 row"))?;
    assert_eq!(overview.get_value((row, 1)), Some(&Data::Float(1.0)));
    assert_eq!(overview.get_value((row, 2)), Some(&Data::Float(0.0)));
    let relapses = book.worksheet_range("回潮案件")?;
    assert_eq!(relapses.get_value((1, 0)), Some(&Data::String(nb.clone())));

    // The list, and scope: the town's coordinator sees none of the district's meetings.
    let meetings = app.get(&t, "/meetings").await?.json;
    assert_eq!(meetings.as_array().map(Vec::len), Some(3));
    let town = app.login("zhonghua").await?;
    assert_eq!(app.get(&town, "/meetings").await?.json, json!([]));
    assert_eq!(
        app.get(&town, &format!("/meetings/{m1}")).await?.status,
        404
    );

    // The agenda read from the cases the figures projection names is the archive fold's, at
    // every position, for the district, the city and a town, held on each of the three Mondays
    // and on days between them.
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let held_ats: Vec<_> = [(9, 10), (12, 15), (16, 10), (20, 9), (23, 10)]
        .into_iter()
        .filter_map(|(day, hour)| Utc.with_ymd_and_hms(2026, 3, day, hour - 8, 0, 0).single())
        .collect();
    let mut listed = 0;
    for (id, name) in [
        ("xm-siming", "思明区"),
        ("xm", "厦门市"),
        ("xm-siming-zhonghua", "中华街道"),
    ] {
        let unit = UnitRef {
            id: id.into(),
            name: name.into(),
        };
        listed += assert_agenda_matches_archive(&app.projecting.store, &unit, &held_ats).await?;
    }
    assert!(listed > 20, "only {listed} agendas listed a case");
    app.stop().await
}

/// A case crossed off after its reply whose petitioner then asks for a review (复查): the
/// review's answer has a deadline, so the case is on the agenda (due soon, then overdue) though
/// crossed off — and the agenda read from the cases the figures projection names lists it too.
#[tokio::test]
async fn a_crossed_off_case_whose_review_clock_runs_is_on_the_agenda() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let t = at(&app, 2, 11, "xietiao").await?;
    let case = register(&app, &t, 1, true).await?;
    let step = |step: &str| json!({"step": step, "on": "2026-03-02", "summary": "记录"});
    for done in ["acceptance_notified", "replied"] {
        app.expect(&t, &format!("{case}/procedure"), step(done), 201)
            .await?;
    }
    app.cross_off(case.trim_start_matches("/cases/")).await?;
    let t = at(&app, 3, 9, "xietiao").await?;
    app.expect(
        &t,
        &format!("{case}/procedure"),
        json!({"step": "first_review_requested", "on": "2026-03-03", "summary": "申请复查"}),
        201,
    )
    .await?;
    let view = app.get(&t, &case).await?.json;
    assert_eq!(
        (view["status"].clone(), view["next_deadline_step"].clone()),
        (json!("crossed_off"), json!("first_review_answer")),
        "{view}"
    );
    let number = view["case_number"].as_str().unwrap_or("").to_owned();

    // The answer is due 2 April: due soon at a meeting on 30 March, overdue on 6 April.
    let t = at(&app, 30, 10, "xietiao").await?;
    let hold = json!({"unit_id": "xm-siming"});
    let meeting = app.expect(&t, "/meetings", hold.clone(), 201).await?;
    let agenda = app
        .get(
            &t,
            &format!(
                "/meetings/{}",
                meeting["aggregate_id"].as_str().unwrap_or("")
            ),
        )
        .await?
        .json;
    assert_eq!(section(&agenda, "due_soon"), (1, 0, vec![number.clone()]));
    // The longest idle threshold the query takes reaches before any date: nothing is idle, and
    // the agenda is answered (it was a panic once the cutoff became a date).
    let longest = app
        .get(
            &t,
            &format!(
                "/meetings/{}?idle_days={}",
                meeting["aggregate_id"].as_str().unwrap_or(""),
                u32::MAX
            ),
        )
        .await?;
    assert_eq!(longest.status, 200, "{}", longest.json);
    assert_eq!(section(&longest.json, "idle_owned").0, 0);
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let held_ats: Vec<_> = [(3, 30), (4, 6)]
        .into_iter()
        .filter_map(|(month, day)| Utc.with_ymd_and_hms(2026, month, day, 2, 0, 0).single())
        .collect();
    assert_siming_agenda_matches_archive(&app.projecting.store, &held_ats, 0).await?;
    app.stop().await
}

/// A case registered as a new petition on 2 March and given to a leader on the 3rd, worked once
/// on the 9th: at a meeting on every day of the next seven weeks the agenda from its projection
/// equals the archive's fold — so the day its notice falls due soon, the day it is overdue, and
/// the day its owner turns idle (after 10 and after 30 days) are the same both ways, this week
/// and last.
#[tokio::test]
async fn the_agenda_projection_turns_each_boundary_on_the_archive_s_day() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let t = at(&app, 2, 11, "xietiao").await?;
    let case = register(&app, &t, 1, true).await?;
    let t = at(&app, 3, 11, "xietiao").await?;
    let leader = json!({"leader_id": "ldr-siming-1"});
    app.expect(&t, &format!("{case}/leader"), leader, 200)
        .await?;
    let t = at(&app, 9, 11, "xietiao").await?;
    let activity = json!({"kind": "reception", "held_on": "2026-03-09", "participants": ["张三"],
                          "summary": "接待信访人，听取诉求"});
    app.expect(&t, &format!("{case}/activities"), activity, 201)
        .await?;
    // A claim half a second into a second: a meeting a quarter second before it (or a week
    // later, a quarter second before its week) must not see it, though the projection's spans
    // count whole seconds.
    let claimed = Utc
        .with_ymd_and_hms(2026, 3, 20, 3, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("no such time"))?
        + chrono::Duration::milliseconds(500);
    app.services.clock.set(claimed);
    app.command(
        json!({"type": "claim_resolution", "case_id": case.trim_start_matches("/cases/"),
        "ground": "solved", "summary": "已解决", "evidence": ["回访记录"]}),
    )
    .await?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let first = Utc
        .with_ymd_and_hms(2026, 3, 2, 2, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("no such time"))?;
    let quarter = chrono::Duration::milliseconds(250);
    let week = chrono::Duration::days(7);
    let mut held_ats: Vec<_> = (0..50)
        .map(|day| first + chrono::Duration::days(day))
        .collect();
    held_ats.extend([
        claimed - quarter,
        claimed + quarter,
        claimed + week - quarter,
        claimed + week + quarter,
    ]);
    assert_siming_agenda_matches_archive(&app.projecting.store, &held_ats, 0).await?;
    app.stop().await
}
