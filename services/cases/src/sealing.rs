//! Answers "seal the log through this position" requests on `zhzj.cmd.seal`: the gateway asks
//! before it writes an export that states a log position, so that the export can state the log
//! digest there and a signed seal in the log says the same.

use bytes::Bytes;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use zhzj_store::Sealer;
use zhzj_trust::seal::{SEAL_REQUESTS, SealReply, SealRequest};

/// Queue group of the sealers, so one instance answers each request.
const SEALERS_QUEUE_GROUP: &str = "zhzj-sealers";

/// Subscribes to seal requests, then answers them in a task until `shutdown`.
pub async fn spawn_seal_requests(
    client: async_nats::Client,
    sealer: Sealer,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, async_nats::SubscribeError> {
    let mut subscription = client
        .queue_subscribe(SEAL_REQUESTS, SEALERS_QUEUE_GROUP.to_owned())
        .await?;
    Ok(tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                message = subscription.next() => message,
                () = shutdown.cancelled() => break,
            };
            let Some(message) = message else { break };
            let reply = match serde_json::from_slice::<SealRequest>(&message.payload) {
                Ok(request) => match sealer.seal(request.through, &request.reason).await {
                    Ok(reply) => reply,
                    Err(e) => SealReply::Failed {
                        reason: e.to_string(),
                    },
                },
                Err(e) => SealReply::Failed {
                    reason: format!("not a seal request: {e}"),
                },
            };
            if let Some(reply_to) = message.reply {
                let body = serde_json::to_vec(&reply).unwrap_or_default();
                if let Err(e) = client.publish(reply_to, Bytes::from(body)).await {
                    tracing::warn!(error = %e, "could not answer a seal request");
                }
            }
        }
    }))
}
