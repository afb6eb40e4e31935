//! The NATS loop that feeds the command service: a queue subscription per role, commands answered
//! concurrently up to [`MAX_IN_FLIGHT`], and a drain on shutdown that answers every command
//! already received.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zhzj_proto::subjects::{
    CAMPAIGN_COMMANDS, CAMPAIGN_QUEUE_GROUP, CASES_COMMANDS, CASES_QUEUE_GROUP,
};

use crate::service::CasesService;

/// Commands handled at once by one instance.
pub const MAX_IN_FLIGHT: usize = 256;

/// Serves commands from the queue group until `shutdown` fires, then stops taking new ones,
/// answers those already received, and returns.
pub async fn serve(
    client: async_nats::Client,
    service: CasesService,
    shutdown: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    spawn(client, service, shutdown).await?.await.ok();
    Ok(())
}

/// [`serve`] for the given role's subject.
pub async fn serve_as(
    client: async_nats::Client,
    service: CasesService,
    role: ServiceRole,
    shutdown: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    spawn_as(client, service, role, shutdown).await?.await.ok();
    Ok(())
}

/// Which commands a subscription answers: the same decision engine serves the `cases` role
/// (cases and the directory) and the `campaign` role (meetings and instructions), each on its own
/// subject and queue group, so that each scales and fails on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRole {
    /// Cases and the org directory, on [`CASES_COMMANDS`].
    Cases,
    /// The campaign rhythm, on [`CAMPAIGN_COMMANDS`].
    Campaign,
}

impl ServiceRole {
    fn subject(self) -> (&'static str, &'static str) {
        match self {
            Self::Cases => (CASES_COMMANDS, CASES_QUEUE_GROUP),
            Self::Campaign => (CAMPAIGN_COMMANDS, CAMPAIGN_QUEUE_GROUP),
        }
    }
}

/// Subscribes to the `cases` command subject, waits until the server has the subscription (so a
/// command sent after this returns finds a responder), then serves in a task until `shutdown`
/// fires.
pub async fn spawn(
    client: async_nats::Client,
    service: CasesService,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, async_nats::SubscribeError> {
    spawn_as(client, service, ServiceRole::Cases, shutdown).await
}

/// [`spawn`] for the given role's subject.
pub async fn spawn_as(
    client: async_nats::Client,
    service: CasesService,
    role: ServiceRole,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, async_nats::SubscribeError> {
    let (subject, queue_group) = role.subject();
    let subscription = client
        .queue_subscribe(subject, queue_group.to_owned())
        .await?;
    confirm_subscription(&client).await;
    Ok(tokio::spawn(run_subscription(
        client,
        subscription,
        service,
        role,
        shutdown,
    )))
}

/// How long a start waits for the server to confirm the command subscription.
const CONFIRM_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits until the server has the subscription just sent. `flush` only writes it to the socket;
/// NATS handles a connection's operations in order, so the answer to a request sent after it
/// comes once the subscription is in place. The request is JetStream's account information,
/// which every role may ask (`zhzj_trust::nats_access`) and which changes nothing.
async fn confirm_subscription(client: &async_nats::Client) {
    let asked = client.request("$JS.API.INFO", Bytes::new());
    match tokio::time::timeout(CONFIRM_WITHIN, asked).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not confirm the command subscription"),
        Err(_) => tracing::warn!(
            "the server did not confirm the command subscription within {CONFIRM_WITHIN:?}"
        ),
    }
}

async fn run_subscription(
    client: async_nats::Client,
    mut subscription: async_nats::Subscriber,
    service: CasesService,
    role: ServiceRole,
    shutdown: CancellationToken,
) {
    let in_flight = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut draining = false;
    loop {
        let message = tokio::select! {
            message = subscription.next() => message,
            () = shutdown.cancelled(), if !draining => {
                // Stop taking new commands; messages already delivered still come through.
                draining = true;
                if let Err(e) = subscription.drain().await {
                    tracing::warn!(error = %e, "could not drain the command subscription");
                    break;
                }
                continue;
            }
        };
        let Some(message) = message else { break };
        if message.subject.as_str() != role.subject().0 {
            // Not a command: a JetStream push consumer someone pointed at the command subject
            // delivers stream messages under their own subjects. Never answered.
            tracing::warn!(subject = %message.subject, "dropped a message that is not a command");
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let service = service.clone();
        let client = client.clone();
        in_flight.spawn(async move {
            // Boxed: the handler's state machine is about 8 KB, and a task's future is copied
            // whole when it is spawned and again when it completes (about 7 % of the service's
            // CPU in a profile). Boxed, the task holds a pointer and the message.
            let reply = Box::pin(service.handle_payload_as(&message.payload, role)).await;
            if let Some(reply_to) = message.reply {
                let body = serde_json::to_vec(&reply).unwrap_or_default();
                if let Err(e) = client.publish(reply_to, Bytes::from(body)).await {
                    tracing::warn!(error = %e, "could not send a command reply");
                }
            }
            drop(permit);
        });
    }
    in_flight.close();
    in_flight.wait().await;
    if let Err(e) = client.flush().await {
        tracing::warn!(error = %e, "could not flush command replies");
    }
}
