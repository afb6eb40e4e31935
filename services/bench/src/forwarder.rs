//! The commits benchmark's reference responder: the `cases` service's transport without its
//! logic, so that the benchmark can show what the request/reply architecture itself costs.
//!
//! It answers requests in a queue group, exactly as the service does (a task per request, at most
//! the service's `MAX_IN_FLIGHT` at once, on the same single-threaded runtime: see
//! `Commands::single_threaded`), but decides nothing: each request carries a commit the
//! service wrote earlier, with its message id, expected sequence and snapshot in headers, sent to
//! `zhzj.bench.forward.<the case's subject>`; the forwarder appends it to that subject as it is
//! and replies with a `CommandReply` naming the new version. Whatever the service measures below
//! this responder is the price of its own work (parsing, deciding, serialising); whatever this
//! responder measures below a raw publish is the price of the two extra messages per command.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Semaphore;
use zhzj_proto::{AggregateType, CommandAccepted, CommandError, CommandReply, ErrorKind};

/// The prefix of the subjects the forwarder answers on; the rest is the subject to append to.
pub const FORWARD_PREFIX: &str = "zhzj.bench.forward.";

/// Serves until the process is stopped.
pub async fn serve(nats_url: &str, nkey: &std::path::Path) -> anyhow::Result<()> {
    let credentials = zhzj_trust::nats_access::ClientCredentials {
        nkey_file: Some(nkey.to_owned()),
        ..Default::default()
    };
    let client = credentials
        .apply(async_nats::ConnectOptions::new())
        .await?
        .connect(nats_url)
        .await
        .with_context(|| format!("connecting to {nats_url}"))?;
    let js = async_nats::jetstream::new(client.clone());
    let mut requests = client
        .queue_subscribe(
            format!("{FORWARD_PREFIX}>"),
            "zhzj-bench-forward".to_owned(),
        )
        .await?;
    client.flush().await?;
    let permits = Arc::new(Semaphore::new(zhzj_cases::service::MAX_IN_FLIGHT));
    while let Some(request) = requests.next().await {
        let permit = permits.clone().acquire_owned().await?;
        let (client, js) = (client.clone(), js.clone());
        tokio::spawn(async move {
            let target = request
                .subject
                .strip_prefix(FORWARD_PREFIX)
                .unwrap_or_default();
            let reply = forward(&js, target, request.headers, request.payload).await;
            if let Some(reply_to) = request.reply {
                let body = serde_json::to_vec(&reply).unwrap_or_default();
                if let Err(e) = client.publish(reply_to, Bytes::from(body)).await {
                    tracing::warn!(error = %e, "could not reply");
                }
            }
            drop(permit);
        });
    }
    Ok(())
}

/// Appends one prepared commit.
async fn forward(
    js: &async_nats::jetstream::Context,
    subject: &str,
    headers: Option<async_nats::HeaderMap>,
    payload: Bytes,
) -> CommandReply {
    let Some(headers) = headers else {
        return CommandReply::Error(CommandError::new(ErrorKind::Invalid, "no headers"));
    };
    let publish = async_nats::jetstream::message::PublishMessage::build()
        .payload(payload)
        .headers(headers);
    let ack = match js.send_publish(subject.to_owned(), publish).await {
        Ok(ack) => ack.await,
        Err(e) => Err(e),
    };
    match ack {
        Ok(ack) => CommandReply::Ok(CommandAccepted {
            aggregate_type: AggregateType::Case,
            aggregate_id: subject.to_owned(),
            version: ack.sequence,
        }),
        Err(e) => CommandReply::Error(CommandError::new(ErrorKind::Unavailable, e.to_string())),
    }
}
