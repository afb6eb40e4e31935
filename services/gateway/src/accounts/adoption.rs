//! Adopting accounts: an account made in the credential table only (the first administrator, by
//! `zhzj user add` before the system runs, or before accounts were recorded in the log) has no
//! rights until the log records it; the gateway records it as adopted (登记原有账号) at its start,
//! once the projections caught up, or at the account's first login.

use super::*;

impl Accounts {
    /// Once the accounts view has reached `log_position` (the log's end when the gateway
    /// started), records the accounts it lacks as adopted ([`Accounts::adopt_unrecorded`]). On a
    /// fresh system the view may not exist yet: a failure is tried again every half second, for
    /// a minute. Gives up quietly at `shutdown`.
    pub async fn adopt_when_caught_up(
        &self,
        log_position: u64,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        const RETRIES: u32 = 120;
        let mut failures = 0;
        loop {
            let caught_up = matches!(
                self.journal.accounts_view_position().await,
                Ok(reached) if reached >= log_position
            );
            if caught_up {
                match self.adopt_unrecorded().await {
                    Ok(0) => return,
                    Ok(adopted) => {
                        tracing::info!(
                            adopted,
                            "accounts made before the log recorded them are now in the log"
                        );
                        return;
                    }
                    Err(e) if failures >= RETRIES => {
                        tracing::error!(error = %e, "accounts not in the log could not be recorded; they are recorded at their first login or the gateway's next start");
                        return;
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::debug!(error = %e, "accounts not in the log: trying again");
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            }
        }
    }

    /// Records in the log, as adopted, every account of the credential table the log does not
    /// hold yet (accounts made before accounts were recorded in the log); how many it recorded.
    pub async fn adopt_unrecorded(&self) -> Result<usize, AccountError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            pending_columns!(),
            " WHERE NOT EXISTS \
             (SELECT 1 FROM account_rights a WHERE a.username = u.username)"
        ))
        .fetch_all(self.store.pool())
        .await?;
        let mut adopted = 0;
        for row in rows {
            if self.adopt(&row).await? {
                adopted += 1;
            }
        }
        Ok(adopted)
    }

    /// Records one account of the credential table that the log does not hold ([`Accounts::
    /// adopt_unrecorded`]) and waits until the accounts view shows it: a login of an account
    /// made by `zhzj user add` while the system was not running. False when it has no such row.
    pub(crate) async fn adopt_pending(&self, username: &str) -> Result<bool, AccountError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            pending_columns!(),
            " WHERE u.username = $1 \
             AND NOT EXISTS (SELECT 1 FROM account_rights a WHERE a.username = u.username)"
        ))
        .bind(username)
        .fetch_optional(self.store.pool())
        .await?;
        match row {
            Some(row) => {
                self.adopt(&row).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Records a credential row as an adopted account (and disabled, if it is); false when the
    /// log already held it.
    pub(crate) async fn adopt(&self, row: &sqlx::any::AnyRow) -> Result<bool, AccountError> {
        let actor = AccountJournal::system_admin("adopt");
        let username: String = row.try_get("username")?;
        let roles: String = row.try_get("roles")?;
        let change = AccountChange::Create {
            display_name: row.try_get("display_name")?,
            rights: AccountRights {
                roles: super::roles_of(&roles),
                unit_id: row.try_get("unit_id")?,
                leader_id: row.try_get("leader_id")?,
            },
            adopted: true,
        };
        match self
            .journal
            .record_visible(actor.clone(), &username, change)
            .await
        {
            Ok(_) => {}
            Err(AccountError::Exists(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        if row.try_get::<Option<String>, _>("disabled_at")?.is_some() {
            let disabled = AccountChange::Action {
                action: AccountAction::Disabled,
            };
            self.journal
                .record_visible(actor, &username, disabled)
                .await?;
        }
        Ok(true)
    }

    /// Creates an account in the credential table only, for `zhzj user add` while the log cannot
    /// be reached (the system is not running yet: its first administrator). It has no rights
    /// until the log records it, which the gateway does at its start or at the account's first
    /// login (as 登记原有账号). [`AccountError::Exists`] if the username is taken.
    pub async fn add_pending(&self, user: &NewUser) -> Result<(), AccountError> {
        self.check_new_user(user)?;
        let hash = self.hash(&user.password).await?;
        let inserted = self.write_credentials(user, &hash, false).await?;
        if inserted == 0 {
            return Err(AccountError::Exists(user.username.clone()));
        }
        Ok(())
    }
}
