//! The events' unit tests: every vocabulary value distinct and in the schema, each kind of event
//! round-tripping through its encoding, version 1 upcast, unknown types and versions refused.

use super::*;

/// Each `ALL` lists distinct values with distinct labels, every one of which the JSON
/// Schema of the type accepts (so a value missing from `ALL` shows as a count mismatch).
#[test]
fn every_listed_value_is_distinct_and_in_the_schema() {
    fn check<T: Serialize + JsonSchema + Copy>(all: &[T], label: fn(T) -> &'static str) {
        let keys: std::collections::BTreeSet<String> = all
            .iter()
            .map(|v| serde_json::to_string(v).expect("serialises"))
            .collect();
        let labels: std::collections::BTreeSet<&str> = all.iter().map(|v| label(*v)).collect();
        assert_eq!(keys.len(), all.len());
        assert_eq!(labels.len(), all.len());
        let schema = serde_json::to_string(&schemars::schema_for!(T)).expect("schema");
        let in_schema = schema.matches("\"const\"").count() + schema.matches("\"enum\"").count();
        let listed = schema.split("\"enum\":[").nth(1).map_or(0, |rest| {
            rest.split(']').next().unwrap_or("").split(',').count()
        });
        assert!(
            in_schema == all.len() || listed == all.len(),
            "{} values listed, schema: {schema}",
            all.len()
        );
    }
    check(&Channel::ALL, Channel::label);
    check(&ProcedureStep::ALL, ProcedureStep::label);
    check(&ActivityKind::ALL, ActivityKind::label);
    check(&ClaimClass::ALL, ClaimClass::label);
    check(&ResolutionGround::ALL, ResolutionGround::label);
    check(&ReviewLevel::ALL, ReviewLevel::label);
    check(&Satisfaction::ALL, Satisfaction::label);
    check(&SupervisionLevel::ALL, SupervisionLevel::label);
}

#[test]
fn encode_decode_round_trip() {
    let event = DomainEvent::Case(CaseEvent::MeasureAdded(MeasureAdded {
        measure_id: "m1".into(),
        description: "约访信访人".into(),
        due_on: NaiveDate::from_ymd_opt(2026, 3, 1),
        responsible_unit: Some(UnitRef {
            id: "xm-dept-zjj".into(),
            name: "市住房局".into(),
        }),
    }));
    let (ty, version, data) = event.encode().expect("encodes");
    assert_eq!((ty, version), ("MeasureAdded", 2));
    let back = DomainEvent::decode(ty, version, &*data).expect("decodes");
    assert_eq!(back, event);
}

/// Every campaign event type decodes back from what it encodes (a missing decoder arm would
/// dead-letter the event in every projection).
#[test]
fn campaign_events_round_trip() {
    let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap_or_default();
    let at = day.and_hms_opt(2, 0, 0).unwrap_or_default().and_utc();
    let unit = UnitRef {
        id: "xm-siming".into(),
        name: "思明区".into(),
    };
    let events = [
        CampaignEvent::MeetingHeld(MeetingHeld {
            unit: unit.clone(),
            week: "2026-W11".into(),
            held_at: at,
            as_of_position: 7,
            title: "调度会".into(),
        }),
        CampaignEvent::InstructionIssued(InstructionIssued {
            number: 1,
            case_id: None,
            unit: Some(unit.clone()),
            leader: None,
            text: "约访".into(),
            feedback_due_on: day,
        }),
        CampaignEvent::FeedbackRecorded(InstructionFeedbackRecorded {
            number: 1,
            text: "已约访".into(),
            on: day,
        }),
        CampaignEvent::BulletinPublished(BulletinPublished {
            month: "2026-02".into(),
            as_of_position: 9,
            published_at: at,
        }),
        CampaignEvent::PushLaunched(PushLaunched {
            quarter: "2026-Q2".into(),
            title: "攻坚".into(),
            case_ids: vec![uuid::Uuid::nil()],
            targets: vec![PushTarget {
                unit,
                cases: Some(2),
                rate_percent: None,
            }],
        }),
    ];
    for event in events {
        let event = DomainEvent::Campaign(event);
        let (ty, version, data) = event.encode().expect("encodes");
        let back = DomainEvent::decode(ty, version, &*data).expect("decodes");
        assert_eq!(back, event, "{ty}");
    }
}

