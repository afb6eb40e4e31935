//! The lifecycle view's folding, given/when/then: given a case's events, its stage and statutory
//! clocks are what the 条例 says.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use zhzj_deadlines::{HolidayCalendar, Limits};
use zhzj_proto::CaseEvent;
use zhzj_proto::events::{
    CaseCrossedOff, CaseRegistered, CaseReopened, Channel, ClaimAccepted, ClaimSentBack,
    HandlingExtended, ListSource, Petitioner, RecordedPetitioner, ResolutionClaimed,
    ResolutionGround, ReviewLevel, UnitRef,
};

use super::LifecycleRow;

/// 10:00 in China on 2026-06-`d`.
fn at(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, d, 2, 0, 0)
        .single()
        .expect("a June time")
}

/// The row after `events`, each at its time.
fn given(events: &[(DateTime<Utc>, CaseEvent)]) -> LifecycleRow {
    let mut row = LifecycleRow::default();
    for (occurred_at, event) in events {
        row.apply(event, *occurred_at, &Limits::statutory());
    }
    row
}

fn registered(list_source: ListSource) -> CaseEvent {
    CaseEvent::Registered(CaseRegistered {
        case_number: "XF2026-0001".into(),
        petitioners: vec![RecordedPetitioner::Plain(Petitioner {
            name: "张某".into(),
            id_number: None,
            phone: None,
            address: None,
        })],
        matter: "征地补偿款未足额发放".into(),
        category: "征地拆迁".into(),
        district: UnitRef {
            id: "siming".into(),
            name: "思明区".into(),
        },
        town: None,
        channel: Channel::Visit,
        first_filed_on: NaiveDate::from_ymd_opt(2026, 3, 2).expect("a date"),
        list_source,
        group_size: 1,
    })
}

fn claimed(claim: u32) -> CaseEvent {
    CaseEvent::ResolutionClaimed(ResolutionClaimed {
        claim,
        ground: ResolutionGround::Solved,
        summary: "已化解".into(),
        evidence: vec!["回访记录".into()],
    })
}

#[test]
fn a_new_petition_owes_a_notice_of_acceptance_and_a_screened_case_does_not() {
    let new_petition = given(&[(at(1), registered(ListSource::NewPetition))]);
    assert!(new_petition.acceptance_pending_until().is_some());
    assert!(new_petition.handling_running_until().is_some());
    let screened = given(&[(at(1), registered(ListSource::Screening))]);
    assert_eq!(screened.acceptance_pending_until(), None);
    assert_eq!(screened.handling_due(), new_petition.handling_due());
}

#[test]
fn an_extension_moves_the_handling_deadline_by_its_days() {
    let before = given(&[(at(1), registered(ListSource::Screening))]);
    let after = given(&[
        (at(1), registered(ListSource::Screening)),
        (
            at(2),
            CaseEvent::HandlingExtended(HandlingExtended {
                days: 30,
                reason: "涉及多部门会商".into(),
                approved_by: "区信访局".into(),
            }),
        ),
    ]);
    let due = before.handling_due().expect("a handling deadline");
    assert_eq!(
        after.handling_due(),
        Some(HolidayCalendar::shipped().after_days(due, 30))
    );
}

#[test]
fn a_claim_under_review_pauses_the_handling_clock_until_it_is_sent_back() {
    let mut events = vec![
        (at(1), registered(ListSource::Screening)),
        (at(3), claimed(1)),
    ];
    let under_review = given(&events);
    assert_eq!(under_review.stage(), "under_review");
    assert_eq!(under_review.handling_running_until(), None);
    events.push((
        at(4),
        CaseEvent::ClaimSentBack(ClaimSentBack {
            claim: 1,
            level: ReviewLevel::District,
            reasons: "证据不足".into(),
        }),
    ));
    let sent_back = given(&events);
    assert_eq!(sent_back.stage(), "sent_back");
    assert!(sent_back.handling_running_until().is_some());
    assert_eq!(sent_back.handling_running_until(), sent_back.handling_due());
}

#[test]
fn a_crossed_off_case_that_is_reopened_starts_a_new_handling_period() {
    let mut events = vec![
        (at(1), registered(ListSource::Screening)),
        (at(3), claimed(1)),
        (
            at(4),
            CaseEvent::ClaimAccepted(ClaimAccepted {
                claim: 1,
                level: ReviewLevel::District,
                opinion: None,
            }),
        ),
        (
            at(5),
            CaseEvent::ClaimAccepted(ClaimAccepted {
                claim: 1,
                level: ReviewLevel::City,
                opinion: None,
            }),
        ),
        (at(5), CaseEvent::CrossedOff(CaseCrossedOff { claim: 1 })),
    ];
    let crossed_off = given(&events);
    assert_eq!(crossed_off.stage(), "crossed_off");
    assert_eq!(crossed_off.handling_running_until(), None);
    events.push((
        at(20),
        CaseEvent::Reopened(CaseReopened {
            crossed_off_by_claim: 1,
            relapse_count: 1,
        }),
    ));
    let reopened = given(&events);
    assert_eq!(reopened.stage(), "reopened");
    let first = crossed_off
        .handling_due()
        .expect("the first period's deadline");
    let second = reopened.handling_due().expect("a new period's deadline");
    assert!(second > first, "{second} after {first}");
    assert!(reopened.handling_running_until().is_some());
}
