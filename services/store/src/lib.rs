//! Storage for zhzj: the event log on NATS JetStream ([`log`]) and the SQL read store
//! ([`sql`]) where projections keep the event archive, the views and their checkpoints.
//!
//! Services append and load through [`log::EventLog`]; the projector and the gateway read and
//! write SQL through [`sql::ReadStore`], which speaks SQLite (the default) or PostgreSQL.

pub mod clock;
pub mod log;
pub mod nats;
pub mod seals;
pub mod signing;
pub mod sql;
pub mod vault;

pub use clock::{
    Clock, FixedClock, SystemClock, china_date, china_date_of, china_midnight, china_time,
};
pub use log::{
    AppendError, AppendOutcome, AppendRequest, EventLog, ExpectedVersion, LoadError, LogConfig,
    LogError, StoredCommit, StoredMessage,
};
pub use seals::{SealError, Sealer, verify_log};
pub use sql::{Dialect, ProjectionFault, ProjectionFaults, ReadStore, SqlError, WriteTransaction};
pub use vault::{DATA_KEY_BUCKET, PersonalDataVault, VaultError};
pub use zhzj_trust::{CommitDigest, CommitSigner, TrustedKeys};
