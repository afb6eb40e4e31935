//! Petitioners' personal data on the read side (PIPL; 《信访工作条例》 第三十条: the accused unit
//! must not learn who petitioned): the duplicate check names no one, names only cases in the
//! caller's area, wants a full ID number, is recorded and rate-limited; ID and phone numbers typed
//! into free text are masked like the structured fields.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use serde_json::json;
use sqlx::Row;
use zhzj_tests::{
    DbKind, TestApp, registration_json, spawn_app, synthetic_id_number, test_master_key,
    wait_caught_up,
};

/// The `personal_data_reads` rows of `username`: `(case_id, purpose)`.
async fn reads_of(app: &TestApp, username: &str) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT case_id, purpose FROM personal_data_reads WHERE username = $1 ORDER BY id",
    )
    .bind(username)
    .fetch_all(app.projecting.store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("case_id")?, r.try_get("purpose")?)))
        .collect::<Result<_, sqlx::Error>>()?)
}

#[tokio::test]
async fn the_duplicate_check_tells_an_enumerating_department_nothing() -> anyhow::Result<()> {
    duplicate_check_on(DbKind::Sqlite).await
}

#[tokio::test]
async fn the_duplicate_check_tells_an_enumerating_department_nothing_on_postgres()
-> anyhow::Result<()> {
    duplicate_check_on(DbKind::Postgres).await
}

async fn duplicate_check_on(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    let city = app.login("xietiao").await?;
    let case = app
        .expect(&city, "/cases", registration_json(1), 201)
        .await?;
    let case_id = case["aggregate_id"].as_str().unwrap_or("").to_owned();
    let id_number = synthetic_id_number(1);

    // The department coordinator (the accused unit) with the full, right ID number: a case
    // exists somewhere, which one and whose is not said.
    let department = app.login("zhufang").await?;
    let answer = app
        .get(
            &department,
            &format!("/cases/duplicates?id_number={id_number}"),
        )
        .await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json["cases"], json!([]));
    assert_eq!(answer.json["outside_your_area"], true);
    let text = answer.json.to_string();
    assert!(
        !text.contains("张三") && !text.contains(&case_id) && !text.contains("XF"),
        "{text}"
    );
    // The city coordinator gets the case's number, never the petitioner's name.
    let found = app
        .get(&city, &format!("/cases/duplicates?id_number={id_number}"))
        .await?;
    assert_eq!(found.json["cases"][0]["case_id"], case_id.as_str());
    assert!(!found.json.to_string().contains("张三"), "{}", found.json);

    // Those who do not register cases may not look petitioners up at all.
    for user in ["chakan", "shenhe-qu", "liming"] {
        let token = app.login(user).await?;
        let refused = app
            .get(&token, &format!("/cases/duplicates?id_number={id_number}"))
            .await?;
        assert_eq!(refused.status, 403, "{user}: {refused:?}");
    }

    // Enumerating the hidden digits of a masked ID: a partial number is refused, and so is a
    // wrong check digit, before anything is looked up.
    let masked = format!("{}***********{}", &id_number[..3], &id_number[14..]);
    for partial in [masked.as_str(), &id_number[..17], &id_number[..6]] {
        let refused = app
            .get(
                &department,
                &format!("/cases/duplicates?id_number={partial}"),
            )
            .await?;
        assert_eq!(refused.status, 422, "{partial}: {refused:?}");
    }
    let last = id_number.chars().last().unwrap_or('0');
    let wrong_check = format!(
        "{}{}",
        &id_number[..17],
        if last == '1' { '2' } else { '1' }
    );
    assert_eq!(
        app.get(
            &department,
            &format!("/cases/duplicates?id_number={wrong_check}")
        )
        .await?
        .status,
        422
    );
    // A name alone cannot be looked up either.
    assert_eq!(
        app.get(&department, "/cases/duplicates?name=张三")
            .await?
            .status,
        422
    );

    // Every lookup is recorded: the department's named no case, the city's named one.
    assert_eq!(
        reads_of(&app, "zhufang").await?,
        [(String::new(), "duplicate_check".to_owned())]
    );
    assert_eq!(
        reads_of(&app, "xietiao").await?,
        [(case_id.clone(), "duplicate_check".to_owned())]
    );

    // A script trying valid ID numbers one after another is stopped: after the burst, 429s
    // with Retry-After, and none of them names anyone.
    let mut statuses = Vec::new();
    for n in 2..40 {
        let answer = app
            .get(
                &department,
                &format!("/cases/duplicates?id_number={}", synthetic_id_number(n)),
            )
            .await?;
        if answer.status == 429 {
            assert!(answer.headers.get("retry-after").is_some(), "{answer:?}");
        }
        assert!(!answer.json.to_string().contains("张三"));
        statuses.push(answer.status);
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited >= 25, "the script is rate-limited: {statuses:?}");
    // Another user is not held up by the department's limit.
    assert_eq!(
        app.get(&city, &format!("/cases/duplicates?id_number={id_number}"))
            .await?
            .status,
        200
    );
    app.stop().await
}

