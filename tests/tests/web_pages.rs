//! The web pages over plain HTTP (the browser test beside the binary drives them in Chromium):
//! strangers are sent to the login page, the login and every form refuse a missing or foreign
//! CSRF token and change nothing, a form's refusal and a stale version come back as a page, and
//! the checklist's new filters and sort orders work in the API the board uses.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use zhzj_tests::{DbKind, TEST_PASSWORD, TestApp, registration_json, row_column, spawn_app};

/// A client that shows redirects instead of following them.
fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(Policy::none())
        .build()?)
}

/// The value of cookie `name` set by `response`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// The `value` of the first hidden field `name` of a page.
fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

/// Posts a page's form as the holder of session cookie `session`.
async fn post_form(
    app: &TestApp,
    session: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> anyhow::Result<reqwest::Response> {
    Ok(client()?
        .post(format!("{}{path}", app.base))
        .header(COOKIE, format!("zhzj_session={session}"))
        .form(fields)
        .send()
        .await?)
}

/// Signs in through the login form; returns the session cookie.
async fn sign_in(app: &TestApp, username: &str) -> anyhow::Result<String> {
    let http = client()?;
    let form = http.get(format!("{}/login", app.base)).send().await?;
    let cookie = set_cookie(&form, "zhzj_login_csrf").expect("login csrf cookie");
    let token = hidden(&form.text().await?, "csrf").expect("csrf field");
    let answer = http
        .post(format!("{}/login", app.base))
        .header(COOKIE, format!("zhzj_login_csrf={cookie}"))
        .form(&[
            ("username", username),
            ("password", TEST_PASSWORD),
            ("csrf", &token),
            ("next", "/checklist"),
        ])
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 303, "signed in");
    assert_eq!(answer.headers()[LOCATION], "/checklist");
    Ok(set_cookie(&answer, "zhzj_session").expect("session cookie"))
}

