//! The statutory time limits of the 《信访工作条例》 (2022), and a bureau's stricter internal
//! limits on top of them.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::HolidayCalendar;

/// A length of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Calendar days.
    Days(u32),
    /// Working days.
    WorkingDays(u32),
}

/// A step of a petition's handling that the 条例 gives a time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatutoryStep {
    /// Register and forward or assign (登记、转送、交办): 15 days, 第22条.
    Forward,
    /// Written notice of receipt or acceptance (告知): 15 days, 第23条.
    AcceptanceNotice,
    /// Object to a wrongly forwarded item: 5 working days, 第23条.
    ForwardingObjection,
    /// Handle a claim from acceptance to completion (办结): 60 days, 第34条.
    Handling,
    /// The one extension of handling, with approval and reasons: at most 30 days, 第34条.
    HandlingExtension,
    /// Ask for a first review (复查): 30 days from the reply, 第35条.
    FirstReviewRequest,
    /// Answer a first review: 30 days, 第35条.
    FirstReviewAnswer,
    /// Ask for a second review (复核): 30 days from the first review's answer, 第36条.
    SecondReviewRequest,
    /// Answer a second review: 30 days, hearing time not counted, 第36条.
    SecondReviewAnswer,
}

impl StatutoryStep {
    /// Every step.
    pub const ALL: [Self; 9] = [
        Self::Forward,
        Self::AcceptanceNotice,
        Self::ForwardingObjection,
        Self::Handling,
        Self::HandlingExtension,
        Self::FirstReviewRequest,
        Self::FirstReviewAnswer,
        Self::SecondReviewRequest,
        Self::SecondReviewAnswer,
    ];

    /// The limit the 条例 sets.
    pub fn statutory(self) -> Period {
        match self {
            Self::Forward | Self::AcceptanceNotice => Period::Days(15),
            Self::ForwardingObjection => Period::WorkingDays(5),
            Self::Handling => Period::Days(60),
            Self::HandlingExtension
            | Self::FirstReviewRequest
            | Self::FirstReviewAnswer
            | Self::SecondReviewRequest
            | Self::SecondReviewAnswer => Period::Days(30),
        }
    }

    /// The article that sets it.
    pub fn article(self) -> &'static str {
        match self {
            Self::Forward => "《信访工作条例》第二十二条",
            Self::AcceptanceNotice | Self::ForwardingObjection => "《信访工作条例》第二十三条",
            Self::Handling | Self::HandlingExtension => "《信访工作条例》第三十四条",
            Self::FirstReviewRequest | Self::FirstReviewAnswer => "《信访工作条例》第三十五条",
            Self::SecondReviewRequest | Self::SecondReviewAnswer => "《信访工作条例》第三十六条",
        }
    }

    /// Its key in settings (`handling`, `acceptance_notice`, …).
    pub fn key(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::AcceptanceNotice => "acceptance_notice",
            Self::ForwardingObjection => "forwarding_objection",
            Self::Handling => "handling",
            Self::HandlingExtension => "handling_extension",
            Self::FirstReviewRequest => "first_review_request",
            Self::FirstReviewAnswer => "first_review_answer",
            Self::SecondReviewRequest => "second_review_request",
            Self::SecondReviewAnswer => "second_review_answer",
        }
    }

    /// Whether the limit binds the bureau (and it may set a stricter one), as opposed to the
    /// petitioner's own windows to ask for a review, which no bureau may shorten, and the
    /// extension, which the 条例 caps.
    pub fn binds_bureau(self) -> bool {
        !matches!(
            self,
            Self::FirstReviewRequest | Self::SecondReviewRequest | Self::HandlingExtension
        )
    }

    /// Its name in the interface.
    pub fn label(self) -> &'static str {
        match self {
            Self::Forward => "登记转送交办",
            Self::AcceptanceNotice => "告知是否受理",
            Self::ForwardingObjection => "转送异议",
            Self::Handling => "办理期限",
            Self::HandlingExtension => "延长办理期限",
            Self::FirstReviewRequest => "申请复查期限",
            Self::FirstReviewAnswer => "复查答复期限",
            Self::SecondReviewRequest => "申请复核期限",
            Self::SecondReviewAnswer => "复核答复期限",
        }
    }
}

