//! Failed logins: counted per account and per client address in the read store (shared by every
//! gateway on it, kept across restarts), locking either once it reaches its limit; and a bound on
//! concurrent password hashing, so that a flood of logins cannot starve signed-in users of CPU.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use sqlx::Row;
use zhzj_store::ReadStore;
use zhzj_store::sql::timestamp_text;

/// When failed logins lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed logins of one account (known or not) within `window` that lock it.
    pub max_failures_per_account: u32,
    /// Failed logins from one client address within `window` that lock it (higher: an office
    /// shares one address).
    pub max_failures_per_address: u32,
    /// Failures older than this are forgotten; a lock lasts this long.
    pub window: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_address: 30,
            window: Duration::minutes(15),
        }
    }
}

/// The subject failures of an account are counted under.
pub fn account_subject(username: &str) -> String {
    format!("user:{username}")
}

/// The subject failures from a client address are counted under.
pub fn address_subject(address: IpAddr) -> String {
    format!("addr:{address}")
}

/// The failed-login counters in a read store.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    store: ReadStore,
    policy: LockoutPolicy,
}

impl LoginThrottle {
    /// Counters in `store`, locking by `policy`.
    pub fn new(store: ReadStore, policy: LockoutPolicy) -> Self {
        Self { store, policy }
    }

    /// How long the latest lock of any of `subjects` still runs at `now`, if one does.
    pub async fn locked_for(
        &self,
        subjects: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, sqlx::Error> {
        let mut longest: Option<Duration> = None;
        for subject in subjects {
            let until: Option<Option<String>> = sqlx::query_scalar(
                "SELECT locked_until FROM login_failures WHERE subject = $1 AND locked_until > $2",
            )
            .bind(subject)
            .bind(timestamp_text(now))
            .fetch_optional(self.store.pool())
            .await?;
            let Some(until) = until.flatten().and_then(|t| parse_time(&t)) else {
                continue;
            };
            let left = until - now;
            longest = Some(longest.map_or(left, |l| l.max(left)));
        }
        Ok(longest)
    }

    /// Counts one failed login of `subject`; returns when it is locked until, if this failure
    /// locked it.
    pub async fn record_failure(
        &self,
        subject: &str,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let window_start = timestamp_text(now - self.policy.window);
        let until = now + self.policy.window;
        // The counter restarts once its first failure is older than the window.
        let row = sqlx::query(
            "INSERT INTO login_failures (subject, failures, first_failed_at, locked_until) \
             VALUES ($1, 1, $2, CASE WHEN CAST($4 AS BIGINT) <= 1 THEN CAST($5 AS TEXT) END) \
             ON CONFLICT (subject) DO UPDATE SET \
               failures = CASE WHEN login_failures.first_failed_at < $3 THEN 1 \
                          ELSE login_failures.failures + 1 END, \
               first_failed_at = CASE WHEN login_failures.first_failed_at < $3 THEN $2 \
                          ELSE login_failures.first_failed_at END, \
               locked_until = CASE WHEN (CASE WHEN login_failures.first_failed_at < $3 THEN 1 \
                          ELSE login_failures.failures + 1 END) >= CAST($4 AS BIGINT) \
                          THEN CAST($5 AS TEXT) ELSE login_failures.locked_until END \
             RETURNING failures, locked_until",
        )
        .bind(subject)
        .bind(timestamp_text(now))
        .bind(&window_start)
        .bind(i64::from(limit))
        .bind(timestamp_text(until))
        .fetch_one(self.store.pool())
        .await?;
        let failures: i64 = row.try_get("failures")?;
        let locked_until: Option<String> = row.try_get("locked_until")?;
        // Counters nobody failed on within the window and not locked are forgotten.
        sqlx::query(
            "DELETE FROM login_failures WHERE first_failed_at < $1 \
             AND (locked_until IS NULL OR locked_until < $2)",
        )
        .bind(&window_start)
        .bind(timestamp_text(now))
        .execute(self.store.pool())
        .await?;
        Ok((failures == i64::from(limit))
            .then(|| locked_until.and_then(|t| parse_time(&t)))
            .flatten())
    }

    /// Forgets `subject`'s failures and lock (a successful login, an administrator's unlock);
    /// true if it had any.
    pub async fn clear(&self, subject: &str) -> Result<bool, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM login_failures WHERE subject = $1")
            .bind(subject)
            .execute(self.store.pool())
            .await?
            .rows_affected()
            > 0)
    }

    /// The policy.
    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// At most a few password hashes at once, and a short queue: a login beyond it is told to come
/// back (503) rather than waiting for CPU that signed-in users need.
#[derive(Debug, Clone)]
pub struct HashingGate {
    permits: Arc<tokio::sync::Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// How long a login waits for its turn to hash before it is told to come back.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why no hash could be computed now.
#[derive(Debug)]
pub struct HashingBusy;

impl HashingGate {
    /// `concurrent` hashes at once, `max_waiting` logins queued for one.
    pub fn new(concurrent: usize, max_waiting: usize) -> Self {
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(concurrent.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
        }
    }

    /// Runs `work` (CPU-bound hashing) on the blocking pool once a permit is free.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingBusy> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(HashingBusy);
        }
        let permit = tokio::time::timeout(HASHING_WAIT, self.permits.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let Ok(Ok(permit)) = permit else {
            return Err(HashingBusy);
        };
        let result = tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|_| HashingBusy)?;
        Ok(result)
    }
}
