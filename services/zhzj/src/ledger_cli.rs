//! `zhzj import` and `zhzj export`: the ledger (台账) in and out from the command line, through
//! the running system's HTTP API as a signed-in user — so the same checks, scope and logging apply
//! as in the browser.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::cli::LedgerArgs;

/// The gateway's URL: given, or the one `zhzj up` wrote under the data dir.
pub(crate) fn base_url(args: &LedgerArgs) -> anyhow::Result<String> {
    if let Some(url) = &args.url {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let file = zhzj_local_nats::http_url_file(&args.data_dir);
    let url = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "no --url given and no running `zhzj up` found ({} is missing)",
            file.display()
        )
    })?;
    Ok(url.trim().trim_end_matches('/').to_owned())
}

/// `xlsx` or `csv`, from the file name.
fn extension(path: &Path) -> anyhow::Result<&'static str> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
    {
        Some(e) if e == "xlsx" => Ok("xlsx"),
        Some(e) if e == "csv" => Ok("csv"),
        _ => bail!("{}: the file must end in .xlsx or .csv", path.display()),
    }
}

pub(crate) async fn login(
    client: &reqwest::Client,
    base: &str,
    args: &LedgerArgs,
) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": args.username, "password": args.password}))
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let body: Value = response.json().await?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("login refused: {}", body["error"]["message"]))
}

/// `zhzj import <file>`: prints what was imported, or every problem by row and column.
pub async fn import(args: LedgerArgs) -> anyhow::Result<std::process::ExitCode> {
    let kind = extension(&args.file)?;
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let base = base_url(&args)?;
    let client = reqwest::Client::new();
    let token = login(&client, &base, &args).await?;
    let content_type = match kind {
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "text/csv",
    };
    let response = client
        .post(format!("{base}/api/v1/ledger/import.{kind}"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        println!(
            "导入完成：新增 {} 件，已导入过 {} 件（import id {}）",
            body["added"], body["already_imported"], body["import_id"]
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    println!(
        "{}",
        body["error"]["message"].as_str().unwrap_or("导入失败")
    );
    for problem in body["errors"].as_array().into_iter().flatten() {
        println!(
            "第 {} 行\t{}\t{}",
            problem["row"],
            problem["column"].as_str().unwrap_or("-"),
            problem["message"].as_str().unwrap_or("")
        );
    }
    Ok(std::process::ExitCode::FAILURE)
}

/// `GET url` as the holder of `token`; a refusal is an error with the gateway's message.
pub(crate) async fn get_ok(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<reqwest::Response> {
    let response = client.get(url).bearer_auth(token).send().await?;
    if !response.status().is_success() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        bail!("refused: {}", body["error"]["message"]);
    }
    Ok(response)
}

/// `zhzj export <file>`: writes the ledger in the import template.
pub async fn export(args: LedgerArgs) -> anyhow::Result<std::process::ExitCode> {
    let kind = extension(&args.file)?;
    let base = base_url(&args)?;
    let client = reqwest::Client::new();
    let token = login(&client, &base, &args).await?;
    let response = get_ok(
        &client,
        &format!("{base}/api/v1/ledger/export.{kind}"),
        &token,
    )
    .await?;
    let bytes = response.bytes().await?;
    std::fs::write(&args.file, &bytes)
        .with_context(|| format!("writing {}", args.file.display()))?;
    println!(
        "已导出台账：{}（{} 字节）",
        args.file.display(),
        bytes.len()
    );
    Ok(std::process::ExitCode::SUCCESS)
}
