//! Login sessions: a bearer token's user (only a SHA-256 of each token is stored), idle and
//! absolute timeouts, logout and ending a user's sessions, and the recent sessions kept in memory to
//! ride out a short read-store outage.

use super::*;

/// Sessions this gateway confirmed lately, by token hash: used only while the read store does
/// not answer, so that signed-in people keep working through a short database outage. Whenever
/// the store answers it decides (a logout or expiry there ends the session here too).
#[derive(Debug)]
pub(crate) struct RecentSessions {
    entries: std::sync::Mutex<lru::LruCache<String, RecentSession>>,
}

#[derive(Debug, Clone)]
pub(crate) struct RecentSession {
    user: User,
    expires_at: DateTime<Utc>,
    confirmed_at: DateTime<Utc>,
}

/// Sessions remembered at most.
pub(crate) const RECENT_SESSIONS: usize = 10_000;

/// How long after the store last confirmed a session it is still honoured without the store.
pub(crate) const OUTAGE_GRACE_MINUTES: i64 = 10;

impl RecentSessions {
    pub(super) fn new() -> Self {
        let capacity =
            std::num::NonZeroUsize::new(RECENT_SESSIONS).unwrap_or(std::num::NonZeroUsize::MIN);
        Self {
            entries: std::sync::Mutex::new(lru::LruCache::new(capacity)),
        }
    }

    pub(super) fn remember(&self, hash: &str, session: RecentSession) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(hash.to_owned(), session);
        }
    }

    pub(super) fn forget(&self, hash: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.pop(hash);
        }
    }

    /// Forgets every session of `username` (its account changed or its sessions ended).
    pub(super) fn forget_user(&self, username: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            let hashes: Vec<String> = entries
                .iter()
                .filter(|(_, session)| session.user.username == username)
                .map(|(hash, _)| hash.clone())
                .collect();
            for hash in hashes {
                entries.pop(&hash);
            }
        }
    }

    /// The user of a session confirmed within the grace period and not expired at `now`.
    pub(super) fn during_outage(&self, hash: &str, now: DateTime<Utc>) -> Option<User> {
        let mut entries = self.entries.lock().ok()?;
        let session = entries.get(hash)?;
        (session.expires_at > now
            && now - session.confirmed_at < Duration::minutes(OUTAGE_GRACE_MINUTES))
        .then(|| session.user.clone())
    }
}

impl Accounts {
    /// The user a token belongs to, if the session is open: not expired, not idle longer than
    /// the idle timeout, the account not disabled. While the read store does not answer, a
    /// session it confirmed in the last minutes still counts (see `RecentSessions`).
    pub async fn session_user(&self, token: &str) -> Result<Option<User>, AccountError> {
        let hash = sha256_hex(token);
        let now = self.clock.now();
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", s.expires_at, s.last_seen_at, s.created_at AS opened_at \
             FROM sessions s JOIN account_rights a ON a.username = s.username \
             LEFT JOIN users u ON u.username = s.username \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND a.disabled = 0"
        ))
        .bind(&hash)
        .bind(timestamp_text(now))
        .fetch_optional(self.store.pool())
        .await;
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                if let Some(user) = self.recent_sessions.during_outage(&hash, now) {
                    tracing::warn!(error = %e, username = %user.username, "read store unavailable; honouring a recently confirmed session");
                    return Ok(Some(user));
                }
                return Err(e.into());
            }
        };
        let Some(row) = row else {
            self.recent_sessions.forget(&hash);
            return Ok(None);
        };
        let last_seen: Option<String> = row.try_get("last_seen_at")?;
        let opened_at: String = row.try_get("opened_at")?;
        let last_seen = parse_time(last_seen.as_deref().unwrap_or(&opened_at));
        if last_seen.is_none_or(|seen| now - seen > self.settings.idle_timeout) {
            tracing::info!("session ended: idle longer than the idle timeout");
            self.end_session_hash(&hash).await?;
            return Ok(None);
        }
        if last_seen.is_some_and(|seen| (now - seen).num_seconds() >= LAST_SEEN_RESOLUTION_SECS) {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(timestamp_text(now))
                .bind(&hash)
                .execute(self.store.pool())
                .await?;
        }
        let user = self.user_from_row(&row)?;
        let expires_at: String = row.try_get("expires_at")?;
        if let Some(expires_at) = parse_time(&expires_at) {
            self.recent_sessions.remember(
                &hash,
                RecentSession {
                    user: user.clone(),
                    expires_at,
                    confirmed_at: now,
                },
            );
        }
        Ok(Some(user))
    }

    pub(crate) async fn end_session_hash(&self, hash: &str) -> Result<(), AccountError> {
        self.recent_sessions.forget(hash);
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_at <= $2")
            .bind(hash)
            .bind(timestamp_text(self.clock.now()))
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Ends a session (and any expired ones).
    pub async fn logout(&self, token: &str) -> Result<(), AccountError> {
        self.end_session_hash(&sha256_hex(token)).await
    }

    /// Ends every session of `username` as `by` (an administrator), recorded in the log; how
    /// many there were.
    pub async fn end_sessions(&self, by: &Actor, username: &str) -> Result<u64, AccountError> {
        self.administer(by, username, AccountAction::SessionsEnded)
            .await?;
        self.drop_sessions(username).await
    }

    /// Deletes every session of `username`; how many there were.
    pub(crate) async fn drop_sessions(&self, username: &str) -> Result<u64, AccountError> {
        self.recent_sessions.forget_user(username);
        Ok(sqlx::query("DELETE FROM sessions WHERE username = $1")
            .bind(username)
            .execute(self.store.pool())
            .await?
            .rows_affected())
    }
}
