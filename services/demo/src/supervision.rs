//! The demo's supervision orders (督办单): one the department answered and the city accepted,
//! one 思明区 left unanswered past its due date and that was escalated from 催办 to 督办, one a
//! district sent to a town that is answered and awaits review, and a 挂牌督办 due tomorrow,
//! not yet signed for (a live warning). Answers and acceptances come from the units' own
//! coordinators' side of the workflow; the escalation is recorded as the system's rule would.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
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
    let mut scenario = Scenario {
        now,
        today: china_date(now),
        cases,
        steps: Vec::new(),
    };
    accepted_order(&mut scenario);
    escalated_order(&mut scenario);
    awaiting_order(&mut scenario);
    listed_order(&mut scenario);
    scenario.steps
}

/// The demo's clock and cases, and the steps made so far.
struct Scenario<'a> {
    now: DateTime<Utc>,
    today: NaiveDate,
    cases: &'a [crate::DemoCase],
    steps: Vec<crate::DemoStep>,
}

impl Scenario<'_> {
    /// The day `back` days before today.
    fn day(&self, back: i64) -> NaiveDate {
        self.today - TimeDelta::days(back)
    }

    /// `minute` minutes into the day `back` days ago (China time), and before now.
    fn at(&self, back: i64, minute: i64) -> DateTime<Utc> {
        at_china_time(self.day(back), minute).min(self.now - TimeDelta::minutes(back + 1))
    }

    /// The `skip`-th case of `district` registered 25 days ago or earlier.
    fn case_in(&self, district: &District, skip: usize) -> Option<Uuid> {
        let before = self.at(25, 9 * 60);
        self.cases
            .iter()
            .filter_map(registration_of)
            .filter(|(c, registered)| {
                c.district_id == district_unit_id(district) && *registered < before
            })
            .nth(skip)
            .and_then(|(c, _)| c.case_id)
    }

    /// The order named `name`'s id.
    fn order(&self, name: &str) -> Uuid {
        demo_uuid(&format!("demo:supervision:{name}"))
    }

    fn step(&mut self, label: &str, when: DateTime<Utc>, command: Command) {
        self.steps.push(campaign_step(
            &format!("supervision:{label}"),
            when,
            command,
        ));
    }
}

fn siming() -> &'static District {
    &DISTRICTS[0]
}

fn huli() -> &'static District {
    &DISTRICTS[1 % DISTRICTS.len()]
}

fn department() -> &'static str {
    DEPARTMENTS.first().map_or("xm-dept-zjj", |(id, _)| *id)
}

/// Answered and accepted: the city's reminder to a department.
fn accepted_order(scenario: &mut Scenario<'_>) {
    let accepted = scenario.order("accepted");
    scenario.step(
        "accepted:issue",
        scenario.at(20, 9 * 60),
        Command::IssueSupervisionOrder(IssueSupervisionOrder {
            order_id: Some(accepted),
            issuer_unit_id: CITY_ID.to_owned(),
            addressee_unit_id: department().to_owned(),
            level: SupervisionLevel::Reminder,
            case_ids: scenario.case_in(siming(), 1).into_iter().collect(),
            matter: "会同属地核实补偿标准执行情况，限期书面反馈".to_owned(),
            answer_due_on: scenario.day(12),
            responsible: "部门信访工作分管负责人".to_owned(),
        }),
    );
    scenario.step(
        "accepted:acknowledge",
        scenario.at(19, 10 * 60),
        Command::AcknowledgeSupervisionOrder(AcknowledgeSupervisionOrder { order_id: accepted }),
    );
    scenario.step(
        "accepted:answer",
        scenario.at(14, 16 * 60),
        Command::AnswerSupervisionOrder(AnswerSupervisionOrder {
            order_id: accepted,
            text: "已会同属地逐户核实，补偿标准执行到位，书面报告已报市联席办".to_owned(),
            evidence: vec!["核查报告".to_owned(), "逐户核实台账".to_owned()],
        }),
    );
    scenario.step(
        "accepted:accept",
        scenario.at(13, 10 * 60),
        Command::ReviewSupervisionAnswer(ReviewSupervisionAnswer {
            order_id: accepted,
            accept: true,
            opinion: Some("同意办结".to_owned()),
            reasons: None,
            answer_due_on: None,
        }),
    );
}

