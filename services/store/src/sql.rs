//! The SQL read store: a connection pool to SQLite (the embedded default) or PostgreSQL (a city
//! deployment), with the migrations of the tables every projection shares.
//!
//! Queries go through sqlx's `Any` driver so that one statement serves both databases; the few
//! places where the dialects differ ask [`Dialect`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Executor, SqlSafeStr};

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite, a file under the data dir.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// The column type for JSON documents.
    pub fn json_type(self) -> &'static str {
        match self {
            Self::Sqlite => "TEXT",
            Self::Postgres => "JSONB",
        }
    }

    /// A bind parameter (the `index`th, 1-based) that carries JSON text into a
    /// [`Dialect::json_type`] column; anonymous on SQLite, like every multi-row parameter.
    pub fn json_param(self, index: usize) -> String {
        match self {
            Self::Sqlite => "?".to_owned(),
            Self::Postgres => format!("CAST(${index} AS JSONB)"),
        }
    }
}

/// A read-store failure.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The URL names no database zhzj can use.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Formats a timestamp the way every table stores it: RFC 3339, UTC, milliseconds, so that text
/// order is time order.
pub fn timestamp_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The URL of a SQLite database file, created when missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A connection pool to the read store.
#[derive(Debug, Clone)]
pub struct ReadStore {
    pool: AnyPool,
    dialect: Dialect,
    faults: ProjectionFaults,
    /// On SQLite, whose turn it is to write, among this process's handles (see
    /// [`ReadStore::begin_write`]).
    write_turn: Arc<tokio::sync::Mutex<()>>,
    /// Told of every commit of a [`WriteTransaction`] through this process's handles.
    committed: Arc<tokio::sync::Notify>,
}

/// A transaction that writes, from [`ReadStore::begin_write`]: use it as the connection
/// (`&mut *tx`), then [`WriteTransaction::commit`]. On SQLite it holds this process's turn to
/// write until it ends.
pub struct WriteTransaction {
    transaction: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    committed: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for WriteTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTransaction")
            .field("holds_turn", &self._turn.is_some())
            .finish_non_exhaustive()
    }
}

impl WriteTransaction {
    /// Commits, gives the turn to the next writer and tells those waiting for a commit
    /// ([`ReadStore::committed`]).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.transaction.commit().await?;
        self.committed.notify_waiters();
        Ok(())
    }

    /// Rolls back, and gives the turn to the next writer.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.transaction.rollback().await
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &Self::Target {
        &self.transaction
    }
}

impl std::ops::DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.transaction
    }
}

/// The projections of this process that cannot write into this store right now, by name: set by
/// the projector when a batch fails, cleared when one goes through, read by `/readyz`. Clones of
/// a [`ReadStore`] share it.
#[derive(Debug, Clone, Default)]
pub struct ProjectionFaults(Arc<Mutex<BTreeMap<String, ProjectionFault>>>);

/// Why a projection is failing, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionFault {
    /// The last error.
    pub error: String,
    /// When the first failure of this run of failures happened.
    pub since: DateTime<Utc>,
    /// Failed attempts in a row.
    pub attempts: u32,
}

impl ProjectionFaults {
    /// Records a failed attempt; returns the attempts in a row so far.
    pub fn fail(&self, projection: &str, error: &str) -> u32 {
        let Ok(mut faults) = self.0.lock() else {
            return 1;
        };
        let fault = faults
            .entry(projection.to_owned())
            .or_insert_with(|| ProjectionFault {
                error: String::new(),
                since: Utc::now(),
                attempts: 0,
            });
        fault.error = error.to_owned();
        fault.attempts = fault.attempts.saturating_add(1);
        fault.attempts
    }

    /// Records that the projection works again.
    pub fn clear(&self, projection: &str) {
        if let Ok(mut faults) = self.0.lock()
            && faults.remove(projection).is_some()
        {
            tracing::info!(projection, "projection writes again");
        }
    }

