//! `zhzj org export` and `zhzj org import`: the org directory moved between instances as a TOML
//! or JSON file, through the running system's HTTP API as an administrator — the import is
//! checked whole by the gateway before anything is written, and importing again adds nothing.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;
use zhzj_gateway::directory_file::DirectoryFile;

use crate::cli::LedgerArgs;
use crate::ledger_cli::{base_url, get_ok, login};

/// A directory file's format, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirectoryFormat {
    Toml,
    Json,
}

fn format_of(path: &Path) -> anyhow::Result<DirectoryFormat> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("toml") => Ok(DirectoryFormat::Toml),
        Some("json") => Ok(DirectoryFormat::Json),
        _ => bail!("{}: the file must end in .toml or .json", path.display()),
    }
}

/// `zhzj org export <file>`.
pub async fn export(args: LedgerArgs) -> anyhow::Result<std::process::ExitCode> {
    let format = format_of(&args.file)?;
    let base = base_url(&args)?;
    let client = reqwest::Client::new();
    let token = login(&client, &base, &args).await?;
    let file: DirectoryFile = get_ok(&client, &format!("{base}/api/v1/org/file"), &token)
        .await?
        .json()
        .await?;
    let text = match format {
        DirectoryFormat::Toml => toml::to_string_pretty(&file)?,
        DirectoryFormat::Json => serde_json::to_string_pretty(&file)?,
    };
    std::fs::write(&args.file, text).with_context(|| format!("writing {}", args.file.display()))?;
    println!(
        "已导出组织架构：{}（单位 {} 个，领导 {} 名）",
        args.file.display(),
        file.units.len(),
        file.leaders.len()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// `zhzj org import <file>`: prints what was added, or every problem by entry.
pub async fn import(args: LedgerArgs) -> anyhow::Result<std::process::ExitCode> {
    let format = format_of(&args.file)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let file: DirectoryFile = match format {
        DirectoryFormat::Toml => toml::from_str(&text)
            .with_context(|| format!("{} is not a directory file", args.file.display()))?,
        DirectoryFormat::Json => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a directory file", args.file.display()))?,
    };
    let base = base_url(&args)?;
    let client = reqwest::Client::new();
    let token = login(&client, &base, &args).await?;
    let response = client
        .post(format!("{base}/api/v1/org/import"))
        .bearer_auth(token)
        .json(&file)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        println!(
            "导入完成：新增 {} 项，已存在 {} 项",
            body["added"], body["already_present"]
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    println!(
        "{}",
        body["error"]["message"].as_str().unwrap_or("导入失败")
    );
    for problem in body["problems"].as_array().into_iter().flatten() {
        println!(
            "{}\t{}\t{}",
            problem["entry"].as_str().unwrap_or("-"),
            problem["id"].as_str().unwrap_or("-"),
            problem["message"].as_str().unwrap_or("")
        );
    }
    Ok(std::process::ExitCode::FAILURE)
}
