//! Writes: turns a request into a command for the command services, sends it over NATS, keeps the
//! answer for `Idempotency-Key` retries, and waits (bounded) until the read views show it.

use std::time::Instant;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;
use zhzj_proto::envelope::AggregateType;
use zhzj_proto::{Command, CommandAccepted, CommandReply, CommandRequest};
use zhzj_store::sql::timestamp_text;

use crate::{ApiError, AppState, ErrorBody, User, etag};

/// Namespace of command ids derived from idempotency keys.
const IDEMPOTENT_COMMAND_NAMESPACE: Uuid =
    Uuid::from_u128(0x0b5e_7d1c_93a4_4f62_8e0d_51c2_a7f3_9e44);

/// What a write answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WriteReply {
    /// `case`, `unit`, `leader`, `meeting`, `bulletin` or `push`.
    pub aggregate_type: String,
    /// The aggregate's id (for a registration: the new case's id).
    pub aggregate_id: String,
    /// The aggregate's new version; send it back as `If-Match` to write only if nothing changed.
    pub version: u64,
    /// The log position of the commit (the stream sequence; equal to `version`).
    pub position: u64,
    /// Whether the read views already show the write when this reply left. It is false only if
    /// the projections did not catch up within the gateway's bound.
    pub visible: bool,
}

/// One write as a handler describes it.
#[derive(Debug)]
pub struct Write {
    /// Who.
    pub user: User,
    /// What.
    pub command: Command,
    /// `If-Match`.
    pub if_match: Option<u64>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// Correlation id of the request.
    pub correlation_id: Uuid,
    /// The request's method and path, part of what a reused key must match.
    pub route: String,
    /// Answer 201 Created (with `Location`) instead of 200.
    pub creates: bool,
}

/// A finished answer: the reply, or the refusal as the API words it, with its status. Kept for
/// `Idempotency-Key` replays as the JSON body it is sent as, and read back the same.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: StatusCode,
    result: Result<WriteReply, ErrorBody>,
}

impl Answer {
    /// The body sent (and kept).
    fn body(&self) -> String {
        match &self.result {
            Ok(reply) => serde_json::to_string(reply),
            Err(error) => serde_json::to_string(error),
        }
        .unwrap_or_default()
    }

    /// An answer kept as `status` and `body`; a body that does not read back is a fault.
    fn kept(status: StatusCode, body: &str) -> Self {
        let result = if status.is_success() {
            serde_json::from_str(body).map(Ok)
        } else {
            serde_json::from_str(body).map(Err)
        };
        result.map_or_else(
            |e| {
                error_answer(ApiError::internal(format!(
                    "a kept answer does not read: {e}"
                )))
            },
            |result| Self { status, result },
        )
    }
}

/// What a write came to: the answer (the same for a replay of its `Idempotency-Key`), for the
/// API as a response ([`IntoResponse`]) and for the pages typed, without reading a response
/// back.
#[derive(Debug)]
pub struct WriteOutcome {
    answer: Answer,
    creates: bool,
    replayed: bool,
}

impl WriteOutcome {
    /// The reply, or the refusal as the API words it.
    pub fn result(&self) -> &Result<WriteReply, ErrorBody> {
        &self.answer.result
    }
}

impl IntoResponse for WriteOutcome {
    fn into_response(self) -> Response {
        let Self {
            answer,
            creates,
            replayed,
        } = self;
        let mut response = (
            answer.status,
            [(header::CONTENT_TYPE, "application/json")],
            answer.body(),
        )
            .into_response();
        let headers = response.headers_mut();
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(crate::error::RETRY_AFTER_SECONDS),
            );
        }
        if replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        let version = match &answer.result {
            Ok(reply) => Some(reply.version),
            Err(error) if answer.status == StatusCode::PRECONDITION_FAILED => {
                error.error.current_version
            }
            Err(_) => None,
        };
        if let Some(version) = version
            && let Ok(value) = HeaderValue::from_str(&etag(version))
        {
            headers.insert(header::ETAG, value);
        }
        if creates
            && let Ok(reply) = &answer.result
            && let Some(location) = location_of(reply)
            && let Ok(value) = HeaderValue::from_str(&location)
        {
            headers.insert(header::LOCATION, value);
        }
        response
    }
}

fn fingerprint(write: &Write) -> String {
    let mut hasher = Sha256::new();
    hasher.update(write.route.as_bytes());
    hasher.update(b"\n");
    hasher.update(serde_json::to_vec(&write.command).unwrap_or_default());
    hasher.update(format!("\n{:?}", write.if_match).as_bytes());
    hex::encode(hasher.finalize())
}

/// Runs a write.
pub async fn execute(state: &AppState, write: Write) -> WriteOutcome {
    let (answer, replayed) = match execute_inner(state, &write).await {
        Ok(answer) => (answer, false),
        Err(Replay(answer)) => (answer, true),
    };
    WriteOutcome {
        answer,
        creates: write.creates,
        replayed,
    }
}

/// A stored answer being replayed.
struct Replay(Answer);