#[tokio::test]
async fn strangers_are_sent_to_login_and_forged_forms_change_nothing() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let http = client()?;

    let answer = http
        .get(format!("{}/checklist?q=x", app.base))
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 303);
    assert_eq!(
        answer.headers()[LOCATION],
        "/login?next=%2Fchecklist%3Fq%3Dx"
    );
    let answer = http.get(format!("{}/", app.base)).send().await?;
    assert_eq!(answer.headers()[LOCATION], "/checklist");

    // A login without the form's token is refused, and sets no session.
    let answer = http
        .post(format!("{}/login", app.base))
        .form(&[
            ("username", "xietiao"),
            ("password", TEST_PASSWORD),
            ("csrf", "guess"),
        ])
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 403);
    assert!(set_cookie(&answer, "zhzj_session").is_none());
    // A wrong password shows the form again.
    let form = http.get(format!("{}/login", app.base)).send().await?;
    let cookie = set_cookie(&form, "zhzj_login_csrf").expect("cookie");
    let token = hidden(&form.text().await?, "csrf").expect("token");
    let answer = http
        .post(format!("{}/login", app.base))
        .header(COOKIE, format!("zhzj_login_csrf={cookie}"))
        .form(&[
            ("username", "xietiao"),
            ("password", "nope"),
            ("csrf", &token),
        ])
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 401);
    assert!(answer.text().await?.contains("用户名或密码错误"));

    let session = sign_in(&app, "xietiao").await?;
    let api_token = app.login("xietiao").await?;
    let registered = app
        .post(&api_token, "/cases", &registration_json(1))
        .await?;
    let case_id = registered.json["aggregate_id"]
        .as_str()
        .expect("case id")
        .to_owned();
    let page = http
        .get(format!("{}/cases/{case_id}", app.base))
        .header(COOKIE, format!("zhzj_session={session}"))
        .send()
        .await?;
    assert_eq!(page.status().as_u16(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()?
        .to_owned();
    assert!(
        policy.contains("default-src 'none'") && !policy.contains("script-src"),
        "{policy}"
    );
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = page.text().await?;
    assert!(!page.contains("<script"), "the pages run no script");
    let csrf = hidden(&page, "csrf").expect("csrf on the case page");
    let version = hidden(&page, "version").expect("version on the case page");
    let notes = format!("/cases/{case_id}/notes");

    // Forged: no token, another session's token. Refused, nothing appended.
    let other_session = sign_in(&app, "zhonghua").await?;
    let other_page = http
        .get(format!("{}/checklist", app.base))
        .header(COOKIE, format!("zhzj_session={other_session}"))
        .send()
        .await?
        .text()
        .await?;
    let other_csrf = hidden(&other_page, "csrf").expect("csrf");
    assert_ne!(other_csrf, csrf);
    for token in ["", other_csrf.as_str()] {
        let before = app.log_position().await?;
        let answer = http
            .post(format!("{}/cases/{case_id}/notes", app.base))
            .header(COOKIE, format!("zhzj_session={session}"))
            .form(&[
                ("csrf", token),
                ("version", &version),
                ("text", "伪造的备注"),
            ])
            .send()
            .await?;
        assert_eq!(answer.status().as_u16(), 403, "token {token:?}");
        assert!(answer.text().await?.contains("安全校验"));
        assert_eq!(
            app.log_position().await?,
            before,
            "a forged form appends nothing"
        );
    }

    // An empty field: the page again, the error beside the field, nothing appended.
    let before = app.log_position().await?;
    let answer = post_form(
        &app,
        &session,
        &notes,
        &[("csrf", &csrf), ("version", &version), ("text", " ")],
    )
    .await?;
    assert_eq!(answer.status().as_u16(), 422);
    let shown = answer.text().await?;
    assert!(shown.contains("class=\"field-error\""), "{shown}");
    assert!(shown.contains("不能为空"));
    assert_eq!(app.log_position().await?, before);

    // The right token: written, and back to the case with a notice.
    let answer = post_form(
        &app,
        &session,
        &notes,
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("text", "已电话联系"),
        ],
    )
    .await?;
    assert_eq!(answer.status().as_u16(), 303);
    assert_eq!(
        answer.headers()[LOCATION],
        format!("/cases/{case_id}?done=notes").as_str()
    );

    // The same version again is stale now: a conflict page that keeps the typed text.
    let before = app.log_position().await?;
    let answer = post_form(
        &app,
        &session,
        &notes,
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("text", "第二条备注"),
        ],
    )
    .await?;
    assert_eq!(answer.status().as_u16(), 409);
    let shown = answer.text().await?;
    assert!(shown.contains("id=\"conflict\""));
    assert!(shown.contains(">第二条备注</textarea>"));
    assert!(shown.contains("已电话联系"), "the new state is shown");
    assert_eq!(app.log_position().await?, before);

    // Logging out ends the session.
    let answer = http
        .post(format!("{}/logout", app.base))
        .header(COOKIE, format!("zhzj_session={session}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 303);
    let answer = http
        .get(format!("{}/checklist", app.base))
        .header(COOKIE, format!("zhzj_session={session}"))
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 303, "the session is gone");
    app.stop().await
}

