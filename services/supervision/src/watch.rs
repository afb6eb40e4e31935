//! The watch: one task beside the gateway that, every interval (and at start), escalates overdue
//! orders, then finds the warnings, then notifies — in that order, so an escalation and the
//! warnings it changes are notified in the same pass.

use std::sync::Arc;
use std::time::Duration;

use zhzj_store::{Clock, ReadStore};

use crate::escalation::EscalationClock;
use crate::notify::Notifier;
use crate::rules::SupervisionRules;

/// Escalation, warnings and notifications on one clock.
#[derive(Debug, Clone)]
pub struct Watch {
    escalation: EscalationClock,
    notifier: Notifier,
    store: ReadStore,
    clock: Arc<dyn Clock>,
    rules: Arc<SupervisionRules>,
}

impl Watch {
    /// A watch sending commands on `client`, reading and writing `store`.
    pub fn new(
        client: async_nats::Client,
        store: ReadStore,
        clock: Arc<dyn Clock>,
        rules: Arc<SupervisionRules>,
    ) -> Self {
        Self {
            escalation: EscalationClock::new(
                client,
                store.clone(),
                Arc::clone(&clock),
                Arc::clone(&rules),
            ),
            notifier: Notifier::new(store.clone(), Arc::clone(&clock), Arc::clone(&rules)),
            store,
            clock,
            rules,
        }
    }

    /// The escalation clock.
    pub fn escalation(&self) -> &EscalationClock {
        &self.escalation
    }

    /// The notifier.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// The warnings pass alone.
    pub async fn warnings(&self) -> Result<crate::WarningPass, sqlx::Error> {
        crate::warnings::run_pass(&self.store, &self.rules.warnings, self.clock.now()).await
    }

    /// One pass of each, each failure logged; the next pass tries again. Each stage's time is
    /// on `/metrics` as `zhzj_watch_stage_seconds{stage=…}`.
    pub async fn run_once(&self) {
        let timed = |stage: &'static str, started: std::time::Instant| {
            metrics::histogram!("zhzj_watch_stage_seconds", "stage" => stage)
                .record(started.elapsed().as_secs_f64());
        };
        let started = std::time::Instant::now();
        let escalated = self.escalation.run_once().await;
        timed("escalation", started);
        match escalated {
            Ok(pass) if !pass.escalated.is_empty() => {
                tracing::info!(
                    escalated = pass.escalated.len(),
                    "supervision orders escalated"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "supervision escalation pass failed"),
        }
        let started = std::time::Instant::now();
        let warned = self.warnings().await;
        timed("warnings", started);
        match warned {
            Ok(pass) => {
                metrics::counter!("zhzj_warnings_fired_total").increment(pass.fired.len() as u64);
                metrics::counter!("zhzj_warnings_cleared_total")
                    .increment(pass.cleared.len() as u64);
            }
            Err(e) => tracing::warn!(error = %e, "warnings pass failed"),
        }
        let started = std::time::Instant::now();
        let notified = self.notifier.run_once().await;
        timed("notify", started);
        match notified {
            Ok(pass) => {
                metrics::counter!("zhzj_notifications_sent_total").increment(pass.sent as u64);
                metrics::counter!("zhzj_notification_failures_total")
                    .increment(pass.failed_attempts as u64);
            }
            Err(e) => tracing::warn!(error = %e, "notification pass failed"),
        }
    }

    /// Runs a pass every `interval` until `shutdown` fires.
    pub async fn run(self, interval: Duration, shutdown: tokio_util::sync::CancellationToken) {
        let interval = interval.max(Duration::from_secs(1));
        loop {
            self.run_once().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}
