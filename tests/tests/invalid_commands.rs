//! Every kind of invalid command gets a typed error naming its field, over NATS, and appends
//! nothing.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use bytes::Bytes;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use zhzj_proto::{
    Command, CommandReply, ErrorKind,
    commands::{RecordNote, SetResponsibleUnits},
    subjects::CASES_COMMANDS,
};
use zhzj_tests::{
    add_measure, assign_leader, complete_measure, record_note, register_case, request,
    seeded_stack, send, serve_cases,
};

struct Refusal {
    kind: ErrorKind,
    field: Option<&'static str>,
}

fn refused(kind: ErrorKind, field: &'static str) -> Refusal {
    Refusal {
        kind,
        field: Some(field),
    }
}

async fn raw(client: &async_nats::Client, body: Vec<u8>) -> anyhow::Result<CommandReply> {
    let reply = client.request(CASES_COMMANDS, Bytes::from(body)).await?;
    Ok(serde_json::from_slice(&reply.payload)?)
}

#[tokio::test]
async fn invalid_commands_get_typed_errors_and_append_nothing() -> anyhow::Result<()> {
    let (nats, services) = seeded_stack().await?;
    let shutdown = CancellationToken::new();
    let server = serve_cases(
        nats.connect().await?,
        services.cases.clone(),
        shutdown.clone(),
    )
    .await?;
    let client = nats.connect().await?;

    let case_id: Uuid = services.ok(register_case(1)).await?.aggregate_id.parse()?;
    services.ok(add_measure(case_id, "约访信访人")).await?;
    services
        .ok(complete_measure(case_id, "m1", "已约访"))
        .await?;
    services
        .ok(assign_leader(case_id, "ldr-siming-1", None))
        .await?;
    let before = services.log.last_position().await?;

    // Typed commands that break rules.
    let mut bad_id = register_case(2);
    if let Command::RegisterCase(c) = &mut bad_id {
        c.petitioners[0].id_number = Some("350203199001011234".into());
    }
    let mut wrong_town = register_case(3);
    if let Command::RegisterCase(c) = &mut wrong_town {
        c.town_id = Some("xm-siming".into());
    }
    let mut unknown_district = register_case(4);
    if let Command::RegisterCase(c) = &mut unknown_district {
        c.district_id = "xm-nowhere".into();
    }
    let mut empty_matter = register_case(5);
    if let Command::RegisterCase(c) = &mut empty_matter {
        c.matter = "   ".into();
    }
    let mut future_date = register_case(6);
    if let Command::RegisterCase(c) = &mut future_date {
        c.first_filed_on = chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap_or_default();
    }
    let mut nul_in_matter = register_case(8);
    if let Command::RegisterCase(c) = &mut nul_in_matter {
        c.matter = "要求\u{0}赔偿".into();
    }
    let mut no_petitioner = register_case(7);
    if let Command::RegisterCase(c) = &mut no_petitioner {
        c.petitioners.clear();
    }
    let cases: Vec<(Command, Refusal)> = vec![
        (
            bad_id,
            refused(ErrorKind::Invalid, "command.petitioners[0].id_number"),
        ),
        (wrong_town, refused(ErrorKind::Invalid, "command.town_id")),
        (
            unknown_district,
            refused(ErrorKind::NotFound, "command.district_id"),
        ),
        (empty_matter, refused(ErrorKind::Invalid, "command.matter")),
        (nul_in_matter, refused(ErrorKind::Invalid, "command.matter")),
        (
            future_date,
            refused(ErrorKind::Invalid, "command.first_filed_on"),
        ),
        (
            no_petitioner,
            refused(ErrorKind::Invalid, "command.petitioners"),
        ),
        (
            Command::RecordNote(RecordNote {
                case_id: Uuid::new_v4(),
                text: "无此案".into(),
            }),
            refused(ErrorKind::NotFound, "command.case_id"),
        ),
        (
            assign_leader(case_id, "ldr-nobody", None),
            refused(ErrorKind::NotFound, "command.leader_id"),
        ),
        (
            assign_leader(case_id, "ldr-siming-2", None),
            refused(ErrorKind::Invalid, "command.reason"),
        ),
        (
            assign_leader(case_id, "ldr-siming-1", None),
            refused(ErrorKind::Invalid, "command.leader_id"),
        ),
        (
            complete_measure(case_id, "m1", "再次完成"),
            refused(ErrorKind::Invalid, "command.measure_id"),
        ),
        (
            complete_measure(case_id, "m9", "无此措施"),
            refused(ErrorKind::NotFound, "command.measure_id"),
        ),
        (
            Command::SetResponsibleUnits(SetResponsibleUnits {
                case_id,
                lead_unit_id: "xm-siming".into(),
                assisting_unit_ids: vec!["xm-siming".into()],
                handler: None,
            }),
            refused(ErrorKind::Invalid, "command.assisting_unit_ids[0]"),
        ),
        (
            Command::SetResponsibleUnits(SetResponsibleUnits {
                case_id,
                lead_unit_id: "bad.id".into(),
                assisting_unit_ids: vec![],
                handler: None,
            }),
            refused(ErrorKind::Invalid, "command.lead_unit_id"),
        ),
        (
            zhzj_tests::directory_commands().remove(1),
            Refusal {
                kind: ErrorKind::Conflict,
                field: None,
            },
        ),
    ];
    for (command, expected) in cases {
        let label = format!("{command:?}");
        let reply = send(&client, &request(command)).await?;
        let CommandReply::Error(error) = reply else {
            panic!("accepted but should be refused: {label}");
        };
        assert_eq!(error.kind, expected.kind, "{label}: {error:?}");
        assert_eq!(error.field.as_deref(), expected.field, "{label}: {error:?}");
        assert!(!error.message.is_empty());
    }

    // A stale expected version.
    let mut stale = request(record_note(case_id, "过期版本"));
    stale.expected_version = Some(1);
    let CommandReply::Error(error) = send(&client, &stale).await? else {
        panic!("stale version accepted");
    };
    assert_eq!(error.kind, ErrorKind::Conflict);
    assert_eq!(error.current_version, Some(before));

    // Bodies that are not commands.
    let actor = json!({"user_id": "u1"});
    let raw_cases: Vec<(Vec<u8>, ErrorKind, Option<&str>)> = vec![
        (b"{not json".to_vec(), ErrorKind::Invalid, None),
        (
            serde_json::to_vec(&json!({"command_id": Uuid::new_v4(), "actor": actor,
                "command": {"type": "record_note", "case_id": case_id}}))?,
            ErrorKind::Invalid,
            Some("command.text"),
        ),
        (
            serde_json::to_vec(&json!({"command_id": Uuid::new_v4(), "actor": actor,
                "command": {"type": "launch_rocket"}}))?,
            ErrorKind::Invalid,
            Some("command.type"),
        ),
        (
            serde_json::to_vec(&json!({"command_id": "not-a-uuid", "actor": actor,
                "command": {"type": "record_note", "case_id": case_id, "text": "x"}}))?,
            ErrorKind::Invalid,
            Some("command_id"),
        ),
        (
            serde_json::to_vec(
                &json!({"command_id": Uuid::new_v4(), "actor": actor, "extra": 1,
                "command": {"type": "record_note", "case_id": case_id, "text": "x"}}),
            )?,
            ErrorKind::Invalid,
            Some("extra"),
        ),
        (
            serde_json::to_vec(
                &json!({"command_id": Uuid::new_v4(), "actor": {"user_id": " "},
                "command": {"type": "record_note", "case_id": case_id, "text": "x"}}),
            )?,
            ErrorKind::Invalid,
            Some("actor.user_id"),
        ),
        (
            serde_json::to_vec(&json!({"command_id": Uuid::new_v4(), "actor": actor,
                "command": {"type": "record_note", "case_id": case_id,
                            "text": "字".repeat(100_000)}}))?,
            ErrorKind::TooLarge,
            None,
        ),
    ];
    for (body, kind, field) in raw_cases {
        let reply = raw(&client, body).await?;
        let CommandReply::Error(error) = reply else {
            panic!("malformed body accepted");
        };
        assert_eq!(error.kind, kind, "{error:?}");
        assert_eq!(error.field.as_deref(), field, "{error:?}");
    }

    assert_eq!(
        services.log.last_position().await?,
        before,
        "refused commands appended nothing"
    );
    shutdown.cancel();
    server.await?;
    Ok(())
}
