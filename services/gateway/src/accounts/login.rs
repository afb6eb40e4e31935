//! Logging in: throttled per account and per address, locked out after repeated failures, each
//! attempt recorded in the account's journal.

use super::*;

impl Accounts {
    /// Checks a username and password from `client`; on success opens a session. Failed logins
    /// are counted against the account (known or not) and the client address; either locked
    /// answers [`LoginOutcome::Locked`] without checking the password at all.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<LoginOutcome, AccountError> {
        let now = self.clock.now();
        let account = account_subject(username);
        let address = client.map(address_subject);
        let subjects: Vec<String> = std::iter::once(account.clone())
            .chain(address.clone())
            .collect();
        if let Some(left) = self.throttle.locked_for(&subjects, now).await? {
            tracing::warn!(%username, client = ?client, "login refused: locked by failed logins");
            return Ok(LoginOutcome::Locked(left));
        }
        let mut row = self.credentials_and_rights(username).await?;
        if let Some(found) = &row
            && not_in_the_view(found)?
        {
            // A credential row the log does not show yet: recorded now (unless the log holds it
            // already), and read again. Decided from one reading each time, so a view that
            // shows the account between two reads cannot make it look unknown.
            self.adopt_pending(username).await?;
            row = self.credentials_and_rights(username).await?;
            let shown = match &row {
                Some(found) => !not_in_the_view(found)?,
                None => false,
            };
            if !shown {
                // Recorded, but the view lags: not a failure of the account.
                return Err(AccountError::NotReady);
            }
        }
        let (user, hash, disabled) = match &row {
            Some(row) => (
                Some(self.user_from_row(row)?),
                row.try_get::<String, _>("password_hash")?,
                row.try_get::<i64, _>("disabled")? != 0,
            ),
            None => (None, DECOY_HASH.to_owned(), false),
        };
        let client_address = client.map(|ip| ip.to_string());
        let given = password.to_owned();
        let matches = self
            .hashing
            .run(move || password_matches(&given, &hash))
            .await
            .map_err(|_| AccountError::Busy)?;
        let Some(user) = user.clone().filter(|_| matches && !disabled) else {
            let reason = match (&user, disabled) {
                (None, _) => LoginFailure::UnknownAccount,
                (Some(_), true) => LoginFailure::Disabled,
                (Some(_), false) => LoginFailure::WrongPassword,
            };
            return self
                .refuse(username, client, reason, &account, address.as_deref(), now)
                .await;
        };
        // A login the log cannot record does not happen (fail closed: the trail must be whole).
        self.journal
            .record(
                user.actor(),
                &user.username,
                AccountChange::LoginSucceeded { client_address },
            )
            .await?;
        self.throttle.clear(&account).await?;
        self.open_session(user, now).await
    }

    /// A failed login: recorded in the account's journal and counted against the account and
    /// the client address; locked out when either reaches its limit.
    async fn refuse(
        &self,
        username: &str,
        client: Option<IpAddr>,
        reason: LoginFailure,
        account: &str,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<LoginOutcome, AccountError> {
        let client_address = client.map(|ip| ip.to_string());
        self.record_failure(
            username,
            AccountChange::LoginFailed {
                client_address: client_address.clone(),
                reason,
            },
        )
        .await;
        let policy = self.throttle.policy();
        let mut locked = self
            .throttle
            .record_failure(account, policy.max_failures_per_account, now)
            .await?
            .map(|until| (until, LockoutScope::Account));
        if let Some(address) = address {
            let by_address = self
                .throttle
                .record_failure(address, policy.max_failures_per_address, now)
                .await?
                .map(|until| (until, LockoutScope::Address));
            locked = locked.or(by_address);
        }
        let Some((until, scope)) = locked else {
            tracing::info!(%username, client = ?client, ?reason, "failed login");
            return Ok(LoginOutcome::Refused);
        };
        tracing::warn!(%username, client = ?client, %until, "failed login; locked");
        self.record_failure(
            username,
            AccountChange::LockedOut {
                client_address,
                scope,
                until,
            },
        )
        .await;
        Ok(LoginOutcome::Locked(until - now))
    }

    /// Opens a session for `user`, signed in at `now`.
    async fn open_session(
        &self,
        user: User,
        now: DateTime<Utc>,
    ) -> Result<LoginOutcome, AccountError> {
        let mut token_bytes = [0_u8; 32];
        getrandom::fill(&mut token_bytes).map_err(|e| AccountError::Hash(e.to_string()))?;
        let token = hex::encode(token_bytes);
        let expires_at = now + self.settings.session_ttl;
        sqlx::query(
            "INSERT INTO sessions (token_hash, username, created_at, expires_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $3)",
        )
        .bind(sha256_hex(&token))
        .bind(&user.username)
        .bind(timestamp_text(now))
        .bind(timestamp_text(expires_at))
        .execute(self.store.pool())
        .await?;
        Ok(LoginOutcome::SignedIn(Session {
            token,
            expires_at,
            user,
        }))
    }

    /// The account's password hash and its rights (from the log), for a login: `None` for a
    /// username without credentials, a row whose rights are null ([`not_in_the_view`]) for
    /// credentials the accounts view does not show yet; [`AccountError::NotReady`] before the
    /// projector first built the accounts view.
    pub(crate) async fn credentials_and_rights(
        &self,
        username: &str,
    ) -> Result<Option<sqlx::any::AnyRow>, AccountError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", u.password_hash, a.disabled \
             FROM users u LEFT JOIN account_rights a ON a.username = u.username \
             WHERE u.username = $1"
        ))
        .bind(username)
        .fetch_optional(self.store.pool())
        .await;
        let error = match found {
            Ok(row) => return Ok(row),
            Err(e) => e,
        };
        if matches!(self.journal.accounts_view_exists().await, Ok(false)) {
            tracing::info!(%error, "a login before the accounts view exists");
            return Err(AccountError::NotReady);
        }
        Err(error.into())
    }

    /// Records a failed login or a lockout in the log, as the gateway. Best effort: the login is
    /// refused either way, and a log that cannot be reached is said in the service's log.
    pub(crate) async fn record_failure(&self, username: &str, change: AccountChange) {
        if let Err(e) = self
            .journal
            .record(AccountJournal::gateway_actor(), username, change)
            .await
        {
            tracing::error!(error = %e, %username, "a failed login could not be recorded in the log");
        }
    }
}

/// Whether a row of [`Accounts::credentials_and_rights`] is credentials without rights: an
/// account made while the log could not be reached, or one the accounts view has not reached.
fn not_in_the_view(row: &sqlx::any::AnyRow) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<Option<String>, _>("username")?.is_none())
}