#[tokio::test]
async fn id_and_phone_numbers_in_free_text_are_masked_unless_revealed() -> anyhow::Result<()> {
    free_text_on(DbKind::Sqlite).await
}

#[tokio::test]
async fn id_and_phone_numbers_in_free_text_are_masked_unless_revealed_on_postgres()
-> anyhow::Result<()> {
    free_text_on(DbKind::Postgres).await
}

async fn free_text_on(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    let city = app.login("xietiao").await?;
    let mut body = registration_json(1);
    body["matter"] = json!("要求补偿（联系人李四 13912345678）");
    let case = app.expect(&city, "/cases", body, 201).await?;
    let case_id = case["aggregate_id"].as_str().unwrap_or("").to_owned();
    let note = json!({"text": "约谈信访人，身份证350203199001010423，电话0592-1234567"});
    app.expect(&city, &format!("/cases/{case_id}/notes"), note, 201)
        .await?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;

    let viewer = app.login("chakan").await?;
    for path in [
        format!("/cases/{case_id}"),
        format!("/cases/{case_id}/events"),
        "/checklist".to_owned(),
    ] {
        let shown = app.get(&viewer, &path).await?;
        assert_eq!(shown.status, 200, "{path}: {shown:?}");
        let text = shown.json.to_string();
        for secret in ["13912345678", "350203199001010423", "0592-1234567"] {
            assert!(!text.contains(secret), "{path} shows {secret}: {text}");
        }
        assert!(text.contains("139****5678"), "{path}: {text}");
    }
    let revealed = app
        .get(&city, &format!("/cases/{case_id}?reveal=personal"))
        .await?;
    let text = revealed.json.to_string();
    assert!(
        text.contains("350203199001010423") && text.contains("13912345678"),
        "{text}"
    );
    assert_eq!(
        reads_of(&app, "xietiao").await?,
        [(case_id, "reveal".to_owned())]
    );
    app.stop().await
}

/// Every file under `dir`, read whole.
fn files_under(dir: &std::path::Path) -> anyhow::Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                found.push((path, bytes));
            }
        }
    }
    Ok(found)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn personal_data_is_sealed_at_rest(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    let city = app.login("xietiao").await?;
    let id_number = synthetic_id_number(4242);
    let (name, phone, address) = ("欧阳明珠", "13905921234", "思明区湖滨南路八十八号");
    let mut body = registration_json(1);
    body["petitioners"] =
        json!([{"name": name, "id_number": id_number, "phone": phone, "address": address}]);
    let case = app.expect(&city, "/cases", body, 201).await?;
    let case_id = case["aggregate_id"].as_str().unwrap_or("").to_owned();
    wait_caught_up(&app.services.log, &app.projecting.store).await?;

    // Those allowed see the petitioner, and the duplicate check finds them by ID number and by
    // name in the town.
    let revealed = app
        .get(&city, &format!("/cases/{case_id}?reveal=personal"))
        .await?;
    assert_eq!(
        revealed.json["petitioners"][0]["name"], name,
        "{revealed:?}"
    );
    assert_eq!(
        revealed.json["petitioners"][0]["id_number"],
        id_number.as_str()
    );
    assert_eq!(revealed.json["petitioners"][0]["phone"], phone);
    let masked = app.get(&city, &format!("/cases/{case_id}")).await?;
    assert_eq!(masked.json["petitioners"][0]["name"], "欧***");
    for query in [
        format!("id_number={id_number}"),
        format!("name={name}&town=xm-siming-zhonghua&category=征地拆迁"),
    ] {
        let found = app
            .get(&city, &format!("/cases/duplicates?{query}"))
            .await?;
        assert_eq!(
            found.json["cases"][0]["case_id"],
            case_id.as_str(),
            "{query}: {found:?}"
        );
    }
    let exported = String::from_utf8(app.download(&city, "/ledger/export.csv").await?)?;
    assert!(
        exported.contains(&id_number) && exported.contains(name),
        "{exported}"
    );

    // At rest, nowhere in plaintext: not in the nats-server's store (the log and the key
    // bucket), not in the read store's files or dump.
    assert_nowhere(&stored_bytes(&app)?, &[&id_number, name, phone, address]);
    app.stop().await
}