/// Every supervision event decodes back from what it encodes.
#[test]
fn supervision_events_round_trip() {
    let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap_or_default();
    let unit = |id: &str, name: &str| UnitRef {
        id: id.into(),
        name: name.into(),
    };
    let events = [
        SupervisionEvent::Issued(SupervisionOrderIssued {
            issuer: unit("xm", "厦门市"),
            addressee: unit("xm-siming", "思明区"),
            level: SupervisionLevel::Reminder,
            case_ids: vec![uuid::Uuid::nil()],
            matter: "限期化解".into(),
            answer_due_on: day,
            responsible: "王芳".into(),
        }),
        SupervisionEvent::Acknowledged(SupervisionOrderAcknowledged { on: day }),
        SupervisionEvent::ProgressReported(SupervisionProgressReported {
            text: "已约访".into(),
            on: day,
        }),
        SupervisionEvent::Answered(SupervisionOrderAnswered {
            answer: 1,
            text: "已化解".into(),
            evidence: vec!["协议书".into()],
            on: day,
            on_time: true,
        }),
        SupervisionEvent::AnswerSentBack(SupervisionAnswerSentBack {
            answer: 1,
            reasons: "证据不足".into(),
            answer_due_on: day,
        }),
        SupervisionEvent::AnswerAccepted(SupervisionAnswerAccepted {
            answer: 2,
            opinion: None,
        }),
        SupervisionEvent::Escalated(SupervisionOrderEscalated {
            from: SupervisionLevel::Reminder,
            to: SupervisionLevel::Order,
            missed_due_on: day,
            answer_due_on: day,
            rule: "催办逾期升级为督办".into(),
        }),
    ];
    for event in events {
        let event = DomainEvent::Supervision(event);
        let (ty, version, data) = event.encode().expect("encodes");
        let back = DomainEvent::decode(ty, version, &*data).expect("decodes");
        assert_eq!(back, event, "{ty}");
    }
    assert_eq!(
        SupervisionLevel::parse("督办"),
        Some(SupervisionLevel::Order)
    );
    assert_eq!(
        SupervisionLevel::parse("listed"),
        Some(SupervisionLevel::Listed)
    );
    assert_eq!(SupervisionLevel::parse("x"), None);
}

#[test]
fn version_1_measures_are_upcast() {
    let v1 = serde_json::json!({"measure_id": "m1", "description": "约访信访人", "due_on": null});
    let decoded = DomainEvent::decode("MeasureAdded", 1, v1).expect("upcasts");
    assert_eq!(
        decoded,
        DomainEvent::Case(CaseEvent::MeasureAdded(MeasureAdded {
            measure_id: "m1".into(),
            description: "约访信访人".into(),
            due_on: None,
            responsible_unit: None,
        }))
    );
    // Version 1 never had the new field; data claiming version 1 must still be version 1.
    let malformed = serde_json::json!({"measure_id": 7});
    assert!(matches!(
        DomainEvent::decode("MeasureAdded", 1, malformed),
        Err(EventDecodeError::Malformed { version: 1, .. })
    ));
    assert!(matches!(
        DomainEvent::decode("MeasureAdded", 3, serde_json::json!({})),
        Err(EventDecodeError::UnknownVersion { version: 3, .. })
    ));
}

#[test]
fn unknown_type_and_version_are_errors() {
    let data = serde_json::json!({"text": "x"});
    assert!(matches!(
        DomainEvent::decode("NoSuchThing", 1, data.clone()),
        Err(EventDecodeError::UnknownType(_))
    ));
    assert!(matches!(
        DomainEvent::decode("NoteRecorded", 9, data),
        Err(EventDecodeError::UnknownVersion { version: 9, .. })
    ));
    assert!(matches!(
        DomainEvent::decode("NoteRecorded", 1, serde_json::json!({"txt": 1})),
        Err(EventDecodeError::Malformed { .. })
    ));
}
