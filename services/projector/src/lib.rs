//! The projector: reads the event log through one pull consumer for all its projections and
//! keeps SQL tables up to date — the event archive, the checklist, org directory, lifecycle and campaign
//! views.
//!
//! Each batch of events is applied to every projection and each one's checkpoint advanced in one
//! SQL transaction, with the count of positions applied; anything at or below the checkpoint is
//! skipped, so a crash at any point resumes where it was. Every position is accounted for: a
//! message whose stream sequence does not follow the last is either explained (a deleted message,
//! recorded) or the projection reads again from its checkpoint. A message that cannot be read is
//! dead-lettered with its reason and the projection goes on. `rebuild` replays the log into a new
//! generation of tables and swaps them in while the old ones keep serving.

pub mod accounts;
pub mod agenda_states;
mod archive;
mod campaign;
mod checklist;
pub mod checkpoint;
pub mod figure_facts;
pub mod figure_sums;
mod leaders;
pub mod lifecycle;
mod live;
mod org;
pub mod projection;
mod rebuild;
pub mod runner;
pub mod sqlbuild;
mod status;
pub mod supervision;

pub use archive::COLUMNS as ARCHIVE_COLUMNS;
pub use live::{prepare, run, run_together, run_with};
pub use projection::{Projection, ProjectorSettings};
pub use rebuild::{RebuildReport, ensure_settings, rebuild, rebuild_with};
pub use runner::ProjectorError;
pub use status::{ProjectionStatus, status};
