//! The supervision order's decisions, given/when/then: signed for before it is worked, answered
//! once at a time, reviewed by the issuer, escalated only when really overdue.

use chrono::NaiveDate;
use zhzj_proto::{
    ErrorKind,
    commands::{
        AnswerSupervisionOrder, EscalateSupervisionOrder, IssueSupervisionOrder,
        ReportSupervisionProgress, ReviewSupervisionAnswer,
    },
    events::{
        SupervisionAnswerAccepted, SupervisionAnswerSentBack, SupervisionEvent, SupervisionLevel,
        SupervisionOrderAcknowledged, SupervisionOrderAnswered, SupervisionOrderEscalated,
        SupervisionOrderIssued, SupervisionProgressReported, UnitRef,
    },
};

use super::*;
use crate::given::given;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default()
}

fn unit(id: &str, name: &str) -> UnitRef {
    UnitRef {
        id: id.into(),
        name: name.into(),
    }
}

fn issue_command() -> IssueSupervisionOrder {
    IssueSupervisionOrder {
        order_id: None,
        issuer_unit_id: "xm".into(),
        addressee_unit_id: "siming".into(),
        level: SupervisionLevel::Reminder,
        case_ids: vec![],
        matter: " 限期约访信访人 ".into(),
        answer_due_on: day(10),
        responsible: "王芳".into(),
    }
}

fn issued() -> SupervisionEvent {
    SupervisionEvent::Issued(SupervisionOrderIssued {
        issuer: unit("xm", "厦门市"),
        addressee: unit("siming", "思明区"),
        level: SupervisionLevel::Reminder,
        case_ids: vec![],
        matter: "限期约访信访人".into(),
        answer_due_on: day(10),
        responsible: "王芳".into(),
    })
}

fn escalation(from: SupervisionLevel, to: SupervisionLevel, due: u32) -> EscalateSupervisionOrder {
    EscalateSupervisionOrder {
        order_id: Uuid::nil(),
        from,
        to,
        answer_due_on: day(due),
        rule: "逾期升级".into(),
    }
}

fn answer_command() -> AnswerSupervisionOrder {
    AnswerSupervisionOrder {
        order_id: Uuid::nil(),
        text: "已约访并达成协议".into(),
        evidence: vec!["协议书".into()],
    }
}

fn review_command(accept: bool, due: Option<u32>) -> ReviewSupervisionAnswer {
    ReviewSupervisionAnswer {
        order_id: Uuid::nil(),
        accept,
        opinion: None,
        reasons: (!accept).then(|| "佐证不足".to_owned()),
        answer_due_on: due.map(day),
    }
}

#[test]
fn an_order_is_issued_once_with_a_due_date_not_in_the_past() {
    let command = issue_command();
    let (xm, siming) = (unit("xm", "厦门市"), unit("siming", "思明区"));
    given::<SupervisionState>(Vec::<SupervisionEvent>::new())
        .when(|s| issue(s, &command, xm.clone(), siming.clone(), day(11)))
        .then_refused(ErrorKind::Invalid, "不能早于今天");
    given::<SupervisionState>(Vec::<SupervisionEvent>::new())
        .when(|s| issue(s, &command, xm.clone(), siming.clone(), day(2)))
        .then([issued()])
        .when(|s| issue(s, &command, xm.clone(), siming.clone(), day(2)))
        .then_refused(ErrorKind::Conflict, "已下发");
    let twice = IssueSupervisionOrder {
        case_ids: vec![Uuid::nil(), Uuid::nil()],
        ..issue_command()
    };
    given::<SupervisionState>(Vec::<SupervisionEvent>::new())
        .when(|s| issue(s, &twice, xm.clone(), siming.clone(), day(2)))
        .then_refused(ErrorKind::Invalid, "重复列入");
}

#[test]
fn the_addressee_signs_for_it_before_working_it_and_answers_one_at_a_time() {
    let progress = ReportSupervisionProgress {
        order_id: Uuid::nil(),
        text: "已约访".into(),
    };
    given::<SupervisionState>([issued()])
        .when(|s| report(s, &progress, day(3)))
        .then_refused(ErrorKind::Conflict, "请先签收");
    given::<SupervisionState>([issued()])
        .when(|s| acknowledge(s, day(3)))
        .then([SupervisionEvent::Acknowledged(
            SupervisionOrderAcknowledged { on: day(3) },
        )])
        .when(|s| acknowledge(s, day(3)))
        .then_refused(ErrorKind::Conflict, "已签收");
    let late = given::<SupervisionState>([
        issued(),
        SupervisionEvent::Acknowledged(SupervisionOrderAcknowledged { on: day(3) }),
    ])
    .when(|s| report(s, &progress, day(4)))
    .then([SupervisionEvent::ProgressReported(
        SupervisionProgressReported {
            text: "已约访".into(),
            on: day(4),
        },
    )])
    .when(|s| answer(s, &answer_command(), day(11)))
    .then([SupervisionEvent::Answered(SupervisionOrderAnswered {
        answer: 1,
        text: "已约访并达成协议".into(),
        evidence: vec!["协议书".into()],
        on: day(11),
        on_time: false,
    })]);
    late.when(|s| answer(s, &answer_command(), day(11)))
        .then_refused(ErrorKind::Conflict, "尚待审核");
    let no_evidence = AnswerSupervisionOrder {
        evidence: vec![],
        ..answer_command()
    };
    given::<SupervisionState>([
        issued(),
        SupervisionEvent::Acknowledged(SupervisionOrderAcknowledged { on: day(3) }),
    ])
    .when(|s| answer(s, &no_evidence, day(4)))
    .then_refused(ErrorKind::Invalid, "佐证材料");
}

