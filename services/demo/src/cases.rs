//! The demo's case histories: registration, the leader's work, claims and reviews.

use crate::DemoCase;
use crate::clock::*;
use crate::course::*;
use crate::directory::*;
use crate::rng::*;
use crate::tables::*;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use uuid::Uuid;
use zhzj_proto::Command;
use zhzj_proto::commands::{
    AddMeasure, AssignLeader, ClaimResolution, ClassifyCase, CompleteMeasure, RateSatisfaction,
    RecordActivity, RecordNote, RecordPetition, RegisterCase, ReviewClaim, SetResponsibleUnits,
};
use zhzj_proto::events::{
    ActivityKind, Channel, ClaimClass, ListSource, Petitioner, ProcedureStep, ResolutionGround,
    ReviewLevel, Satisfaction,
};
use zhzj_proto::ids::resident_id_check_char;

pub(crate) fn note(case_id: Uuid, text: &str) -> Command {
    Command::RecordNote(RecordNote {
        case_id,
        text: text.to_owned(),
    })
}

pub(crate) fn case_history(n: u32, now: DateTime<Utc>) -> DemoCase {
    let mut rng = DemoRng::new(DEMO_SEED ^ u64::from(n).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let case_id = demo_uuid(&format!("demo:case:{n}"));
    let place = pick_place(&mut rng);
    let category = rng.pick(CATEGORIES);
    let course = course_of(n);
    let plan = plan_course(&mut rng, course);
    let list_source = rng.pick_weighted(&[
        (ListSource::Screening, 45),
        (ListSource::NewPetition, 35),
        (ListSource::HandedDown, 20),
    ]);
    let minute = office_minute(&mut rng);
    let mut history = History {
        n,
        case_id,
        rng,
        day: 0,
        minute,
        leader: None,
        concluded: false,
        claimed_day: None,
        crossed_off_day: None,
        planned: Vec::new(),
        milestones: std::collections::VecDeque::new(),
    };
    // A new or handed-down petition owes a written notice of acceptance (告知).
    if list_source != ListSource::Screening {
        history.plan(plan.notice_day, ProcedureStep::AcceptanceNotified, None);
    }
    for &(day, step, hearing_days) in &plan.steps {
        history.plan(day, step, hearing_days);
    }
    history.push(0, minute, move |rng, case_id, today| {
        Command::RegisterCase(registration(
            rng,
            case_id,
            place,
            category,
            list_source,
            today,
        ))
    });
    // Some recent cases have no owning leader yet.
    let recent = matches!(course, Course::Handling | Course::DueSoon | Course::Late);
    if !recent || history.rng.chance(80) {
        let finish = matches!(course, Course::Settled | Course::UnderReview);
        work_the_case(&mut history, place, category, plan.age_days, finish);
    } else if history.rng.chance(50) {
        history.push_next(|_, case_id, _| note(case_id, UNOWNED_NOTE));
    }
    history.record_all_milestones();
    // A settled case is as old as its work takes; one under review was claimed resolved days ago.
    let age_days = match (course, history.claimed_day, history.crossed_off_day) {
        (Course::Settled, _, Some(crossed)) => plan.age_days.max(crossed + STEP_GAP_DAYS),
        (Course::UnderReview, Some(claimed), crossed) => {
            let waiting = crossed.map_or(STEP_GAP_DAYS, |c| (c - claimed) / 2);
            claimed + waiting.max(1)
        }
        _ => plan.age_days,
    }
    .min(MAX_AGE_DAYS);
    // Registered `age_days` before today (China), on a working day.
    let start = working_day_until(china_date(now) - TimeDelta::days(age_days));
    let mut steps = history.realize(start);
    // The plan is drawn in full so that nothing but the cut depends on `now`.
    let cutoff = now - TimeDelta::hours(1);
    let keep = steps
        .iter()
        .position(|step| step.at > cutoff)
        .unwrap_or(steps.len());
    steps.truncate(keep);
    DemoCase { case_id, steps }
}

pub(crate) fn registration(
    rng: &mut DemoRng,
    case_id: Uuid,
    place: Place,
    category: &Category,
    list_source: ListSource,
    today: NaiveDate,
) -> RegisterCase {
    let group_size = group_size(rng, category);
    let second_petitioner = rng.chance(if group_size.is_some() { 70 } else { 12 });
    let mut petitioners = vec![petitioner(rng, place)];
    if second_petitioner {
        petitioners.push(petitioner(rng, place));
    }
    let channel = if group_size.is_some() && rng.chance(70) {
        Channel::Visit
    } else {
        rng.pick_weighted(&[
            (Channel::Visit, 35),
            (Channel::Online, 30),
            (Channel::Letter, 20),
            (Channel::Phone, 15),
        ])
    };
    let first_filed_on = today - TimeDelta::days(rng.between(365, 6 * 365));
    RegisterCase {
        case_id: Some(case_id),
        case_number: None,
        petitioners,
        matter: matter_for(category, rng, place),
        category: category.name.to_owned(),
        district_id: place.district_id(),
        town_id: Some(place.town_id()),
        channel,
        first_filed_on,
        list_source,
        group_size,
    }
}

/// Some cases in group-prone categories are group petitions (群体访) of 3 to 30 people.
pub(crate) fn group_size(rng: &mut DemoRng, category: &Category) -> Option<u32> {
    let roll = rng.below(100);
    let size = rng.between(3, 30);
    if category.group_prone && roll < 35 {
        u32::try_from(size).ok()
    } else {
        None
    }
}

pub(crate) fn person_name(rng: &mut DemoRng) -> String {
    format!("{}{}", rng.pick(SURNAMES), rng.pick(GIVEN_NAMES))
}

pub(crate) fn petitioner(rng: &mut DemoRng, place: Place) -> Petitioner {
    let name = person_name(rng);
    let id_number = id_number(rng);
    let phone = phone(rng);
    let address = address(rng, place);
    let id_known = rng.chance(92);
    let address_known = rng.chance(90);
    Petitioner {
        name,
        id_number: id_number.filter(|_| id_known),
        phone: Some(phone),
        address: Some(address).filter(|_| address_known),
    }
}

/// A well-formed resident ID number of nobody: county code 350299 (unassigned), a birth date
/// in 1950–1995, a sequence number and the right check character.
pub(crate) fn id_number(rng: &mut DemoRng) -> Option<String> {
    let birth = NaiveDate::from_ymd_opt(1950, 1, 1).unwrap_or_default()
        + TimeDelta::days(rng.between(0, 16_790));
    let first17 = format!("350299{}{:03}", birth.format("%Y%m%d"), rng.below(1000));
    resident_id_check_char(&first17).map(|check| format!("{first17}{check}"))
}

/// Eleven digits starting with 100, which is no mobile prefix.
pub(crate) fn phone(rng: &mut DemoRng) -> String {
    format!("100{:08}", rng.below(100_000_000))
}

pub(crate) fn address(rng: &mut DemoRng, place: Place) -> String {
    let building = rng.between(1, 32);
    let room = rng.between(1, 28) * 100 + rng.between(1, 6);
    let kind = rng.pick(ESTATE_KINDS);
    if place.is_rural() {
        format!("{}某村{}号", place.label(), rng.between(1, 300))
    } else {
        format!("{}某某{kind}{building}号楼{room}室", place.label())
    }
}

/// A matter from the category's templates, filled with concrete details.
pub(crate) fn matter_for(category: &Category, rng: &mut DemoRng, place: Place) -> String {
    let template = rng.pick(category.matters);
    let amount = format!("{}.{}", rng.between(2, 89), rng.below(10));
    let years = rng.between(2, 13).to_string();
    let area = rng.between(45, 300).to_string();
    let company = rng.pick(COMPANIES);
    template
        .replace("{place}", &place.label())
        .replace("{village}", place.village())
        .replace("{company}", company)
        .replace("{amount}", &amount)
        .replace("{years}", &years)
        .replace("{area}", &area)
}

/// A leader for the case: mostly one of its district, sometimes its town's or a city leader;
/// never `exclude`.
pub(crate) fn pick_leader(rng: &mut DemoRng, place: Place, exclude: Option<&str>) -> String {
    let roll = rng.below(100);
    let pool = if roll < 20 {
        vec![town_leader_id(place.district, place.town.0)]
    } else if roll < 85 {
        district_leader_ids(place.district)
    } else {
        city_leader_ids()
    };
    let usable = |ids: Vec<String>| -> Vec<String> {
        ids.into_iter()
            .filter(|id| Some(id.as_str()) != exclude)
            .collect()
    };
    let mut candidates = usable(pool);
    if candidates.is_empty() {
        candidates = usable(district_leader_ids(place.district));
    }
    let i = rng.index(candidates.len());
    candidates.swap_remove(i)
}

/// The owned case's life: leader, units, measures (some ticked off), notes, sometimes a
/// reassignment. Older cases get a longer plan; a case that is to be `settled` mostly gets all
/// its measures done and is claimed resolved.
pub(crate) fn work_the_case(
    history: &mut History,
    place: Place,
    category: &'static Category,
    age_days: i64,
    settled: bool,
) {
    let leader = pick_leader(&mut history.rng, place, None);
    history.leader = Some(leader.clone());
    history.push_next(|_, case_id, _| assign(case_id, leader, None));
    history.push_next(move |rng, case_id, _| responsible_units(rng, case_id, place, category));
    if history.rng.chance(80) {
        let class = class_for(&mut history.rng, category);
        history.push_next(move |_, case_id, _| {
            Command::ClassifyCase(ClassifyCase {
                case_id,
                class,
                category: category.name.to_owned(),
                reason: None,
            })
        });
    }

    let most_measures = if age_days > 120 { 4 } else { 3 };
    let measure_count = 1 + history.rng.index(most_measures);
    let descriptions = measure_texts(&mut history.rng, category, measure_count);
    let reassign_before = history.rng.index(measure_count);
    let reassigns = history.rng.chance(10);

    let mut pending: Vec<u32> = Vec::new();
    for (i, (number, description)) in (1u32..).zip(descriptions).enumerate() {
        if reassigns && i == reassign_before {
            reassign(history, place);
        }
        history.push_next(|rng, case_id, today| {
            Command::AddMeasure(AddMeasure {
                case_id,
                description: description.to_owned(),
                due_on: Some(today + TimeDelta::days(rng.between(14, 56))),
                responsible_unit_id: None,
            })
        });
        pending.push(number);
        history.maybe_note(30);
        maybe_activity(history, 40);
        if history.rng.chance(45) && !pending.is_empty() {
            let oldest = pending.remove(0);
            complete(history, oldest);
        }
    }
    let mut all_done = true;
    for number in pending {
        if history.rng.chance(if settled { 95 } else { 50 }) {
            complete(history, number);
        } else {
            all_done = false;
        }
        history.maybe_note(25);
    }
    if all_done && history.rng.chance(if settled { 95 } else { 75 }) {
        claim_and_review(history);
    }
}

/// The 三到位一处理 class a case of `category` most likely gets.
pub(crate) fn class_for(rng: &mut DemoRng, category: &Category) -> ClaimClass {
    if category.name == "民政救助" || rng.chance(10) {
        ClaimClass::Hardship
    } else if category.name == "涉法涉诉" && rng.chance(50) {
        ClaimClass::Unreasonable
    } else if rng.chance(3) {
        ClaimClass::Unlawful
    } else {
        ClaimClass::Reasonable
    }
}

pub(crate) const ACTIVITY_KINDS: &[ActivityKind] = &[
    ActivityKind::Reception,
    ActivityKind::InvitedTalk,
    ActivityKind::HomeVisit,
    ActivityKind::HomeVisit,
    ActivityKind::Hearing,
    ActivityKind::Reasoning,
    ActivityKind::ExpertConsultation,
    ActivityKind::LawyerConsultation,
    ActivityKind::Meeting,
];

/// The owning leader's work on the case (接访、约访、下访 …), some of the time.
pub(crate) fn maybe_activity(history: &mut History, percent: u64) {
    if !history.rng.chance(percent) {
        return;
    }
    history.push_next(|rng, case_id, today| {
        let kind = *rng.pick(ACTIVITY_KINDS);
        let summary = match kind {
            ActivityKind::Reception => "在领导接访日接待信访人，当面听取诉求",
            ActivityKind::InvitedTalk => "约请信访人面谈，逐项解释政策依据",
            ActivityKind::HomeVisit => "带队下访信访人家中，了解实际困难",
            ActivityKind::Hearing => "组织公开听证，邀请人大代表、政协委员参加",
            ActivityKind::Reasoning => "召开评理会，由群众代表评议诉求",
            ActivityKind::ExpertConsultation => "提请复查复核专家库会诊，形成书面意见",
            ActivityKind::LawyerConsultation => "邀请驻点律师参与，提供法律意见",
            ActivityKind::Meeting => "召开协调会，明确各责任单位分工",
        };
        Command::RecordActivity(RecordActivity {
            case_id,
            leader_id: None,
            kind,
            held_on: today,
            participants: vec!["信访人".to_owned(), "责任单位经办人".to_owned()],
            summary: summary.to_owned(),
        })
    });
}

pub(crate) fn review(
    case_id: Uuid,
    level: ReviewLevel,
    accept: bool,
    reasons: Option<&str>,
) -> Command {
    Command::ReviewClaim(ReviewClaim {
        case_id,
        level,
        accept,
        reasons: reasons.map(str::to_owned),
    })
}

/// Claims the case resolved, reviews it up the chain (sometimes sent back first), and
/// sometimes the petitioner rates the reply or comes back (回潮).
pub(crate) fn claim_and_review(history: &mut History) {
    let claim = |rng: &mut DemoRng, case_id: Uuid, _: NaiveDate| {
        let (ground, summary, evidence) = *rng.pick(&[
            (
                ResolutionGround::Solved,
                "诉求已解决，信访人表示认可",
                "回访记录",
            ),
            (
                ResolutionGround::SettlementAgreement,
                "经调解签订息诉罢访协议",
                "息诉罢访协议",
            ),
            (
                ResolutionGround::LegallyConcluded,
                "依法终结，已落实帮扶救助",
                "终结意见书",
            ),
        ]);
        Command::ClaimResolution(ClaimResolution {
            case_id,
            ground,
            summary: summary.to_owned(),
            evidence: vec![format!("{evidence}（编号 {}）", rng.between(100, 999))],
        })
    };
    // A claim follows the written reply that ends the handling (办结), and the reviews the
    // petitioner asked for.
    history.record_all_milestones();
    history.push_next(claim);
    history.claimed_day = Some(history.day);
    if history.rng.chance(15) {
        history.push_next(|_, case_id, _| {
            review(
                case_id,
                ReviewLevel::District,
                false,
                Some("化解材料不完整，请补充协议签字页"),
            )
        });
        history.push_next(claim);
    }
    // Each level takes days over its review.
    history.push_after(5, 15, |_, case_id, _| {
        review(case_id, ReviewLevel::District, true, Some("同意销号"))
    });
    history.push_after(3, 12, |_, case_id, _| {
        review(case_id, ReviewLevel::City, true, None)
    });
    history.crossed_off_day = Some(history.day);
    if history.rng.chance(60) {
        history.push_next(|rng, case_id, today| {
            Command::RateSatisfaction(RateSatisfaction {
                case_id,
                rating: *rng.pick(&[
                    Satisfaction::Satisfied,
                    Satisfaction::Satisfied,
                    Satisfaction::BasicallySatisfied,
                    Satisfaction::Dissatisfied,
                ]),
                rated_on: today,
                rated_by: "电话回访".to_owned(),
            })
        });
    }
    if history.rng.chance(8) {
        history.push_next(|_, case_id, today| {
            Command::RecordPetition(RecordPetition {
                case_id,
                received_on: today,
                channel: Channel::Visit,
                summary: "认为协议未落实到位，再次到市信访局上访".to_owned(),
            })
        });
        // Back on the list (回潮) unless the matter is concluded: a new handling period from the
        // petition, with its own notice of acceptance and reply in time.
        if !history.concluded {
            let petitioned = history.day;
            let notice = petitioned + history.rng.between(1, 10);
            let reply = petitioned + history.rng.between(25, 56);
            history.plan(notice, ProcedureStep::AcceptanceNotified, None);
            history.plan(reply, ProcedureStep::Replied, None);
        }
    }
}

pub(crate) fn assign(case_id: Uuid, leader_id: String, reason: Option<&str>) -> Command {
    Command::AssignLeader(AssignLeader {
        case_id,
        leader_id,
        reason: reason.map(str::to_owned),
    })
}

/// Replaces the owning leader; a move up to a city leader says so, other moves give a reason
/// such as 工作调整 (the service refuses a reassignment without one).
pub(crate) fn reassign(history: &mut History, place: Place) {
    let current = history.leader.clone().unwrap_or_default();
    let escalate = history.rng.chance(40);
    let city = city_leader_ids();
    let leader = if escalate {
        let others: Vec<String> = city.iter().filter(|id| **id != current).cloned().collect();
        let i = history.rng.index(others.len());
        others
            .get(i)
            .cloned()
            .unwrap_or_else(|| pick_leader(&mut history.rng, place, Some(&current)))
    } else {
        pick_leader(&mut history.rng, place, Some(&current))
    };
    let generic_reason = *history.rng.pick(REASSIGNMENT_REASONS);
    let reason = if escalate && !city.contains(&current) {
        ESCALATION_REASON
    } else {
        generic_reason
    };
    history.leader = Some(leader.clone());
    history.push_next(|_, case_id, _| assign(case_id, leader, Some(reason)));
}

pub(crate) fn complete(history: &mut History, number: u32) {
    // Measure ids are assigned by the service as m1, m2, … in the order the measures are added
    // (zhzj_cases::case::measure_id).
    history.push_next(move |rng, case_id, _| {
        Command::CompleteMeasure(CompleteMeasure {
            case_id,
            measure_id: format!("m{number}"),
            result: (*rng.pick(MEASURE_RESULTS)).to_owned(),
        })
    });
}

/// `count` distinct measures; the first is usually the leader meeting the petitioner.
pub(crate) fn measure_texts(
    rng: &mut DemoRng,
    category: &Category,
    count: usize,
) -> Vec<&'static str> {
    let meet_first = rng.chance(60);
    let pool: Vec<&'static str> = category
        .measures
        .iter()
        .chain(GENERIC_MEASURES)
        .copied()
        .filter(|m| !meet_first || *m != GENERIC_MEASURES[0])
        .collect();
    let mut texts = Vec::with_capacity(count);
    if meet_first {
        texts.push(GENERIC_MEASURES[0]);
    }
    let rest = count.saturating_sub(texts.len());
    texts.extend(rng.pick_distinct(&pool, rest));
    texts
}

/// Lead unit: the case's town, or a department of its category; 0–2 assisting units; a handler.
pub(crate) fn responsible_units(
    rng: &mut DemoRng,
    case_id: Uuid,
    place: Place,
    category: &Category,
) -> Command {
    let department = (*rng.pick(category.departments)).to_owned();
    let department_leads = rng.chance(35);
    let lead = if department_leads {
        department.clone()
    } else {
        place.town_id()
    };
    let mut candidates: Vec<String> = vec![place.district_id(), place.town_id(), department];
    candidates.extend(category.departments.iter().map(|id| (*id).to_owned()));
    candidates.retain(|id| *id != lead);
    candidates.sort();
    candidates.dedup();
    let assisting_count = rng.index(3);
    let assisting_unit_ids = rng.pick_distinct(&candidates, assisting_count);
    let roles = if department_leads {
        DEPARTMENT_HANDLER_ROLES
    } else {
        TOWN_HANDLER_ROLES
    };
    let handler = format!("{}（{}）", person_name(rng), rng.pick(roles));
    Command::SetResponsibleUnits(SetResponsibleUnits {
        case_id,
        lead_unit_id: lead,
        assisting_unit_ids,
        handler: Some(handler),
    })
}
