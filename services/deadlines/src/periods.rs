//! The reporting periods of the campaign rhythm, as the interface writes them: a month
//! (`2026-03`, 月通报) and a quarter (`2026-Q2`, 季攻坚).

use chrono::NaiveDate;

/// The first day of a month written `YYYY-MM`, and of the next month.
pub fn month_bounds(month: &str) -> Option<(NaiveDate, NaiveDate)> {
    let (year, number) = month.split_once('-')?;
    if year.len() != 4 || number.len() != 2 {
        return None;
    }
    let first = NaiveDate::from_ymd_opt(year.parse().ok()?, number.parse().ok()?, 1)?;
    Some((first, first.checked_add_months(chrono::Months::new(1))?))
}

/// The first day of a quarter written `YYYY-Qn`, the first day of the next, and n.
pub fn quarter_bounds(quarter: &str) -> Option<(NaiveDate, NaiveDate, u32)> {
    let (year, number) = quarter.split_once("-Q")?;
    if year.len() != 4 {
        return None;
    }
    let number: u32 = number.parse().ok().filter(|n| (1..=4).contains(n))?;
    let first = NaiveDate::from_ymd_opt(year.parse().ok()?, 3 * number - 2, 1)?;
    Some((
        first,
        first.checked_add_months(chrono::Months::new(3))?,
        number,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_and_refuse() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(
            month_bounds("2026-12").map(|(a, b)| (Some(a), Some(b))),
            Some((day(2026, 12, 1), day(2027, 1, 1)))
        );
        assert_eq!(
            quarter_bounds("2026-Q2").map(|(a, b, n)| (Some(a), Some(b), n)),
            Some((day(2026, 4, 1), day(2026, 7, 1), 2))
        );
        for bad in ["2026-13", "2026-3", "26-03", "2026/03", ""] {
            assert!(month_bounds(bad).is_none(), "{bad}");
        }
        for bad in ["2026-Q0", "2026-Q5", "2026Q1", "2026-q1"] {
            assert!(quarter_bounds(bad).is_none(), "{bad}");
        }
    }
}
