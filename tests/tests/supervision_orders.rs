//! Supervision orders (督办单) on real parts: the city issues an order to a department about a
//! case; the department signs for it and reports progress but does not answer by the due date;
//! the escalation clock, on the injected clock, escalates it on the configured day (and only
//! once); the department answers, the city sends the answer back, the department answers again
//! and the city accepts. Every refusal appends nothing; the history is in the log, step by step.
//! Each step reaches people: the inbox of the users concerned, mail through a real SMTP server
//! and a WeCom robot webhook on a real HTTP server, both started by the test — the webhook
//! failing once, so the delivery is retried.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use zhzj_supervision::{EscalationClock, SupervisionRules, Watch};
use zhzj_tests::{DbKind, TestApp, registration_json, spawn_app, wait_caught_up};

/// Sets the clock to 10:00 China time on a day of March 2026 (sessions older than that have
/// expired: log in again with [`Tokens::of`]).
fn set_day(app: &TestApp, day: u32) -> anyhow::Result<()> {
    set_time(app, day, 10, 0)
}

/// Sets the clock to `hour`:`minute` China time on 2026-03-`day`.
fn set_time(app: &TestApp, day: u32, hour: u32, minute: u32) -> anyhow::Result<()> {
    let time = Utc
        .with_ymd_and_hms(2026, 3, day, hour - 8, minute, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("no such time"))?;
    app.services.clock.set(time);
    Ok(())
}

/// Sessions of the city's coordinator, 市住房局's, 中华街道's and a viewer.
struct Tokens {
    city: String,
    department: String,
    town: String,
    viewer: String,
}

impl Tokens {
    /// Sets the clock to `day` and logs everyone in.
    async fn of(app: &TestApp, day: u32) -> anyhow::Result<Self> {
        set_day(app, day)?;
        Ok(Self {
            city: app.login("xietiao").await?,
            department: app.login("zhufang").await?,
            town: app.login("zhonghua").await?,
            viewer: app.login("chakan").await?,
        })
    }
}

fn march(day: u32) -> String {
    NaiveDate::from_ymd_opt(2026, 3, day)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// The escalation clock of the test: the bureau's rules as a file would give them, reading the
/// test's clock.
async fn escalation_clock(app: &TestApp) -> anyhow::Result<EscalationClock> {
    let rules = SupervisionRules::parse(
        r#"
        [[escalation]]
        from = "催办"
        to = "督办"
        overdue_days = 2
        answer_within_days = 5

        [[escalation]]
        from = "督办"
        to = "挂牌督办"
        overdue_days = 1
        answer_within_days = 3
        "#,
    )?;
    Ok(EscalationClock::new(
        app.nats.connect().await?,
        app.projecting.store.clone(),
        Arc::new(app.services.clock.clone()),
        Arc::new(rules),
    ))
}

/// Mail the test's SMTP server received: (recipients, decoded text).
type Mailbag = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// A mailin handler keeping every message.
#[derive(Clone)]
struct KeepMail {
    bag: Mailbag,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for KeepMail {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        use base64::Engine;
        let raw = String::from_utf8_lossy(&self.data).replace("\r\n", "\n");
        let body = raw.split_once("\n\n").map_or("", |(_, body)| body);
        let encoded: String = body.split_whitespace().collect();
        let text = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or(raw);
        if let Ok(mut bag) = self.bag.lock() {
            bag.push((self.to.clone(), text));
        }
        mailin_embedded::response::OK
    }
}

/// Starts a real SMTP server (mailin) on a free port; returns its port and what it receives.
fn start_smtp_server() -> anyhow::Result<(u16, Mailbag)> {
    start_smtp_server_with(mailin_embedded::SslConfig::None)
}

/// Starts a real SMTP server (mailin) on a free port, offering STARTTLS as `ssl` says.
fn start_smtp_server_with(ssl: mailin_embedded::SslConfig) -> anyhow::Result<(u16, Mailbag)> {
    let bag = Mailbag::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut server = mailin_embedded::Server::new(KeepMail {
        bag: Arc::clone(&bag),
        to: Vec::new(),
        data: Vec::new(),
    });
    server
        .with_name("smtp.test")
        .with_ssl(ssl)
        .map_err(|e| anyhow::anyhow!("the test's SMTP server: {e}"))?
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        if let Err(e) = server.serve() {
            tracing::error!("the test's SMTP server stopped: {e}");
        }
    });
    Ok((port, bag))
}

/// What the webhook server received: the JSON bodies, and how many calls it failed on purpose.
#[derive(Default)]
struct Hooks {
    bodies: Vec<Value>,
    refused: usize,
}

