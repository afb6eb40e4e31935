//! A given/when/then helper for the decision functions' unit tests: given the events an aggregate
//! already has, when a decision is taken, then these events follow — or this refusal.

use std::fmt::Debug;

use zhzj_proto::{CommandError, DomainEvent, ErrorKind};

use crate::aggregate::Aggregate;

/// An aggregate folded from the events it is given.
#[derive(Debug)]
pub(crate) struct Given<A> {
    state: A,
}

/// Starts a scenario: the aggregate with `events` applied, in order.
pub(crate) fn given<A: Aggregate>(
    events: impl IntoIterator<Item = impl Into<DomainEvent>>,
) -> Given<A> {
    let mut state = A::default();
    for event in events {
        state.apply(&event.into());
    }
    Given { state }
}

impl<A: Aggregate + Debug> Given<A> {
    /// The state the scenario starts from.
    pub(crate) fn state(&self) -> &A {
        &self.state
    }

    /// Takes the decision on the state.
    pub(crate) fn when<E: Into<DomainEvent>>(
        self,
        decide: impl FnOnce(&A) -> Result<Vec<E>, CommandError>,
    ) -> Then<A> {
        let decided =
            decide(&self.state).map(|events| events.into_iter().map(Into::into).collect());
        Then {
            state: self.state,
            decided,
        }
    }
}

/// A decision taken, to be checked.
#[derive(Debug)]
#[must_use = "a decision is checked with then or then_refused"]
pub(crate) struct Then<A> {
    state: A,
    decided: Result<Vec<DomainEvent>, CommandError>,
}

impl<A: Aggregate + Debug> Then<A> {
    /// Asserts that exactly `expected` follow, and returns the scenario with them applied, so a
    /// test can go on to the next command.
    #[track_caller]
    pub(crate) fn then(
        self,
        expected: impl IntoIterator<Item = impl Into<DomainEvent>>,
    ) -> Given<A> {
        let expected: Vec<DomainEvent> = expected.into_iter().map(Into::into).collect();
        match self.decided {
            Ok(events) => {
                assert_eq!(events, expected, "the decision's events");
                let mut state = self.state;
                for event in &events {
                    state.apply(event);
                }
                Given { state }
            }
            Err(error) => panic!("expected {expected:?}, the command was refused: {error:?}"),
        }
    }

    /// Asserts that the command is refused as `kind` with a message containing `says`, and
    /// returns the refusal.
    #[track_caller]
    pub(crate) fn then_refused(self, kind: ErrorKind, says: &str) -> CommandError {
        match self.decided {
            Ok(events) => panic!("expected a refusal ({kind:?}), the decision was {events:?}"),
            Err(error) => {
                assert_eq!(error.kind, kind, "the refusal's kind: {error:?}");
                assert!(
                    error.message.contains(says),
                    "the refusal should say `{says}`: {error:?}"
                );
                error
            }
        }
    }
}

/// A case registered in 思明区, with no leader yet.
pub(crate) fn registered_case() -> zhzj_proto::CaseEvent {
    use zhzj_proto::events::{
        CaseRegistered, Channel, ListSource, Petitioner, RecordedPetitioner, UnitRef,
    };
    zhzj_proto::CaseEvent::Registered(CaseRegistered {
        case_number: "XF2026-0001".into(),
        petitioners: vec![RecordedPetitioner::Plain(Petitioner {
            name: "张某".into(),
            id_number: None,
            phone: None,
            address: None,
        })],
        matter: "征地补偿款未足额发放".into(),
        category: "征地拆迁".into(),
        district: UnitRef {
            id: "siming".into(),
            name: "思明区".into(),
        },
        town: None,
        channel: Channel::Visit,
        first_filed_on: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default(),
        list_source: ListSource::Screening,
        group_size: 1,
    })
}

/// A leader of 思明区.
pub(crate) fn district_leader(id: &str) -> zhzj_proto::events::LeaderRef {
    zhzj_proto::events::LeaderRef {
        id: id.into(),
        name: format!("领导{id}"),
        title: "副区长".into(),
        unit_id: "siming".into(),
    }
}

/// A case registered and owned by a leader.
pub(crate) fn owned_case() -> Vec<zhzj_proto::CaseEvent> {
    vec![
        registered_case(),
        zhzj_proto::CaseEvent::LeaderAssigned(zhzj_proto::events::LeaderAssigned {
            leader: district_leader("l1"),
            reason: None,
        }),
    ]
}