/// Everything the system stores: the nats-server's store directory (the log and the key
/// bucket) and the read store's files (SQLite) or dump (PostgreSQL).
fn stored_bytes(app: &TestApp) -> anyhow::Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let mut stored = files_under(app.nats.store_dir())?;
    if let Some(dir) = app.projecting.db.sqlite_dir() {
        stored.extend(files_under(dir)?);
    }
    if app.projecting.db.postgres_database().is_some() {
        let dump = std::process::Command::new("pg_dump")
            .arg("--dbname")
            .arg(&app.projecting.db.url)
            .output()?;
        anyhow::ensure!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        stored.push(("pg_dump".into(), dump.stdout));
    }
    anyhow::ensure!(
        stored.len() > 2,
        "{:?}",
        stored.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    Ok(stored)
}

/// Fails naming the file that holds one of `secrets`.
fn assert_nowhere(stored: &[(std::path::PathBuf, Vec<u8>)], secrets: &[&str]) {
    for (path, bytes) in stored {
        for secret in secrets {
            assert!(
                !contains(bytes, secret),
                "{secret} in plaintext in {}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn a_new_master_key_leaves_every_petitioner_readable() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    let case = app
        .expect(&city, "/cases", registration_json(7), 201)
        .await?;
    let case_id = case["aggregate_id"].as_str().unwrap_or("").to_owned();
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let shown = app
        .get(&city, &format!("/cases/{case_id}?reveal=personal"))
        .await?
        .json["petitioners"]
        .clone();
    let old = app
        .services
        .vault
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the test services seal"))?;
    let id_index = old.id_index(&synthetic_id_number(7)).await?;

    // What `zhzj keys rotate` does: every wrapped key (the petitioner's and the blind-index key)
    // wrapped again by the new master key; the log is not touched.
    let position = app.log_position().await?;
    let new = zhzj_store::PersonalDataVault::connect(app.nats.connect().await?, test_master_key()?)
        .await?;
    assert!(new.rewrap_all(old.master()).await? >= 2);
    assert_eq!(
        new.rewrap_all(old.master()).await?,
        0,
        "run again: nothing left to do"
    );
    assert_eq!(app.log_position().await?, position);

    let data: String = sqlx::query_scalar(
        "SELECT CAST(data AS TEXT) FROM event_archive WHERE event_type = 'CaseRegistered' AND aggregate_id = $1",
    )
    .bind(&case_id)
    .fetch_one(app.projecting.store.pool())
    .await?;
    let registered: zhzj_proto::events::CaseRegistered = serde_json::from_str(&data)?;
    let zhzj_proto::events::RecordedPetitioner::Sealed(sealed) = &registered.petitioners[0] else {
        anyhow::bail!("the petitioner is sealed: {data}");
    };
    let opened = new
        .unseal(sealed)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the key is there"))?;
    assert_eq!(serde_json::to_value(&opened)?, shown[0]);
    assert!(
        old.unseal(sealed).await.is_err(),
        "the old master key opens nothing now"
    );
    assert_eq!(
        new.id_index(&synthetic_id_number(7)).await?,
        id_index,
        "indexes unchanged"
    );
    app.stop().await
}

/// The data keys live in the bucket now.
async fn live_data_keys(app: &TestApp) -> anyhow::Result<usize> {
    use futures::TryStreamExt as _;
    let bucket = async_nats::jetstream::new(app.nats.connect().await?)
        .get_key_value(zhzj_store::DATA_KEY_BUCKET)
        .await?;
    let keys: Vec<String> = bucket.keys().await?.try_collect().await?;
    Ok(keys.len())
}

#[tokio::test]
async fn a_refused_registration_answers_at_once_and_leaves_no_key() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    let mut body = registration_json(11);
    body["case_id"] = json!(uuid::Uuid::new_v4());
    app.expect(&city, "/cases", body.clone(), 201).await?;
    let keys = live_data_keys(&app).await?;

    // The same case again (a retry without an idempotency key, as the API fuzzer sends): the
    // petitioner is sealed under a fresh key before the log refuses the append. The cases
    // service may not delete a message of the bucket, so it must not wait on a secure erase
    // it has no right to (that wait once turned this 409 into a 503 after ten seconds).
    let started = std::time::Instant::now();
    let again = app.post(&city, "/cases", &body).await?;
    assert_eq!(again.status, 409, "{again:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "answered in {:?}",
        started.elapsed()
    );
    assert_eq!(
        live_data_keys(&app).await?,
        keys,
        "the refused registration's key is gone"
    );
    app.stop().await
}

/// The wrapped data key of the first petitioner of `case_id` and its id, as the bucket holds it.
async fn first_petitioner_key(app: &TestApp, case_id: &str) -> anyhow::Result<(String, String)> {
    let data: String = sqlx::query_scalar(
        "SELECT CAST(data AS TEXT) FROM event_archive WHERE event_type = 'CaseRegistered' AND aggregate_id = $1",
    )
    .bind(case_id)
    .fetch_one(app.projecting.store.pool())
    .await?;
    let registered: zhzj_proto::events::CaseRegistered = serde_json::from_str(&data)?;
    let zhzj_proto::events::RecordedPetitioner::Sealed(sealed) = &registered.petitioners[0] else {
        anyhow::bail!("the petitioner is sealed: {data}");
    };
    let wrapped = zhzj_tests::stored_wrapped_key(&app.nats, &sealed.key_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no key {}", sealed.key_id))?;
    Ok((sealed.key_id.clone(), wrapped))
}

async fn erasure_on(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    let city = app.login("xietiao").await?;
    let admin = app.login("guanli").await?;
    let id_number = synthetic_id_number(4343);
    let (name, phone, address) = ("司马青衫", "13905929876", "思明区鹭江道一百零八号");
    let mut body = registration_json(2);
    body["petitioners"] =
        json!([{"name": name, "id_number": id_number, "phone": phone, "address": address}]);
    let case = app.expect(&city, "/cases", body, 201).await?;
    let case_id = case["aggregate_id"].as_str().unwrap_or("").to_owned();
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let secrets = [id_number.as_str(), name, phone, address];
    let (key_id, wrapped) = first_petitioner_key(&app, &case_id).await?;

    // Before: the petitioner is nowhere in plaintext, and their wrapped key is in the nats
    // store (which shows the byte search finds what is there).
    let before = stored_bytes(&app)?;
    assert_nowhere(&before, &secrets);
    assert!(
        before.iter().any(|(_, bytes)| contains(bytes, &wrapped)),
        "the wrapped key {key_id} is in the nats store before erasure"
    );
    let checklist_before = app.get(&city, "/checklist").await?.json["total"].clone();

    // Only an administrator erases, only with a reason, only a listed petitioner.
    let erasure = format!("/cases/{case_id}/erasures");
    let refused = app
        .post(
            &city,
            &erasure,
            &json!({"petitioner": 1, "reason": "信访人申请删除"}),
        )
        .await?;
    assert_eq!(refused.status, 403, "{refused:?}");
    for (wrong, status) in [
        (json!({"petitioner": 1, "reason": " "}), 422),
        (json!({"petitioner": 2, "reason": "信访人申请删除"}), 422),
        (json!({"petitioner": 0, "reason": "信访人申请删除"}), 422),
        (json!({"reason": "信访人申请删除"}), 422),
    ] {
        let answer = app.post(&admin, &erasure, &wrong).await?;
        assert_eq!(answer.status, status, "{wrong}: {answer:?}");
    }
    let position = app.log_position().await?;
    assert_eq!(
        first_petitioner_key(&app, &case_id).await?.1,
        wrapped,
        "refusals destroyed nothing"
    );
    app.expect(
        &admin,
        &erasure,
        json!({"petitioner": 1, "reason": "信访人申请删除"}),
        201,
    )
    .await?;
    assert_eq!(app.log_position().await?, position + 1);
    let again = app
        .post(
            &admin,
            &erasure,
            &json!({"petitioner": 1, "reason": "再次删除"}),
        )
        .await?;
    assert_eq!(again.status, 409, "{again:?}");
    wait_caught_up(&app.services.log, &app.projecting.store).await?;

    // Every answer shows 已删除, to those who may reveal too; the history says who erased
    // whom and why; the case and its figures stay.
    for path in [
        format!("/cases/{case_id}"),
        format!("/cases/{case_id}?reveal=personal"),
    ] {
        let shown = app.get(&city, &path).await?;
        assert_eq!(shown.status, 200, "{shown:?}");
        for field in ["name", "id_number", "phone", "address"] {
            assert_eq!(
                shown.json["petitioners"][0][field], "已删除",
                "{path}: {field}"
            );
        }
    }
    let history = app
        .get(&city, &format!("/cases/{case_id}/events?reveal=personal"))
        .await?;
    let erased = history
        .json
        .as_array()
        .and_then(|events| {
            events
                .iter()
                .find(|e| e["event_type"] == "PetitionerErased")
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        erased["data"]["reason"], "信访人申请删除",
        "{}",
        history.json
    );
    assert_eq!(erased["actor_id"], "guanli", "{erased}");
    assert_eq!(
        app.get(&city, "/checklist").await?.json["total"],
        checklist_before
    );
    let page = app
        .http
        .get(format!("{}/cases/{case_id}", app.base))
        .header(reqwest::header::COOKIE, format!("zhzj_session={city}"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        page.contains("删除信访人个人信息") && page.contains("已删除"),
        "{page}"
    );
    // The duplicate check no longer finds them.
    let found = app
        .get(&city, &format!("/cases/duplicates?id_number={id_number}"))
        .await?;
    assert_eq!(found.json["cases"], json!([]), "{found:?}");
    assert_eq!(found.json["outside_your_area"], false);

    // At the byte level: the key is gone from the nats store, and the petitioner is nowhere,
    // stored or exported.
    let mut after = stored_bytes(&app)?;
    for export in [
        "/ledger/export.csv",
        "/ledger/export.xlsx",
        "/checklist/export.csv",
    ] {
        after.push((export.into(), app.download(&city, export).await?));
    }
    assert_nowhere(&after, &secrets);
    assert_nowhere(&after, &[wrapped.as_str()]);
    let ledger = String::from_utf8(app.download(&city, "/ledger/export.csv").await?)?;
    assert!(ledger.contains("已删除"), "{ledger}");

    // The log was not edited: it still verifies whole.
    let keys = app
        .services
        .log
        .signer()
        .ok_or_else(|| anyhow::anyhow!("the test log signs"))?
        .trusted();
    let verified = zhzj_store::verify_log(&app.services.log, keys, &[]).await?;
    assert!(verified.is_ok(), "{verified:?}");
    app.stop().await
}

#[tokio::test]
async fn an_erased_petitioner_is_gone_from_every_byte_and_the_case_stays_on_sqlite()
-> anyhow::Result<()> {
    erasure_on(DbKind::Sqlite).await
}

#[tokio::test]
async fn an_erased_petitioner_is_gone_from_every_byte_and_the_case_stays_on_postgres()
-> anyhow::Result<()> {
    erasure_on(DbKind::Postgres).await
}

/// On each nats-server (Debian's 2.9 and a current release): the erased key's bytes are
/// overwritten in the store, not only marked deleted, while the other keys of its batch stay.
#[tokio::test]
async fn an_erased_key_is_overwritten_in_the_store_of_each_nats_server() -> anyhow::Result<()> {
    let mut servers = vec![zhzj_tests::default_nats_binary()];
    servers.extend(zhzj_tests::current_nats_binary());
    for binary in servers {
        let nats = zhzj_tests::NatsServer::start_binary(binary.clone()).await?;
        let services = zhzj_tests::Services::open(nats.connect().await?).await?;
        services.seed_directory().await?;
        let mut keys = Vec::new();
        let mut cases = Vec::new();
        for n in 5..7 {
            cases.push(
                services
                    .ok(zhzj_tests::register_case(n))
                    .await?
                    .aggregate_id,
            );
            let case_id = &cases[cases.len() - 1];
            let version = services
                .log
                .last_version(zhzj_proto::AggregateType::Case, case_id)
                .await?
                .unwrap_or(0);
            let registered = services
                .log
                .read_aggregate_messages(zhzj_proto::AggregateType::Case, case_id, 1, version)
                .await?;
            let text = registered
                .first()
                .and_then(|m| m.commit.as_ref().ok())
                .map(|c| serde_json::to_string(&c.commit).unwrap_or_default())
                .unwrap_or_default();
            let key_id = text
                .split("\"key_id\":\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .ok_or_else(|| anyhow::anyhow!("no key id in {text}"))?
                .to_owned();
            let wrapped = zhzj_tests::stored_wrapped_key(&nats, &key_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no key {key_id}"))?;
            keys.push((key_id, wrapped));
        }
        let stored = files_under(nats.store_dir())?;
        for (_, wrapped) in &keys {
            assert!(
                stored.iter().any(|(_, b)| contains(b, wrapped)),
                "{}: the key is stored before",
                binary.display()
            );
        }
        services
            .ok(zhzj_proto::Command::ErasePetitioner(
                zhzj_proto::commands::ErasePetitioner {
                    case_id: uuid::Uuid::parse_str(&cases[0])?,
                    petitioner: 1,
                    reason: "信访人申请删除".into(),
                },
            ))
            .await?;
        assert_eq!(
            zhzj_tests::stored_wrapped_key(&nats, &keys[0].0).await?,
            None
        );
        assert_eq!(
            zhzj_tests::stored_wrapped_key(&nats, &keys[1].0)
                .await?
                .as_ref(),
            Some(&keys[1].1),
            "the other petitioner's key stays"
        );
        let stored = files_under(nats.store_dir())?;
        for (path, bytes) in &stored {
            assert!(
                !contains(bytes, &keys[0].1),
                "{}: the erased key is still in {}",
                binary.display(),
                path.display()
            );
        }
        assert!(stored.iter().any(|(_, b)| contains(b, &keys[1].1)));
    }
    Ok(())
}

#[tokio::test]
async fn the_retention_rule_erases_only_petitioners_of_cases_crossed_off_long_enough_ago()
-> anyhow::Result<()> {
    use zhzj_gateway::retention::{cut_off, due_for_erasure};
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    let mut ids = Vec::new();
    for n in 21..24 {
        let case = app
            .expect(&city, "/cases", registration_json(n), 201)
            .await?;
        ids.push(case["aggregate_id"].as_str().unwrap_or("").to_owned());
    }
    // One crossed off, one crossed off and petitioned again (live), one open.
    app.cross_off(&ids[0]).await?;
    app.cross_off(&ids[1]).await?;
    app.command(
        json!({"type": "record_petition", "case_id": ids[1], "received_on": "2026-03-02",
        "channel": "visit", "summary": "再次来访"}),
    )
    .await?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let crossed_off = zhzj_tests::test_epoch().date_naive();
    let years = 3;
    let due_on = |offset: i64| -> anyhow::Result<chrono::NaiveDate> {
        let day = crossed_off
            .checked_add_months(chrono::Months::new(12 * years))
            .ok_or_else(|| anyhow::anyhow!("date"))?;
        Ok(day + chrono::Duration::days(offset))
    };
    let store = &app.projecting.store;
    // On the anniversary nothing is due yet; the day after, the crossed-off case's petitioner.
    let not_yet = cut_off(due_on(0)?, years).ok_or_else(|| anyhow::anyhow!("cut-off"))?;
    assert_eq!(due_for_erasure(store, not_yet).await?, []);
    let cut = cut_off(due_on(1)?, years).ok_or_else(|| anyhow::anyhow!("cut-off"))?;
    let due = due_for_erasure(store, cut).await?;
    assert_eq!(
        due.iter()
            .map(|d| (d.case_id.as_str(), d.petitioner, d.sealed))
            .collect::<Vec<_>>(),
        [(ids[0].as_str(), 1, true)],
        "{due:?}"
    );

    // What `zhzj retention` sends for each: the erasure with the rule's reason; then nothing
    // is due any more, and the case stays crossed off.
    app.command(
        json!({"type": "erase_petitioner", "case_id": ids[0], "petitioner": 1,
        "reason": zhzj_gateway::retention::RETENTION_REASON}),
    )
    .await?;
    wait_caught_up(&app.services.log, store).await?;
    assert_eq!(due_for_erasure(store, cut).await?, []);
    let shown = app
        .get(&city, &format!("/cases/{}?reveal=personal", ids[0]))
        .await?;
    assert_eq!(shown.json["petitioners"][0]["name"], "已删除");
    assert_eq!(shown.json["status"], "crossed_off", "{}", shown.json);
    app.stop().await
}

zhzj_tests::on_both_databases!(personal_data_is_sealed_at_rest);