    /// The failing projections.
    pub fn current(&self) -> BTreeMap<String, ProjectionFault> {
        self.0.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

impl ReadStore {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, SqlError> {
        install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            return Err(SqlError::UnsupportedUrl(url.to_owned()));
        };
        let options = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 8 } else { 16 })
            // A database that does not answer fails a request within seconds instead of
            // holding it (and the person behind it) for half a minute.
            .acquire_timeout(Duration::from_secs(5))
            // A connection still inside a transaction is never handed out again. SQLite rolls a
            // transaction back by itself when a write fails for a full or unwritable disk; the
            // driver's ROLLBACK then fails and its transaction depth stays at 1, so every later
            // `BEGIN` on that connection would fail ("begin_with at non-zero transaction depth")
            // until the process restarted. Closing it lets the pool open a clean one.
            .before_acquire(|conn, _meta| {
                Box::pin(async move {
                    use sqlx::Connection;
                    if conn.is_in_transaction() {
                        tracing::warn!(
                            "closing a read-store connection left inside a failed transaction"
                        );
                        return Ok(false);
                    }
                    Ok(true)
                })
            });
        let options = if dialect == Dialect::Sqlite {
            options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 30000;",
                    )
                    .await
                    .map(|_| ())
                })
            })
        } else {
            options
        };
        let pool = options.connect(url).await?;
        let store = Self {
            pool,
            dialect,
            faults: ProjectionFaults::default(),
            write_turn: Arc::default(),
            committed: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so it waits for other writers instead of failing when it upgrades
    /// from reading to writing; and it first waits for this process's turn to write, in order.
    /// SQLite has one writer at a time and makes the others poll, sleeping 1, 2, 5, 10, 15, 20 …
    /// ms between tries: with every projection writing the same commit at once, the last one
    /// slept through most of the 20 ms a write took to show. Taking turns in the process wakes
    /// each writer the moment the previous one ends (another process still meets SQLite's
    /// polling).
    pub async fn begin_write(&self) -> Result<WriteTransaction, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => {
                let turn = Arc::clone(&self.write_turn).lock_owned().await;
                let transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTransaction {
                    transaction,
                    _turn: Some(turn),
                    committed: Arc::clone(&self.committed),
                })
            }
            Dialect::Postgres => Ok(WriteTransaction {
                transaction: self.pool.begin().await?,
                _turn: None,
                committed: Arc::clone(&self.committed),
            }),
        }
    }

    /// [`ReadStore::begin_write`] for what the log can rebuild: the projections, their
    /// checkpoints and dead letters. On PostgreSQL its commit does not wait for the write-ahead
    /// log to reach the disk (`synchronous_commit = off` for this transaction only): a crash of
    /// the database server or the machine may lose the last such commits — at most three times
    /// `wal_writer_delay`, 600 ms by default — never part of one, so each projection's
    /// checkpoint goes back with its rows and the projector applies those positions again from
    /// the log. Every other write (accounts, sessions, kept answers) keeps waiting for the disk.
    /// SQLite's read store runs in WAL mode with `synchronous = NORMAL` for every write, which
    /// gives the same: a power cut may roll back the last commits, never corrupts the file.
    pub async fn begin_rebuildable_write(&self) -> Result<WriteTransaction, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.begin_write().await,
            Dialect::Postgres => Ok(WriteTransaction {
                transaction: self
                    .pool
                    .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
                    .await?,
                _turn: None,
                committed: Arc::clone(&self.committed),
            }),
        }
    }

    /// Begins a read-only view of one moment: every read in it sees the same commits (SQLite's
    /// deferred transaction takes its snapshot at the first read; PostgreSQL needs REPEATABLE
    /// READ, where READ COMMITTED would let each statement see new commits).
    pub async fn begin_snapshot(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin().await,
            Dialect::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
                    .await
            }
        }
    }

    /// Completes at the next commit of a [`WriteTransaction`] of this process (a projection's
    /// batch, among others): what a reader waiting for the views to move listens to, rather
    /// than polling. Commits of other processes are not seen. Call `enable` on the pinned future
    /// before looking at the store, so that a commit in between is not missed.
    pub fn committed(&self) -> tokio::sync::futures::Notified<'_> {
        self.committed.notified()
    }

    /// The projections of this process failing to write into it.
    pub fn projection_faults(&self) -> &ProjectionFaults {
        &self.faults
    }

    /// The database behind it.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn migrate(&self) -> Result<(), SqlError> {
        let files: &[(i64, &str, &'static str)] = match self.dialect {
            Dialect::Sqlite => &[
                (
                    1,
                    "projection bookkeeping",
                    include_str!("../migrations/sqlite/0001_projection_bookkeeping.sql"),
                ),
                (
                    2,
                    "store identity and generations",
                    include_str!("../migrations/sqlite/0002_store_identity_and_generations.sql"),
                ),
                (
                    3,
                    "accounts, sessions and idempotency keys",
                    include_str!("../migrations/sqlite/0003_accounts_sessions_idempotency.sql"),
                ),
                (
                    4,
                    "the leader an account is",
                    include_str!("../migrations/sqlite/0004_user_leader.sql"),
                ),
                (
                    5,
                    "projection settings and the log of unmasked personal data reads",
                    include_str!(
                        "../migrations/sqlite/0005_projection_settings_personal_data_reads.sql"
                    ),
                ),
                (
                    6,
                    "projection gap accounting",
                    include_str!("../migrations/sqlite/0006_projection_gap_accounting.sql"),
                ),
                (
                    7,
                    "why personal data was read",
                    include_str!("../migrations/sqlite/0007_personal_data_read_purpose.sql"),
                ),
                (
                    8,
                    "account security: password changes, disabled accounts, idle sessions, lockouts",
                    include_str!("../migrations/sqlite/0008_account_security.sql"),
                ),
                (
                    9,
                    "early warnings, the inbox and outbound notifications",
                    include_str!("../migrations/sqlite/0009_warnings_and_notifications.sql"),
                ),
            ],
            Dialect::Postgres => &[
                (
                    1,
                    "projection bookkeeping",
                    include_str!("../migrations/postgres/0001_projection_bookkeeping.sql"),
                ),
                (
                    2,
                    "store identity and generations",
                    include_str!("../migrations/postgres/0002_store_identity_and_generations.sql"),
                ),
                (
                    3,
                    "accounts, sessions and idempotency keys",
                    include_str!("../migrations/postgres/0003_accounts_sessions_idempotency.sql"),
                ),
                (
                    4,
                    "the leader an account is",
                    include_str!("../migrations/postgres/0004_user_leader.sql"),
                ),
                (
                    5,
                    "projection settings and the log of unmasked personal data reads",
                    include_str!(
                        "../migrations/postgres/0005_projection_settings_personal_data_reads.sql"
                    ),
                ),
                (
                    6,
                    "projection gap accounting",
                    include_str!("../migrations/postgres/0006_projection_gap_accounting.sql"),
                ),
                (
                    7,
                    "why personal data was read",
                    include_str!("../migrations/postgres/0007_personal_data_read_purpose.sql"),
                ),
                (
                    8,
                    "account security: password changes, disabled accounts, idle sessions, lockouts",
                    include_str!("../migrations/postgres/0008_account_security.sql"),
                ),
                (
                    9,
                    "early warnings, the inbox and outbound notifications",
                    include_str!("../migrations/postgres/0009_warnings_and_notifications.sql"),
                ),
            ],
        };
        let migrations = files
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    AssertSqlSafe(*sql).into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// A random id this store got when it was created; it names the store's consumers.
    pub async fn identity(&self) -> Result<String, SqlError> {
        use sqlx::Row;
        sqlx::query(
            "INSERT INTO read_store_identity (id) SELECT $1 \
             WHERE NOT EXISTS (SELECT 1 FROM read_store_identity)",
        )
        .bind(uuid::Uuid::new_v4().simple().to_string())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT MIN(id) AS id FROM read_store_identity")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite_store(dir: &tempfile::TempDir) -> ReadStore {
        let url = sqlite_url(&dir.path().join("store.sqlite"));
        let store = ReadStore::connect(&url).await.expect("store");
        store
            .pool()
            .execute("CREATE TABLE written (writer INTEGER NOT NULL)")
            .await
            .expect("table");
        store
    }

    /// Given a SQLite store, when many tasks of the process write at once, then each takes its
    /// turn and every write lands (none fails busy, none is lost).
    #[tokio::test]
    async fn concurrent_writers_of_one_process_all_land() {
        let dir = tempfile::tempdir().expect("dir");
        let store = sqlite_store(&dir).await;
        let writers = (0..16_i64).map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin_write().await?;
                sqlx::query("INSERT INTO written (writer) VALUES ($1)")
                    .bind(writer)
                    .execute(&mut *tx)
                    .await?;
                tokio::task::yield_now().await;
                tx.commit().await
            })
        });
        for written in futures::future::join_all(writers).await {
            written.expect("task").expect("write");
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM written")
            .fetch_one(store.pool())
            .await
            .expect("count");
        assert_eq!(count, 16);
    }

    /// Given a reader listening for commits, when a write rolls back nothing wakes it, and when
    /// one commits it wakes at once (what read-your-writes waits on instead of polling).
    #[tokio::test]
    async fn a_commit_wakes_those_listening_and_a_rollback_does_not() {
        let dir = tempfile::tempdir().expect("dir");
        let store = sqlite_store(&dir).await;
        let committed = store.committed();
        tokio::pin!(committed);
        committed.as_mut().enable();
        let rolled_back = store.begin_write().await.expect("write");
        rolled_back.rollback().await.expect("rollback");
        let woken = tokio::time::timeout(Duration::from_millis(100), committed.as_mut()).await;
        assert!(woken.is_err(), "a rollback woke the listener");
        let mut tx = store.begin_write().await.expect("write");
        sqlx::query("INSERT INTO written (writer) VALUES (1)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        tokio::time::timeout(Duration::from_secs(5), committed)
            .await
            .expect("the commit woke the listener");
    }

    /// Given a writer whose task is dropped mid-transaction (a cancelled request), when the next
    /// writer begins, then it gets its turn: the abandoned one rolled back and let go.
    #[tokio::test]
    async fn an_abandoned_writer_gives_up_its_turn() {
        let dir = tempfile::tempdir().expect("dir");
        let store = sqlite_store(&dir).await;
        let mut abandoned = store.begin_write().await.expect("first");
        sqlx::query("INSERT INTO written (writer) VALUES (1)")
            .execute(&mut *abandoned)
            .await
            .expect("insert");
        // While it is held, the next writer waits for its turn.
        let waiting = tokio::time::timeout(Duration::from_millis(200), store.begin_write()).await;
        assert!(
            waiting.is_err(),
            "a second writer began while the first held the turn"
        );
        drop(abandoned);
        let mut next = tokio::time::timeout(Duration::from_secs(5), store.begin_write())
            .await
            .expect("the turn was given up")
            .expect("next");
        sqlx::query("INSERT INTO written (writer) VALUES (2)")
            .execute(&mut *next)
            .await
            .expect("insert");
        next.commit().await.expect("commit");
        let writers: Vec<i64> = sqlx::query_scalar("SELECT writer FROM written")
            .fetch_all(store.pool())
            .await
            .expect("rows");
        assert_eq!(writers, vec![2], "the abandoned write was rolled back");
    }
}
