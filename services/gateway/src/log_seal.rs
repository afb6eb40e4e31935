//! The log digest every export states beside its log position, so that a printed 考核表 or
//! 通报 can be checked against the log years later: `zhzj verify --at P` prints the digest of a
//! verified log through P, which must equal the one printed. Before it writes an export the
//! gateway asks the command services (which hold the signing key) to seal the log through P;
//! the seal in the log then states the same digest, signed.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use zhzj_export::{Cell, Table};
use zhzj_trust::seal::{SEAL_REQUESTS, SealReply, SealRequest};

use crate::AppState;

/// How long an export waits for the seal before it goes out stating its position only.
const SEAL_PATIENCE: Duration = Duration::from_secs(3);

/// The response header stating the log position an export was computed at.
const POSITION_HEADER: &str = "x-zhzj-log-position";
/// The response header stating the log digest through that position.
const DIGEST_HEADER: &str = "x-zhzj-log-digest";

/// A log position and, when the sealers answered, the log digest through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSeal {
    /// The position the export was computed at.
    pub position: u64,
    /// The log digest through it (hex), None when no sealer answered in time.
    pub digest: Option<String>,
}

/// Seals the log through `position` (reason `export`) and returns the digest there.
pub async fn seal_through(state: &AppState, position: i64) -> LogSeal {
    let position = u64::try_from(position).unwrap_or(0);
    let request = SealRequest {
        through: Some(position),
        reason: "export".into(),
    };
    let digest = async {
        let body = serde_json::to_vec(&request).ok()?;
        let reply = tokio::time::timeout(
            SEAL_PATIENCE,
            state.inner.client.request(SEAL_REQUESTS, body.into()),
        )
        .await
        .ok()?
        .ok()?;
        match serde_json::from_slice(&reply.payload).ok()? {
            SealReply::Sealed {
                through,
                log_digest,
                ..
            } if through == position => Some(log_digest),
            SealReply::Sealed { .. } => None,
            SealReply::Failed { reason } => {
                tracing::warn!(%reason, position, "the log could not be sealed for an export");
                None
            }
        }
    }
    .await;
    if digest.is_none() {
        tracing::warn!(
            position,
            "no log digest for an export: the command services did not seal in time"
        );
    }
    LogSeal { position, digest }
}

impl LogSeal {
    /// The workbook sheet stating it.
    pub fn table(&self) -> Table {
        let digest = self
            .digest
            .clone()
            .unwrap_or_else(|| "暂不可得（签名服务未及时答复）；可事后以下行命令得到".to_owned());
        Table {
            name: "日志封印".into(),
            headers: vec!["项目".into(), "内容".into()],
            rows: vec![
                vec![
                    Cell::from("日志位置"),
                    Cell::Int(i64::try_from(self.position).unwrap_or(i64::MAX)),
                ],
                vec![Cell::from("日志摘要（SHA-256）"), Cell::from(digest)],
                vec![
                    Cell::from("核验方法"),
                    Cell::from(format!(
                        "zhzj verify --at {}：核验通过且输出的日志摘要与上行一致，即本表所依据的记录未被改动",
                        self.position
                    )),
                ],
            ],
        }
    }

    /// Adds the position and digest headers to an export's response.
    pub fn stamp(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&self.position.to_string()) {
            headers.insert(HeaderName::from_static(POSITION_HEADER), value);
        }
        if let Some(digest) = &self.digest
            && let Ok(value) = HeaderValue::from_str(digest)
        {
            headers.insert(HeaderName::from_static(DIGEST_HEADER), value);
        }
        response
    }
}
