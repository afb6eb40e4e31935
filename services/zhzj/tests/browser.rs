//! The web pages in a real browser: `zhzj up --demo` (its own nats-server, SQLite and the demo
//! data) driven through Debian's headless Chromium by chromedriver. A district coordinator logs
//! in, filters the checklist, opens a case, assigns its leader, adds and completes a measure and
//! sees the checklist change, meets a conflict when someone else changed the case first (keeping
//! what they typed), and cannot reach a case of another district. A screenshot of every page is
//! saved (office monitor and phone sizes) under `target/screenshots/` or `$ZHZJ_SCREENSHOTS`.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use common::{Up, api_get, demo_loaded, login};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const DEMO_PASSWORD: &str = "zhzj-demo-2026";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver on a free port, stopped when dropped.
struct Driver {
    _child: Child,
    url: String,
}

impl Driver {
    async fn start() -> anyhow::Result<Self> {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            ensure!(
                Path::new(binary).exists(),
                "{binary} is missing: install Debian's chromium and chromium-driver \
                 (deploy/test.sh does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(Self {
                    _child: child,
                    url: format!("http://127.0.0.1:{port}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("chromedriver did not start")
    }

    /// A headless Chromium at 1366×768.
    async fn browser(&self) -> anyhow::Result<Client> {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1366,768", "--lang=zh-CN"],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .context("starting Chromium through chromedriver")?;
        Ok(client)
    }
}

/// Where screenshots go.
fn screenshot_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("ZHZJ_SCREENSHOTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Saves the whole page (not only the viewport) as `<name>.png`, at `width` pixels wide.
async fn screenshot(browser: &Client, name: &str, width: u32) -> anyhow::Result<()> {
    let height = browser
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await?
        .as_u64()
        .unwrap_or(768);
    let height = u32::try_from(height).unwrap_or(768).clamp(400, 6000);
    browser.set_window_size(width, height + 140).await?;
    let png = browser.screenshot().await?;
    browser.set_window_size(1366, 768).await?;
    ensure!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshot_dir()?.join(format!("{name}.png")), png)?;
    Ok(())
}

/// Waits for `css`; on timeout, says what the page shows instead.
async fn wait_for(browser: &Client, css: &str) -> anyhow::Result<()> {
    if browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .is_ok()
    {
        return Ok(());
    }
    let url = browser.current_url().await?;
    let shown = match browser.find(Locator::Css("main")).await {
        Ok(main) => main.text().await.unwrap_or_default(),
        Err(_) => browser.source().await.unwrap_or_default(),
    };
    bail!("{css} did not appear on {url}; the page shows:\n{shown}")
}

/// Waits until `css` shows `needle` (the page before a form was sent may show `css` too, and
/// its elements go stale when the next one loads).
async fn wait_for_text(browser: &Client, css: &str, needle: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
            && text.contains(needle)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{css} never showed {needle}")
}

/// Waits until the browser shows a page whose address contains `part` (a form sent by GET),
/// so that an element of the page before is not taken for one of the page after.
async fn wait_for_url(browser: &Client, part: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if browser.current_url().await?.as_str().contains(part) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the address never contained {part}")
}

/// Waits for the notice that the action `label` was saved (the page before the form was sent
/// may show an older notice).
async fn saved(browser: &Client, label: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if let Ok(flash) = browser.find(Locator::Css(".flash")).await
            && let Ok(text) = flash.text().await
            && text.contains(label)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for(browser, ".no-such-notice").await
}

async fn text_of(browser: &Client, css: &str) -> anyhow::Result<String> {
    wait_for(browser, css).await?;
    Ok(browser
        .find(Locator::Css(css))
        .await
        .with_context(|| format!("no {css}"))?
        .text()
        .await?)
}

async fn click(browser: &Client, css: &str) -> anyhow::Result<()> {
    browser
        .find(Locator::Css(css))
        .await
        .with_context(|| format!("no {css}"))?
        .click()
        .await?;
    Ok(())
}

async fn type_into(browser: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    let field = browser
        .find(Locator::Css(css))
        .await
        .with_context(|| format!("no {css}"))?;
    field.clear().await?;
    field.send_keys(text).await?;
    Ok(())
}

async fn page_source(browser: &Client) -> anyhow::Result<String> {
    Ok(browser.source().await?)
}

/// Signs in through the login page.
async fn sign_in(browser: &Client, base: &str, username: &str) -> anyhow::Result<()> {
    browser.goto(&format!("{base}/login")).await?;
    type_into(browser, "#username", username).await?;
    type_into(browser, "#password", DEMO_PASSWORD).await?;
    click(browser, ".login button[type=submit]").await?;
    wait_for(browser, "#checklist").await?;
    Ok(())
}

/// The unit id of the unit named `name`.
fn unit_named(org: &Value, name: &str) -> anyhow::Result<String> {
    org["units"]
        .as_array()
        .and_then(|units| units.iter().find(|u| u["name"] == name))
        .and_then(|u| u["unit_id"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no unit {name}"))
}

#[tokio::test]
async fn a_coordinator_works_a_case_through_the_pages() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let up = Up::start(dir.path(), &["--demo"]).await?;
    demo_loaded(&up, 1).await?;
    let driver = Driver::start().await?;
    let browser = driver.browser().await?;
    let result = walk_through(&up, &browser).await;
    let _ = browser.close().await;
    result
}

async fn walk_through(up: &Up, browser: &Client) -> anyhow::Result<()> {
    let base = up.http.as_str();
    let admin = login(base, "admin", DEMO_PASSWORD).await?;
    let org = api_get(up, &admin, "/org").await?;
    let siming = unit_named(&org, "思明区")?;
    let huli = unit_named(&org, "湖里区")?;

    // A stranger is sent to the login page, and comes back after signing in.
    browser.goto(&format!("{base}/checklist")).await?;
    wait_for(browser, "#username").await?;
    ensure!(
        browser
            .current_url()
            .await?
            .as_str()
            .contains("/login?next=")
    );
    screenshot(browser, "01-login", 1366).await?;
    type_into(browser, "#username", "siming").await?;
    type_into(browser, "#password", "wrong-password").await?;
    click(browser, ".login button[type=submit]").await?;
    ensure!(
        text_of(browser, ".alert")
            .await?
            .contains("用户名或密码错误")
    );
    sign_in(browser, base, "siming").await?;
    ensure!(
        text_of(browser, ".whoami")
            .await?
            .contains("思明区专班协调员")
    );
    screenshot(browser, "02-checklist", 1366).await?;

    // Filter: the district's unassigned cases.
    browser
        .find(Locator::Css("#f-status"))
        .await?
        .select_by_value("unassigned")
        .await?;
    click(browser, ".filters button[type=submit]").await?;
    let mut filtered = false;
    for _ in 0..200 {
        if browser
            .current_url()
            .await?
            .as_str()
            .contains("status=unassigned")
        {
            filtered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(filtered, "the filter was not applied");
    wait_for(browser, "#checklist").await?;
    let statuses = browser
        .find_all(Locator::Css("#checklist tbody .status"))
        .await?;
    ensure!(!statuses.is_empty(), "the demo has unassigned cases");
    for status in &statuses {
        ensure!(status.text().await? == "待包案");
    }
    let districts = browser
        .find_all(Locator::Css("#checklist tbody tr td:nth-child(3)"))
        .await?;
    for district in &districts {
        let text = district.text().await?;
        ensure!(
            text.starts_with("思明区"),
            "outside the user's district: {text}"
        );
    }
    screenshot(browser, "03-checklist-filtered", 1366).await?;

    // Open the first one.
    let first = browser
        .find(Locator::Css("#checklist tbody tr td:first-child a"))
        .await?;
    let case_number = first.text().await?;
    first.click().await?;
    wait_for(browser, "#timeline").await?;
    let case_url = browser.current_url().await?.to_string();
    let case_id = case_url
        .rsplit('/')
        .next()
        .context("case id in the address")?
        .to_owned();
    ensure!(text_of(browser, "h1").await?.contains(&case_number));
    ensure!(
        text_of(browser, "#timeline")
            .await?
            .contains("登记列入清单")
    );
    screenshot(browser, "04-case", 1366).await?;
    screenshot(browser, "04-case-phone", 390).await?;

    // Assign a leader of the district.
    let leader = org["leaders"]
        .as_array()
        .and_then(|leaders| leaders.iter().find(|l| l["unit_id"] == siming.as_str()))
        .context("a 思明区 leader")?;
    let leader_id = leader["leader_id"].as_str().context("leader id")?;
    let leader_name = leader["name"].as_str().context("leader name")?;
    click(browser, "#leader summary").await?;
    browser
        .find(Locator::Css("#leader_id"))
        .await?
        .select_by_value(leader_id)
        .await?;
    click(browser, "#leader button[type=submit]").await?;
    saved(browser, "指定包案领导").await?;
    ensure!(text_of(browser, ".facts").await?.contains(leader_name));

    // A field left empty is refused beside the field, and nothing is written.
    click(browser, "#measures summary").await?;
    click(browser, "#measures button[type=submit]").await?;
    wait_for(browser, "#measures .field-error").await?;
    ensure!(
        text_of(browser, "#measures .field-error")
            .await?
            .contains("不能为空")
    );

    // Add a measure and complete it; the checklist shows it.
    let before = api_get(up, &admin, &format!("/cases/{case_id}")).await?;
    type_into(browser, "#description", "包案领导入户走访，核实诉求").await?;
    click(browser, "#measures button[type=submit]").await?;
    saved(browser, "添加化解措施").await?;
    ensure!(
        text_of(browser, ".measures")
            .await?
            .contains("包案领导入户走访")
    );
    type_into(
        browser,
        "form[id^=form-complete-] input[name=result]",
        "已走访并形成记录",
    )
    .await?;
    click(browser, "form[id^=form-complete-] button[type=submit]").await?;
    saved(browser, "落实措施").await?;
    let total = before["measures_total"]
        .as_i64()
        .context("measures_total")?;
    let done = before["measures_done"].as_i64().context("measures_done")?;
    browser
        .goto(&format!("{base}/checklist?q={case_number}"))
        .await?;
    let measures = text_of(browser, "#checklist tbody td.measures").await?;
    ensure!(
        measures == format!("{}/{}", done + 1, total + 1),
        "the checklist shows {measures}, expected {}/{}",
        done + 1,
        total + 1
    );
    ensure!(
        text_of(browser, "#checklist tbody")
            .await?
            .contains(leader_name)
    );

    // Someone else changes the case while the page is open: the page says so, shows the new
    // state and keeps what the user typed.
    browser.goto(&case_url).await?;
    wait_for(browser, "#timeline").await?;
    let reply = reqwest::Client::new()
        .post(format!("{base}/api/v1/cases/{case_id}/notes"))
        .bearer_auth(&admin)
        .json(&json!({"text": "市专班已电话督办"}))
        .send()
        .await?;
    ensure!(reply.status().is_success(), "{}", reply.text().await?);
    click(browser, "#notes summary").await?;
    type_into(browser, "#note-text", "浏览器中输入的备注：已约谈信访人").await?;
    click(browser, "#notes button[type=submit]").await?;
    wait_for(browser, "#conflict").await?;
    ensure!(
        text_of(browser, "#conflict")
            .await?
            .contains("其他人已先修改")
    );
    let kept = browser
        .find(Locator::Css("#note-text"))
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    ensure!(
        kept == "浏览器中输入的备注：已约谈信访人",
        "typed text lost: {kept}"
    );
    ensure!(
        text_of(browser, "#timeline")
            .await?
            .contains("市专班已电话督办")
    );
    screenshot(browser, "05-case-conflict", 1366).await?;
    // Sent again against the new state, it goes through.
    click(browser, "#notes button[type=submit]").await?;
    saved(browser, "记录备注").await?;
    ensure!(
        text_of(browser, "#timeline")
            .await?
            .contains("已约谈信访人")
    );

    // A case of another district cannot be reached.
    let other = api_get(
        up,
        &admin,
        &format!("/checklist?district={huli}&per_page=1"),
    )
    .await?;
    let other_id = other["rows"][0]["case_id"]
        .as_str()
        .context("a 湖里区 case")?;
    let other_number = other["rows"][0]["case_number"].as_str().context("number")?;
    browser.goto(&format!("{base}/cases/{other_id}")).await?;
    ensure!(text_of(browser, "h1").await?.contains("未找到"));
    ensure!(!page_source(browser).await?.contains(other_number));
    screenshot(browser, "06-case-out-of-scope", 1366).await?;
    // Nor a form posted to it by hand.
    browser
        .goto(&format!("{base}/checklist?q={other_number}"))
        .await?;
    ensure!(
        text_of(browser, "#checklist tbody")
            .await?
            .contains("没有符合条件的案件")
    );

    // The campaign pages.
    for (path, name, marker) in [
        ("/leaders", "07-leaders", "#leaders"),
        ("/meetings", "08-meetings", "#meetings"),
        ("/bulletins", "10-bulletins", "#published"),
        ("/pushes", "12-pushes", "#pushes"),
        ("/import", "15-import", ".upload"),
    ] {
        browser.goto(&format!("{base}{path}")).await?;
        wait_for(browser, marker).await?;
        screenshot(browser, name, 1366).await?;
    }
    // Idle cases are named by their numbers, linking to them.
    browser.goto(&format!("{base}/leaders")).await?;
    let idle = browser
        .find_all(Locator::Css("#leaders tbody td:last-child a"))
        .await?;
    ensure!(!idle.is_empty(), "the demo has idle cases");
    ensure!(idle[0].text().await?.starts_with("XF"), "a case number");
    browser.goto(&format!("{base}/meetings")).await?;
    click(browser, "#meetings tbody a").await?;
    wait_for(browser, "#instructions").await?;
    ensure!(text_of(browser, ".overview").await?.contains("超期案件"));
    screenshot(browser, "09-meeting", 1366).await?;
    browser.goto(&format!("{base}/bulletins")).await?;
    click(browser, "#published a").await?;
    wait_for(browser, "svg.chart").await?;
    ensure!(text_of(browser, "h1").await?.contains("月通报"));
    screenshot(browser, "11-bulletin", 1366).await?;
    browser.goto(&format!("{base}/pushes")).await?;
    click(browser, "#pushes tbody a").await?;
    wait_for(browser, "svg.chart").await?;
    screenshot(browser, "13-push", 1366).await?;

    // A district user cannot see the year-end assessment; the city can, with drill-down.
    browser.goto(&format!("{base}/assessments")).await?;
    ensure!(text_of(browser, "main").await?.contains("市级"));
    click(browser, ".whoami button").await?;
    wait_for(browser, "#username").await?;
    browser.goto(&format!("{base}/cases/{case_id}")).await?;
    wait_for(browser, "#username").await?;
    sign_in(browser, base, "xietiao").await?;
    browser.goto(&format!("{base}/assessments")).await?;
    wait_for(browser, "#ranking").await?;
    ensure!(text_of(browser, "svg.chart").await?.contains("考核得分"));
    screenshot(browser, "14-assessment", 1366).await?;
    click(browser, "#ranking tbody a").await?;
    wait_for(browser, "#drill table").await?;
    ensure!(text_of(browser, "#drill").await?.contains("计入考核的案件"));
    screenshot(browser, "14-assessment-drill", 1366).await?;

    // 督办: the city issues an order from the page; it is listed, opened, waiting to be signed
    // for; the header counts warnings and messages on every page.
    browser.goto(&format!("{base}/supervision")).await?;
    wait_for(browser, "#issue-order").await?;
    ensure!(
        text_of(browser, "#warning-count")
            .await?
            .starts_with("预警")
    );
    ensure!(
        text_of(browser, "#message-count")
            .await?
            .starts_with("消息")
    );
    type_into(
        browser,
        "#matter",
        "请于本周内约访信访人并报送化解方案（浏览器测试）",
    )
    .await?;
    type_into(browser, "#responsible", "浏览器测试责任人").await?;
    click(browser, "#issue-order button[type=submit]").await?;
    // The list is on the page the form was sent from too: wait for the new one to be listed.
    wait_for_text(browser, "#orders", "浏览器测试").await?;
    click(browser, "#orders tbody tr:first-child a").await?;
    wait_for(browser, "#order-facts").await?;
    ensure!(text_of(browser, "#order-status").await?.contains("待签收"));
    screenshot(browser, "15-supervision-order", 1366).await?;
    browser.goto(&format!("{base}/warnings")).await?;
    wait_for(browser, "#warnings").await?;
    browser.goto(&format!("{base}/inbox")).await?;
    wait_for(browser, "#messages").await?;

    // A ledger with problems: every problem listed by row, nothing imported.
    let template = reqwest::Client::new()
        .get(format!("{base}/api/v1/ledger/template.csv"))
        .bearer_auth(&admin)
        .send()
        .await?
        .text()
        .await?;
    let header = template.lines().next().context("template header")?;
    let columns = header.split(',').count();
    let bad_row = vec!["不存在的区"; columns].join(",");
    let ledger = dir_file(up, "bad-ledger.csv", &format!("{header}\r\n{bad_row}\r\n"))?;
    let rows_before = api_get(up, &admin, "/checklist?per_page=1").await?["total"].clone();
    browser.goto(&format!("{base}/import")).await?;
    browser
        .find(Locator::Css("#ledger"))
        .await?
        .send_keys(&ledger.to_string_lossy())
        .await?;
    click(browser, ".upload button[type=submit]").await?;
    wait_for(browser, "#problems").await?;
    ensure!(
        text_of(browser, "#problems").await?.contains('2'),
        "row 2 named"
    );
    let rows_after = api_get(up, &admin, "/checklist?per_page=1").await?["total"].clone();
    ensure!(rows_before == rows_after, "a refused ledger adds nothing");
    screenshot(browser, "16-import-errors", 1366).await?;

    browser.goto(&format!("{base}/checklist")).await?;
    screenshot(browser, "17-checklist-phone", 390).await?;
    Ok(())
}

/// Writes a file into the data dir of `up`.
fn dir_file(up: &Up, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = up.data.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

#[tokio::test]
async fn an_administrator_manages_accounts_through_the_page() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let up = Up::start(dir.path(), &["--demo"]).await?;
    demo_loaded(&up, 1).await?;
    let driver = Driver::start().await?;
    let browser = driver.browser().await?;
    let result = administer_accounts(&up, &browser).await;
    let _ = browser.close().await;
    result
}

/// Submits the form `form` of the row of `username` on the 用户管理 page.
async fn row_action(browser: &Client, username: &str, action: &str) -> anyhow::Result<()> {
    click(
        browser,
        &format!("#user-{username} form[action$='/{action}'] button"),
    )
    .await
}

async fn administer_accounts(up: &Up, browser: &Client) -> anyhow::Result<()> {
    let base = up.http.as_str();
    // Not in a coordinator's menu, and refused to them.
    sign_in(browser, base, "siming").await?;
    ensure!(!text_of(browser, "header nav").await?.contains("用户管理"));
    browser.goto(&format!("{base}/users")).await?;
    ensure!(
        page_source(browser)
            .await?
            .contains("只有系统管理员可以管理用户")
    );
    click(browser, ".whoami button").await?;
    wait_for(browser, "#username").await?;

    sign_in(browser, base, "admin").await?;
    ensure!(!text_of(browser, "header nav").await?.contains("审计记录"));
    click(browser, "header nav a[href='/users']").await?;
    wait_for(browser, "#accounts").await?;
    ensure!(text_of(browser, "#user-siming").await?.contains("正常"));
    screenshot(browser, "20-users", 1366).await?;

    // A weak password is refused with its reason; a good one creates the account.
    type_into(browser, "#new-username", "huli-clerk").await?;
    type_into(browser, "#new-display-name", "湖里区信访干部").await?;
    browser
        .find(Locator::Css("#new-unit option[value='xm-huli']"))
        .await?
        .click()
        .await?;
    type_into(browser, "#new-password", "password").await?;
    click(browser, "#add-user button").await?;
    ensure!(
        text_of(browser, "#users-error")
            .await?
            .contains("至少 10 个字符")
    );
    type_into(browser, "#new-username", "huli-clerk").await?;
    type_into(browser, "#new-display-name", "湖里区信访干部").await?;
    browser
        .find(Locator::Css("#new-unit option[value='xm-huli']"))
        .await?
        .click()
        .await?;
    type_into(browser, "#new-password", "Huli-first-2026").await?;
    click(browser, "#add-user button").await?;
    saved(browser, "已创建用户 huli-clerk").await?;
    ensure!(
        text_of(browser, "#user-huli-clerk")
            .await?
            .contains("待修改密码")
    );
    // A new account is a coordinator unless the administrator picks another role.
    ensure!(
        text_of(browser, "#user-huli-clerk")
            .await?
            .contains("专班协调员")
    );

    // Its role changes to 查看人员.
    browser
        .find(Locator::Css(
            "#user-huli-clerk form[action$='/assignment'] select[name=role] option[value=viewer]",
        ))
        .await?
        .click()
        .await?;
    row_action(browser, "huli-clerk", "assignment").await?;
    saved(browser, "已修改 huli-clerk").await?;
    ensure!(
        text_of(browser, "#user-huli-clerk")
            .await?
            .contains("查看人员")
    );

    // Five wrong passwords lock it; the page shows it and unlocks it.
    let http = reqwest::Client::new();
    for _ in 0..5 {
        http.post(format!("{base}/api/v1/session"))
            .json(&json!({"username": "huli-clerk", "password": "Wrong-pass-2026"}))
            .send()
            .await?;
    }
    let locked = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "huli-clerk", "password": "Huli-first-2026"}))
        .send()
        .await?;
    ensure!(locked.status() == 401 && locked.headers().contains_key("retry-after"));
    browser.goto(&format!("{base}/users")).await?;
    ensure!(
        text_of(browser, "#user-huli-clerk")
            .await?
            .contains("已锁定")
    );
    row_action(browser, "huli-clerk", "unlock").await?;
    saved(browser, "已解除 huli-clerk 的锁定").await?;

    // Disabled, it cannot log in; enabled, it can.
    row_action(browser, "huli-clerk", "disable").await?;
    saved(browser, "已停用 huli-clerk").await?;
    ensure!(
        text_of(browser, "#user-huli-clerk")
            .await?
            .contains("已停用")
    );
    let refused = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "huli-clerk", "password": "Huli-first-2026"}))
        .send()
        .await?;
    ensure!(refused.status() == 401);
    row_action(browser, "huli-clerk", "enable").await?;
    saved(browser, "已启用 huli-clerk").await?;
    click(browser, ".whoami button").await?;
    wait_for(browser, "#username").await?;

    // Its first login goes to 修改密码 before anything else.
    browser.goto(&format!("{base}/login")).await?;
    type_into(browser, "#username", "huli-clerk").await?;
    type_into(browser, "#password", "Huli-first-2026").await?;
    click(browser, ".login button[type=submit]").await?;
    wait_for(browser, "#change-password").await?;
    browser.goto(&format!("{base}/checklist")).await?;
    wait_for(browser, "#change-password").await?;
    screenshot(browser, "21-first-login-password", 1366).await?;
    type_into(browser, "#current_password", "Huli-first-2026").await?;
    type_into(browser, "#new_password", "Huli-second-2026").await?;
    type_into(browser, "#confirm_password", "Huli-second-2026").await?;
    click(browser, "#change-password button").await?;
    wait_for(browser, "#checklist").await?;
    click(browser, ".whoami button").await?;
    wait_for(browser, "#username").await?;

    // The auditor sees each change and each login in the audit trail; the administrator's menu
    // has no trail, the auditor's no user administration.
    browser.goto(&format!("{base}/login")).await?;
    type_into(browser, "#username", "shenji").await?;
    type_into(browser, "#password", DEMO_PASSWORD).await?;
    click(browser, ".login button[type=submit]").await?;
    wait_for(browser, "#audit-records").await?;
    let menu = text_of(browser, "header nav").await?;
    ensure!(
        menu.contains("审计记录") && !menu.contains("用户管理"),
        "{menu}"
    );
    click(browser, "header nav a[href='/audit']").await?;
    wait_for(browser, "#audit-records").await?;
    type_into(browser, "#audit-username", "huli-clerk").await?;
    click(browser, "#audit-filter button").await?;
    // The page before the filter was sent has records too: wait for the filtered page.
    wait_for_url(browser, "username=huli-clerk").await?;
    let trail = text_of(browser, "#audit-records").await?;
    for seen in [
        "新建账号（湖里区信访干部）",
        "变更权限：角色 专班协调员；单位 xm-huli；领导 — → 角色 查看人员",
        "登录失败：密码错误",
        "连续登录失败，锁定账号至",
        "解除登录锁定",
        "停用账号",
        "登录失败：账号已停用",
        "启用账号",
        "登录成功",
        "本人修改密码",
    ] {
        ensure!(trail.contains(seen), "{seen} is not in the trail: {trail}");
    }
    ensure!(
        trail.contains("admin"),
        "the administrator is named: {trail}"
    );
    screenshot(browser, "22-audit-trail", 1366).await?;
    let export = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/audit/export.csv?username=huli-clerk"
        ))
        .send()
        .await?;
    ensure!(export.status() == 401, "the export needs a session");
    Ok(())
}