async fn execute_inner(state: &AppState, write: &Write) -> Result<Answer, Replay> {
    if !write.user.may_write() {
        return Ok(error_answer(ApiError::Forbidden(
            "只读账号不能修改数据".into(),
        )));
    }
    let Some(key) = &write.idempotency_key else {
        return Ok(match send(state, write, Uuid::new_v4(), false).await {
            Ok(reply) => ok_answer(write, reply),
            Err(e) => error_answer(e),
        });
    };
    let hash = fingerprint(write);
    let username = &write.user.username;
    // The same key always sends the same command id, so even a retry that races the first
    // attempt (or follows a crash before the answer was kept) is applied once.
    let name = format!("{username}\n{key}");
    let command_id = Uuid::new_v5(&IDEMPOTENT_COMMAND_NAMESPACE, name.as_bytes());
    let reused = || {
        Ok(error_answer(ApiError::Unprocessable {
            message: "该 Idempotency-Key 已用于另一个请求".into(),
            field: Some("Idempotency-Key".into()),
        }))
    };
    // Without the stored answers a retry cannot be told from a reuse of the key: refuse for now,
    // and let the client retry with the same key.
    let store_down = |e: sqlx::Error| {
        tracing::warn!(error = %e, "could not read or claim an idempotency key");
        Ok(error_answer(ApiError::Unavailable(
            "数据库暂不可用，请稍后用同一 Idempotency-Key 重试".into(),
        )))
    };
    // A key is claimed before its command is sent, so a retry finding the claim without an
    // answer knows the first attempt may have committed: the service then looks through the
    // case's whole history for the command, however long ago that was.
    let unknown_outcome_retry = match stored_answer(state, username, key).await {
        Ok(Some(KeptKey::Answered {
            hash: stored_hash,
            answer,
        })) => {
            if stored_hash != hash {
                return reused();
            }
            return Err(Replay(answer));
        }
        Ok(Some(KeptKey::Claimed { hash: stored_hash })) => {
            if stored_hash != hash {
                return reused();
            }
            true
        }
        Ok(None) => match claim_key(state, username, key, &hash, command_id).await {
            Ok(claimed) => !claimed,
            Err(e) => return store_down(e),
        },
        Err(e) => return store_down(e),
    };
    let answer = match send(state, write, command_id, unknown_outcome_retry).await {
        Ok(reply) => ok_answer(write, reply),
        Err(
            e @ (ApiError::Unavailable(_) | ApiError::Internal(_) | ApiError::CorruptHistory(_)),
        ) => {
            // Not an answer to keep: the retry should try again.
            return Ok(error_answer(e));
        }
        Err(e) => error_answer(e),
    };
    match keep_answer(state, username, key, &answer).await {
        // A concurrent twin kept its answer first: both answer the same.
        Ok(Some(first)) if first != answer => Err(Replay(first)),
        Ok(_) => Ok(answer),
        Err(e) => {
            tracing::warn!(error = %e, "could not keep the idempotent answer");
            Ok(answer)
        }
    }
}

fn ok_answer(write: &Write, reply: WriteReply) -> Answer {
    Answer {
        status: if write.creates {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        result: Ok(reply),
    }
}

fn error_answer(error: ApiError) -> Answer {
    Answer {
        status: error.status(),
        result: Err(error.body()),
    }
}

/// Where a written aggregate is read: a case, meeting, bulletin or push has a page of its own;
/// units and leaders are read in the directory (`/api/v1/org`), so their writes name none.
fn location_of(reply: &WriteReply) -> Option<String> {
    let collection = match AggregateType::parse(&reply.aggregate_type)? {
        AggregateType::Case => "cases",
        AggregateType::Meeting => "meetings",
        AggregateType::Bulletin => "bulletins",
        AggregateType::Push => "pushes",
        AggregateType::Supervision => "supervision-orders",
        AggregateType::Unit | AggregateType::Leader | AggregateType::Account => return None,
    };
    Some(format!("/api/v1/{collection}/{}", reply.aggregate_id))
}

/// What is kept of an Idempotency-Key.
enum KeptKey {
    /// Claimed before its command was sent; no answer kept (yet, or ever: the attempt failed or
    /// the gateway stopped before keeping it).
    Claimed { hash: String },
    /// Answered; a retry gets this answer again.
    Answered { hash: String, answer: Answer },
}

async fn stored_answer(
    state: &AppState,
    username: &str,
    key: &str,
) -> Result<Option<KeptKey>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_hash, status, response_body FROM idempotency_keys \
         WHERE username = $1 AND idem_key = $2",
    )
    .bind(username)
    .bind(key)
    .fetch_optional(state.store().pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: String = row.try_get("request_hash")?;
    let status: Option<i64> = row.try_get("status")?;
    let body: Option<String> = row.try_get("response_body")?;
    Ok(Some(match (status, body) {
        (Some(status), Some(body)) => KeptKey::Answered {
            hash,
            answer: Answer::kept(
                u16::try_from(status)
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::OK),
                &body,
            ),
        },
        _ => KeptKey::Claimed { hash },
    }))
}

