//! The wiring every process starts zhzj through (`zhzj_app::System`): what it promises the
//! callers that start roles one after the other, and what its ordered stop leaves behind.

use std::sync::Arc;
use std::time::Duration;

use zhzj_app::{BureauSettings, GatewaySettings, RoleConnections, System};
use zhzj_cases::ServiceRole;
use zhzj_proto::CommandReply;
use zhzj_tests::*;

/// A command service answers from the moment its start returns: the gateway is started right
/// after it, and a command sent in between must not find nobody listening. The start used to
/// spawn the subscription and return before it was made, so a command sent at once was answered
/// "no responders".
#[tokio::test]
async fn a_command_service_answers_as_soon_as_its_start_returns() -> anyhow::Result<()> {
    let (nats, services) = seeded_stack().await?;
    let sender = nats.connect().await?;
    for n in 0..20 {
        // A fresh system each round: each start races its first command anew.
        let system = System::new(Arc::new(services.clock.clone()), BureauSettings::default());
        let conn = RoleConnections {
            client: nats.connect().await?,
            log: services.log.clone(),
            store: None,
            sealer: None,
            vault: services.vault.clone(),
        };
        system
            .start_command_service(ServiceRole::Cases, &conn, Duration::from_secs(3600))
            .await?;
        let reply = send(&sender, &request(register_case(n))).await;
        assert!(
            matches!(reply, Ok(CommandReply::Ok(_))),
            "round {n}: a command sent once the service's start returned: {reply:?}"
        );
        system.stop(Duration::from_secs(10)).await?;
    }
    Ok(())
}

/// A gateway started with a data directory leaves `http.url` and `metrics.url` for scripts
/// (`zhzj` subcommands and `deploy/up.sh` read them); the stop removes `http.url`, so that no
/// script finds the address of a gateway that is gone, and answers nothing afterwards.
#[tokio::test]
async fn the_gateway_leaves_its_address_while_it_runs_and_takes_it_away_when_it_stops()
-> anyhow::Result<()> {
    let (nats, services) = seeded_stack().await?;
    let projecting = Projecting::start(&services.log, DbKind::Sqlite).await?;
    let data_dir = tempfile::tempdir()?;
    let system = System::new(Arc::new(services.clock.clone()), BureauSettings::default());
    let conn = RoleConnections {
        client: nats.connect().await?,
        log: services.log.clone(),
        store: Some(projecting.store.clone()),
        sealer: None,
        vault: services.vault.clone(),
    };
    let gateway = system
        .start_gateway(
            &conn,
            GatewaySettings {
                listen: "127.0.0.1:0".into(),
                metrics_listen: Some("127.0.0.1:0".into()),
                config: test_gateway_config(),
                metrics: test_metrics(),
                supervision_watch: None,
                data_dir: Some(data_dir.path().to_owned()),
            },
        )
        .await?;
    let http_url = std::fs::read_to_string(data_dir.path().join("http.url"))?;
    assert_eq!(http_url.trim(), format!("http://{}", gateway.http));
    let metrics_url = std::fs::read_to_string(data_dir.path().join("metrics.url"))?;
    assert_eq!(
        metrics_url.trim(),
        format!("http://{}/metrics", gateway.metrics)
    );
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("http://{}/healthz", gateway.http))
        .send()
        .await?;
    assert_eq!(ready.status(), 200);
    system.stop(Duration::from_secs(10)).await?;
    assert!(
        !data_dir.path().join("http.url").exists(),
        "http.url outlived the gateway"
    );
    let after = client
        .get(format!("http://{}/healthz", gateway.http))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        after.is_err(),
        "the stopped gateway still answered: {after:?}"
    );
    projecting.stop().await?;
    Ok(())
}
