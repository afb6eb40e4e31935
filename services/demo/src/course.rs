//! How a demo case runs: where its matter lies, the course it is dealt, and the plan of its
//! history.

use crate::DemoStep;
use crate::cases::*;
use crate::clock::*;
use crate::directory::*;
use crate::rng::*;
use crate::tables::*;
use chrono::{NaiveDate, TimeDelta};
use uuid::Uuid;
use zhzj_proto::Command;
use zhzj_proto::commands::RecordProcedureStep;
use zhzj_proto::events::ProcedureStep;

/// Where a case's matter lies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    pub(crate) district: &'static District,
    pub(crate) town: Town,
}

impl Place {
    pub(crate) fn district_id(&self) -> String {
        district_unit_id(self.district)
    }

    pub(crate) fn town_id(&self) -> String {
        town_unit_id(self.district, self.town.0)
    }

    /// E.g. 集美区后溪镇.
    pub(crate) fn label(&self) -> String {
        format!("{}{}", self.district.name, self.town.1)
    }

    pub(crate) fn is_rural(&self) -> bool {
        self.town.1.ends_with('镇')
    }

    /// 某村 in a town, 某社区 in a street.
    pub(crate) fn village(&self) -> &'static str {
        if self.is_rural() {
            "某村"
        } else {
            "某社区"
        }
    }
}

pub(crate) fn pick_place(rng: &mut DemoRng) -> Place {
    let weights: Vec<(usize, u64)> = DISTRICTS
        .iter()
        .enumerate()
        .map(|(i, d)| (i, d.weight))
        .collect();
    let district = &DISTRICTS[rng.pick_weighted(&weights)];
    Place {
        district,
        town: *rng.pick(district.towns),
    }
}

/// How a case's story runs, dealt out so that at `now` the checklist looks like a working
/// bureau's: most open cases within a statutory clock, some due within days, some overdue, many
/// crossed off. Each course fixes the case's age and the days of its procedure steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Course {
    /// Registered in the last seven weeks: the handling runs, the written reply is to come.
    Handling,
    /// Its 60 days of handling end within the week; the reply is to come.
    DueSoon,
    /// Past its 60 days without a reply, which comes late.
    Late,
    /// Replied in time; the petitioner asked for a first review (复查), not answered yet.
    FirstReview,
    /// Through 复查; a second review (复核) asked for, not answered yet.
    SecondReview,
    /// Replied in time, some through 复查 and 复核, worked to the end and claimed resolved days
    /// ago: the claim is under review.
    UnderReview,
    /// Replied in time long ago, some through 复查 and 复核: worked to the end, mostly crossed off.
    Settled,
}

/// The courses and how many of every [`COURSE_CYCLE`] cases follow each.
pub(crate) const COURSES: &[(Course, u32)] = &[
    (Course::Handling, 16),
    (Course::DueSoon, 2),
    (Course::Late, 4),
    (Course::FirstReview, 4),
    (Course::SecondReview, 2),
    (Course::UnderReview, 2),
    (Course::Settled, 10),
];
/// The courses are dealt out in fixed shares over this many consecutive cases.
pub(crate) const COURSE_CYCLE: u32 = 40;

/// The course of the `n`th case: its place in the cycle, stepped by a number prime to the cycle
/// so that neighbouring cases follow different courses.
pub(crate) fn course_of(n: u32) -> Course {
    let mut slot = n.wrapping_mul(17) % COURSE_CYCLE;
    for &(course, count) in COURSES {
        if slot < count {
            return course;
        }
        slot -= count;
    }
    Course::Handling
}

/// The oldest case, in days.
pub(crate) const MAX_AGE_DAYS: i64 = 358;
/// Days between two planned procedure steps at least, so that no two fall on one working day.
pub(crate) const STEP_GAP_DAYS: i64 = 3;
/// Latest day after the reply (or the first review's answer) on which the demo asks for a review:
/// with a weekend it falls two days later, still inside the petitioner's 30 days.
pub(crate) const LATEST_REQUEST_DAY: i64 = 27;

/// A case's course: its age (days before today it was registered, before moving to a working
/// day), the day of the notice of acceptance (if one is owed), and the procedure after it.
#[derive(Debug)]
pub(crate) struct CoursePlan {
    pub(crate) age_days: i64,
    pub(crate) notice_day: i64,
    pub(crate) steps: Vec<(i64, ProcedureStep, Option<u32>)>,
}

impl CoursePlan {
    /// Plans `step` for `day` after registration, or a little later to keep the steps apart.
    pub(crate) fn then(&mut self, day: i64, step: ProcedureStep, hearing_days: Option<u32>) -> i64 {
        let after = self.steps.last().map_or(self.notice_day, |(d, _, _)| *d);
        let day = day.max(after + STEP_GAP_DAYS);
        self.steps.push((day, step, hearing_days));
        day
    }

