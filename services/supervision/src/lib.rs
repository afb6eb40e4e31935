//! Supervision (督查督办) over time, run beside the gateway: the bureau's rules file ([`rules`]);
//! the escalation clock ([`escalation`]), turning an order left unanswered past its due date into
//! an escalation event in the log — never silently, and only through the command service, which
//! checks again that the order really is overdue; the early warnings ([`warnings`]), fired once
//! per condition and cleared when it ends; and the notifier ([`notify`], [`channels`]): the
//! in-app inbox, the daily digest, mail and group robots, retried and recorded.

pub mod channels;
pub mod escalation;
pub mod notify;
pub mod rules;
pub mod warnings;
mod watch;

pub use escalation::{EscalationClock, EscalationError, EscalationPass};
pub use notify::{Notifier, NotifyError, NotifyPass};
pub use rules::{EscalationRule, RulesError, SupervisionRules};
pub use warnings::WarningPass;
pub use watch::Watch;
