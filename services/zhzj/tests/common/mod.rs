//! Runs the `zhzj` binary as a user would, for the tests beside it: `zhzj up` with its own
//! nats-server and SQLite under a temp data dir, its HTTP gateway on a free port.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// Runs `zhzj <args>` to completion with the data dir; returns success and stdout.
pub async fn zhzj(data_dir: &Path, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_zhzj"))
        .args(args)
        .env("ZHZJ_DATA_DIR", data_dir)
        .env_remove("ZHZJ_NATS_URL")
        .env_remove("ZHZJ_DATABASE_URL")
        .output()
        .await?;
    Ok((
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    ))
}

/// Waits for a file `up` writes and returns its trimmed contents.
pub async fn wait_for_file(path: &Path, within: Duration) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.trim().is_empty()
        {
            return Ok(text.trim().to_owned());
        }
        if started.elapsed() > within {
            bail!("{} did not appear", path.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Spawns `zhzj <args>` with the data dir `data` (and no NATS or database URL from the
/// environment), its log appended to `data/<log_name>.log`.
fn spawn_logged(data: &Path, log_name: &str, args: &[&str]) -> anyhow::Result<Child> {
    std::fs::create_dir_all(data)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join(format!("{log_name}.log")))?;
    Ok(Command::new(env!("CARGO_BIN_EXE_zhzj"))
        .args(args)
        .env("ZHZJ_DATA_DIR", data)
        .env("NO_COLOR", "1")
        .env_remove("ZHZJ_NATS_URL")
        .env_remove("ZHZJ_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?)
}

/// A running `zhzj up`.
pub struct Up {
    /// The process.
    pub child: Child,
    /// Its data dir.
    pub data: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub http: String,
    /// Its local nats-server.
    pub nats_url: String,
}

impl Up {
    /// Starts `zhzj up <extra>` on `data` (HTTP on a free port), its log in `data/up.log`.
    pub async fn start(data: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let _ = std::fs::remove_file(data.join("http.url"));
        let mut args = vec!["up", "--http", "127.0.0.1:0"];
        args.extend(extra);
        let child = spawn_logged(data, "up", &args)?;
        let http = wait_for_file(&data.join("http.url"), Duration::from_secs(30)).await?;
        let nats_url = wait_for_file(&data.join("nats.url"), Duration::from_secs(5)).await?;
        Ok(Self {
            child,
            data: data.to_owned(),
            http,
            nats_url,
        })
    }

    /// A client of its nats-server as the admin (whose credential `up` keeps in the data dir).
    pub async fn admin_client(&self) -> anyhow::Result<async_nats::Client> {
        self.client_as(zhzj_trust::nats_access::NatsRole::Admin)
            .await
    }

    /// A client of its nats-server as `role`.
    pub async fn client_as(
        &self,
        role: zhzj_trust::nats_access::NatsRole,
    ) -> anyhow::Result<async_nats::Client> {
        let dir = zhzj_trust::nats_access::credentials_dir(&self.data);
        Ok(
            zhzj_trust::nats_access::ClientCredentials::of_role(&dir, role)
                .apply(async_nats::ConnectOptions::new())
                .await?
                .connect(&self.nats_url)
                .await?,
        )
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("up.log")).unwrap_or_default()
    }

    /// Sends `signal` and waits for a clean exit.
    pub async fn stop_with(mut self, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(
            self.child.id().context("up already exited")?,
        )?);
        nix::sys::signal::kill(pid, signal)?;
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await??;
        if !status.success() {
            bail!("zhzj up exited with {status:?}; log:\n{}", self.log());
        }
        Ok(())
    }
}

impl Drop for Up {
    /// A test that ends without stopping `up` (a failure, or a kill on purpose) kills it; its
    /// nats-server, which outlives a killed parent, is killed too rather than left running.
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if let Some(server) = zhzj_local_nats::left_over_server(&self.data) {
            let _ = nix::sys::signal::kill(server, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Logs in over HTTP; returns the bearer token. Like a browser's user, it comes back when asked
/// to (503 with Retry-After: the system is starting), for at most 30 s.
pub async fn login(http: &str, username: &str, password: &str) -> anyhow::Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = reqwest::Client::new()
            .post(format!("{http}/api/v1/session"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await?;
        let come_back = answer.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
            && answer.headers().contains_key("retry-after");
        if come_back && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let reply: serde_json::Value = answer.error_for_status()?.json().await?;
        return Ok(reply["token"].as_str().context("no token")?.to_owned());
    }
}

/// Waits until the log says the demo is loaded for the `nth` time; returns that line.
pub async fn demo_loaded(up: &Up, nth: usize) -> anyhow::Result<String> {
    for _ in 0..1200 {
        let log = up.log();
        if log.contains("demo loading failed") {
            bail!("demo loading failed:\n{log}");
        }
        if let Some(line) = log
            .lines()
            .filter(|l| l.contains("demo loaded"))
            .nth(nth - 1)
        {
            return Ok(line.to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the demo did not load:\n{}", up.log())
}

/// `GET`s an API path as the holder of `token`; the JSON answer of a success.
pub async fn api_get(up: &Up, token: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    Ok(reqwest::Client::new()
        .get(format!("{}/api/v1{path}", up.http))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// A `zhzj run <role>` process, as a split deployment runs it; its log in `data/<role>.log`.
pub struct RoleProcess {
    /// The process.
    pub child: Child,
    /// Its role.
    pub role: String,
    /// Its data dir.
    pub data: PathBuf,
}

impl RoleProcess {
    /// Starts `zhzj run <role> <args>` with the data dir `data`.
    pub async fn start(data: &Path, role: &str, args: &[&str]) -> anyhow::Result<Self> {
        let mut run = vec!["run", role];
        run.extend(args);
        let child = spawn_logged(data, role, &run)?;
        Ok(Self {
            child,
            role: role.to_owned(),
            data: data.to_owned(),
        })
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join(format!("{}.log", self.role))).unwrap_or_default()
    }

    /// Sends SIGTERM; returns how long it took to exit and its exit status (an error if it did
    /// not exit within `within`).
    pub async fn terminate(
        &mut self,
        within: Duration,
    ) -> anyhow::Result<(Duration, std::process::ExitStatus)> {
        let pid =
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id().context("already exited")?)?);
        let started = std::time::Instant::now();
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => Ok((started.elapsed(), status?)),
            Err(_) => bail!(
                "zhzj run {} did not exit within {within:?} of SIGTERM; log:\n{}",
                self.role,
                self.log()
            ),
        }
    }
}

/// Adds the units 厦门市 and 湖里区 through `zhzj command <json> <args>`, retrying while the
/// cases service is still starting (no responders) or the stream is still electing its leader.
pub async fn add_huli_units(data: &Path, args: &[&str]) -> anyhow::Result<()> {
    for command in [
        r#"{"type":"add_unit","unit_id":"xm","name":"厦门市","kind":"city"}"#,
        r#"{"type":"add_unit","unit_id":"xm-huli","parent_id":"xm","name":"湖里区","kind":"district"}"#,
    ] {
        let mut command_args = vec!["command", command];
        command_args.extend(args);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (ok, out) = zhzj(data, &command_args).await?;
            if ok {
                break;
            }
            let retryable = ["no responders", "timed out", "unavailable"]
                .iter()
                .any(|sign| out.contains(sign));
            if !retryable || std::time::Instant::now() > deadline {
                bail!("{command}: {out}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Registers case number `n` in 湖里区 over HTTP as the holder of `token`; the write's answer.
pub async fn register_over_http(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    n: usize,
) -> anyhow::Result<serde_json::Value> {
    Ok(http
        .post(format!("{base}/api/v1/cases"))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "petitioners": [{"name": "李四"}],
            "matter": format!("要求补缴社会保险 #{n}"),
            "category": "劳动社保",
            "district_id": "xm-huli",
            "channel": "letter",
            "first_filed_on": "2025-03-01",
            "list_source": "handed_down",
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// The password of the coordinator [`add_coordinator`] makes.
pub const COORDINATOR_PASSWORD: &str = "Xiamen-pass-1";

/// `zhzj user add` of the coordinator `xietiao` ([`COORDINATOR_PASSWORD`], ready to use) of
/// 厦门市, with `args`.
pub async fn add_coordinator(data: &Path, args: &[&str]) -> anyhow::Result<()> {
    let mut user_add = vec![
        "user",
        "add",
        "--username",
        "xietiao",
        "--password",
        COORDINATOR_PASSWORD,
        "--unit",
        "xm",
        "--ready-to-use",
    ];
    user_add.extend(args);
    let (ok, out) = zhzj(data, &user_add).await?;
    if !ok {
        bail!("zhzj user add: {out}");
    }
    Ok(())
}
