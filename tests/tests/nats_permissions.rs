//! Only zhzj's own roles may talk to NATS, each only as far as its job needs. An outside drill
//! had sent a command with a made-up actor, published a copied commit straight onto a case's
//! subject, deleted a message and deleted the whole stream, with a stock client and no
//! credentials. Here every one of those is tried with no credentials, and with the projector's,
//! the gateway's, the command line's and the command services' own, against Debian's
//! nats-server (2.9) and, when `ZHZJ_NATS_SERVER_CURRENT` names one, a current release; and a
//! server that requires TLS refuses a plain connection.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;
use zhzj_cases::CasesService;
use zhzj_proto::{CommandReply, commands::AddUnit, events::UnitKind, subjects::EVENT_STREAM};
use zhzj_store::{CommitSigner, EventLog, LogConfig, SystemClock};
use zhzj_tests::{
    NatsServer, current_nats_binary, default_nats_binary, directory_commands, register_case,
    request, send, test_master_key,
};
use zhzj_trust::nats_access::{ClientCredentials, NatsRole};

fn servers() -> Vec<PathBuf> {
    let mut servers = vec![default_nats_binary()];
    servers.extend(current_nats_binary());
    servers
}

/// A client as `role` whose requests give up after a second (a refused request gets no answer).
async fn client_as(nats: &NatsServer, role: NatsRole) -> anyhow::Result<async_nats::Client> {
    Ok(nats
        .credentials(role)?
        .apply(async_nats::ConnectOptions::new())
        .await?
        .request_timeout(Some(Duration::from_secs(1)))
        .connect(nats.url())
        .await?)
}

/// Sends a command with a made-up actor on the cases subject; Some(reply) if answered.
async fn forged_command(client: &async_nats::Client) -> Option<CommandReply> {
    let mut forged = request(zhzj_proto::Command::AddUnit(AddUnit {
        unit_id: format!("forged-{}", uuid::Uuid::new_v4().simple()),
        parent_id: None,
        name: "伪造的单位".into(),
        kind: UnitKind::City,
    }));
    forged.actor.user_id = "admin".into();
    let body = serde_json::to_vec(&forged).ok()?;
    let reply = client
        .request(zhzj_proto::subjects::CASES_COMMANDS, body.into())
        .await
        .ok()?;
    serde_json::from_slice(&reply.payload).ok()
}