    /// The petitioner's reviews after the reply on `replied`: the first asked for and, with
    /// `second`, answered and the second asked for. Gives the days of the first and the last
    /// request.
    pub(crate) fn reviews(&mut self, rng: &mut DemoRng, replied: i64, second: bool) -> (i64, i64) {
        let asked = self.then(
            replied + rng.between(STEP_GAP_DAYS, LATEST_REQUEST_DAY),
            ProcedureStep::FirstReviewRequested,
            None,
        );
        if !second {
            return (asked, asked);
        }
        let answered = self.then(
            asked + rng.between(5, 29),
            ProcedureStep::FirstReviewAnswered,
            None,
        );
        let asked_again = self.then(
            answered + rng.between(STEP_GAP_DAYS, LATEST_REQUEST_DAY),
            ProcedureStep::SecondReviewRequested,
            None,
        );
        (asked, asked_again)
    }
}

/// Draws the course's age and procedure. Ages are counted to today; steps planned at least three
/// days before the age have happened by `now`, those three days after it are still to come
/// (registration and steps move by up to two days to fall on working days). A settled case's
/// age, and one under review, are set again once its work is planned ([`case_history`]).
pub(crate) fn plan_course(rng: &mut DemoRng, course: Course) -> CoursePlan {
    // The notice of acceptance, mostly well within its 15 days.
    let notice_day = if rng.chance(5) {
        rng.between(17, 26)
    } else {
        rng.between(1, 10)
    };
    let mut plan = CoursePlan {
        age_days: 0,
        notice_day,
        steps: Vec::new(),
    };
    let reply = |plan: &mut CoursePlan, day: i64| plan.then(day, ProcedureStep::Replied, None);
    plan.age_days = match course {
        Course::Handling => {
            let age = rng.between(5, 50);
            reply(&mut plan, rng.between(age + STEP_GAP_DAYS, 58));
            age
        }
        Course::DueSoon => {
            let age = rng.between(55, 58);
            reply(&mut plan, age + rng.between(STEP_GAP_DAYS, 10));
            age
        }
        Course::Late => {
            let age = rng.between(66, 125);
            reply(&mut plan, age + rng.between(STEP_GAP_DAYS, 45));
            age
        }
        Course::FirstReview | Course::SecondReview => {
            let replied = reply(&mut plan, rng.between(25, 56));
            let (_, asked) = plan.reviews(rng, replied, course == Course::SecondReview);
            // Days from the (last) request to today: the answer is due 30 days after it, and a
            // few are late.
            let since = rng.between(STEP_GAP_DAYS, 34);
            let mut answer_after = since;
            if course == Course::SecondReview && rng.chance(40) {
                let held = rng.between(STEP_GAP_DAYS, 12);
                let days = u32::try_from(rng.between(3, 15)).unwrap_or(3);
                plan.then(asked + held, ProcedureStep::HearingHeld, Some(days));
                answer_after = answer_after.max(held);
            }
            let answered = asked + answer_after + rng.between(STEP_GAP_DAYS, 10);
            let step = if course == Course::SecondReview {
                ProcedureStep::SecondReviewAnswered
            } else {
                ProcedureStep::FirstReviewAnswered
            };
            plan.then(answered, step, None);
            asked + since
        }
        Course::Settled | Course::UnderReview => {
            let replied = reply(&mut plan, rng.between(15, 56));
            if rng.chance(30) {
                let second = rng.chance(40);
                let (first_asked, asked) = plan.reviews(rng, replied, second);
                if second {
                    let mut answered = asked + rng.between(5, 25);
                    if rng.chance(30) {
                        let held = rng.between(STEP_GAP_DAYS, 12);
                        let days = u32::try_from(rng.between(3, 15)).unwrap_or(3);
                        plan.then(asked + held, ProcedureStep::HearingHeld, Some(days));
                        answered += held;
                    }
                    plan.then(answered, ProcedureStep::SecondReviewAnswered, None);
                } else {
                    plan.then(
                        first_asked + rng.between(5, 29),
                        ProcedureStep::FirstReviewAnswered,
                        None,
                    );
                }
            }
            let end = plan.steps.last().map_or(replied, |(day, _, _)| *day);
            rng.between((end + 30).max(90), MAX_AGE_DAYS)
        }
    };
    plan
}

/// What the record of a procedure step says.
pub(crate) fn procedure_summary(step: ProcedureStep) -> &'static str {
    match step {
        ProcedureStep::AcceptanceNotified => "已书面告知信访人受理",
        ProcedureStep::Replied => "已出具书面处理意见并送达信访人",
        ProcedureStep::FirstReviewRequested => "信访人不服处理意见，向上一级机关申请复查",
        ProcedureStep::FirstReviewAnswered => "复查机关已出具复查意见并送达信访人",
        ProcedureStep::SecondReviewRequested => "信访人不服复查意见，申请复核",
        ProcedureStep::HearingHeld => "复核机关组织听证，听取信访人和责任单位意见",
        ProcedureStep::SecondReviewAnswered => "复核机关已出具复核意见，信访事项终结",
    }
}

/// A procedure step planned for a day, recorded when the work on the case gets there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Milestone {
    pub(crate) day: i64,
    pub(crate) minute: i64,
    pub(crate) step: ProcedureStep,
    pub(crate) hearing_days: Option<u32>,
}

