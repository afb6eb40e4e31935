//! The lifecycle decisions, given/when/then: claims and their review chain, crossing off, 回潮,
//! extension, classification and satisfaction.

use chrono::NaiveDate;
use uuid::Uuid;
use zhzj_proto::{
    CaseEvent, ErrorKind,
    commands::{
        ClaimResolution, ClassifyCase, ExtendHandling, RateSatisfaction, RecordPetition,
        ReviewClaim,
    },
    events::{
        CaseClassified, CaseCrossedOff, CaseReopened, Channel, ClaimAccepted, ClaimClass,
        ClaimSentBack, HandlingExtended, PetitionRecorded, ResolutionClaimed, ResolutionGround,
        ReviewLevel, Satisfaction, SatisfactionRated,
    },
};

use super::*;
use crate::case::CaseState;
use crate::given::{given, owned_case, registered_case};

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, d).expect("a June day")
}

fn claim_command() -> ClaimResolution {
    ClaimResolution {
        case_id: Uuid::nil(),
        ground: ResolutionGround::Solved,
        summary: "补偿款已足额发放".into(),
        evidence: vec!["银行转账凭证".into()],
    }
}

fn review_command(level: ReviewLevel, accept: bool, reasons: Option<&str>) -> ReviewClaim {
    ReviewClaim {
        case_id: Uuid::nil(),
        level,
        accept,
        reasons: reasons.map(str::to_owned),
    }
}

fn claimed(claim: u32) -> CaseEvent {
    CaseEvent::ResolutionClaimed(ResolutionClaimed {
        claim,
        ground: ResolutionGround::Solved,
        summary: "补偿款已足额发放".into(),
        evidence: vec!["银行转账凭证".into()],
    })
}

fn accepted(claim: u32, level: ReviewLevel) -> CaseEvent {
    CaseEvent::ClaimAccepted(ClaimAccepted {
        claim,
        level,
        opinion: None,
    })
}

fn crossed_off_case() -> Vec<CaseEvent> {
    let mut events = owned_case();
    events.extend([
        claimed(1),
        accepted(1, ReviewLevel::District),
        accepted(1, ReviewLevel::City),
        CaseEvent::CrossedOff(CaseCrossedOff { claim: 1 }),
    ]);
    events
}

fn petition(on: NaiveDate) -> RecordPetition {
    RecordPetition {
        case_id: Uuid::nil(),
        received_on: on,
        channel: Channel::Visit,
        summary: "再次来访".into(),
    }
}

#[test]
fn a_case_without_an_owning_leader_cannot_be_claimed_resolved() {
    given::<CaseState>([registered_case()])
        .when(|case| claim(case, &claim_command()))
        .then_refused(ErrorKind::Invalid, "包案领导");
}

#[test]
fn a_claim_is_reviewed_by_the_district_then_the_city_whose_acceptance_crosses_the_case_off() {
    let settings = LifecycleSettings::default();
    let after_district = given::<CaseState>(owned_case())
        .when(|case| claim(case, &claim_command()))
        .then([claimed(1)])
        .when(|case| {
            review(
                case,
                &review_command(ReviewLevel::District, true, None),
                &settings,
            )
        })
        .then([accepted(1, ReviewLevel::District)]);
    assert_eq!(after_district.state().crossed_off_by, None);
    let crossed_off = after_district
        .when(|case| {
            review(
                case,
                &review_command(ReviewLevel::City, true, None),
                &settings,
            )
        })
        .then([
            accepted(1, ReviewLevel::City),
            CaseEvent::CrossedOff(CaseCrossedOff { claim: 1 }),
        ]);
    assert_eq!(crossed_off.state().crossed_off_by, Some(1));
    crossed_off
        .when(|case| claim(case, &claim_command()))
        .then_refused(ErrorKind::Conflict, "已销号");
}

#[test]
fn a_claim_under_review_blocks_another_and_is_reviewed_only_at_the_next_level() {
    let settings = LifecycleSettings::default();
    let mut events = owned_case();
    events.push(claimed(1));
    given::<CaseState>(events.clone())
        .when(|case| claim(case, &claim_command()))
        .then_refused(ErrorKind::Conflict, "尚在审核中");
    let wrong = given::<CaseState>(events)
        .when(|case| {
            review(
                case,
                &review_command(ReviewLevel::City, true, None),
                &settings,
            )
        })
        .then_refused(ErrorKind::Invalid, "区联席办");
    assert_eq!(wrong.field.as_deref(), Some("command.level"));
}