#[test]
fn the_issuer_sends_an_answer_back_with_a_new_due_date_then_accepts_the_next() {
    let answered = |n: u32, on: u32| {
        SupervisionEvent::Answered(SupervisionOrderAnswered {
            answer: n,
            text: "已办".into(),
            evidence: vec!["记录".into()],
            on: day(on),
            on_time: true,
        })
    };
    let acknowledged = SupervisionEvent::Acknowledged(SupervisionOrderAcknowledged { on: day(3) });
    given::<SupervisionState>([issued(), acknowledged.clone()])
        .when(|s| review(s, &review_command(true, None), day(5)))
        .then_refused(ErrorKind::Conflict, "没有待审核");
    given::<SupervisionState>([issued(), acknowledged.clone(), answered(1, 5)])
        .when(|s| review(s, &review_command(false, None), day(6)))
        .then_refused(ErrorKind::Invalid, "新确定反馈期限");
    given::<SupervisionState>([issued(), acknowledged, answered(1, 5)])
        .when(|s| review(s, &review_command(false, Some(15)), day(6)))
        .then([SupervisionEvent::AnswerSentBack(
            SupervisionAnswerSentBack {
                answer: 1,
                reasons: "佐证不足".into(),
                answer_due_on: day(15),
            },
        )])
        .when(|s| answer(s, &answer_command(), day(14)))
        .then([SupervisionEvent::Answered(SupervisionOrderAnswered {
            answer: 2,
            text: "已约访并达成协议".into(),
            evidence: vec!["协议书".into()],
            on: day(14),
            on_time: true,
        })])
        .when(|s| review(s, &review_command(true, None), day(14)))
        .then([SupervisionEvent::AnswerAccepted(
            SupervisionAnswerAccepted {
                answer: 2,
                opinion: None,
            },
        )])
        .when(|s| answer(s, &answer_command(), day(15)))
        .then_refused(ErrorKind::Conflict, "已办结");
}

#[test]
fn an_order_escalates_only_when_overdue_unanswered_and_at_the_rules_level() {
    use SupervisionLevel::{Listed, Order, Reminder};
    // Due on the 10th: not overdue on the 10th, overdue on the 11th.
    given::<SupervisionState>([issued()])
        .when(|s| escalate(s, &escalation(Reminder, Order, 15), day(10)))
        .then_refused(ErrorKind::Conflict, "未过");
    given::<SupervisionState>([issued()])
        .when(|s| escalate(s, &escalation(Order, Listed, 15), day(11)))
        .then_refused(ErrorKind::Conflict, "不是督办");
    given::<SupervisionState>([issued()])
        .when(|s| escalate(s, &escalation(Reminder, Reminder, 15), day(11)))
        .then_refused(ErrorKind::Invalid, "更高");
    let escalated = SupervisionEvent::Escalated(SupervisionOrderEscalated {
        from: Reminder,
        to: Order,
        missed_due_on: day(10),
        answer_due_on: day(16),
        rule: "逾期升级".into(),
    });
    given::<SupervisionState>([issued()])
        .when(|s| escalate(s, &escalation(Reminder, Order, 16), day(11)))
        .then([escalated.clone()])
        // The same rule again (a second escalation clock) is refused: it is at 督办 now.
        .when(|s| escalate(s, &escalation(Reminder, Order, 17), day(11)))
        .then_refused(ErrorKind::Conflict, "现为督办");
    // At 督办, due on the 16th: the next rule waits for that date to pass.
    given::<SupervisionState>([issued(), escalated.clone()])
        .when(|s| escalate(s, &escalation(Order, Listed, 22), day(16)))
        .then_refused(ErrorKind::Conflict, "未过");
    given::<SupervisionState>([issued(), escalated])
        .when(|s| escalate(s, &escalation(Order, Listed, 22), day(17)))
        .then([SupervisionEvent::Escalated(SupervisionOrderEscalated {
            from: Order,
            to: Listed,
            missed_due_on: day(16),
            answer_due_on: day(22),
            rule: "逾期升级".into(),
        })]);
    // An answer awaiting review stops the clock.
    given::<SupervisionState>([
        issued(),
        SupervisionEvent::Acknowledged(SupervisionOrderAcknowledged { on: day(3) }),
        SupervisionEvent::Answered(SupervisionOrderAnswered {
            answer: 1,
            text: "已办".into(),
            evidence: vec!["记录".into()],
            on: day(12),
            on_time: false,
        }),
    ])
    .when(|s| escalate(s, &escalation(Reminder, Order, 16), day(13)))
    .then_refused(ErrorKind::Conflict, "待审核");
}
