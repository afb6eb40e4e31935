//! NATS names: the event stream, its per-aggregate subjects, and the command subjects.
//!
//! Each aggregate has its own subject so that JetStream's expected-last-subject-sequence check is
//! the optimistic concurrency check of that aggregate.

use crate::envelope::AggregateType;

/// The one JetStream stream that holds every domain event.
pub const EVENT_STREAM: &str = "ZHZJ_EVENTS";
/// Subjects captured by [`EVENT_STREAM`].
pub const EVENT_SUBJECTS: &str = "zhzj.ev.>";
/// Commands for cases and the org directory, answered by the `cases` service.
pub const CASES_COMMANDS: &str = "zhzj.cmd.cases";
/// Queue group of the `cases` service, so several instances share the work.
pub const CASES_QUEUE_GROUP: &str = "zhzj-cases";

/// Commands for the campaign rhythm (dispatch meetings and instructions), answered by the
/// `campaign` service.
pub const CAMPAIGN_COMMANDS: &str = "zhzj.cmd.campaign";
/// Queue group of the `campaign` service.
pub const CAMPAIGN_QUEUE_GROUP: &str = "zhzj-campaign";

/// Message header carrying the [`crate::Snapshot`] of the aggregate after a commit (compact JSON).
pub const SNAPSHOT_HEADER: &str = "Zhzj-Snapshot";

/// The subject that holds the events of one aggregate.
pub fn aggregate_subject(kind: AggregateType, id: &str) -> String {
    format!("zhzj.ev.{}.{}", kind.as_str(), id)
}

/// Splits an event subject back into aggregate type and id.
pub fn parse_aggregate_subject(subject: &str) -> Option<(AggregateType, &str)> {
    let rest = subject.strip_prefix("zhzj.ev.")?;
    let (kind, id) = rest.split_once('.')?;
    Some((AggregateType::parse(kind)?, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_round_trips() {
        let subject = aggregate_subject(AggregateType::Leader, "xm-siming-l1");
        assert_eq!(subject, "zhzj.ev.leader.xm-siming-l1");
        assert_eq!(
            parse_aggregate_subject(&subject),
            Some((AggregateType::Leader, "xm-siming-l1"))
        );
        assert_eq!(parse_aggregate_subject("zhzj.cmd.cases"), None);
        assert_eq!(parse_aggregate_subject("zhzj.ev.bogus.x"), None);
    }
}
