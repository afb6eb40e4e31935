//! The `cases` command service: answers case and org-directory commands over NATS request/reply;
//! the same engine, on its own subject, is the `campaign` service (dispatch meetings and
//! instructions, [`campaign`]).
//!
//! For each command it validates the input, loads the aggregate (one get of its last commit, whose
//! snapshot header holds the state), decides which events follow, and appends them as one commit
//! with the expected-version check. Its only state is a cache of the aggregates it wrote, which the
//! expected-version check keeps honest; so any number of instances can share the queue group and a
//! restart loses nothing.

pub mod access;
pub mod account;
pub mod aggregate;
mod authorize;
pub mod campaign;
pub mod case;
pub mod directory;
#[cfg(test)]
mod given;
mod handle;
pub mod lifecycle;
mod repair;
pub mod sealing;
pub mod service;
pub mod subscription;
pub mod supervision;
pub mod synthetic;
mod validate;

pub use lifecycle::LifecycleSettings;
pub use service::CasesService;
pub use subscription::{ServiceRole, serve, serve_as, spawn, spawn_as};
