//! The contracts every zhzj service speaks: the events in the log, the commands services answer,
//! their replies, the NATS subjects, and the JSON Schemas generated from them.
//!
//! Nothing here does I/O. The types are the single source of truth for the wire format; the JSON
//! Schemas in `proto/schemas/` are generated from them (`schemas::all`) and a test fails when the
//! committed files drift from the code.

pub mod accounts;
pub mod commands;
pub mod dates;
pub mod envelope;
pub mod events;
pub mod ids;
pub mod names;
pub mod replies;
pub mod schemas;
pub mod subjects;

pub use accounts::AccountEvent;
pub use commands::{Command, CommandRequest};
pub use envelope::{Actor, AggregateType, Commit, EventEnvelope, Snapshot};
pub use events::{
    CampaignEvent, CaseEvent, DirectoryEvent, DomainEvent, EventDecodeError, SupervisionEvent,
};
pub use replies::{CommandAccepted, CommandError, CommandReply, ErrorKind};