#[tokio::test]
async fn the_checklist_filters_by_unit_and_class_and_sorts() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let mut ids = Vec::new();
    for n in 1..=3 {
        let answer = app.post(&token, "/cases", &registration_json(n)).await?;
        ids.push(answer.json["aggregate_id"].as_str().expect("id").to_owned());
    }
    let org = app.get(&token, "/org").await?.json;
    let unit = org["units"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["kind"] == "department"))
        .and_then(|u| u["unit_id"].as_str())
        .expect("a department")
        .to_owned();
    app.expect(
        &token,
        &format!("/cases/{}/units", ids[1]),
        serde_json::json!({"lead_unit_id": unit}),
        200,
    )
    .await?;
    app.expect(
        &token,
        &format!("/cases/{}/classification", ids[2]),
        serde_json::json!({"class": "hardship", "category": "劳动社保"}),
        200,
    )
    .await?;
    let by_unit = app.get(&token, &format!("/checklist?unit={unit}")).await?;
    assert_eq!(row_column(&by_unit.json, "case_id"), vec![ids[1].clone()]);
    let by_class = app.get(&token, "/checklist?class=hardship").await?;
    assert_eq!(row_column(&by_class.json, "case_id"), vec![ids[2].clone()]);
    let ascending = row_column(
        &app.get(&token, "/checklist?sort=case_number").await?.json,
        "case_number",
    );
    let descending = row_column(
        &app.get(&token, "/checklist?sort=-case_number").await?.json,
        "case_number",
    );
    let mut sorted = ascending.clone();
    sorted.sort();
    assert_eq!(ascending.len(), 3);
    assert_eq!(ascending, sorted);
    sorted.reverse();
    assert_eq!(descending, sorted);
    assert_eq!(
        app.get(&token, "/checklist?sort=deadline").await?.status,
        200
    );
    let bad = app.get(&token, "/checklist?sort=colour").await?;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["field"], "sort");
    let bad = app.get(&token, "/checklist?class=weird").await?;
    assert_eq!(bad.json["error"]["field"], "class");
    app.stop().await
}

/// The case page as the holder of `session`: its HTML, CSRF token and shown version.
async fn case_page(
    app: &TestApp,
    session: &str,
    case_id: &str,
) -> anyhow::Result<(String, String, String)> {
    let page = client()?
        .get(format!("{}/cases/{case_id}", app.base))
        .header(COOKIE, format!("zhzj_session={session}"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = hidden(&page, "csrf").unwrap_or_default();
    let version = hidden(&page, "version").unwrap_or_default();
    Ok((page, csrf, version))
}

#[tokio::test]
async fn a_claim_is_filed_and_reviewed_through_the_forms() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let registered = app.post(&token, "/cases", &registration_json(1)).await?;
    let case_id = registered.json["aggregate_id"]
        .as_str()
        .expect("case id")
        .to_owned();
    let coordinator = sign_in(&app, "xietiao").await?;
    let path = |action: &str| format!("/cases/{case_id}/{action}");

    let (_, csrf, version) = case_page(&app, &coordinator, &case_id).await?;
    let answer = post_form(
        &app,
        &coordinator,
        &path("leader"),
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("leader_id", "ldr-siming-1"),
        ],
    )
    .await?;
    assert_eq!(answer.status().as_u16(), 303);
    let (page, csrf, version) = case_page(&app, &coordinator, &case_id).await?;
    assert!(page.contains("action=\"/cases/") && page.contains("/claims\""));
    assert!(
        !page.contains("/review\""),
        "no review form for a coordinator"
    );
    let answer = post_form(
        &app,
        &coordinator,
        &path("claims"),
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("ground", "solved"),
            ("summary", "补偿款已发放，信访人签字确认"),
            ("evidence", "回访记录\r\n\r\n协议书"),
        ],
    )
    .await?;
    assert_eq!(answer.status().as_u16(), 303);
    let case = app.get(&token, &format!("/cases/{case_id}")).await?.json;
    assert_eq!(case["status"], "under_review");
    assert_eq!(
        case["claims"][0]["evidence"],
        serde_json::json!(["回访记录", "协议书"])
    );

    // The district reviewer accepts; the city's reviewer must give reasons to send it back.
    let district = sign_in(&app, "shenhe-qu").await?;
    let (page, csrf, version) = case_page(&app, &district, &case_id).await?;
    assert!(
        page.contains("/review\""),
        "the reviewer sees the review form"
    );
    assert!(!page.contains("/claims\""), "and not the coordinator's");
    assert!(
        page.contains("<option value=\"district\" selected>"),
        "their own level first"
    );
    let answer = post_form(
        &app,
        &district,
        &path("review"),
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("level", "district"),
            ("accept", "true"),
        ],
    )
    .await?;
    assert_eq!(answer.status().as_u16(), 303);
    let city = sign_in(&app, "shenhe-shi").await?;
    let (page, csrf, version) = case_page(&app, &city, &case_id).await?;
    assert!(page.contains("<option value=\"city\" selected>"));
    let before = app.log_position().await?;
    let answer = post_form(
        &app,
        &city,
        &path("review"),
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("level", "city"),
            ("accept", "false"),
            ("reasons", ""),
        ],
    )
    .await?;
    assert_eq!(answer.status().as_u16(), 422);
    let shown = answer.text().await?;
    assert!(shown.contains("class=\"field-error\""), "{shown}");
    assert!(shown.contains("id=\"accept-no\" name=\"accept\" value=\"false\" checked"));
    assert_eq!(app.log_position().await?, before);
    let answer = post_form(
        &app,
        &city,
        &path("review"),
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("level", "city"),
            ("accept", "true"),
        ],
    )
    .await?;
    assert_eq!(answer.status().as_u16(), 303);
    let case = app.get(&token, &format!("/cases/{case_id}")).await?.json;
    assert_eq!(case["status"], "crossed_off");

    // A viewer reads the case and its timeline, with no form to send.
    let viewer = sign_in(&app, "chakan").await?;
    let (page, _, _) = case_page(&app, &viewer, &case_id).await?;
    assert!(page.contains("销号") && page.contains("审核通过"));
    assert!(!page.contains(&format!("action=\"/cases/{case_id}/")));
    app.stop().await
}

