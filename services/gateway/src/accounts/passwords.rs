//! Passwords: argon2id hashing off the async threads, a decoy hash so an unknown user costs as
//! much as a known one, and changing and resetting a password.

use super::*;

/// An argon2id PHC string of `password` with a fresh random salt.
pub(crate) fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

pub(crate) fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Verified against when the username is unknown, so that a wrong name takes as long as a wrong
/// password and does not tell which names exist.
pub(crate) const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$o1m0m4v1JcZcJm3qbUQk2cTtCkP6o0V6w1dW1HnU6uA";

impl Accounts {
    /// Refuses a password the rules do not allow for `username`, with the reason.
    pub fn check_password(&self, username: &str, password: &str) -> Result<(), AccountError> {
        match self.settings.password_policy.refusal(username, password) {
            Some(message) => Err(AccountError::Invalid {
                field: "password",
                message,
            }),
            None => Ok(()),
        }
    }

    pub(crate) async fn hash(&self, password: &str) -> Result<String, AccountError> {
        let password = password.to_owned();
        self.hashing
            .run(move || hash_password(&password))
            .await
            .map_err(|_| AccountError::Busy)?
    }

    /// The user's own change of their password: the current one must be right, the new one
    /// follow the rules and differ from it. Their other sessions end. Recorded in the log.
    pub async fn change_password(
        &self,
        token: &str,
        username: &str,
        current: &str,
        new: &str,
    ) -> Result<(), AccountError> {
        let hash: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(self.store.pool())
                .await?;
        let hash = hash.ok_or_else(|| AccountError::NoSuchUser(username.to_owned()))?;
        let given = current.to_owned();
        let matches = self
            .hashing
            .run(move || password_matches(&given, &hash))
            .await
            .map_err(|_| AccountError::Busy)?;
        if !matches {
            return Err(AccountError::WrongPassword);
        }
        if current == new {
            return Err(AccountError::Invalid {
                field: "new_password",
                message: "新密码不能与当前密码相同".into(),
            });
        }
        self.check_password(username, new)?;
        let hash = self.hash(new).await?;
        let own = Actor {
            user_id: username.to_owned(),
            roles: Vec::new(),
            unit_id: None,
            leader_id: None,
        };
        self.journal
            .record(
                own,
                username,
                AccountChange::Action {
                    action: AccountAction::PasswordChanged,
                },
            )
            .await?;
        self.store_password(username, &hash, false).await?;
        sqlx::query("DELETE FROM sessions WHERE username = $1 AND token_hash <> $2")
            .bind(username)
            .bind(sha256_hex(token))
            .execute(self.store.pool())
            .await?;
        self.recent_sessions.forget_user(username);
        Ok(())
    }

    /// An administrator's reset: the new password follows the rules, must be changed at the
    /// next login, and every session of the account ends. The log records that it was reset
    /// (never the password). An account the log holds without a credential row (its read store
    /// was rebuilt from the log) gets one.
    pub async fn reset_password(
        &self,
        by: &Actor,
        username: &str,
        new: &str,
    ) -> Result<(), AccountError> {
        self.check_password(username, new)?;
        let hash = self.hash(new).await?;
        self.administer(by, username, AccountAction::PasswordReset)
            .await?;
        self.store_password(username, &hash, true).await?;
        self.drop_sessions(username).await?;
        Ok(())
    }

    /// Writes a password hash for an account of `account_rights`, creating its credential row
    /// when it has none.
    pub(crate) async fn store_password(
        &self,
        username: &str,
        hash: &str,
        must_change: bool,
    ) -> Result<(), AccountError> {
        let now = timestamp_text(self.clock.now());
        let written = sqlx::query(
            "INSERT INTO users (username, display_name, password_hash, roles, unit_id, leader_id, \
             created_at, must_change_password, password_changed_at) \
             SELECT a.username, a.display_name, $1, a.roles, a.unit_id, a.leader_id, \
             a.created_at, $2, $3 FROM account_rights a WHERE a.username = $4 \
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, \
             must_change_password = excluded.must_change_password, \
             password_changed_at = excluded.password_changed_at",
        )
        .bind(hash)
        .bind(i64::from(must_change))
        .bind(&now)
        .bind(username)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        if written == 0 {
            return Err(AccountError::NoSuchUser(username.to_owned()));
        }
        Ok(())
    }
}
