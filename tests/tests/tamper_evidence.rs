//! Any edit of history is detected: every commit names its aggregate's previous commit and is
//! signed by the command services' key, and seals state the log digest. Each test copies a real
//! log into a second server, edits the copy as the holder of the admin credential could — alter
//! a commit's body, delete a message, insert a forged commit, swap two commits of one case — and
//! `verify_log` must name the position and the case; the untouched copy verifies, and a log
//! whose first commits predate the chain verifies as unchained before the first signed one.

use std::sync::Arc;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
    stream::{Config as StreamConfig, StorageType},
};
use bytes::Bytes;
use futures::StreamExt;
use uuid::Uuid;
use zhzj_proto::subjects::{EVENT_STREAM, EVENT_SUBJECTS};
use zhzj_store::{CommitSigner, EventLog, Sealer, TrustedKeys, verify_log};
use zhzj_tests::{NatsServer, Services, record_note, register_case};
use zhzj_trust::seal::SEAL_SUBJECT;
use zhzj_trust::verify::{Finding, Tampering, VerifiedLog};

/// One message of a log, as copied.
#[derive(Debug, Clone)]
struct Copied {
    subject: String,
    headers: async_nats::HeaderMap,
    payload: Bytes,
}

/// A scenario's log: the directory, three cases with notes on case 1 between the others', and a
/// seal in the middle and at the end. Returns the server, the trusted keys and case 1's id.
async fn scenario(signer: Arc<CommitSigner>) -> anyhow::Result<(NatsServer, Uuid)> {
    let nats = NatsServer::start().await?;
    let services = Services::open(nats.connect().await?).await?;
    let log = services.log.clone().with_signer(Arc::clone(&signer));
    let services = Services::on_log(log, services.clock);
    services.seed_directory().await?;
    let first: Uuid = services.ok(register_case(1)).await?.aggregate_id.parse()?;
    let sealer = Sealer::new(services.log.clone(), Arc::clone(&signer));
    for n in 2..=3 {
        services.ok(register_case(n)).await?;
        services
            .ok(record_note(first, &format!("第{n}次电话沟通")))
            .await?;
    }
    sealer.seal(None, "test").await?;
    for n in 4..=6 {
        services
            .ok(record_note(first, &format!("第{n}次电话沟通")))
            .await?;
    }
    sealer.seal(None, "test").await?;
    Ok((nats, first))
}

/// Every message of the server's log.
async fn read_all(nats: &NatsServer) -> anyhow::Result<Vec<Copied>> {
    let js = jetstream::new(nats.connect().await?);
    let mut stream = js.get_stream(EVENT_STREAM).await?;
    let last = stream.info().await?.state.last_sequence;
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut copied = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message?;
        let position = message.info().map_err(anyhow::Error::msg)?.stream_sequence;
        let message = message.split().0;
        // What the writer asked JetStream to check is not part of the message.
        let mut headers = async_nats::HeaderMap::new();
        for (name, values) in message.headers.iter().flat_map(|h| h.iter()) {
            if !name.to_string().starts_with("Nats-") {
                for value in values {
                    headers.insert(name.clone(), value.clone());
                }
            }
        }
        copied.push(Copied {
            subject: message.subject.to_string(),
            headers,
            payload: message.payload,
        });
        if position >= last {
            break;
        }
    }
    Ok(copied)
}

/// Writes `messages` as the log of a new server, in a stream that still allows deletes (a copy
/// an attacker controls); returns the server.
async fn write_copy(messages: &[Copied]) -> anyhow::Result<NatsServer> {
    let nats = NatsServer::start().await?;
    let js = jetstream::new(nats.connect().await?);
    js.create_stream(StreamConfig {
        name: EVENT_STREAM.to_owned(),
        subjects: vec![EVENT_SUBJECTS.to_owned(), SEAL_SUBJECT.to_owned()],
        storage: StorageType::File,
        ..Default::default()
    })
    .await?;
    for message in messages {
        js.publish_with_headers(
            message.subject.clone(),
            message.headers.clone(),
            message.payload.clone(),
        )
        .await?
        .await?;
    }
    Ok(nats)
}

