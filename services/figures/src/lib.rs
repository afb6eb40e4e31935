//! Figures drawn from the event archive as of a point of the log: the weekly dispatch agenda and
//! the monthly bulletin. A report that people are
//! judged by must come out the same whenever it is asked for, so it is never read from the live
//! views: it is folded from the archived events up to the log position the report was drawn at
//! (a meeting's, a published bulletin's), with the same folds the projector uses.

pub mod agenda;
mod archive;
pub mod assessment;
pub mod bulletin;
pub mod facts;
pub mod push;
mod sums;
pub mod supervision;

pub use agenda::{
    Agenda, AgendaOrderRow, AgendaRequest, AgendaRow, AgendaSection, InstructionRow, agenda,
    agenda_from, agenda_from_archive, agenda_from_projection,
};
pub use archive::ArchivedEvent;
pub use bulletin::{
    AreaFigures, Bulletin, CountedCase, Details, PeriodFigures, Ratio, bulletin, bulletin_from,
    month_bounds, period_figures,
};
pub use push::{
    PushAreaProgress, PushCaseProgress, PushProgress, push_progress, push_progress_at,
    push_progress_from,
};
pub use supervision::{SupervisionFigures, supervision_figures};

/// A figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum FiguresError {
    /// The read store failed.
    #[error("read store: {0}")]
    Sql(#[from] sqlx::Error),
    /// An archived event could not be read (it would have been dead-lettered by the projector).
    #[error("archived event at position {position}: {reason}")]
    Unreadable {
        /// Its position.
        position: i64,
        /// Why.
        reason: String,
    },
    /// A fold run on a blocking thread ([`off_the_runtime`] on a single-threaded runtime)
    /// panicked or was cancelled.
    #[error("drawing the figures: {0}")]
    Fold(#[from] tokio::task::JoinError),
}

/// Runs `fold` where it holds no worker of the async runtime: a fold of a period's events or of
/// a hundred thousand cases holds a core for up to seconds, and on a worker it would stall the
/// tasks waiting there — under `zhzj up` the command service, the projector and every other
/// request share two. On a multi-threaded runtime the worker turns into a blocking thread for
/// the fold and hands its tasks to another (`block_in_place`: the fold's data stays on the
/// thread that made it, which a second thread would have paid for in cross-thread frees — the
/// year's workbook was 0.2–0.3 s slower); on a single-threaded one it runs on a blocking thread.
pub(crate) async fn off_the_runtime<T: Send + 'static>(
    fold: impl FnOnce() -> T + Send + 'static,
) -> Result<T, FiguresError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        Ok(tokio::task::block_in_place(fold))
    } else {
        Ok(tokio::task::spawn_blocking(fold).await?)
    }
}