/// Internal limits that cannot be set.
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    /// A step whose limit the bureau may not change (a petitioner's window, the extension).
    #[error("{step} 不是本机关的办理时限，不能设定内部时限")]
    NotTheBureaus {
        /// The step's name.
        step: &'static str,
    },
    /// A setting that does not read as `step=days` or `step=Nwd`.
    #[error(
        "内部时限 `{entry}` 无法识别：{reason}（格式：handling=45,acceptance_notice=10,forwarding_objection=3wd）"
    )]
    Unreadable {
        /// The entry.
        entry: String,
        /// Why.
        reason: String,
    },
    /// An internal limit longer than the statutory one, or in other units.
    #[error("内部时限须严于法定时限：{step} 法定 {statutory:?}，设定 {internal:?}")]
    NotStricter {
        /// The step's name.
        step: &'static str,
        /// The law's limit.
        statutory: Period,
        /// The limit asked for.
        internal: Period,
    },
}

/// The limits a bureau works to: the statutory ones, or stricter ones it sets.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    internal: BTreeMap<StatutoryStep, Period>,
}

impl Limits {
    /// The statutory limits.
    pub fn statutory() -> Self {
        Self::default()
    }

    /// Sets a stricter internal limit for `step` (same unit, shorter or equal).
    pub fn with_internal(
        mut self,
        step: StatutoryStep,
        limit: Period,
    ) -> Result<Self, LimitsError> {
        if !step.binds_bureau() {
            return Err(LimitsError::NotTheBureaus { step: step.label() });
        }
        let statutory = step.statutory();
        let stricter = match (statutory, limit) {
            (Period::Days(law), Period::Days(own))
            | (Period::WorkingDays(law), Period::WorkingDays(own)) => own <= law && own > 0,
            _ => false,
        };
        if !stricter {
            return Err(LimitsError::NotStricter {
                step: step.label(),
                statutory,
                internal: limit,
            });
        }
        self.internal.insert(step, limit);
        Ok(self)
    }

    /// Reads internal limits written as `step=days[,step=Nwd…]` (`wd` for working days), the
    /// steps named by [`StatutoryStep::key`]; an empty text gives the statutory limits.
    pub fn parse(text: &str) -> Result<Self, LimitsError> {
        let mut limits = Self::statutory();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let unreadable = |reason: &str| LimitsError::Unreadable {
                entry: entry.to_owned(),
                reason: reason.to_owned(),
            };
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| unreadable("缺少 `=`"))?;
            let step = StatutoryStep::ALL
                .into_iter()
                .find(|s| s.key() == key.trim())
                .ok_or_else(|| unreadable("没有这个环节"))?;
            let value = value.trim();
            let period = match value.strip_suffix("wd") {
                Some(days) => {
                    Period::WorkingDays(days.parse().map_err(|_| unreadable("天数须为正整数"))?)
                }
                None => Period::Days(value.parse().map_err(|_| unreadable("天数须为正整数"))?),
            };
            limits = limits.with_internal(step, period)?;
        }
        Ok(limits)
    }

    /// The internal limits in the form [`Limits::parse`] reads (empty when statutory), in a
    /// fixed order: it identifies the settings a projection was computed with.
    pub fn describe(&self) -> String {
        self.internal
            .iter()
            .map(|(step, period)| match period {
                Period::Days(days) => format!("{}={days}", step.key()),
                Period::WorkingDays(days) => format!("{}={days}wd", step.key()),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The limit in force for `step`.
    pub fn limit(&self, step: StatutoryStep) -> Period {
        self.internal
            .get(&step)
            .copied()
            .unwrap_or_else(|| step.statutory())
    }

    /// The deadline of `step` when its period starts on `start` (the day of the event that starts
    /// it, not counted).
    pub fn deadline(
        &self,
        calendar: &HolidayCalendar,
        step: StatutoryStep,
        start: NaiveDate,
    ) -> NaiveDate {
        match self.limit(step) {
            Period::Days(days) => calendar.after_days(start, days),
            Period::WorkingDays(days) => calendar.after_working_days(start, days),
        }
    }
}