#[test]
fn sending_a_claim_back_needs_reasons_and_lets_a_new_claim_start_over() {
    let settings = LifecycleSettings::default();
    let mut events = owned_case();
    events.push(claimed(1));
    let sent_back = given::<CaseState>(events.clone())
        .when(|case| {
            review(
                case,
                &review_command(ReviewLevel::District, false, None),
                &settings,
            )
        })
        .then_refused(ErrorKind::Invalid, "理由");
    assert_eq!(sent_back.field.as_deref(), Some("command.reasons"));
    given::<CaseState>(events)
        .when(|case| {
            review(
                case,
                &review_command(ReviewLevel::District, false, Some("证据不足")),
                &settings,
            )
        })
        .then([CaseEvent::ClaimSentBack(ClaimSentBack {
            claim: 1,
            level: ReviewLevel::District,
            reasons: "证据不足".into(),
        })])
        .when(|case| claim(case, &claim_command()))
        .then([claimed(2)]);
}

#[test]
fn a_new_petition_reopens_a_crossed_off_case_and_counts_as_a_repeat() {
    let reopened = given::<CaseState>(crossed_off_case())
        .when(|case| record_petition(case, &petition(day(10)), day(10)))
        .then([
            CaseEvent::PetitionRecorded(PetitionRecorded {
                received_on: day(10),
                channel: Channel::Visit,
                summary: "再次来访".into(),
                repeat_count: 1,
            }),
            CaseEvent::Reopened(CaseReopened {
                crossed_off_by_claim: 1,
                relapse_count: 1,
            }),
        ]);
    assert_eq!(reopened.state().crossed_off_by, None);
    assert_eq!(reopened.state().relapses, 1);
}

#[test]
fn a_petition_on_an_open_case_does_not_reopen_it_and_cannot_be_dated_tomorrow() {
    given::<CaseState>(owned_case())
        .when(|case| record_petition(case, &petition(day(10)), day(10)))
        .then([CaseEvent::PetitionRecorded(PetitionRecorded {
            received_on: day(10),
            channel: Channel::Visit,
            summary: "再次来访".into(),
            repeat_count: 1,
        })]);
    let future = given::<CaseState>(owned_case())
        .when(|case| record_petition(case, &petition(day(11)), day(10)))
        .then_refused(ErrorKind::Invalid, "");
    assert_eq!(future.field.as_deref(), Some("command.received_on"));
}

#[test]
fn the_handling_period_is_extended_once_by_at_most_thirty_days() {
    let extend = |days| ExtendHandling {
        case_id: Uuid::nil(),
        days,
        reason: "涉及多部门会商".into(),
        approved_by: "区信访局".into(),
    };
    given::<CaseState>(owned_case())
        .when(|case| extend_handling(case, &extend(31)))
        .then_refused(ErrorKind::Invalid, "1 至 30 日");
    given::<CaseState>(owned_case())
        .when(|case| extend_handling(case, &extend(30)))
        .then([CaseEvent::HandlingExtended(HandlingExtended {
            days: 30,
            reason: "涉及多部门会商".into(),
            approved_by: "区信访局".into(),
        })])
        .when(|case| extend_handling(case, &extend(5)))
        .then_refused(ErrorKind::Conflict, "延长过一次");
    given::<CaseState>(crossed_off_case())
        .when(|case| extend_handling(case, &extend(5)))
        .then_refused(ErrorKind::Conflict, "已销号");
}

#[test]
fn a_case_is_classified_under_a_known_category_and_reclassified_only_with_a_reason() {
    let settings = LifecycleSettings::default();
    let classify_as = |category: &str, reason: Option<&str>| ClassifyCase {
        case_id: Uuid::nil(),
        class: ClaimClass::Reasonable,
        category: category.into(),
        reason: reason.map(str::to_owned),
    };
    given::<CaseState>(owned_case())
        .when(|case| classify(case, &classify_as("天气", None), &settings))
        .then_refused(ErrorKind::Invalid, "类别须为");
    let classified = CaseEvent::Classified(CaseClassified {
        class: ClaimClass::Reasonable,
        category: "征地拆迁".into(),
        reason: None,
    });
    given::<CaseState>(owned_case())
        .when(|case| classify(case, &classify_as("征地拆迁", None), &settings))
        .then([classified])
        .when(|case| classify(case, &classify_as("征地拆迁", None), &settings))
        .then_refused(ErrorKind::Invalid, "重新分类须说明理由");
}

#[test]
fn satisfaction_is_rated_only_once_there_is_a_reply() {
    let rating = RateSatisfaction {
        case_id: Uuid::nil(),
        rating: Satisfaction::Satisfied,
        rated_on: day(10),
        rated_by: "张某".into(),
    };
    given::<CaseState>(owned_case())
        .when(|case| rate(case, &rating, day(10)))
        .then_refused(ErrorKind::Conflict, "尚未答复");
    let mut events = owned_case();
    events.push(claimed(1));
    // A resolution claim is a reply.
    given::<CaseState>(events)
        .when(|case| rate(case, &rating, day(10)))
        .then([CaseEvent::SatisfactionRated(SatisfactionRated {
            rating: Satisfaction::Satisfied,
            rated_on: day(10),
            rated_by: "张某".into(),
        })]);
}