async fn verify(
    nats: &NatsServer,
    keys: &TrustedKeys,
) -> anyhow::Result<Result<VerifiedLog, Finding>> {
    let log = EventLog::open_existing(nats.connect().await?).await?;
    Ok(verify_log(&log, keys.clone(), &[]).await?)
}

/// Positions (1-based) of the commits of `case_id`.
fn positions_of(messages: &[Copied], case_id: Uuid) -> Vec<usize> {
    let subject = format!("zhzj.ev.case.{case_id}");
    (0..messages.len())
        .filter(|i| messages[*i].subject == subject)
        .map(|i| i + 1)
        .collect()
}

fn case_named(finding: &Finding, case_id: Uuid) -> bool {
    finding.aggregate.as_deref() == Some(&format!("zhzj.ev.case.{case_id}"))
}

#[tokio::test]
async fn each_edit_of_history_is_named_and_an_untouched_copy_verifies() -> anyhow::Result<()> {
    zhzj_tests::init_tracing();
    let signer = Arc::new(CommitSigner::generate()?);
    let keys = signer.trusted();
    let (original, case_id) = scenario(Arc::clone(&signer)).await?;
    let messages = read_all(&original).await?;
    let commits = positions_of(&messages, case_id);
    assert!(commits.len() >= 6, "{commits:?}");

    // The original and an untouched copy verify, through their last position and last seal.
    for nats in [&original, &write_copy(&messages).await?] {
        let verified = verify(nats, &keys).await?.map_err(anyhow::Error::msg)?;
        assert_eq!(verified.through, messages.len() as u64);
        assert_eq!(verified.seals, 2, "{verified:?}");
        let seal = verified.last_seal.clone().expect("a seal");
        assert_eq!(
            seal.position,
            messages.len() as u64,
            "the last message is a seal"
        );
        assert_eq!(verified.chain_starts_at, Some(1));
    }

    // Altered: a note's text changed, everything else as it was.
    let altered_at = commits[3];
    let mut altered = messages.clone();
    let text = String::from_utf8(altered[altered_at - 1].payload.to_vec())?;
    assert!(text.contains("电话沟通"), "{text}");
    altered[altered_at - 1].payload = Bytes::from(text.replace("电话沟通", "上门走访"));
    let finding = verify(&write_copy(&altered).await?, &keys)
        .await?
        .expect_err("altered");
    assert_eq!(finding.position, altered_at as u64, "{finding}");
    assert_eq!(finding.tampering, Tampering::Altered, "{finding}");
    assert!(case_named(&finding, case_id), "{finding}");

    // Removed: a message deleted from the copy.
    let removed_at = commits[2];
    let copy = write_copy(&messages).await?;
    jetstream::new(copy.connect().await?)
        .get_stream(EVENT_STREAM)
        .await?
        .delete_message(removed_at as u64)
        .await?;
    let finding = verify(&copy, &keys).await?.expect_err("removed");
    assert_eq!(finding.position, removed_at as u64, "{finding}");
    assert_eq!(finding.tampering, Tampering::Removed, "{finding}");
    assert!(case_named(&finding, case_id), "{finding}");

    // Removed without a trace in positions: the copy simply leaves one out.
    let mut skipped = messages.clone();
    skipped.remove(commits[1] - 1);
    let finding = verify(&write_copy(&skipped).await?, &keys)
        .await?
        .expect_err("left out");
    assert_eq!(finding.position, commits[2] as u64 - 1, "{finding}");
    assert_eq!(finding.tampering, Tampering::ChainBroken, "{finding}");
    assert!(case_named(&finding, case_id), "{finding}");

    // Inserted: a commit of the case forged with the right previous link and another key, and
    // one with no signature at all.
    let forger = CommitSigner::generate()?;
    for signed in [true, false] {
        let mut inserted = messages.clone();
        let after = commits[4];
        let mut forged = messages[after - 1].clone();
        let previous = zhzj_trust::chain::stored_commit_digest(
            &forged.subject,
            Some(&messages[after - 1].headers),
            zhzj_proto::subjects::SNAPSHOT_HEADER,
            &messages[after - 1].payload,
        );
        forged.payload = Bytes::from(
            String::from_utf8(forged.payload.to_vec())?.replace("电话沟通", "已案结事了"),
        );
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            zhzj_trust::chain::PREVIOUS_HEADER,
            previous.to_hex().as_str(),
        );
        if signed {
            let digest = zhzj_trust::chain::stored_commit_digest(
                &forged.subject,
                Some(&headers),
                zhzj_proto::subjects::SNAPSHOT_HEADER,
                &forged.payload,
            );
            headers.insert(zhzj_trust::chain::KEY_HEADER, forger.key_id());
            headers.insert(
                zhzj_trust::chain::SIGNATURE_HEADER,
                forger.sign(&digest).as_str(),
            );
        }
        forged.headers = headers;
        inserted.insert(after, forged);
        let finding = verify(&write_copy(&inserted).await?, &keys)
            .await?
            .expect_err("forged");
        assert_eq!(finding.position, after as u64 + 1, "{finding}");
        let expected = if signed {
            Tampering::UnknownKey
        } else {
            Tampering::Unsigned
        };
        assert_eq!(finding.tampering, expected, "{finding}");
        assert!(case_named(&finding, case_id), "{finding}");
    }

    // Reordered: two commits of the case swapped.
    let (i, j) = (commits[4], commits[5]);
    let mut swapped = messages.clone();
    swapped.swap(i - 1, j - 1);
    let finding = verify(&write_copy(&swapped).await?, &keys)
        .await?
        .expect_err("swapped");
    assert_eq!(finding.position, i as u64, "{finding}");
    assert_eq!(finding.tampering, Tampering::Reordered, "{finding}");
    assert!(case_named(&finding, case_id), "{finding}");

    // A key the verifier does not trust fails everything it signed.
    let finding = verify(&original, &forger.trusted())
        .await?
        .expect_err("untrusted");
    assert_eq!(finding.position, 1, "{finding}");
    Ok(())
}