/// A clerk who follows a broken link, edits an address or posts from a stale tab used to get
/// what the framework answers by itself: English plain text (`Failed to deserialize query
/// string…`, `Invalid URL…`, `Form requests must have…`), an empty 405, or the API's JSON for an
/// unknown page. Each is now a Chinese page in the signed-in frame, with its status kept.
#[tokio::test]
async fn broken_addresses_and_forms_answer_a_chinese_page() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let session = sign_in(&app, "xietiao").await?;
    let http = client()?;
    for (method, path, body_type, status, heading) in [
        (
            "GET",
            "/warnings?page=99999999999999999999",
            None,
            400,
            "请求有误",
        ),
        ("GET", "/cases/%FF%FE", None, 400, "请求有误"),
        ("GET", "/no-such-page", None, 404, "未找到"),
        ("POST", "/checklist", None, 405, "不支持的操作"),
        ("POST", "/meetings", Some("text/plain"), 415, "请求有误"),
    ] {
        let mut request = http
            .request(method.parse()?, format!("{}{path}", app.base))
            .header(COOKIE, format!("zhzj_session={session}"));
        if let Some(body_type) = body_type {
            request = request.header(CONTENT_TYPE, body_type).body("week=2026w10");
        }
        let answer = request.send().await?;
        assert_eq!(answer.status().as_u16(), status, "{method} {path}");
        let content_type = answer.headers()[CONTENT_TYPE].to_str()?.to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{method} {path}: {content_type}"
        );
        let page = answer.text().await?;
        assert!(
            page.contains(&format!("<h1>{heading}</h1>")) && page.contains("action=\"/logout\""),
            "{method} {path}: {page}"
        );
        assert!(
            !page.contains("Failed to") && !page.contains("Invalid URL"),
            "{method} {path}: {page}"
        );
    }
    // A stranger asking for a page that does not exist gets the page too, without the frame.
    let answer = http
        .get(format!("{}/no-such-page", app.base))
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 404);
    let page = answer.text().await?;
    assert!(
        page.contains("<h1>未找到</h1>") && !page.contains("action=\"/logout\""),
        "{page}"
    );
    // The API keeps its JSON for an unknown address.
    let answer = http
        .get(format!("{}/api/v1/no-such-thing", app.base))
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 404);
    assert!(
        answer.headers()[CONTENT_TYPE]
            .to_str()?
            .starts_with("application/json")
    );
    app.stop().await
}

/// A page as the holder of session cookie `session`.
async fn page(app: &TestApp, session: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let answer = client()?
        .get(format!("{}{path}", app.base))
        .header(COOKIE, format!("zhzj_session={session}"))
        .send()
        .await?;
    Ok((answer.status().as_u16(), answer.text().await?))
}

