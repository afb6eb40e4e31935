//! The demo's supervision orders (督办单): one the department answered and the city accepted,
//! one 思明区 left unanswered past its due date and that was escalated from 催办 to 督办, one a
//! district sent to a town that is answered and awaits review, and a 挂牌督办 due tomorrow,
//! not yet signed for (a live warning). Answers and acceptances come from the units' own
//! coordinators' side of the workflow; the escalation is recorded as the system's rule would.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;
use zhzj_proto::Command;
use zhzj_proto::commands::{
    AcknowledgeSupervisionOrder, AnswerSupervisionOrder, EscalateSupervisionOrder,
    IssueSupervisionOrder, ReportSupervisionProgress, ReviewSupervisionAnswer,
};
use zhzj_proto::events::SupervisionLevel;

use crate::campaign::{campaign_step, registration_of};
use crate::clock::*;
use crate::directory::*;
use crate::rng::demo_uuid;
use crate::tables::*;

/// The supervision steps, all before `now`.
pub(crate) fn supervision_steps(
    now: DateTime<Utc>,
    cases: &[crate::DemoCase],
) -> Vec<crate::DemoStep> {
    let today = china_date(now);
    let day = |back: i64| today - TimeDelta::days(back);
    let at = |back: i64, minute: i64| {
        at_china_time(day(back), minute).min(now - TimeDelta::minutes(back + 1))
    };
    let siming = &DISTRICTS[0];
    let huli = &DISTRICTS[1 % DISTRICTS.len()];
    let case_in = |district: &District, skip: usize| -> Option<Uuid> {
        cases
            .iter()
            .filter_map(registration_of)
            .filter(|(c, registered)| {
                c.district_id == district_unit_id(district) && *registered < at(25, 9 * 60)
            })
            .nth(skip)
            .and_then(|(c, _)| c.case_id)
    };
    let order = |name: &str| demo_uuid(&format!("demo:supervision:{name}"));
    let department = DEPARTMENTS.first().map_or("xm-dept-zjj", |(id, _)| *id);
    let mut steps = Vec::new();
    let mut step = |label: &str, when: DateTime<Utc>, command: Command| {
        steps.push(campaign_step(
            &format!("supervision:{label}"),
            when,
            command,
        ));
    };

    // Answered and accepted: the city's reminder to a department.
    let accepted = order("accepted");
    step(
        "accepted:issue",
        at(20, 9 * 60),
        Command::IssueSupervisionOrder(IssueSupervisionOrder {
            order_id: Some(accepted),
            issuer_unit_id: CITY_ID.to_owned(),
            addressee_unit_id: department.to_owned(),
            level: SupervisionLevel::Reminder,
            case_ids: case_in(siming, 1).into_iter().collect(),
            matter: "会同属地核实补偿标准执行情况，限期书面反馈".to_owned(),
            answer_due_on: day(12),
            responsible: "部门信访工作分管负责人".to_owned(),
        }),
    );
    step(
        "accepted:acknowledge",
        at(19, 10 * 60),
        Command::AcknowledgeSupervisionOrder(AcknowledgeSupervisionOrder { order_id: accepted }),
    );
    step(
        "accepted:answer",
        at(14, 16 * 60),
        Command::AnswerSupervisionOrder(AnswerSupervisionOrder {
            order_id: accepted,
            text: "已会同属地逐户核实，补偿标准执行到位，书面报告已报市联席办".to_owned(),
            evidence: vec!["核查报告".to_owned(), "逐户核实台账".to_owned()],
        }),
    );
    step(
        "accepted:accept",
        at(13, 10 * 60),
        Command::ReviewSupervisionAnswer(ReviewSupervisionAnswer {
            order_id: accepted,
            accept: true,
            opinion: Some("同意办结".to_owned()),
            reasons: None,
            answer_due_on: None,
        }),
    );

    // Escalated: 思明区 signed for the city's reminder, missed its due date, and it became a 督办.
    let escalated = order("escalated");
    step(
        "escalated:issue",
        at(10, 9 * 60),
        Command::IssueSupervisionOrder(IssueSupervisionOrder {
            order_id: Some(escalated),
            issuer_unit_id: CITY_ID.to_owned(),
            addressee_unit_id: district_unit_id(siming),
            level: SupervisionLevel::Reminder,
            case_ids: case_in(siming, 0).into_iter().collect(),
            matter: "该积案已两次回潮，请区级包案领导牵头研究化解方案并限期反馈".to_owned(),
            answer_due_on: day(6),
            responsible: "区联席办主任".to_owned(),
        }),
    );
    step(
        "escalated:acknowledge",
        at(9, 11 * 60),
        Command::AcknowledgeSupervisionOrder(AcknowledgeSupervisionOrder {
            order_id: escalated,
        }),
    );
    step(
        "escalated:escalate",
        at(5, 8 * 60),
        Command::EscalateSupervisionOrder(EscalateSupervisionOrder {
            order_id: escalated,
            from: SupervisionLevel::Reminder,
            to: SupervisionLevel::Order,
            answer_due_on: day(5) + TimeDelta::days(7),
            rule: "催办逾期1日未办结反馈，升级为督办，限7日内反馈".to_owned(),
        }),
    );
    step(
        "escalated:progress",
        at(3, 15 * 60),
        Command::ReportSupervisionProgress(ReportSupervisionProgress {
            order_id: escalated,
            text: "区级包案领导已召开专题会，方案正在征求意见".to_owned(),
        }),
    );

    // Answered, awaiting review: 思明区's order to one of its towns.
    if let Some(town) = siming.towns.first() {
        let awaiting = order("awaiting");
        step(
            "awaiting:issue",
            at(6, 9 * 60),
            Command::IssueSupervisionOrder(IssueSupervisionOrder {
                order_id: Some(awaiting),
                issuer_unit_id: district_unit_id(siming),
                addressee_unit_id: town_unit_id(siming, town.0),
                level: SupervisionLevel::Order,
                case_ids: Vec::new(),
                matter: "排查辖区内涉众型重复信访隐患，报送风险清单".to_owned(),
                answer_due_on: day(0) + TimeDelta::days(2),
                responsible: "镇街信访办主任".to_owned(),
            }),
        );
        step(
            "awaiting:acknowledge",
            at(6, 14 * 60),
            Command::AcknowledgeSupervisionOrder(AcknowledgeSupervisionOrder {
                order_id: awaiting,
            }),
        );
        step(
            "awaiting:answer",
            at(1, 16 * 60),
            Command::AnswerSupervisionOrder(AnswerSupervisionOrder {
                order_id: awaiting,
                text: "已完成排查，风险清单（12项）已报区联席办".to_owned(),
                evidence: vec!["风险隐患清单".to_owned()],
            }),
        );
    }

    // Listed supervision due tomorrow, not yet signed for.
    let listed = order("listed");
    step(
        "listed:issue",
        at(2, 9 * 60),
        Command::IssueSupervisionOrder(IssueSupervisionOrder {
            order_id: Some(listed),
            issuer_unit_id: CITY_ID.to_owned(),
            addressee_unit_id: district_unit_id(huli),
            level: SupervisionLevel::Listed,
            case_ids: case_in(huli, 0).into_iter().collect(),
            matter: "挂牌督办：群体性积案，请主要领导亲自包案、限期化解".to_owned(),
            answer_due_on: day(0) + TimeDelta::days(1),
            responsible: "区委副书记".to_owned(),
        }),
    );
    steps
}