/// Claims a key before its command is sent; false if it was claimed already (a concurrent twin).
async fn claim_key(
    state: &AppState,
    username: &str,
    key: &str,
    hash: &str,
    command_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys \
         (username, idem_key, request_hash, command_id, status, response_body, created_at) \
         VALUES ($1, $2, $3, $4, NULL, NULL, $5) ON CONFLICT DO NOTHING",
    )
    .bind(username)
    .bind(key)
    .bind(hash)
    .bind(command_id.to_string())
    .bind(timestamp_text(state.now()))
    .execute(state.store().pool())
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Keeps an answer unless one is kept already; returns the answer now kept.
async fn keep_answer(
    state: &AppState,
    username: &str,
    key: &str,
    answer: &Answer,
) -> Result<Option<Answer>, sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $1, response_body = $2 \
         WHERE username = $3 AND idem_key = $4 AND status IS NULL",
    )
    .bind(i64::from(answer.status.as_u16()))
    .bind(answer.body())
    .bind(username)
    .bind(key)
    .execute(state.store().pool())
    .await?;
    Ok(match stored_answer(state, username, key).await? {
        Some(KeptKey::Answered { answer, .. }) => Some(answer),
        _ => None,
    })
}

/// Sends one command of a batch (a ledger import) as `user`, with a given command id, without
/// waiting for the read views; returns the accepted position.
pub(crate) async fn send_batch_command(
    state: &AppState,
    user: &crate::User,
    command_id: Uuid,
    correlation_id: Uuid,
    command: Command,
) -> Result<CommandReply, ApiError> {
    let subject = command.subject();
    let request = CommandRequest {
        command_id,
        correlation_id: Some(correlation_id),
        causation_id: None,
        actor: user.actor(),
        expected_version: None,
        unknown_outcome_retry: false,
        command,
    };
    let payload = serde_json::to_vec(&request).map_err(ApiError::internal)?;
    request_command(state, subject, payload).await
}

/// Waits (within the read-your-writes bound) until every read view has reached `position`.
pub(crate) async fn wait_visible(state: &AppState, position: u64) -> bool {
    state
        .inner
        .projections
        .wait_for(position, state.config().read_your_writes)
        .await
}

/// Sends the command and waits for the read views to show it.
async fn send(
    state: &AppState,
    write: &Write,
    command_id: Uuid,
    unknown_outcome_retry: bool,
) -> Result<WriteReply, ApiError> {
    tracing::Span::current().record("command_id", tracing::field::display(command_id));
    let kind = write.command.kind();
    let request = CommandRequest {
        command_id,
        correlation_id: Some(write.correlation_id),
        causation_id: None,
        actor: write.user.actor(),
        expected_version: write.if_match,
        unknown_outcome_retry,
        command: write.command.clone(),
    };
    let payload = serde_json::to_vec(&request).map_err(ApiError::internal)?;
    let started = Instant::now();
    let outcome = request_command(state, write.command.subject(), payload).await;
    let outcome_label = match &outcome {
        Ok(CommandReply::Ok(_)) => "accepted",
        Ok(CommandReply::Error(e)) => e.kind.as_str(),
        Err(_) => "unavailable",
    };
    metrics::counter!("zhzj_commands_total", "type" => kind, "outcome" => outcome_label)
        .increment(1);
    metrics::histogram!("zhzj_command_seconds", "type" => kind)
        .record(started.elapsed().as_secs_f64());
    match outcome? {
        CommandReply::Ok(CommandAccepted {
            aggregate_type,
            aggregate_id,
            version,
        }) => {
            let waiting = Instant::now();
            let visible = state
                .inner
                .projections
                .wait_for(version, state.config().read_your_writes)
                .await;
            metrics::histogram!("zhzj_read_your_writes_seconds")
                .record(waiting.elapsed().as_secs_f64());
            if !visible && !state.config().read_your_writes.is_zero() {
                tracing::warn!(
                    version,
                    "read views did not show the write within the bound"
                );
            }
            Ok(WriteReply {
                aggregate_type: aggregate_type.as_str().to_owned(),
                aggregate_id,
                version,
                position: version,
                visible,
            })
        }
        CommandReply::Error(error) => Err(ApiError::from_command(error, write.if_match.is_some())),
    }
}

async fn request_command(
    state: &AppState,
    subject: &'static str,
    payload: Vec<u8>,
) -> Result<CommandReply, ApiError> {
    let timeout = state.config().command_timeout;
    let reply = tokio::time::timeout(timeout, state.inner.client.request(subject, payload.into()))
        .await
        .map_err(|_| {
            ApiError::Unavailable("命令服务未在时限内答复，请用同一 Idempotency-Key 重试".into())
        })?
        .map_err(|e| {
            use async_nats::client::RequestErrorKind;
            match e.kind() {
                RequestErrorKind::NoResponders => {
                    ApiError::Unavailable("命令服务未运行，请稍后重试".into())
                }
                _ => ApiError::Unavailable(format!("命令服务暂不可用，请重试: {e}")),
            }
        })?;
    serde_json::from_slice(&reply.payload).map_err(ApiError::internal)
}