#[tokio::test]
async fn a_supervision_order_is_issued_signed_for_answered_and_accepted_through_the_pages()
-> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = sign_in(&app, "xietiao").await?;
    let department = sign_in(&app, "zhufang").await?;
    let (status, list) = page(&app, &city, "/supervision").await?;
    assert_eq!(status, 200);
    assert!(
        list.contains("下发督办单") && list.contains("市住房局"),
        "{list}"
    );
    assert!(
        list.contains("id=\"warning-count\""),
        "the header counts warnings"
    );
    let csrf = hidden(&list, "csrf").unwrap_or_default();
    // A refusal comes back as the page, naming what is wrong.
    let refused = post_form(
        &app,
        &city,
        "/supervision",
        &[
            ("csrf", &csrf),
            ("addressee_unit_id", "xm-dept-zjj"),
            ("level", "order"),
            ("matter", "限期化解"),
            ("answer_due_on", "2026-01-01"),
            ("responsible", "张科长"),
        ],
    )
    .await?;
    assert_eq!(refused.status().as_u16(), 422);
    assert!(refused.text().await?.contains("不能早于今天"));
    let issued = post_form(
        &app,
        &city,
        "/supervision",
        &[
            ("csrf", &csrf),
            ("addressee_unit_id", "xm-dept-zjj"),
            ("level", "order"),
            ("matter", "限期化解某小区征收补偿积案"),
            ("answer_due_on", "2026-03-09"),
            ("responsible", "张科长"),
        ],
    )
    .await?;
    assert_eq!(issued.status().as_u16(), 303);
    let orders = app
        .get(&app.login("xietiao").await?, "/supervision-orders")
        .await?;
    let order_id = orders.json[0]["order_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/supervision/{order_id}");

    // The department signs for it, answers it; the city accepts.
    let (_, order) = page(&app, &department, &path).await?;
    assert!(
        order.contains("待签收") && order.contains("id=\"acknowledge\""),
        "{order}"
    );
    let csrf = hidden(&order, "csrf").unwrap_or_default();
    let signed = post_form(
        &app,
        &department,
        &format!("{path}/acknowledge"),
        &[("csrf", &csrf)],
    )
    .await?;
    assert_eq!(signed.status().as_u16(), 303);
    let answered = post_form(
        &app,
        &department,
        &format!("{path}/answer"),
        &[
            ("csrf", &csrf),
            ("text", "已约访并达成协议"),
            ("evidence", "协议书\n回访记录"),
        ],
    )
    .await?;
    assert_eq!(answered.status().as_u16(), 303);
    let (_, order) = page(&app, &city, &path).await?;
    assert!(
        order.contains("待审核") && order.contains("id=\"accept\""),
        "{order}"
    );
    let csrf = hidden(&order, "csrf").unwrap_or_default();
    let accepted = post_form(
        &app,
        &city,
        &format!("{path}/accept"),
        &[("csrf", &csrf), ("opinion", "同意")],
    )
    .await?;
    assert_eq!(accepted.status().as_u16(), 303);
    let (_, order) = page(&app, &department, &path).await?;
    assert!(
        order.contains("已办结") && order.contains("审核通过，办结"),
        "{order}"
    );
    assert!(
        !order.contains("id=\"answer\""),
        "no form on a closed order"
    );
    // A forged form changes nothing.
    let forged = post_form(
        &app,
        &department,
        &format!("{path}/progress"),
        &[("csrf", "x"), ("text", "x")],
    )
    .await?;
    assert_eq!(forged.status().as_u16(), 403);
    let (status, warnings) = page(&app, &city, "/warnings").await?;
    assert_eq!(status, 200);
    assert!(warnings.contains("id=\"open-warnings\""), "{warnings}");
    let (status, inbox) = page(&app, &department, "/inbox").await?;
    assert_eq!(status, 200);
    assert!(inbox.contains("没有消息"), "{inbox}");
    app.stop().await
}
