//! The log is append-only on the server, not by convention: JetStream itself refuses to delete a
//! message of `ZHZJ_EVENTS` or to purge it, whoever asks — on a stream zhzj creates, and on one
//! an earlier version created without those settings, which opening the log switches on. An
//! outside drill had deleted a message and purged the stream with a stock client.
//!
//! Run against Debian's nats-server (2.9) and, when `ZHZJ_NATS_SERVER_CURRENT` names one, a
//! current release.

use std::path::PathBuf;

use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use zhzj_proto::subjects::{EVENT_STREAM, EVENT_SUBJECTS};
use zhzj_store::{EventLog, LogConfig};
use zhzj_tests::{NatsServer, Services, current_nats_binary, default_nats_binary};

fn servers() -> Vec<PathBuf> {
    let mut servers = vec![default_nats_binary()];
    servers.extend(current_nats_binary());
    servers
}

/// Tries to delete message 1 and to purge the stream; both must be refused and change nothing.
async fn edits_are_refused(nats: &NatsServer, binary: &std::path::Path) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(nats.connect().await?);
    let mut stream = js.get_stream(EVENT_STREAM).await?;
    let before = stream.info().await?.state.messages;
    assert!(before > 0, "the log holds commits");
    let deleted = stream.delete_message(1).await;
    assert!(
        deleted.is_err(),
        "{}: deleting a message was allowed: {deleted:?}",
        binary.display()
    );
    let purged = stream.purge().await;
    assert!(
        purged.is_err(),
        "{}: purging was allowed: {purged:?}",
        binary.display()
    );
    let config = stream.info().await?.config.clone();
    assert!(config.deny_delete && config.deny_purge);
    assert_eq!(
        stream.info().await?.state.messages,
        before,
        "nothing removed"
    );
    Ok(())
}

#[tokio::test]
async fn the_log_refuses_deletes_and_purges() -> anyhow::Result<()> {
    for binary in servers() {
        let nats = NatsServer::start_binary(binary.clone()).await?;
        let services = Services::open(nats.connect().await?).await?;
        services.seed_directory().await?;
        edits_are_refused(&nats, &binary).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_log_created_before_is_sealed_when_opened() -> anyhow::Result<()> {
    for binary in servers() {
        let nats = NatsServer::start_binary(binary.clone()).await?;
        // The stream as an earlier version created it: deletes and purges allowed.
        let js = async_nats::jetstream::new(nats.connect().await?);
        js.create_stream(StreamConfig {
            name: EVENT_STREAM.to_owned(),
            subjects: vec![EVENT_SUBJECTS.to_owned()],
            storage: StorageType::File,
            duplicate_window: std::time::Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
        js.publish("zhzj.ev.unit.xm", "{}".into()).await?.await?;
        EventLog::open(nats.connect().await?, &LogConfig::default()).await?;
        edits_are_refused(&nats, &binary).await?;
    }
    Ok(())
}
