//! Records account changes, logins, failed logins and lockouts in the log: a `record_account`
//! command to the `cases` service (the gateway never appends itself), answered before the
//! change is applied to the credential table, so nothing happens to an account that the log
//! does not hold. Passwords and their hashes never leave the gateway.

use std::time::{Duration, Instant};

use zhzj_proto::{
    Actor, Command, CommandReply, CommandRequest, ErrorKind,
    accounts::{AccountChange, RecordAccount},
    subjects::CASES_COMMANDS,
};
use zhzj_store::ReadStore;

use super::AccountError;

/// How long the cases service has to answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an administrative change may take to reach `account_rights`.
const VISIBLE_WITHIN: Duration = Duration::from_secs(5);
/// How often the accounts view's checkpoint is read while waiting.
const POLL: Duration = Duration::from_millis(3);

/// The actor of what the gateway records on its own: failed logins and lockouts.
pub const GATEWAY_ACTOR: &str = "system:gateway";

/// Sends account records to the log and waits for the accounts view to show them.
#[derive(Debug, Clone)]
pub struct AccountJournal {
    /// None for a journal that cannot reach the log (`zhzj user add` while nothing runs).
    client: Option<async_nats::Client>,
    store: ReadStore,
}

impl AccountJournal {
    /// A journal sending on `client`, waiting on the views of `store`.
    pub fn new(client: async_nats::Client, store: ReadStore) -> Self {
        Self {
            client: Some(client),
            store,
        }
    }

    /// A journal that cannot reach the log: every record is [`AccountError::Unavailable`].
    pub fn offline(store: ReadStore) -> Self {
        Self {
            client: None,
            store,
        }
    }

    /// Records `change` about `username` as `actor`; the log position of the record.
    pub async fn record(
        &self,
        actor: Actor,
        username: &str,
        change: AccountChange,
    ) -> Result<u64, AccountError> {
        let command_id = uuid::Uuid::new_v4();
        let request = CommandRequest {
            command_id,
            correlation_id: None,
            causation_id: None,
            actor,
            expected_version: None,
            unknown_outcome_retry: false,
            command: Command::RecordAccount(RecordAccount {
                username: username.to_owned(),
                change,
            }),
        };
        let Some(client) = &self.client else {
            return Err(AccountError::Unavailable(
                "系统未运行 (no NATS connection)".into(),
            ));
        };
        let payload =
            serde_json::to_vec(&request).map_err(|e| AccountError::Unavailable(e.to_string()))?;
        let reply = tokio::time::timeout(
            COMMAND_TIMEOUT,
            client.request(CASES_COMMANDS, payload.into()),
        )
        .await
        .map_err(|_| AccountError::Unavailable("命令服务未在时限内答复".into()))?
        .map_err(|e| AccountError::Unavailable(format!("命令服务暂不可用: {e}")))?;
        let reply: CommandReply = serde_json::from_slice(&reply.payload)
            .map_err(|e| AccountError::Unavailable(format!("命令服务的答复无法读取: {e}")))?;
        match reply {
            CommandReply::Ok(accepted) => Ok(accepted.version),
            CommandReply::Error(error) => Err(match error.kind {
                ErrorKind::NotFound => AccountError::NoSuchUser(username.to_owned()),
                ErrorKind::Conflict => AccountError::Exists(username.to_owned()),
                ErrorKind::Forbidden => AccountError::Refused(error.message),
                ErrorKind::Unavailable => AccountError::Unavailable(error.message),
                _ => AccountError::Invalid {
                    field: "username",
                    message: error.message,
                },
            }),
        }
    }

    /// [`AccountJournal::record`], then waits (bounded) until `account_rights` shows it, so the
    /// next request sees the change.
    pub async fn record_visible(
        &self,
        actor: Actor,
        username: &str,
        change: AccountChange,
    ) -> Result<u64, AccountError> {
        let position = self.record(actor, username, change).await?;
        let started = Instant::now();
        loop {
            if self.accounts_view_position().await? >= position {
                return Ok(position);
            }
            if started.elapsed() > VISIBLE_WITHIN {
                tracing::warn!(
                    position,
                    "the accounts view did not show an account change within the bound"
                );
                return Ok(position);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether the projector has built the accounts view (its checkpoint and tables are made in
    /// one transaction).
    pub async fn accounts_view_exists(&self) -> Result<bool, sqlx::Error> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM projection_checkpoints WHERE projection = $1")
                .bind(zhzj_projector::Projection::ACCOUNTS.name())
                .fetch_optional(self.store.pool())
                .await?;
        Ok(found.is_some())
    }

    /// The position the accounts view has reached.
    pub async fn accounts_view_position(&self) -> Result<u64, sqlx::Error> {
        crate::projections::position_of(&self.store, zhzj_projector::Projection::ACCOUNTS).await
    }

    /// An administrator that is the system itself (`system:<name>`): the command line, the demo
    /// loader, the adoption of accounts made before they were in the log.
    pub fn system_admin(name: &str) -> Actor {
        Actor {
            user_id: format!("system:{name}"),
            roles: vec![zhzj_proto::accounts::Role::Admin.as_str().to_owned()],
            unit_id: None,
            leader_id: None,
        }
    }

    /// The actor of what the gateway records on its own.
    pub fn gateway_actor() -> Actor {
        Actor {
            user_id: GATEWAY_ACTOR.to_owned(),
            roles: Vec::new(),
            unit_id: None,
            leader_id: None,
        }
    }
}
