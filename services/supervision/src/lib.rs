//! Supervision orders (督办单) over time: the bureau's escalation rules ([`rules`]) and the clock
//! that applies them ([`escalation`]), turning an order left unanswered past its due date into
//! an escalation event in the log — never silently, and only through the command service, which
//! checks again that the order really is overdue.

pub mod escalation;
pub mod rules;

pub use escalation::{EscalationClock, EscalationError, EscalationPass};
pub use rules::{EscalationRule, RulesError, SupervisionRules};
