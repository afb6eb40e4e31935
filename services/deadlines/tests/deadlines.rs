//! Deadlines on real 2025–2026 dates: across the Spring Festival and National Day holidays, on
//! make-up working days (调休), at month and year ends, in calendar and in working days.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use chrono::NaiveDate;
use zhzj_deadlines::{HolidayCalendar, Limits, Period, StatutoryStep};

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
}

#[test]
fn statutory_deadlines_on_real_dates() -> Result<(), Box<dyn std::error::Error>> {
    use StatutoryStep::*;
    let calendar = HolidayCalendar::official()?;
    let limits = Limits::statutory();
    // (step, start, deadline, why)
    let cases = [
        (
            AcceptanceNotice,
            "2025-03-03",
            "2025-03-18",
            "an ordinary Tuesday",
        ),
        (
            AcceptanceNotice,
            "2025-01-13",
            "2025-02-05",
            "ends on 除夕 2025-01-28: after the 春节 holiday",
        ),
        (
            AcceptanceNotice,
            "2025-01-11",
            "2025-01-26",
            "ends on a Sunday that is a make-up working day",
        ),
        (
            AcceptanceNotice,
            "2025-01-24",
            "2025-02-08",
            "ends on a Saturday that is a make-up working day",
        ),
        (
            AcceptanceNotice,
            "2025-09-16",
            "2025-10-09",
            "ends on 国庆 2025-10-01: after the 8-day holiday",
        ),
        (
            AcceptanceNotice,
            "2025-09-13",
            "2025-09-28",
            "the make-up Sunday before 国庆",
        ),
        (
            AcceptanceNotice,
            "2025-05-16",
            "2025-06-03",
            "ends on 端午 2025-05-31",
        ),
        (
            AcceptanceNotice,
            "2026-03-20",
            "2026-04-07",
            "ends on 清明 2026-04-04",
        ),
        (
            AcceptanceNotice,
            "2026-04-16",
            "2026-05-06",
            "ends on 劳动节 2026-05-01",
        ),
        (
            AcceptanceNotice,
            "2026-04-24",
            "2026-05-09",
            "the make-up Saturday after 劳动节",
        ),
        (
            AcceptanceNotice,
            "2026-01-30",
            "2026-02-14",
            "the make-up Saturday before 春节 2026",
        ),
        (
            Forward,
            "2025-12-17",
            "2026-01-04",
            "ends on 元旦 2026-01-01: the make-up Sunday 01-04",
        ),
        (
            FirstReviewRequest,
            "2025-01-31",
            "2025-03-03",
            "a month end: 30 days is Sunday 03-02",
        ),
        (
            FirstReviewAnswer,
            "2026-01-31",
            "2026-03-02",
            "a month end: Monday",
        ),
        (
            SecondReviewAnswer,
            "2026-01-29",
            "2026-02-28",
            "February's last day, a make-up Saturday",
        ),
        (
            Handling,
            "2025-12-20",
            "2026-02-24",
            "60 days ends in 春节 2026 (02-18)",
        ),
        (Handling, "2025-08-01", "2025-09-30", "60 days, a Tuesday"),
        (
            HandlingExtension,
            "2026-09-01",
            "2026-10-08",
            "30 days ends in 国庆 2026 (10-01)",
        ),
        (
            ForwardingObjection,
            "2025-09-26",
            "2025-10-10",
            "5 working days over 国庆 2025, make-up Sunday counted",
        ),
        (
            ForwardingObjection,
            "2026-02-12",
            "2026-02-26",
            "5 working days over 春节 2026, make-up Saturday counted",
        ),
        (
            ForwardingObjection,
            "2025-12-31",
            "2026-01-08",
            "5 working days over 元旦 2026",
        ),
    ];
    for (step, start, expected, why) in cases {
        let deadline = limits.deadline(&calendar, step, date(start));
        assert_eq!(deadline, date(expected), "{step:?} from {start}: {why}");
    }
    Ok(())
}