/// Tries every edit of the log as `client`; each must fail and change nothing.
async fn edits_fail(
    nats: &NatsServer,
    client: async_nats::Client,
    who: &str,
) -> anyhow::Result<()> {
    let mut js = jetstream::new(client);
    // A refused API request is never answered: give up soon.
    js.set_timeout(Duration::from_secs(1));
    let admin = jetstream::new(nats.connect().await?);
    let messages = |admin: &jetstream::Context| {
        let admin = admin.clone();
        async move {
            let mut stream = admin.get_stream(EVENT_STREAM).await?;
            anyhow::Ok(stream.info().await?.state.messages)
        }
    };
    let before = messages(&admin).await?;
    assert!(before > 0, "the log holds commits");

    let copied = admin
        .get_stream(EVENT_STREAM)
        .await?
        .get_raw_message(1)
        .await?;
    let published = match js
        .publish(
            "zhzj.ev.case.00000000-0000-0000-0000-000000000001",
            copied.payload,
        )
        .await
    {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(published.is_err(), "{who}: appended a copied commit");
    let sealed = js
        .publish(zhzj_trust::seal::SEAL_SUBJECT, Bytes::from_static(b"{}"))
        .await;
    let sealed = match sealed {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(sealed.is_err(), "{who}: appended a seal");

    // Deleting or purging is refused by the stream itself (deny_delete, deny_purge) whoever
    // asks; updating and deleting the stream must be refused to everyone but the admin.
    let stream = js.get_stream(EVENT_STREAM).await;
    if let Ok(mut stream) = stream {
        assert!(stream.delete_message(1).await.is_err(), "{who}: deleted");
        assert!(stream.purge().await.is_err(), "{who}: purged");
        let mut changed = stream.info().await?.config.clone();
        changed.description = Some("edited by an attacker".into());
        changed.deny_delete = false;
        assert!(
            js.update_stream(&changed).await.is_err(),
            "{who}: reconfigured the stream"
        );
    }
    assert!(
        js.delete_stream(EVENT_STREAM).await.is_err(),
        "{who}: deleted the stream"
    );
    let mut stream = admin.get_stream(EVENT_STREAM).await?;
    let info = stream.info().await?;
    assert_eq!(info.state.messages, before, "{who}: the log changed");
    assert_eq!(info.config.description, None, "{who}: the config changed");
    Ok(())
}

/// Creates the log with the admin credential and starts the cases service as deployed: its own
/// credential, a log it may not reconfigure, and (`sealing`) the key store.
async fn cases_service_as_deployed(
    nats: &NatsServer,
    sealing: bool,
) -> anyhow::Result<(CancellationToken, tokio::task::JoinHandle<()>)> {
    nats.init_log().await?;
    let shutdown = CancellationToken::new();
    let cases_client = client_as(nats, NatsRole::Cases).await?;
    let config = LogConfig {
        administer: false,
        ..LogConfig::default()
    };
    let log = EventLog::open(cases_client.clone(), &config)
        .await?
        .with_signer(std::sync::Arc::new(CommitSigner::generate()?));
    let mut service = CasesService::new(log, std::sync::Arc::new(SystemClock));
    if sealing {
        let vault =
            zhzj_store::PersonalDataVault::connect(cases_client.clone(), test_master_key()?)
                .await?;
        service = service.with_vault(vault);
    }
    let served = zhzj_cases::spawn(cases_client, service, shutdown.clone()).await?;
    Ok((shutdown, served))
}

async fn refusals_on(binary: &std::path::Path) -> anyhow::Result<()> {
    let nats = NatsServer::start_binary(binary.to_owned()).await?;
    let (shutdown, served) = cases_service_as_deployed(&nats, false).await?;

    // Only the gateway's and the command line's credentials get a command answered.
    for role in [NatsRole::Gateway, NatsRole::Cli] {
        let client = client_as(&nats, role).await?;
        let answered = forged_command(&client).await;
        assert!(
            matches!(answered, Some(CommandReply::Ok(_))),
            "{}: {role:?} was not answered: {answered:?}",
            binary.display()
        );
    }
    for role in [NatsRole::Projector, NatsRole::Cases, NatsRole::Campaign] {
        let client = client_as(&nats, role).await?;
        assert!(
            forged_command(&client).await.is_none(),
            "{}: {role:?} got a command answered",
            binary.display()
        );
    }

    // No credentials: no connection at all.
    let anonymous = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(nats.url())
        .await;
    assert!(
        anonymous.is_err(),
        "{}: connected without credentials",
        binary.display()
    );
    let stranger = ClientCredentials {
        nkey_file: Some(nats.credentials_dir()?.join("stranger.nk")),
        ..ClientCredentials::default()
    };
    let mut stranger_key = nkeys::KeyPair::new_user().seed()?;
    stranger_key.push('\n');
    std::fs::write(nats.credentials_dir()?.join("stranger.nk"), stranger_key)?;
    let stranger = stranger
        .apply(async_nats::ConnectOptions::new())
        .await?
        .connect(nats.url())
        .await;
    assert!(stranger.is_err(), "an unknown NKey connected");

    for role in [
        NatsRole::Projector,
        NatsRole::Gateway,
        NatsRole::Cli,
        NatsRole::Cases,
        NatsRole::Campaign,
    ] {
        let who = format!("{} as {role:?}", binary.display());
        let client = client_as(&nats, role).await?;
        if matches!(role, NatsRole::Cases | NatsRole::Campaign) {
            // They append, but only as themselves: stream administration is still refused.
            let mut js = jetstream::new(client);
            js.set_timeout(Duration::from_secs(1));
            assert!(js.delete_stream(EVENT_STREAM).await.is_err(), "{who}");
            let stream = js.get_stream(EVENT_STREAM).await?;
            assert!(stream.purge().await.is_err(), "{who}");
            continue;
        }
        edits_fail(&nats, client, &who).await?;
    }

    // Nobody but a command service hears commands, and nobody hears others' replies.
    let eavesdropper = client_as(&nats, NatsRole::Gateway).await?;
    let mut commands = eavesdropper.subscribe("zhzj.cmd.>").await?;
    let mut inboxes = eavesdropper.subscribe("_INBOX.>").await?;
    let mut cli_inboxes = eavesdropper.subscribe("_INBOX_zhzj_cli.>").await?;
    eavesdropper.flush().await?;
    let cli = client_as(&nats, NatsRole::Cli).await?;
    assert!(forged_command(&cli).await.is_some());
    for subscription in [&mut commands, &mut inboxes, &mut cli_inboxes] {
        let heard = tokio::time::timeout(Duration::from_millis(500), subscription.next()).await;
        assert!(
            !matches!(heard, Ok(Some(_))),
            "{}: the gateway overheard {heard:?}",
            binary.display()
        );
    }

    // The refusals above could fail: the admin may reconfigure the stream.
    let admin = jetstream::new(nats.connect().await?);
    let mut stream = admin.get_stream(EVENT_STREAM).await?;
    let mut changed = stream.info().await?.config.clone();
    changed.description = Some("reconfigured by the admin".into());
    admin.update_stream(&changed).await?;

    shutdown.cancel();
    served.await?;
    Ok(())
}

/// The data keys in the bucket now.
async fn live_data_keys(nats: &NatsServer) -> anyhow::Result<usize> {
    let bucket = jetstream::new(nats.connect().await?)
        .get_key_value(zhzj_store::DATA_KEY_BUCKET)
        .await?;
    let keys: Vec<String> = futures::TryStreamExt::try_collect(bucket.keys().await?).await?;
    Ok(keys.len())
}

/// A registration the log refuses (the case exists) had its petitioner sealed under a fresh key
/// first: the cases service drops that key with its own credential and answers at once. It once
/// waited on a message delete it may not make, and the gateway gave up with a 503.
async fn refused_registration_on(binary: &std::path::Path) -> anyhow::Result<()> {
    let nats = NatsServer::start_binary(binary.to_owned()).await?;
    let (shutdown, served) = cases_service_as_deployed(&nats, true).await?;

    // The command line's requests give up after a second.
    let cli = client_as(&nats, NatsRole::Cli).await?;
    for command in directory_commands() {
        let reply = send(&cli, &request(command)).await?;
        assert!(matches!(reply, CommandReply::Ok(_)), "{reply:?}");
    }
    let mut registration = register_case(1);
    if let zhzj_proto::Command::RegisterCase(c) = &mut registration {
        c.case_id = Some(uuid::Uuid::new_v4());
    }
    let first = send(&cli, &request(registration.clone())).await?;
    assert!(matches!(first, CommandReply::Ok(_)), "{first:?}");
    let keys = live_data_keys(&nats).await?;
    assert!(keys >= 2, "the petitioner's key and the index key: {keys}");
    let again = send(&cli, &request(registration)).await;
    assert!(
        matches!(again, Ok(CommandReply::Error(_))),
        "{}: the second registration was not refused in time: {again:?}",
        binary.display()
    );
    assert_eq!(live_data_keys(&nats).await?, keys, "{}", binary.display());

    // An administrator's erasure: the service destroys the key with its own credential.
    let zhzj_proto::Command::RegisterCase(registered) = &register_case(1) else {
        anyhow::bail!("a registration");
    };
    let CommandReply::Ok(first) = first else {
        anyhow::bail!("registered");
    };
    let erasure = zhzj_proto::Command::ErasePetitioner(zhzj_proto::commands::ErasePetitioner {
        case_id: uuid::Uuid::parse_str(&first.aggregate_id)?,
        petitioner: 1,
        reason: format!("{} 申请删除", registered.petitioners[0].name),
    });
    let erased = send(&cli, &request(erasure)).await;
    assert!(
        matches!(erased, Ok(CommandReply::Ok(_))),
        "{}: {erased:?}",
        binary.display()
    );
    assert_eq!(
        live_data_keys(&nats).await?,
        keys,
        "{}: the batch stays, without the key",
        binary.display()
    );
    let bucket = jetstream::new(nats.connect().await?)
        .get_key_value(zhzj_store::DATA_KEY_BUCKET)
        .await?;
    let batches: Vec<String> = futures::TryStreamExt::try_collect(bucket.keys().await?).await?;
    let batch = batches
        .iter()
        .find(|k| k.starts_with("kb-"))
        .ok_or_else(|| anyhow::anyhow!("a batch of keys: {batches:?}"))?;
    let slots: std::collections::BTreeMap<String, String> = serde_json::from_slice(
        &bucket
            .get(batch)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the batch"))?,
    )?;
    assert!(
        !slots.contains_key("0"),
        "{}: slot 0 erased",
        binary.display()
    );
    assert!(
        slots.contains_key("1"),
        "{}: the refused registration's key stays",
        binary.display()
    );

    shutdown.cancel();
    served.await?;
    Ok(())
}

#[tokio::test]
async fn a_refused_registration_is_answered_and_its_key_dropped() -> anyhow::Result<()> {
    zhzj_tests::init_tracing();
    for binary in servers() {
        refused_registration_on(&binary).await?;
    }
    Ok(())
}

#[tokio::test]
async fn each_role_may_do_only_its_job_and_strangers_nothing() -> anyhow::Result<()> {
    zhzj_tests::init_tracing();
    for binary in servers() {
        refusals_on(&binary).await?;
    }
    Ok(())
}

/// A server that requires TLS: a plain connection gets no further than the greeting, and a
/// client trusting the server's CA connects.
#[tokio::test]
async fn a_server_requiring_tls_refuses_plain_connections() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::write(&cert, certified.cert.pem())?;
    std::fs::write(&key, certified.signing_key.serialize_pem())?;
    let tls = format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n}}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    for binary in servers() {
        let nats = NatsServer::start_with_config_tls(binary.clone(), &tls, &cert).await?;
        let address = nats.url().replace("nats://", "");
        let stream = tokio::net::TcpStream::connect(&address).await?;
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let info = lines.next_line().await?.unwrap_or_default();
        assert!(info.contains("\"tls_required\":true"), "{info}");
        write
            .write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
            .await?;
        let answer = tokio::time::timeout(Duration::from_secs(3), lines.next_line()).await;
        assert!(
            !matches!(&answer, Ok(Ok(Some(line))) if line.starts_with("PONG")),
            "{}: a plain connection was served: {answer:?}",
            binary.display()
        );

        let mut credentials = nats.credentials(NatsRole::Cli)?;
        credentials.tls_ca = Some(cert.clone());
        let client = credentials
            .apply(async_nats::ConnectOptions::new())
            .await?
            .connect(nats.url())
            .await?;
        client.flush().await?;
    }
    Ok(())
}
