//! The holiday calendar: which days are rest days (weekends and public holidays, less make-up
//! working days), read from `data/holidays-cn.json` or any file of the same shape.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Deserialize;

/// The official calendar shipped with zhzj (the State Council's notices for 2025 and 2026).
const OFFICIAL: &str = include_str!("../data/holidays-cn.json");

/// Why a calendar could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The file is not the expected JSON.
    #[error("holiday calendar is malformed: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A range or date does not belong to the year it is listed under, or runs backwards.
    #[error("holiday calendar, year {year}: {message}")]
    Inconsistent {
        /// The year.
        year: i32,
        /// What is wrong.
        message: String,
    },
}

/// The file: a description for people (ignored here) and the years.
#[derive(Debug, Deserialize)]
struct CalendarFile {
    years: Vec<YearFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i32,
    source: String,
    rest: Vec<RestRange>,
    work: Vec<NaiveDate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestRange {
    name: String,
    from: NaiveDate,
    to: NaiveDate,
}

/// Which days are working days.
#[derive(Debug, Clone)]
pub struct HolidayCalendar {
    /// Rest days with the holiday's name.
    rest: BTreeMap<NaiveDate, String>,
    work: BTreeSet<NaiveDate>,
    /// The notice each year's schedule comes from.
    sources: BTreeMap<i32, String>,
}

impl HolidayCalendar {
    /// The calendar shipped with zhzj.
    pub fn official() -> Result<Self, CalendarError> {
        Self::from_json(OFFICIAL)
    }

    /// The shipped calendar, read once. It is compiled in and a unit test reads it, so the
    /// fallback (weekends only) is there only so that this cannot panic.
    pub fn shipped() -> &'static Self {
        static SHIPPED: std::sync::LazyLock<HolidayCalendar> = std::sync::LazyLock::new(|| {
            HolidayCalendar::official().unwrap_or_else(|_| HolidayCalendar::weekends_only())
        });
        &SHIPPED
    }

    /// A calendar that knows no holidays: only weekends rest.
    pub fn weekends_only() -> Self {
        Self {
            rest: BTreeMap::new(),
            work: BTreeSet::new(),
            sources: BTreeMap::new(),
        }
    }

    /// A calendar from JSON of the shape of `data/holidays-cn.json`.
    pub fn from_json(text: &str) -> Result<Self, CalendarError> {
        let file: CalendarFile = serde_json::from_str(text)?;
        let mut calendar = Self {
            rest: BTreeMap::new(),
            work: BTreeSet::new(),
            sources: BTreeMap::new(),
        };
        for year in file.years {
            let wrong = |message: String| CalendarError::Inconsistent {
                year: year.year,
                message,
            };
            for range in &year.rest {
                if range.to < range.from {
                    return Err(wrong(format!("{} ends before it starts", range.from)));
                }
                let mut day = range.from;
                while day <= range.to {
                    calendar.rest.insert(day, range.name.clone());
                    day = day
                        .checked_add_days(Days::new(1))
                        .ok_or_else(|| wrong("date out of range".into()))?;
                }
            }
            for day in &year.work {
                if day.year() != year.year {
                    return Err(wrong(format!(
                        "make-up working day {day} is in another year"
                    )));
                }
                if calendar.rest.contains_key(day) {
                    return Err(wrong(format!("{day} is both a rest day and a working day")));
                }
                calendar.work.insert(*day);
            }
            calendar.sources.insert(year.year, year.source);
        }
        Ok(calendar)
    }

    /// Whether the calendar has the official schedule of `date`'s year. For other years only
    /// weekends are rest days, so a deadline there is an estimate.
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.sources.contains_key(&date.year())
    }

    /// The notice a year's schedule comes from.
    pub fn source(&self, year: i32) -> Option<&str> {
        self.sources.get(&year).map(String::as_str)
    }

    /// The public holiday `date` falls in, if any.
    pub fn holiday_name(&self, date: NaiveDate) -> Option<&str> {
        self.rest.get(&date).map(String::as_str)
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.work.contains(&date) {
            return true;
        }
        if self.rest.contains_key(&date) {
            return false;
        }
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The first working day on or after `date`.
    pub fn working_day_on_or_after(&self, date: NaiveDate) -> NaiveDate {
        let mut day = date;
        // A year has no run of rest days longer than a few weeks; the bound only guards the loop.
        for _ in 0..366 {
            if self.is_working_day(day) {
                return day;
            }
            match day.checked_add_days(Days::new(1)) {
                Some(next) => day = next,
                None => return day,
            }
        }
        day
    }

    /// The last day of a period of `days` calendar days that starts on `start` (which is not
    /// counted), moved to the next working day if it is a rest day.
    pub fn after_days(&self, start: NaiveDate, days: u32) -> NaiveDate {
        let end = start
            .checked_add_days(Days::new(u64::from(days)))
            .unwrap_or(NaiveDate::MAX);
        self.working_day_on_or_after(end)
    }

    /// The last day of a period of `days` working days that starts on `start` (not counted).
    pub fn after_working_days(&self, start: NaiveDate, days: u32) -> NaiveDate {
        let mut day = start;
        let mut counted = 0;
        while counted < days {
            match day.checked_add_days(Days::new(1)) {
                Some(next) => day = next,
                None => return day,
            }
            if self.is_working_day(day) {
                counted += 1;
            }
        }
        day
    }
}