#[test]
fn working_days_follow_the_official_schedule() -> Result<(), Box<dyn std::error::Error>> {
    let calendar = HolidayCalendar::official()?;
    for (day, working) in [
        ("2025-01-01", false),
        ("2025-01-26", true),
        ("2025-02-04", false),
        ("2025-02-05", true),
        ("2025-02-08", true),
        ("2025-10-08", false),
        ("2025-10-11", true),
        ("2026-01-04", true),
        ("2026-02-23", false),
        ("2026-02-28", true),
        ("2026-09-20", true),
        ("2026-10-10", true),
        ("2026-11-28", false),
        ("2026-11-30", true),
    ] {
        assert_eq!(calendar.is_working_day(date(day)), working, "{day}");
    }
    assert!(calendar.covers(date("2026-12-31")));
    assert!(
        !calendar.covers(date("2027-01-04")),
        "2027 is not published yet"
    );
    Ok(())
}

#[test]
fn internal_limits_must_be_stricter() -> Result<(), Box<dyn std::error::Error>> {
    let calendar = HolidayCalendar::official()?;
    let limits = Limits::statutory().with_internal(StatutoryStep::Handling, Period::Days(30))?;
    assert_eq!(
        limits.deadline(&calendar, StatutoryStep::Handling, date("2025-03-03")),
        date("2025-04-02")
    );
    assert!(
        Limits::statutory()
            .with_internal(StatutoryStep::Handling, Period::Days(61))
            .is_err()
    );
    assert!(
        Limits::statutory()
            .with_internal(StatutoryStep::AcceptanceNotice, Period::WorkingDays(10))
            .is_err()
    );
    Ok(())
}

#[test]
fn internal_limits_read_from_settings() -> Result<(), Box<dyn std::error::Error>> {
    let limits = Limits::parse(" handling=45 ,forwarding_objection=3wd, acceptance_notice=10")?;
    assert_eq!(limits.limit(StatutoryStep::Handling), Period::Days(45));
    assert_eq!(
        limits.limit(StatutoryStep::ForwardingObjection),
        Period::WorkingDays(3)
    );
    assert_eq!(
        limits.limit(StatutoryStep::FirstReviewAnswer),
        Period::Days(30)
    );
    // One canonical text, whatever order the settings came in: it keys the projections.
    assert_eq!(
        limits.describe(),
        "acceptance_notice=10,forwarding_objection=3wd,handling=45"
    );
    assert_eq!(
        Limits::parse(&limits.describe())?.describe(),
        limits.describe()
    );
    assert_eq!(Limits::parse("")?.describe(), "");
    for bad in [
        "handling",
        "handling=",
        "handling=-1",
        "handling=0",
        "handling=61",
        "handling=40wd",
        "handling=45days",
        "reply=10",
        "first_review_request=10",
        "second_review_request=10",
        "handling_extension=10",
    ] {
        assert!(Limits::parse(bad).is_err(), "{bad}");
    }
    Ok(())
}

#[test]
fn a_malformed_calendar_is_refused() {
    let backwards = r#"{"years":[{"year":2025,"source":"x","rest":[{"name":"x","from":"2025-02-02","to":"2025-02-01"}],"work":[]}]}"#;
    assert!(HolidayCalendar::from_json(backwards).is_err());
    let clash = r#"{"years":[{"year":2025,"source":"x","rest":[{"name":"x","from":"2025-02-01","to":"2025-02-01"}],"work":["2025-02-01"]}]}"#;
    assert!(HolidayCalendar::from_json(clash).is_err());
    assert!(HolidayCalendar::from_json("{}").is_err());
}

#[test]
fn the_calendar_names_holidays_and_its_sources() -> Result<(), Box<dyn std::error::Error>> {
    let calendar = HolidayCalendar::official()?;
    assert_eq!(calendar.holiday_name(date("2026-02-17")), Some("春节"));
    assert_eq!(
        calendar.holiday_name(date("2025-10-06")),
        Some("国庆节、中秋节")
    );
    assert_eq!(calendar.holiday_name(date("2026-02-14")), None);
    assert!(
        calendar
            .source(2026)
            .is_some_and(|s| s.contains("2026年部分节假日安排"))
    );
    Ok(())
}
