//! The clock that domain code reads time from, injected so that tests can fix time.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Offset, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until moved; for tests and for replaying scripted histories.
#[derive(Debug, Clone)]
pub struct FixedClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl FixedClock {
    /// A clock fixed at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: DateTime<Utc>) {
        if let Ok(mut guard) = self.now.lock() {
            *guard = now;
        }
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut guard) = self.now.lock() {
            *guard += by;
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.now
            .lock()
            .map(|guard| *guard)
            .unwrap_or_else(|e| *e.into_inner())
    }
}

/// The instant a day begins in China (UTC+8, no daylight saving): where reporting periods start.
pub fn china_midnight(day: chrono::NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc() - chrono::Duration::hours(8)
}

/// An instant in China Standard Time (UTC+8, no daylight saving), for showing it.
pub fn china_time(at: DateTime<Utc>) -> DateTime<chrono::FixedOffset> {
    at.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix()))
}

/// The calendar date in China (UTC+8, no daylight saving) at an instant: deadlines and "today"
/// are counted in it.
pub fn china_date(at: DateTime<Utc>) -> chrono::NaiveDate {
    china_time(at).date_naive()
}

/// The calendar date in China of a stored RFC 3339 timestamp; None when it is not one.
pub fn china_date_of(timestamp: &str) -> Option<chrono::NaiveDate> {
    DateTime::parse_from_rfc3339(timestamp)
        .ok()
        .map(|at| china_date(at.to_utc()))
}
