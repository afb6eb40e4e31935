//! The demo's times: China's office hours and working days.

use crate::rng::*;
use crate::tables::*;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday};

/// The date in China at `at`.
pub(crate) fn china_date(at: DateTime<Utc>) -> NaiveDate {
    (at + TimeDelta::minutes(CHINA_OFFSET_MINUTES)).date_naive()
}

/// The instant of `minute` after local midnight of `date` in China.
pub(crate) fn at_china_time(date: NaiveDate, minute: i64) -> DateTime<Utc> {
    (NaiveDateTime::new(date, NaiveTime::MIN) + TimeDelta::minutes(minute - CHINA_OFFSET_MINUTES))
        .and_utc()
}

pub(crate) fn office_minute(rng: &mut DemoRng) -> i64 {
    rng.between(OFFICE_OPENS, OFFICE_CLOSES - 1)
}

/// The date, or the Monday after it if it falls on a weekend.
pub(crate) fn working_day_from(date: NaiveDate) -> NaiveDate {
    match date.weekday() {
        Weekday::Sat => date + TimeDelta::days(2),
        Weekday::Sun => date + TimeDelta::days(1),
        _ => date,
    }
}

/// The date, or the Friday before it if it falls on a weekend.
pub(crate) fn working_day_until(date: NaiveDate) -> NaiveDate {
    match date.weekday() {
        Weekday::Sat => date - TimeDelta::days(1),
        Weekday::Sun => date - TimeDelta::days(2),
        _ => date,
    }
}

/// The plan of the step after one planned for `day` (days after registration) at `minute`: a few
/// hours later the same day, or 1 to 21 days later in office hours. Always draws the same
/// numbers, so later cases do not shift; the plan does not depend on the calendar, only the
/// times it falls on do ([`History::realize`]).
pub(crate) fn later(day: i64, minute: i64, rng: &mut DemoRng) -> (i64, i64) {
    let same_day = rng.chance(25);
    let minutes_later = rng.between(2 * 60, 5 * 60);
    let long_wait = rng.chance(25);
    let days = if long_wait {
        rng.between(8, 21)
    } else {
        rng.between(1, 7)
    };
    let next_minute = office_minute(rng);
    if same_day && minute + minutes_later < OFFICE_CLOSES {
        return (day, minute + minutes_later);
    }
    (day + days, next_minute)
}
