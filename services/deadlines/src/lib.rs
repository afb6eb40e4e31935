//! Deadlines as the 《信访工作条例》 (2022) sets them, counted the way the 民法典 counts periods
//! (第201、203条): the first day is not counted, and a period whose last day is a rest day ends on
//! the next working day. Rest days come from a holiday calendar that is data, not code, because
//! the State Council publishes the holidays and make-up working days (调休) anew every year.

mod calendar;
mod limits;
pub mod periods;

pub use calendar::{CalendarError, HolidayCalendar};
pub use limits::{Limits, LimitsError, Period, StatutoryStep};