/// Makes a step's command once its date (China) is known.
pub(crate) type MakeCommand = Box<dyn FnOnce(&mut DemoRng, Uuid, NaiveDate) -> Command>;

/// A step of the plan: days after registration, minute of the day, and its command.
pub(crate) struct Planned {
    pub(crate) day: i64,
    pub(crate) minute: i64,
    pub(crate) make: MakeCommand,
}

/// One case as it is being planned. Steps are planned as days after registration and minutes of
/// the day, without a calendar, so the plan is the same whatever `now` is; [`History::realize`]
/// puts it on the calendar once the day of registration is known.
pub(crate) struct History {
    pub(crate) n: u32,
    pub(crate) case_id: Uuid,
    pub(crate) rng: DemoRng,
    /// The plan of the last step: days after registration and minute of the day.
    pub(crate) day: i64,
    pub(crate) minute: i64,
    /// The current owning leader.
    pub(crate) leader: Option<String>,
    /// Whether the second review was answered (终结): a later petition does not reopen the case.
    pub(crate) concluded: bool,
    /// The days of the first resolution claim and of the review that crossed the case off.
    pub(crate) claimed_day: Option<i64>,
    pub(crate) crossed_off_day: Option<i64>,
    pub(crate) planned: Vec<Planned>,
    /// Procedure steps still to record, in order.
    pub(crate) milestones: std::collections::VecDeque<Milestone>,
}

impl History {
    /// Appends a command at the next step time, after the procedure steps planned before it.
    pub(crate) fn push_next(
        &mut self,
        command: impl FnOnce(&mut DemoRng, Uuid, NaiveDate) -> Command + 'static,
    ) {
        let (day, minute) = later(self.day, self.minute, &mut self.rng);
        self.record_milestones_until(day, minute);
        self.push(day, minute, command);
    }

    /// Appends a command `low` to `high` days after the last step, in office hours.
    pub(crate) fn push_after(
        &mut self,
        low: i64,
        high: i64,
        command: impl FnOnce(&mut DemoRng, Uuid, NaiveDate) -> Command + 'static,
    ) {
        let day = self.day + self.rng.between(low, high);
        let minute = office_minute(&mut self.rng);
        self.record_milestones_until(day, minute);
        self.push(day, minute, command);
    }

    pub(crate) fn push(
        &mut self,
        day: i64,
        minute: i64,
        command: impl FnOnce(&mut DemoRng, Uuid, NaiveDate) -> Command + 'static,
    ) {
        self.planned.push(Planned {
            day,
            minute,
            make: Box::new(command),
        });
        (self.day, self.minute) = (day, minute);
    }

    /// Plans a procedure step for `day` after registration.
    pub(crate) fn plan(&mut self, day: i64, step: ProcedureStep, hearing_days: Option<u32>) {
        let minute = office_minute(&mut self.rng);
        self.milestones.push_back(Milestone {
            day,
            minute,
            step,
            hearing_days,
        });
    }

    /// Records the procedure steps planned up to `day` at `minute`.
    pub(crate) fn record_milestones_until(&mut self, day: i64, minute: i64) {
        while let Some(&milestone) = self
            .milestones
            .front()
            .filter(|m| (m.day, m.minute) <= (day, minute))
        {
            self.milestones.pop_front();
            self.concluded |= milestone.step == ProcedureStep::SecondReviewAnswered;
            self.push(milestone.day, milestone.minute, move |_, case_id, on| {
                Command::RecordProcedureStep(RecordProcedureStep {
                    case_id,
                    step: milestone.step,
                    on,
                    summary: procedure_summary(milestone.step).to_owned(),
                    hearing_days: milestone.hearing_days,
                })
            });
        }
    }

    /// Records every procedure step still planned.
    pub(crate) fn record_all_milestones(&mut self) {
        self.record_milestones_until(i64::MAX, i64::MAX);
    }

    pub(crate) fn maybe_note(&mut self, percent: u64) {
        if self.rng.chance(percent) {
            self.push_next(|rng, case_id, _| note(case_id, rng.pick::<&str>(NOTES)));
        }
    }

    /// The case registered on `start`: each step on its day or the next working day, after the
    /// step before it.
    pub(crate) fn realize(self, start: NaiveDate) -> Vec<DemoStep> {
        let Self {
            n,
            case_id,
            mut rng,
            planned,
            ..
        } = self;
        let mut steps: Vec<DemoStep> = Vec::with_capacity(planned.len());
        for (k, step) in planned.into_iter().enumerate() {
            let date = working_day_from(start + TimeDelta::days(step.day));
            let mut at = at_china_time(date, step.minute);
            if let Some(last) = steps.last() {
                at = at.max(last.at + TimeDelta::minutes(1));
            }
            let command = (step.make)(&mut rng, case_id, china_date(at));
            steps.push(DemoStep {
                at,
                command_id: demo_uuid(&format!("demo:case:{n}:{k}")),
                command,
            });
        }
        steps
    }
}
