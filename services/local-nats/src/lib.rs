//! Starts and stops the local nats-server that `zhzj up` uses when no NATS URL is given.
//!
//! It listens on a free loopback port (4222 may be taken), keeps its store under the data dir, and
//! on a server that supports it (2.10+) syncs every commit to disk before acknowledging. The URL
//! is written to `<data dir>/nats.url` so that other zhzj commands find it. It admits only zhzj's
//! roles, each with its own NKey and permissions (`zhzj_trust::nats_access`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Why the local nats-server could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LocalNatsError {
    /// `nats-server --version` could not be run.
    #[error("running `{binary} --version`: is nats-server installed? {source}")]
    NotInstalled {
        /// The binary tried.
        binary: String,
        /// Why it could not run.
        source: std::io::Error,
    },
    /// `nats-server --version` printed no version.
    #[error("`{0} --version` printed no version")]
    NoVersion(String),
    /// The server could not be started.
    #[error("starting {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: String,
        /// Why.
        source: std::io::Error,
    },
    /// It started but admitted no client in ten seconds.
    #[error("the local nats-server did not come up; see {0}")]
    NotUp(String),
    /// Its files under the data dir could not be written.
    #[error("the local nats-server's files: {0}")]
    Files(#[from] std::io::Error),
    /// Its configuration could not be written.
    #[error("the local nats-server's configuration: {0}")]
    Config(#[from] zhzj_trust::keys::KeyError),
    /// The probe credential could not be read.
    #[error("the probe credential: {0}")]
    Credentials(#[from] zhzj_trust::nats_access::CredentialsError),
    /// Stopping it failed.
    #[error("stopping the local nats-server: {0}")]
    Stop(String),
}

/// A nats-server child process.
#[derive(Debug)]
pub struct LocalNats {
    child: Child,
    url: String,
    url_file: PathBuf,
    /// Whether every commit is fsynced before it is acknowledged.
    pub syncs_every_commit: bool,
}

/// Where `zhzj up` writes the URL of its HTTP gateway (for scripts, tests and `zhzj import`).
pub fn http_url_file(data_dir: &Path) -> PathBuf {
    data_dir.join("http.url")
}

/// The file in the data dir that names the local server's URL.
pub fn url_file(data_dir: &Path) -> PathBuf {
    data_dir.join("nats.url")
}

/// The file the local server writes its process id to, so that a later start finds a server
/// that a killed `zhzj up` left running.
pub fn pid_file(data_dir: &Path) -> PathBuf {
    let file = data_dir.join("nats-server.pid");
    std::path::absolute(&file).unwrap_or(file)
}

/// The configuration `zhzj up` writes for the local server, as an absolute path: the server's
/// command line names it, and a later start from another directory must recognise it.
fn config_file(data_dir: &Path) -> PathBuf {
    let config = data_dir.join("nats-server.conf");
    std::path::absolute(&config).unwrap_or(config)
}

/// The process named by the data dir's pid file, if it is still running and is this data
/// dir's nats-server (its command line names the data dir's configuration): a process id alone
/// may have been reused. Reads `/proc`; elsewhere, none is found.
pub fn left_over_server(data_dir: &Path) -> Option<nix::unistd::Pid> {
    let pid: i32 = std::fs::read_to_string(pid_file(data_dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let config = config_file(data_dir);
    let config = config.as_os_str().as_encoded_bytes();
    cmdline
        .split(|byte| *byte == 0)
        .any(|arg| arg == config)
        .then_some(nix::unistd::Pid::from_raw(pid))
}

/// Stops the nats-server an earlier `zhzj up` on this data dir started and never stopped
/// (it was killed, so its child outlived it): two servers on one store would both write it.
/// SIGTERM, then SIGKILL after ten seconds. Returns the process id stopped, if any.
pub async fn stop_left_over(data_dir: &Path) -> Result<Option<u32>, LocalNatsError> {
    let Some(pid) = left_over_server(data_dir) else {
        return Ok(None);
    };
    let gone = || nix::sys::signal::kill(pid, None).is_err();
    let signal = |signal| {
        nix::sys::signal::kill(pid, signal).or_else(|e| match e {
            nix::errno::Errno::ESRCH => Ok(()),
            other => Err(LocalNatsError::Stop(format!("process {pid}: {other}"))),
        })
    };
    signal(nix::sys::signal::Signal::SIGTERM)?;
    for _ in 0..100 {
        if gone() {
            return Ok(u32::try_from(pid.as_raw()).ok());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal(nix::sys::signal::Signal::SIGKILL)?;
    for _ in 0..50 {
        if gone() {
            return Ok(u32::try_from(pid.as_raw()).ok());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(LocalNatsError::Stop(format!(
        "the nats-server left running by an earlier start (process {pid}) does not exit"
    )))
}

fn server_version(binary: &str) -> Result<(u32, u32), LocalNatsError> {
    let output = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|source| LocalNatsError::NotInstalled {
            binary: binary.to_owned(),
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text
        .split_whitespace()
        .find_map(|word| word.strip_prefix('v'))
        .ok_or_else(|| LocalNatsError::NoVersion(binary.to_owned()))?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    Ok((parts.next().unwrap_or(0), parts.next().unwrap_or(0)))
}

impl LocalNats {
    /// Starts `nats-server` from PATH with the `authorization` configuration given; `probe`
    /// is a credential it admits, to see it come up. Call [`stop_left_over`] first.
    pub async fn start(
        data_dir: &Path,
        authorization: &str,
        probe: &zhzj_trust::nats_access::ClientCredentials,
    ) -> Result<Self, LocalNatsError> {
        let binary = std::env::var("ZHZJ_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let version = server_version(&binary)?;
        let syncs_every_commit = version >= (2, 10);
        let store_dir = data_dir.join("nats");
        std::fs::create_dir_all(&store_dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = config_file(data_dir);
        let sync = if syncs_every_commit {
            "sync_interval: always"
        } else {
            ""
        };
        zhzj_trust::keys::write_private_file(
            &config,
            &format!(
                "# Written by zhzj up; rewritten at every start.\n\
                 listen: \"127.0.0.1:{port}\"\n\
                 pid_file: {pid_file:?}\n\
                 jetstream {{\n  store_dir: {store:?}\n  {sync}\n}}\n{authorization}",
                pid_file = pid_file(data_dir).display().to_string(),
                store = store_dir.display().to_string()
            ),
        )?;
        let log = std::fs::File::create(data_dir.join("nats-server.log"))?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| LocalNatsError::Spawn {
                binary: binary.clone(),
                source,
            })?;
        let url = format!("nats://127.0.0.1:{port}");
        for _ in 0..100 {
            let options = probe.apply(async_nats::ConnectOptions::new()).await?;
            if let Ok(client) = options.connect(&url).await
                && client.flush().await.is_ok()
            {
                let url_file = url_file(data_dir);
                std::fs::write(&url_file, &url)?;
                return Ok(Self {
                    child,
                    url,
                    url_file,
                    syncs_every_commit,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(LocalNatsError::NotUp(
            data_dir.join("nats-server.log").display().to_string(),
        ))
    }

    /// Its client URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops it cleanly (SIGTERM, then waits).
    pub async fn stop(mut self) -> Result<(), LocalNatsError> {
        let _ = std::fs::remove_file(&self.url_file);
        if let Some(pid) = self.child.id() {
            let pid = i32::try_from(pid).map_err(|e| LocalNatsError::Stop(e.to_string()))?;
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            )
            .map_err(|e| LocalNatsError::Stop(e.to_string()))?;
        }
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}