/// Starts an HTTP server answering as a WeCom robot does (`{"errcode":0}`), except that it
/// answers its first call with HTTP 500.
async fn start_webhook_server() -> anyhow::Result<(String, Arc<Mutex<Hooks>>)> {
    let hooks = Arc::new(Mutex::new(Hooks::default()));
    let kept = Arc::clone(&hooks);
    let app = axum::Router::new().route(
        "/cgi-bin/webhook/send",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let kept = Arc::clone(&kept);
            async move {
                // A robot takes its time: long enough for two senders to overlap.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let Ok(mut hooks) = kept.lock() else {
                    return (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(json!({})),
                    );
                };
                if hooks.refused == 0 {
                    hooks.refused += 1;
                    return (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(json!({"errcode": -1, "errmsg": "system busy"})),
                    );
                }
                hooks.bodies.push(body);
                (
                    axum::http::StatusCode::OK,
                    axum::Json(json!({"errcode": 0, "errmsg": "ok"})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!(
        "http://{}/cgi-bin/webhook/send?key=test-robot-key",
        listener.local_addr()?
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, hooks))
}

/// The watch of the test: the rules file with mail for 市住房局 and a robot for the city.
async fn watch(app: &TestApp, smtp_port: u16, webhook: &str) -> anyhow::Result<Watch> {
    let rules = SupervisionRules::parse(&format!(
        r#"
        [[escalation]]
        from = "催办"
        to = "督办"
        overdue_days = 2
        answer_within_days = 5

        [warnings]
        order_due_within_days = 2

        [smtp]
        host = "127.0.0.1"
        port = {smtp_port}
        from = "zhzj@xfj.xm.gov.cn"

        [[channel]]
        unit_id = "xm-dept-zjj"
        kind = "email"
        to = ["xinfang@zjj.xm.gov.cn"]

        [[channel]]
        unit_id = "xm"
        kind = "wecom"
        url = "{webhook}"
        "#
    ))?;
    Ok(Watch::new(
        app.nats.connect().await?,
        app.projecting.store.clone(),
        Arc::new(app.services.clock.clone()),
        Arc::new(rules),
    ))
}

/// Catches the views up, then runs a watch pass.
async fn watch_pass(app: &TestApp, watch: &Watch) -> anyhow::Result<()> {
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    watch.run_once().await;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    Ok(())
}

/// The titles of a user's inbox messages of `kind`, oldest first.
async fn inbox_titles(app: &TestApp, token: &str, kind: &str) -> anyhow::Result<Vec<String>> {
    let inbox = app.get(token, "/inbox").await?;
    assert_eq!(inbox.status, 200, "{inbox:?}");
    let mut titles: Vec<String> = inbox.json["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter(|m| m["kind"] == kind)
                .filter_map(|m| m["title"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    titles.reverse();
    Ok(titles)
}

/// The event types of an order's history, in order.
fn history(view: &Value) -> Vec<String> {
    view["history"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter_map(|s| s["event_type"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn order_workflow_escalates_and_closes(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    let Tokens {
        city,
        department,
        town,
        viewer,
    } = Tokens::of(&app, 2).await?;
    let case = app
        .expect(&city, "/cases", registration_json(1), 201)
        .await?;
    let case_id = case["aggregate_id"].as_str().unwrap_or_default().to_owned();
    // 李明 owns the case: what the order asks reaches him too.
    app.command(json!({"type": "assign_leader", "case_id": case_id, "leader_id": "ldr-siming-1"}))
        .await?;

    // Refusals first: each is answered with its reason and appends nothing.
    let order_body = json!({
        "addressee_unit_id": "xm-dept-zjj",
        "level": "reminder",
        "case_ids": [case_id],
        "matter": "请于3月6日前约访信访人（身份证350203199001010423），落实补偿方案",
        "answer_due_on": march(6),
        "responsible": "市住房局张科长",
    });
    let mut past = order_body.clone();
    past["answer_due_on"] = json!(march(1));
    app.expect(&city, "/supervision-orders", past, 422).await?;
    let mut upwards = order_body.clone();
    upwards["addressee_unit_id"] = json!("xm");
    app.expect(&city, "/supervision-orders", upwards, 422)
        .await?;
    // A department does not order a district (it is not above it); a town does not issue in
    // the city's name; a viewer writes nothing.
    let mut by_department = order_body.clone();
    by_department["addressee_unit_id"] = json!("xm-siming");
    app.expect(&department, "/supervision-orders", by_department, 422)
        .await?;
    let mut in_city_name = order_body.clone();
    in_city_name["issuer_unit_id"] = json!("xm");
    app.expect(&town, "/supervision-orders", in_city_name, 403)
        .await?;
    app.expect(&viewer, "/supervision-orders", order_body.clone(), 403)
        .await?;
    let mut unknown_case = order_body.clone();
    unknown_case["case_ids"] = json!([uuid::Uuid::new_v4()]);
    app.expect(&city, "/supervision-orders", unknown_case, 404)
        .await?;

    // Issued on 3-02 as a reminder (催办), the answer due 3-06.
    let issued = app
        .expect(&city, "/supervision-orders", order_body, 201)
        .await?;
    let order_id = issued["aggregate_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/supervision-orders/{order_id}");
    // The department hears of it in its inbox and by mail (the city's robot is not told of the
    // city's own order).
    let (smtp_port, mail) = start_smtp_server()?;
    let (webhook, hooks) = start_webhook_server().await?;
    let watch = watch(&app, smtp_port, &webhook).await?;
    watch_pass(&app, &watch).await?;
    assert_eq!(
        inbox_titles(&app, &department, "supervision").await?,
        ["【催办】厦门市向市住房局下发催办单，请于 2026-03-06 前办结反馈"]
    );
    assert!(inbox_titles(&app, &city, "supervision").await?.is_empty());
    let leader = app.login("liming").await?;
    assert_eq!(
        inbox_titles(&app, &leader, "supervision").await?,
        ["【催办】厦门市向市住房局下发催办单，请于 2026-03-06 前办结反馈"]
    );
    let view = app.get(&department, &path).await?;
    assert_eq!(view.status, 200, "{view:?}");
    let order = &view.json["order"];
    assert_eq!(order["status"], "issued");
    assert_eq!(order["status_label"], "待签收");
    assert_eq!(order["level_label"], "催办");
    assert_eq!(order["addressee"]["name"], "市住房局");
    assert_eq!(view.json["case_ids"], json!([case_id]));
    let matter = order["matter"].as_str().unwrap_or_default();
    assert!(
        !matter.contains("350203199001010423") && matter.contains("约访信访人"),
        "the ID number typed into the matter is masked: {matter}"
    );
    // A town outside both ends does not see it at all.
    assert_eq!(app.get(&town, &path).await?.status, 404);
    app.expect(&town, &format!("{path}/acknowledge"), json!({}), 404)
        .await?;
    // The issuer is not the addressee: it does not sign for it; nobody works it unsigned.
    app.expect(&city, &format!("{path}/acknowledge"), json!({}), 403)
        .await?;
    app.expect(
        &department,
        &format!("{path}/answer"),
        json!({"text": "已办", "evidence": ["x"]}),
        409,
    )
    .await?;

    // 3-03: signed for, progress reported.
    let Tokens { department, .. } = Tokens::of(&app, 3).await?;
    app.expect(&department, &format!("{path}/acknowledge"), json!({}), 200)
        .await?;
    app.expect(&department, &format!("{path}/acknowledge"), json!({}), 409)
        .await?;
    app.expect(
        &department,
        &format!("{path}/progress"),
        json!({"text": "已电话联系信访人，约定3月9日面谈"}),
        200,
    )
    .await?;

    // 3-04: the answer is due within 2 days: a warning to both ends, once; the city's robot
    // fails the first call (HTTP 500), so that delivery waits for its retry.
    let Tokens {
        city, department, ..
    } = Tokens::of(&app, 4).await?;
    watch_pass(&app, &watch).await?;
    watch_pass(&app, &watch).await?;
    let due_soon =
        "【预警·督办即将逾期】厦门市对市住房局的催办单将于 2026-03-06 到期，尚未办结反馈";
    assert_eq!(
        inbox_titles(&app, &department, "warning").await?,
        [due_soon]
    );
    assert_eq!(inbox_titles(&app, &city, "warning").await?, [due_soon]);
    let admin = app.login("guanli").await?;
    let deliveries = app.get(&admin, "/notifications/deliveries").await?.json;
    let robot = deliveries
        .as_array()
        .and_then(|all| all.iter().find(|d| d["kind"] == "wecom"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(robot["status"], "pending", "{deliveries}");
    assert_eq!(robot["attempts"], 1);
    assert!(
        robot["last_error"].as_str().unwrap_or("").contains("500"),
        "{robot}"
    );
    assert!(
        !robot["target"]
            .as_str()
            .unwrap_or("")
            .contains("test-robot-key"),
        "the robot's key is not shown: {robot}"
    );
    assert_eq!(
        app.get(&department, "/notifications/deliveries")
            .await?
            .status,
        403
    );

    // Due 3-06, rule: 2 days overdue. Nothing escalates on 3-06 or 3-07; on 3-08 it does.
    let clock = escalation_clock(&app).await?;
    for day in [6, 7] {
        set_day(&app, day)?;
        let pass = clock.run_once().await?;
        assert!(pass.escalated.is_empty(), "3-{day:02}: {pass:?}");
    }
    let Tokens {
        city, department, ..
    } = Tokens::of(&app, 7).await?;
    // 3-07: the due-soon warning clears, the overdue one fires; the retry reaches the robot.
    watch_pass(&app, &watch).await?;
    let overdue =
        "【预警·督办逾期未反馈】厦门市对市住房局的催办单反馈期限（2026-03-06）已过，尚未办结反馈";
    assert_eq!(
        inbox_titles(&app, &department, "warning").await?,
        [due_soon, overdue]
    );
    // The city's meeting that day has the order on its agenda, overdue.
    let meeting = app
        .expect(&city, "/meetings", json!({"unit_id": "xm"}), 201)
        .await?;
    let meeting_id = meeting["aggregate_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let agenda = app
        .get(&city, &format!("/meetings/{meeting_id}"))
        .await?
        .json;
    assert_eq!(
        agenda["supervision"].as_array().map(Vec::len),
        Some(1),
        "{agenda}"
    );
    assert_eq!(agenda["supervision"][0]["order_id"], json!(order_id));
    assert_eq!(agenda["supervision"][0]["level"], "催办");
    assert_eq!(agenda["supervision"][0]["status_label"], "办理中");
    assert_eq!(agenda["supervision"][0]["overdue"], true);
    assert!(
        !agenda["supervision"][0]["matter"]
            .as_str()
            .unwrap_or("")
            .contains("350203199001010423"),
        "masked on the agenda too"
    );
    let warnings = app.get(&city, "/warnings?state=all").await?.json;
    assert_eq!(warnings["open_count"], 1, "{warnings}");
    assert_eq!(
        warnings["rows"]
            .as_array()
            .map(|rows| rows.iter().filter(|w| !w["cleared_at"].is_null()).count()),
        Some(1),
        "the due-soon warning cleared: {warnings}"
    );
    let listed = app
        .get(&city, "/supervision-orders?overdue=true&status=open")
        .await?;
    assert_eq!(
        listed.json.as_array().map(Vec::len),
        Some(1),
        "overdue from 3-07 on: {:?}",
        listed.json
    );
    let Tokens { city, .. } = Tokens::of(&app, 8).await?;
    let pass = clock.run_once().await?;
    assert_eq!(pass.escalated, vec![order_id.clone()]);
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    // Fires once: a second pass that day (or a second clock) escalates nothing more.
    let again = clock.run_once().await?;
    assert!(
        again.escalated.is_empty() && again.refused.is_empty(),
        "{again:?}"
    );
    // Both ends hear of the escalation; the overdue warning clears (a new due date).
    watch_pass(&app, &watch).await?;
    let escalated = "【督办升级】厦门市对市住房局的督办单逾期未反馈（期限 2026-03-06），已由催办升级为督办，请于 2026-03-13 前办结反馈";
    assert_eq!(inbox_titles(&app, &city, "supervision").await?, [escalated]);
    let leader = app.login("liming").await?;
    assert_eq!(
        inbox_titles(&app, &leader, "supervision").await?,
        [
            "【催办】厦门市向市住房局下发催办单，请于 2026-03-06 前办结反馈",
            escalated
        ],
        "the owning leader hears of the order and its escalation"
    );
    assert_eq!(app.get(&city, "/warnings").await?.json["open_count"], 0);
    let view = app.get(&city, &path).await?;
    let order = &view.json["order"];
    assert_eq!(order["level"], "order");
    assert_eq!(order["level_label"], "督办");
    assert_eq!(order["escalations"], 1);
    assert_eq!(order["answer_due_on"], march(13), "3-08 + 5 days");
    assert_eq!(order["first_due_on"], march(6));
    assert_eq!(order["overdue"], false);
    let escalation = view.json["history"]
        .as_array()
        .and_then(|steps| {
            steps
                .iter()
                .find(|s| s["event_type"] == "SupervisionOrderEscalated")
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(escalation["actor_id"], "system:supervision");
    assert_eq!(escalation["data"]["missed_due_on"], march(6));
    assert_eq!(
        escalation["data"]["rule"],
        "催办逾期2日未办结反馈，升级为督办，限5日内反馈"
    );
    // Nobody but the system escalates.
    let forged = app
        .command(
            json!({"type": "escalate_supervision_order", "order_id": order_id,
            "from": "order", "to": "listed", "answer_due_on": march(20), "rule": "x"}),
        )
        .await;
    assert!(
        forged.is_err(),
        "not overdue: refused even for the administrator"
    );

    // 3-10: answered (on time for the new due date); 3-11: sent back with a new due date.
    let Tokens { department, .. } = Tokens::of(&app, 10).await?;
    let answer =
        json!({"text": "已面谈，达成补偿协议", "evidence": ["补偿协议（编号ZJ-2026-031）"]});
    app.expect(&department, &format!("{path}/answer"), answer.clone(), 200)
        .await?;
    app.expect(&department, &format!("{path}/answer"), answer.clone(), 409)
        .await?;
    watch_pass(&app, &watch).await?;
    let Tokens {
        city, department, ..
    } = Tokens::of(&app, 11).await?;
    app.expect(
        &department,
        &format!("{path}/review"),
        json!({"accept": true}),
        403,
    )
    .await?;
    app.expect(
        &city,
        &format!("{path}/review"),
        json!({"accept": false, "reasons": "协议未附签字页"}),
        422,
    )
    .await?;
    app.expect(
        &city,
        &format!("{path}/review"),
        json!({"accept": false, "reasons": "协议未附签字页", "answer_due_on": march(16)}),
        200,
    )
    .await?;
    watch_pass(&app, &watch).await?;
    let order = app.get(&department, &path).await?.json["order"].clone();
    assert_eq!(order["status"], "sent_back");
    assert_eq!(order["answer_due_on"], march(16));
    assert_eq!(order["answered_on_time"], true);

    // 3-13: answered again and accepted.
    let Tokens {
        city, department, ..
    } = Tokens::of(&app, 13).await?;
    app.expect(
        &department,
        &format!("{path}/answer"),
        json!({"text": "已补齐签字页", "evidence": ["补偿协议签字页"]}),
        200,
    )
    .await?;
    app.expect(
        &city,
        &format!("{path}/review"),
        json!({"accept": true, "opinion": "同意办结"}),
        200,
    )
    .await?;
    watch_pass(&app, &watch).await?;
    let view = app.get(&city, &path).await?;
    let order = &view.json["order"];
    assert_eq!(order["status_label"], "已办结");
    assert_eq!(order["accepted_on"], march(13));
    assert_eq!(order["answers"], 2);
    assert_eq!(
        history(&view.json),
        [
            "SupervisionOrderIssued",
            "SupervisionOrderAcknowledged",
            "SupervisionProgressReported",
            "SupervisionOrderEscalated",
            "SupervisionOrderAnswered",
            "SupervisionAnswerSentBack",
            "SupervisionOrderAnswered",
            "SupervisionAnswerAccepted",
        ]
    );
    // The agenda of the 3-07 meeting is as it stood then, whatever happened since.
    let agenda = app
        .get(&city, &format!("/meetings/{meeting_id}"))
        .await?
        .json;
    assert_eq!(agenda["supervision"][0]["status_label"], "办理中");
    assert_eq!(agenda["supervision"][0]["overdue"], true);

    // What reached people, step by step.
    assert_eq!(
        inbox_titles(&app, &department, "supervision").await?,
        [
            "【催办】厦门市向市住房局下发催办单，请于 2026-03-06 前办结反馈",
            escalated,
            "【督办退回】厦门市退回了市住房局的第 1 次反馈，请于 2026-03-16 前重新反馈",
            "【督办办结】厦门市已审核通过市住房局的办结反馈",
        ]
    );
    assert_eq!(
        inbox_titles(&app, &city, "supervision").await?,
        [
            escalated,
            "【督办反馈】市住房局已办结反馈（第 1 次），请审核",
            "【督办反馈】市住房局已办结反馈（第 2 次），请审核",
        ]
    );
    let mails = mail.lock().map(|m| m.clone()).unwrap_or_default();
    for expected in [
        "下发催办单",
        "督办即将逾期",
        "督办逾期未反馈",
        "已由催办升级为督办",
        "退回了市住房局的第 1 次反馈",
        "已审核通过",
    ] {
        let found: Vec<_> = mails
            .iter()
            .filter(|(_, text)| text.contains(expected))
            .collect();
        assert_eq!(found.len(), 1, "one mail says {expected}: {mails:?}");
        assert_eq!(found[0].0, ["xinfang@zjj.xm.gov.cn"]);
    }
    assert!(
        mails.iter().any(|(_, text)| text.contains("每日摘要")),
        "the department's digest: {mails:?}"
    );
    let robot_texts: Vec<String> = hooks
        .lock()
        .map(|h| {
            h.bodies
                .iter()
                .map(|b| {
                    assert_eq!(b["msgtype"], "text");
                    b["text"]["content"].as_str().unwrap_or("").to_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    for expected in [
        "督办即将逾期",
        "督办逾期未反馈",
        "已由催办升级为督办",
        "已办结反馈（第 1 次）",
        "已办结反馈（第 2 次）",
    ] {
        assert_eq!(
            robot_texts.iter().filter(|t| t.contains(expected)).count(),
            1,
            "one robot message says {expected}: {robot_texts:?}"
        );
    }
    assert_eq!(robot_texts.len(), 5, "{robot_texts:?}");
    for text in mails.iter().map(|(_, t)| t).chain(&robot_texts) {
        for personal in ["张三", "350203199001010423", "13800000000", "约访信访人"] {
            assert!(!text.contains(personal), "{personal} sent out: {text}");
        }
    }
    let admin = app.login("guanli").await?;
    let deliveries = app.get(&admin, "/notifications/deliveries").await?.json;
    assert!(
        deliveries
            .as_array()
            .is_some_and(|all| all.iter().all(|d| d["status"] == "sent")),
        "{deliveries}"
    );
    // Read, one and then all.
    let inbox = app.get(&department, "/inbox?unread=true").await?.json;
    let unread = inbox["unread_count"].as_i64().unwrap_or(0);
    assert!(unread >= 6, "{inbox}");
    let first = inbox["messages"][0]["message_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.expect(&department, &format!("/inbox/{first}/read"), json!({}), 200)
        .await?;
    app.expect(&city, &format!("/inbox/{first}/read"), json!({}), 404)
        .await?;
    assert_eq!(
        app.get(&department, "/inbox").await?.json["unread_count"],
        unread - 1
    );
    app.expect(&department, "/inbox/read-all", json!({}), 200)
        .await?;
    assert_eq!(
        app.get(&department, "/inbox").await?.json["unread_count"],
        0
    );

    // A closed order never escalates.
    let Tokens {
        city,
        department,
        town,
        ..
    } = Tokens::of(&app, 31).await?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    assert_eq!(clock.run_once().await?, Default::default());

    // March's bulletin, by hand: one order issued to 市住房局 (3-02), escalated once (3-08),
    // answered twice, each by its due date then (3-10 ≤ 3-13, 3-13 ≤ 3-16), accepted: nothing
    // overdue at the month's end.
    let bulletin = app.get(&city, "/bulletins/2026-03").await?;
    assert_eq!(bulletin.status, 200, "{bulletin:?}");
    assert_eq!(
        bulletin.json["supervision"],
        json!([{"unit_id": "xm-dept-zjj", "name": "市住房局", "issued": 1,
                "answered_on_time": 2, "answered_late": 0, "escalated": 1,
                "overdue_at_end": 0}])
    );

    // The year-end assessment of departments counts them too: a scheme's formula may use
    // supervision_issued, supervision_on_time_rate, supervision_overdue, ….
    let assessment = app
        .get(
            &city,
            "/assessments?from=2026-03-01&to=2026-03-31&level=department",
        )
        .await?;
    assert_eq!(assessment.status, 200, "{assessment:?}");
    let department_unit = assessment.json["units"]
        .as_array()
        .and_then(|units| units.iter().find(|u| u["unit_id"] == "xm-dept-zjj"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        department_unit["supervision"]["issued"], 1,
        "{department_unit}"
    );
    assert_eq!(department_unit["supervision"]["answered_on_time"], 2);

    // The case's orders, and the lists' filters.
    let of_case = app
        .get(&city, &format!("/supervision-orders?case_id={case_id}"))
        .await?;
    assert_eq!(of_case.json.as_array().map(Vec::len), Some(1));
    let open = app
        .get(&department, "/supervision-orders?status=open")
        .await?;
    assert_eq!(open.json, json!([]));
    assert_eq!(
        app.get(&city, "/supervision-orders?status=bogus")
            .await?
            .status,
        400
    );
    assert_eq!(
        app.get(&town, "/supervision-orders").await?.json,
        json!([]),
        "a town sees no order between the city and a department"
    );
    app.stop().await
}

#[tokio::test]
async fn an_order_is_signed_for_escalated_on_the_configured_day_sent_back_and_accepted_on_sqlite()
-> anyhow::Result<()> {
    order_workflow_escalates_and_closes(DbKind::Sqlite).await
}

#[tokio::test]
async fn an_order_is_signed_for_escalated_on_the_configured_day_sent_back_and_accepted_on_postgres()
-> anyhow::Result<()> {
    order_workflow_escalates_and_closes(DbKind::Postgres).await
}

/// An order at 督办 escalates to 挂牌督办 by the second rule, and no further: the last level has
/// no rule, so it stays overdue on the list.
#[tokio::test]
async fn a_listed_order_is_the_last_level() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = Tokens::of(&app, 2).await?.city;
    let issued = app
        .expect(
            &city,
            "/supervision-orders",
            json!({"addressee_unit_id": "xm-siming-zhonghua", "level": "order",
                   "matter": "排查辖区内重复信访隐患并报送清单", "answer_due_on": march(4),
                   "responsible": "中华街道王主任"}),
            201,
        )
        .await?;
    let order_id = issued["aggregate_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let clock = escalation_clock(&app).await?;
    let city = Tokens::of(&app, 5).await?.city;
    assert_eq!(clock.run_once().await?.escalated, vec![order_id.clone()]);
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let order = app
        .get(&city, &format!("/supervision-orders/{order_id}"))
        .await?
        .json["order"]
        .clone();
    assert_eq!(order["level_label"], "挂牌督办");
    assert_eq!(order["answer_due_on"], march(8));
    let Tokens { city, town, .. } = Tokens::of(&app, 20).await?;
    assert!(clock.run_once().await?.escalated.is_empty());
    let overdue = app
        .get(&city, "/supervision-orders?overdue=true&level=listed")
        .await?;
    assert_eq!(overdue.json.as_array().map(Vec::len), Some(1));
    // March's bulletin: issued, escalated once, never answered, due 3-08: overdue at the end.
    let bulletin = app.get(&city, "/bulletins/2026-03").await?;
    assert_eq!(
        bulletin.json["supervision"],
        json!([{"unit_id": "xm-siming-zhonghua", "name": "中华街道", "issued": 1,
                "answered_on_time": 0, "answered_late": 0, "escalated": 1,
                "overdue_at_end": 1}])
    );
    // The town it went to sees it and may sign for it.
    app.expect(
        &town,
        &format!("/supervision-orders/{order_id}/acknowledge"),
        json!({}),
        200,
    )
    .await?;
    app.stop().await
}

/// Rules with one mail channel through the relay on `port` (STARTTLS required), trusting the
/// CA in `ca_file` when given.
fn mail_rules(port: u16, ca_file: Option<&std::path::Path>) -> anyhow::Result<SupervisionRules> {
    let ca = ca_file.map_or(String::new(), |path| {
        format!("ca_file = {:?}\n", path.display().to_string())
    });
    Ok(SupervisionRules::parse(&format!(
        "[smtp]\nhost = \"localhost\"\nport = {port}\nfrom = \"zhzj@xfj.example.gov.cn\"\n\
         starttls = true\n{ca}\n[[channel]]\nunit_id = \"xm\"\nkind = \"email\"\n\
         to = [\"ducha@xfj.example.gov.cn\"]\n"
    ))?)
}

/// Mail over STARTTLS to a relay whose certificate the bureau's own CA signed: sent, encrypted,
/// when the rules name the CA file; refused — never sent in plain text instead — when they do
/// not, and by a relay that offers no STARTTLS.
#[tokio::test]
async fn mail_goes_over_starttls_only_to_a_relay_it_trusts() -> anyhow::Result<()> {
    zhzj_trust::nats_access::install_crypto_provider();
    let dir = tempfile::tempdir()?;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let (cert, key) = (dir.path().join("relay.pem"), dir.path().join("relay.key"));
    std::fs::write(&cert, certified.cert.pem())?;
    std::fs::write(&key, certified.signing_key.serialize_pem())?;
    let (tls_port, tls_mail) = start_smtp_server_with(mailin_embedded::SslConfig::SelfSigned {
        cert_path: cert.display().to_string(),
        key_path: key.display().to_string(),
    })?;
    let (plain_port, plain_mail) = start_smtp_server()?;
    let http = reqwest::Client::new();
    let send = |rules: SupervisionRules| {
        let http = http.clone();
        async move {
            zhzj_supervision::channels::send(
                &http,
                rules.smtp.as_ref(),
                &rules.channels[0],
                "【督办】测试",
                "请于 2026-03-20 前办结反馈",
            )
            .await
        }
    };

    send(mail_rules(tls_port, Some(&cert))?).await?;
    {
        let mail = tls_mail.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        assert_eq!(mail.len(), 1);
        assert_eq!(mail[0].0, vec!["ducha@xfj.example.gov.cn".to_owned()]);
        assert!(
            mail[0].1.contains("请于 2026-03-20 前办结反馈"),
            "{}",
            mail[0].1
        );
    }

    let untrusted = send(mail_rules(tls_port, None)?).await;
    assert!(
        matches!(&untrusted, Err(zhzj_supervision::channels::ChannelError::Smtp(e))
            if e.contains("UnknownIssuer")),
        "{untrusted:?}"
    );
    let no_starttls = send(mail_rules(plain_port, None)?).await;
    assert!(
        matches!(&no_starttls, Err(zhzj_supervision::channels::ChannelError::Smtp(e))
            if e.contains("STARTTLS")),
        "{no_starttls:?}"
    );
    assert_eq!(tls_mail.lock().map(|m| m.len()).unwrap_or(0), 1);
    assert_eq!(plain_mail.lock().map(|m| m.len()).unwrap_or(0), 0);

    // A CA file that is not one stops the rules from loading.
    std::fs::write(dir.path().join("junk.pem"), "not a certificate")?;
    assert!(mail_rules(tls_port, Some(&dir.path().join("junk.pem"))).is_err());
    Ok(())
}

/// A meeting issues five orders to a department at once: its coordinator gets one message
/// counting them and its mailbox one mail, not five each; two orders at once still come one by
/// one.
#[tokio::test]
async fn many_orders_at_once_reach_a_unit_as_one_message() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let Tokens {
        city, department, ..
    } = Tokens::of(&app, 2).await?;
    let (smtp_port, mail) = start_smtp_server()?;
    let (webhook, _hooks) = start_webhook_server().await?;
    let watch = watch(&app, smtp_port, &webhook).await?;
    let order = |n: u32| {
        json!({
            "addressee_unit_id": "xm-dept-zjj",
            "level": "order",
            "matter": format!("第{n}项：排查本系统重复信访隐患并报送清单"),
            "answer_due_on": march(20),
            "responsible": "市住房局信访科",
        })
    };
    for n in 1..=5 {
        app.expect(&city, "/supervision-orders", order(n), 201)
            .await?;
    }
    watch_pass(&app, &watch).await?;
    let titles = inbox_titles(&app, &department, "supervision").await?;
    assert_eq!(titles, vec!["【督办】新增 5 条督办消息".to_owned()]);
    let inbox = app.get(&department, "/inbox").await?.json;
    let body = inbox["messages"][0]["body"].as_str().unwrap_or_default();
    assert_eq!(body.matches("下发督办单").count(), 5, "{body}");
    // (Besides the day's digest, which the department gets once.)
    let sent = || {
        mail.lock()
            .map(|m| {
                m.iter()
                    .filter(|(_, text)| !text.contains("每日摘要"))
                    .count()
            })
            .unwrap_or(usize::MAX)
    };
    assert_eq!(sent(), 1, "one mail for the five orders");

    for n in 6..=7 {
        app.expect(&city, "/supervision-orders", order(n), 201)
            .await?;
    }
    watch_pass(&app, &watch).await?;
    let titles = inbox_titles(&app, &department, "supervision").await?;
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert_eq!(
        titles
            .iter()
            .filter(|t| t.starts_with("【督办】厦门市向市住房局下发督办单"))
            .count(),
        2,
        "{titles:?}"
    );
    assert_eq!(sent(), 3);
    app.stop().await
}

/// Two gateways serve one store, each with its watch: every delivery goes out once, not once
/// per gateway — the retry of the one the robot refused too.
#[tokio::test]
async fn two_watches_send_each_delivery_once() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let Tokens { city, .. } = Tokens::of(&app, 2).await?;
    let (smtp_port, _mail) = start_smtp_server()?;
    let (webhook, hooks) = start_webhook_server().await?;
    let first = watch(&app, smtp_port, &webhook).await?;
    let second = watch(&app, smtp_port, &webhook).await?;
    // Three reminders to 市住房局, due 3-03.
    for n in 1..=3 {
        app.expect(
            &city,
            "/supervision-orders",
            json!({
                "addressee_unit_id": "xm-dept-zjj",
                "level": "reminder",
                "matter": format!("第{n}项：报送化解方案"),
                "answer_due_on": march(3),
                "responsible": "市住房局信访科",
            }),
            201,
        )
        .await?;
    }
    // On 3-05 the three are overdue and escalated (by one watch's clock): the escalations reach
    // the city's robot, three deliveries (the robot refuses its first call; it is retried).
    set_day(&app, 5)?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    first.escalation().run_once().await?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    // Both watches' notifiers at once, then again after the refused call's backoff.
    let (a, b) = tokio::join!(first.notifier().run_once(), second.notifier().run_once());
    a?;
    b?;
    let queued: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM notification_deliveries WHERE kind = 'wecom'")
            .fetch_one(app.projecting.store.pool())
            .await?;
    assert!(queued >= 3, "{queued} deliveries queued");
    let delivered = || hooks.lock().map(|h| h.bodies.len()).unwrap_or(usize::MAX);
    set_time(&app, 5, 10, 5)?;
    let (a, b) = tokio::join!(first.notifier().run_once(), second.notifier().run_once());
    a?;
    b?;
    let sent: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notification_deliveries WHERE kind = 'wecom' AND status = 'sent'",
    )
    .fetch_one(app.projecting.store.pool())
    .await?;
    assert_eq!(
        i64::try_from(delivered()).unwrap_or(-1),
        sent,
        "each sent delivery reached the robot once"
    );
    assert_eq!(sent, queued, "every delivery went out");
    app.stop().await
}
