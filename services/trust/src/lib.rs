//! The trust boundary of zhzj: who may speak to NATS, and how the log proves it was not edited.
//!
//! - [`nats_access`]: one NATS user per role with only the subjects that role needs, the
//!   nats-server configuration that grants them, and the client options a role connects with.
//! - [`chain`]: every commit names the hash of its aggregate's previous commit and is signed with
//!   a key only the command services hold ([`keys`]).
//! - [`seal`]: a signed digest of the whole log up to a position, appended at intervals and on
//!   request, so that a printed figure can be checked against the log later.
//! - [`verify`]: reads a log message by message and names the first one that was altered,
//!   removed, inserted or reordered.

pub mod chain;
pub mod keys;
pub mod nats_access;
pub mod seal;
pub mod verify;

pub use chain::{CommitDigest, commit_digest};
pub use keys::{CommitSigner, KeyError, TrustedKeys};
