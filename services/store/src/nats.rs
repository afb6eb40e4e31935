//! Connecting to NATS the same way in every role: a comma-separated list of server URLs (the
//! nodes of a cluster, any of which may be down), and bounds on how long a request may wait, so
//! that a NATS outage turns into a quick, clear failure instead of a hang.

use std::time::Duration;

use async_nats::ServerAddr;
use zhzj_trust::nats_access::ClientCredentials;

/// How long a request (a command, a JetStream API call, a publish acknowledgement) waits for an
/// answer by default before it fails: a write that cannot reach a stream leader fails within this.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// How long opening one TCP connection to one server may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// NATS could not be reached or the URL list is wrong.
#[derive(Debug, thiserror::Error)]
pub enum NatsConnectError {
    /// An entry of the list is not a NATS URL.
    #[error("`{entry}` in the NATS URL list is not a server URL: {reason}")]
    BadUrl {
        /// The entry as given.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// The list names no server.
    #[error("the NATS URL list is empty")]
    Empty,
    /// The credentials or TLS settings cannot be used.
    #[error("NATS credentials: {0}")]
    Credentials(#[from] zhzj_trust::nats_access::CredentialsError),
    /// No server of the list answered.
    #[error("no NATS server of {servers} answered: {reason}")]
    Unreachable {
        /// The list as given.
        servers: String,
        /// The client's error, with its cause.
        reason: String,
    },
}

/// The servers of a comma-separated list of NATS URLs (`nats://a:4222,nats://b:4222`), spaces
/// around entries allowed.
pub fn parse_server_list(list: &str) -> Result<Vec<ServerAddr>, NatsConnectError> {
    let servers = list
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<ServerAddr>()
                .map_err(|e| NatsConnectError::BadUrl {
                    entry: entry.to_owned(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(NatsConnectError::Empty);
    }
    Ok(servers)
}

/// How a role connects.
#[derive(Debug, Clone)]
pub struct NatsConnectOptions {
    /// The client's name, as the server's monitoring shows it.
    pub name: String,
    /// How long a request waits for its answer.
    pub request_timeout: Duration,
    /// How it authenticates, and TLS.
    pub credentials: ClientCredentials,
}

impl Default for NatsConnectOptions {
    fn default() -> Self {
        Self {
            name: "zhzj".to_owned(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            credentials: ClientCredentials::default(),
        }
    }
}

/// The last operation a NATS server refused this process for lack of permission, if any. A
/// refused request is never answered (it times out like an unreachable server), so a caller
/// that keeps retrying on timeouts asks here whether retrying can help.
pub fn last_permission_violation() -> Option<String> {
    PERMISSION_VIOLATION
        .lock()
        .ok()
        .and_then(|last| last.clone())
}

static PERMISSION_VIOLATION: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Connects to the first server of `list` that answers; the client then fails over to the
/// others (and to those the cluster announces) when its server goes away.
pub async fn connect(
    list: &str,
    options: &NatsConnectOptions,
) -> Result<async_nats::Client, NatsConnectError> {
    let servers = parse_server_list(list)?;
    let base = async_nats::ConnectOptions::new().event_callback(|event| async move {
        // A permissions violation arrives here, not as the failed call's error: say it loudly.
        if let async_nats::Event::ServerError(error) = event {
            tracing::error!(%error, "the NATS server refused an operation");
            let text = error.to_string();
            if text.to_lowercase().contains("permissions violation")
                && let Ok(mut last) = PERMISSION_VIOLATION.lock()
            {
                *last = Some(text);
            }
        }
    });
    options
        .credentials
        .apply(base)
        .await?
        .name(&options.name)
        .connection_timeout(CONNECTION_TIMEOUT)
        .request_timeout(Some(options.request_timeout))
        .connect(servers)
        .await
        .map_err(|e| NatsConnectError::Unreachable {
            servers: list.to_owned(),
            reason: error_chain(&e),
        })
}

/// An error with every cause it carries, so that "connecting failed" never arrives without why.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if text.trim().is_empty() {
        text = format!("{error:?}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_list_names_every_server() {
        let servers =
            parse_server_list("nats://10.0.0.1:4222, nats://10.0.0.2:4222,nats://10.0.0.3:4222")
                .expect("a valid list");
        assert_eq!(servers.len(), 3);
        assert!(matches!(
            parse_server_list(" , "),
            Err(NatsConnectError::Empty)
        ));
        assert!(matches!(
            parse_server_list("nats://a:4222,http://"),
            Err(NatsConnectError::BadUrl { .. })
        ));
    }
}