#[tokio::test]
async fn a_log_older_than_the_chain_verifies_as_unchained_before_its_first_signed_commit()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    // An earlier version wrote without signing.
    let unsigned = Services::open(nats.connect().await?).await?;
    let old_log = EventLog::open(nats.connect().await?, &zhzj_store::LogConfig::default()).await?;
    let old = Services::on_log(old_log, unsigned.clock.clone());
    old.seed_directory().await?;
    let case_id: Uuid = old.ok(register_case(1)).await?.aggregate_id.parse()?;
    let first_signed = old.log.last_position().await? + 1;
    // This version signs, continuing the case's chain from its unsigned commits.
    let signer = Arc::new(CommitSigner::generate()?);
    let log = old.log.clone().with_signer(Arc::clone(&signer));
    let new = Services::on_log(log, unsigned.clock);
    new.ok(record_note(case_id, "升级后的第一条记录")).await?;
    new.ok(register_case(2)).await?;
    let verified = verify(&nats, &signer.trusted())
        .await?
        .map_err(anyhow::Error::msg)?;
    assert_eq!(verified.chain_starts_at, Some(first_signed));
    assert_eq!(verified.unchained_commits, first_signed - 1);
    assert_eq!(verified.signed_commits, 2);

    // An unsigned commit after the chain began is an insertion.
    old.ok(record_note(case_id, "旧版本写入")).await?;
    let finding = verify(&nats, &signer.trusted())
        .await?
        .expect_err("inserted");
    assert_eq!(finding.tampering, Tampering::Unsigned, "{finding}");
    assert_eq!(finding.position, old.log.last_position().await?);
    Ok(())
}