/// Escalated: 思明区 signed for the city's reminder, missed its due date, and it became a 督办.
fn escalated_order(scenario: &mut Scenario<'_>) {
    let escalated = scenario.order("escalated");
    scenario.step(
        "escalated:issue",
        scenario.at(10, 9 * 60),
        Command::IssueSupervisionOrder(IssueSupervisionOrder {
            order_id: Some(escalated),
            issuer_unit_id: CITY_ID.to_owned(),
            addressee_unit_id: district_unit_id(siming()),
            level: SupervisionLevel::Reminder,
            case_ids: scenario.case_in(siming(), 0).into_iter().collect(),
            matter: "该积案已两次回潮，请区级包案领导牵头研究化解方案并限期反馈".to_owned(),
            answer_due_on: scenario.day(6),
            responsible: "区联席办主任".to_owned(),
        }),
    );
    scenario.step(
        "escalated:acknowledge",
        scenario.at(9, 11 * 60),
        Command::AcknowledgeSupervisionOrder(AcknowledgeSupervisionOrder {
            order_id: escalated,
        }),
    );
    scenario.step(
        "escalated:escalate",
        scenario.at(5, 8 * 60),
        Command::EscalateSupervisionOrder(EscalateSupervisionOrder {
            order_id: escalated,
            from: SupervisionLevel::Reminder,
            to: SupervisionLevel::Order,
            answer_due_on: scenario.day(5) + TimeDelta::days(7),
            rule: "催办逾期1日未办结反馈，升级为督办，限7日内反馈".to_owned(),
        }),
    );
    scenario.step(
        "escalated:progress",
        scenario.at(3, 15 * 60),
        Command::ReportSupervisionProgress(ReportSupervisionProgress {
            order_id: escalated,
            text: "区级包案领导已召开专题会，方案正在征求意见".to_owned(),
        }),
    );
}

/// Answered, awaiting review: 思明区's order to one of its towns.
fn awaiting_order(scenario: &mut Scenario<'_>) {
    if let Some(town) = siming().towns.first() {
        let awaiting = scenario.order("awaiting");
        scenario.step(
            "awaiting:issue",
            scenario.at(6, 9 * 60),
            Command::IssueSupervisionOrder(IssueSupervisionOrder {
                order_id: Some(awaiting),
                issuer_unit_id: district_unit_id(siming()),
                addressee_unit_id: town_unit_id(siming(), town.0),
                level: SupervisionLevel::Order,
                case_ids: Vec::new(),
                matter: "排查辖区内涉众型重复信访隐患，报送风险清单".to_owned(),
                answer_due_on: scenario.day(0) + TimeDelta::days(2),
                responsible: "镇街信访办主任".to_owned(),
            }),
        );
        scenario.step(
            "awaiting:acknowledge",
            scenario.at(6, 14 * 60),
            Command::AcknowledgeSupervisionOrder(AcknowledgeSupervisionOrder {
                order_id: awaiting,
            }),
        );
        scenario.step(
            "awaiting:answer",
            scenario.at(1, 16 * 60),
            Command::AnswerSupervisionOrder(AnswerSupervisionOrder {
                order_id: awaiting,
                text: "已完成排查，风险清单（12项）已报区联席办".to_owned(),
                evidence: vec!["风险隐患清单".to_owned()],
            }),
        );
    }
}

/// Listed supervision due tomorrow, not yet signed for.
fn listed_order(scenario: &mut Scenario<'_>) {
    let listed = scenario.order("listed");
    scenario.step(
        "listed:issue",
        scenario.at(2, 9 * 60),
        Command::IssueSupervisionOrder(IssueSupervisionOrder {
            order_id: Some(listed),
            issuer_unit_id: CITY_ID.to_owned(),
            addressee_unit_id: district_unit_id(huli()),
            level: SupervisionLevel::Listed,
            case_ids: scenario.case_in(huli(), 0).into_iter().collect(),
            matter: "挂牌督办：群体性积案，请主要领导亲自包案、限期化解".to_owned(),
            answer_due_on: scenario.day(0) + TimeDelta::days(1),
            responsible: "区委副书记".to_owned(),
        }),
    );
}
