//! Petitioners' personal data on the read side (PIPL; 《信访工作条例》 第三十条: the accused unit
//! must not learn who petitioned): the duplicate check names no one, names only cases in the
//! caller's area, wants a full ID number, is recorded and rate-limited; ID and phone numbers typed
//! into free text are masked like the structured fields.

use serde_json::json;
use sqlx::Row;
use zhzj_tests::{
    DbKind, TestApp, registration_json, spawn_app, synthetic_id_number, wait_caught_up,
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
