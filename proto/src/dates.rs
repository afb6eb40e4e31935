//! The one rule for every calendar date the system accepts: nothing before the founding of the
//! People's Republic (1949-10-01, earlier than any petition on record), nothing after today where
//! the date records something that happened, and nothing more than [`MAX_YEARS_AHEAD`] years
//! ahead where it is a deadline or the end of a period. Commands and query parameters check their
//! dates here, so a date the store holds is always one every export can write.

use chrono::{Months, NaiveDate};

/// The earliest date accepted anywhere.
pub const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(1949, 10, 1) {
    Some(day) => day,
    None => NaiveDate::MIN,
};

/// How far ahead a deadline or a period's end may lie.
pub const MAX_YEARS_AHEAD: u32 = 5;

/// What a date is, which decides its upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    /// Something that happened: not after today.
    Happened,
    /// A deadline or a period's end: not more than [`MAX_YEARS_AHEAD`] years after today.
    Ahead,
}

/// The latest date of `kind` accepted on `today`.
pub fn latest(kind: DateKind, today: NaiveDate) -> NaiveDate {
    match kind {
        DateKind::Happened => today,
        DateKind::Ahead => today
            .checked_add_months(Months::new(12 * MAX_YEARS_AHEAD))
            .unwrap_or(NaiveDate::MAX),
    }
}

/// Checks `date` against the rule for `kind`; the error is a sentence in Chinese (with a short
/// English gloss) for the user, to be reported against the field it came from.
pub fn check(date: NaiveDate, kind: DateKind, today: NaiveDate) -> Result<(), String> {
    if date < EARLIEST {
        return Err(format!(
            "日期 {date} 早于 {EARLIEST}，不是有效日期 (before {EARLIEST})"
        ));
    }
    let latest = latest(kind, today);
    if date > latest {
        return Err(match kind {
            DateKind::Happened => format!("日期 {date} 晚于今天 {today} (a date in the future)"),
            DateKind::Ahead => format!(
                "日期 {date} 晚于 {latest}（最多为今后 {MAX_YEARS_AHEAD} 年） (more than {MAX_YEARS_AHEAD} years ahead)"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[test]
    fn the_bounds_are_inclusive() {
        let today = day(2026, 12, 2);
        assert!(check(EARLIEST, DateKind::Happened, today).is_ok());
        assert!(check(day(1949, 9, 30), DateKind::Happened, today).is_err());
        assert!(check(day(1, 1, 1), DateKind::Ahead, today).is_err());
        assert!(check(today, DateKind::Happened, today).is_ok());
        assert!(check(day(2026, 12, 3), DateKind::Happened, today).is_err());
        assert!(check(day(2031, 12, 2), DateKind::Ahead, today).is_ok());
        assert!(check(day(2031, 12, 3), DateKind::Ahead, today).is_err());
        assert!(check(day(9999, 12, 31), DateKind::Ahead, today).is_err());
    }
}
