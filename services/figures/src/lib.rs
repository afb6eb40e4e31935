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
}
