//! The role and scope check of every command, before it is decided: the rules are in
//! [`crate::access`]; this looks up what they need (the case's place in the directory, its owning
//! leader and responsible units, the meeting's unit).

use zhzj_proto::{
    AggregateType, Command, CommandError, CommandRequest, ErrorKind, accounts::Role,
    events::UnitKind,
};

use crate::access::{self, Action, CasePlace, Side};
use crate::account;
use crate::aggregate::{Aggregate, load};
use crate::campaign::MeetingState;
use crate::case::CaseState;
use crate::directory::UnitState;
use crate::service::{Cached, CasesService, load_failed};
use crate::supervision::SupervisionState;

impl CasesService {
    /// The units from `unit_id` up to the top of the directory.
    pub(crate) async fn ancestry(&self, unit_id: &str) -> Result<Vec<String>, CommandError> {
        let mut chain = Vec::new();
        let mut next = Some(unit_id.to_owned());
        while let Some(id) = next {
            // The directory is a tree a few levels deep; the bound only guards the loop.
            if chain.len() > 8 || chain.contains(&id) {
                break;
            }
            let unit = self.require::<UnitState>("unit_id", &id).await?;
            chain.push(id);
            next = unit.parent_id;
        }
        Ok(chain)
    }

    /// Checks the actor's role and scope for the command (see [`access`]).
    pub(crate) async fn authorize(&self, request: &CommandRequest) -> Result<(), CommandError> {
        let actor = &request.actor;
        if let Command::RecordAccount(c) = &request.command {
            return account::check(actor, c);
        }
        let action = access::action_of(&request.command);
        if action == Action::Directory {
            return access::check_directory(actor);
        }
        if action == Action::Repair {
            return access::check_repair(actor);
        }
        if action == Action::Erase {
            return access::check_erase(actor);
        }
        if access::sees_everything(actor) {
            return Ok(());
        }
        if request.command.is_supervision() {
            return self.authorize_supervision(request).await;
        }
        if request.command.is_campaign() {
            return self.authorize_campaign(request).await;
        }
        let place = match (&request.command, access::case_id_of(&request.command)) {
            (Command::RegisterCase(c), _) => {
                let unit = c.town_id.as_deref().unwrap_or(&c.district_id);
                match self.ancestry(unit).await {
                    Ok(ancestry) => CasePlace {
                        ancestry,
                        leader_id: None,
                        responsible_units: Vec::new(),
                    },
                    // An unknown unit is for the command's own checks to name.
                    Err(_) => return Ok(()),
                }
            }
            (_, Some(case_id)) => {
                let id = case_id.to_string();
                let loaded = match CaseState::cache(&self.caches).get(&id) {
                    Some(cached) => cached,
                    None => load::<CaseState>(&self.log, &id)
                        .await
                        .map_err(|e| load_failed(AggregateType::Case, &id, e))?,
                };
                if !loaded.state.exists() {
                    // The command's own checks answer "not found".
                    return Ok(());
                }
                let state = loaded.state;
                let unit = state.town_id.clone().unwrap_or(state.district_id.clone());
                CasePlace {
                    ancestry: self.ancestry(&unit).await?,
                    leader_id: state.leader.map(|l| l.id),
                    responsible_units: state
                        .lead_unit_id
                        .into_iter()
                        .chain(state.assisting_unit_ids)
                        .collect(),
                }
            }
            (_, None) => return Ok(()),
        };
        let kind = match &actor.unit_id {
            Some(unit) => self
                .require::<UnitState>("actor.unit_id", unit)
                .await
                .ok()
                .and_then(|u| u.kind),
            None => None,
        };
        access::check_case(actor, action, &place, kind)
    }

    /// The scope check of a supervision command (see [`access::check_supervision`]): the issuing
    /// side is the issuer unit and the units above it, the answering side the addressee unit.
    /// An unknown order or unit is for the command's own checks to name.
    async fn authorize_supervision(&self, request: &CommandRequest) -> Result<(), CommandError> {
        let order = |id: uuid::Uuid| async move {
            self.require::<SupervisionState>("command.order_id", &id.to_string())
                .await
        };
        let (side, unit) = match &request.command {
            Command::IssueSupervisionOrder(c) => (Side::Issuer, c.issuer_unit_id.clone()),
            Command::AcknowledgeSupervisionOrder(c) => match order(c.order_id).await {
                Ok(state) => (Side::Addressee, state.addressee_unit_id),
                Err(_) => return Ok(()),
            },
            Command::ReportSupervisionProgress(c) => match order(c.order_id).await {
                Ok(state) => (Side::Addressee, state.addressee_unit_id),
                Err(_) => return Ok(()),
            },
            Command::AnswerSupervisionOrder(c) => match order(c.order_id).await {
                Ok(state) => (Side::Addressee, state.addressee_unit_id),
                Err(_) => return Ok(()),
            },
            Command::ReviewSupervisionAnswer(c) => match order(c.order_id).await {
                Ok(state) => (Side::Issuer, state.issuer_unit_id),
                Err(_) => return Ok(()),
            },
            // Only the system's escalation clock (an administrator's actor) escalates.
            _ => (Side::System, String::new()),
        };
        let ancestry = match side {
            Side::Issuer => match self.ancestry(&unit).await {
                Ok(ancestry) => ancestry,
                Err(_) => return Ok(()),
            },
            Side::Addressee => vec![unit],
            Side::System => Vec::new(),
        };
        access::check_supervision(&request.actor, side, &ancestry)
    }

    /// The scope check of a campaign command (see [`access::check_campaign`]). An unknown meeting
    /// or unit is for the command's own checks to name.
    async fn authorize_campaign(&self, request: &CommandRequest) -> Result<(), CommandError> {
        let meeting = |id: &str| {
            let id = id.to_owned();
            async move {
                self.require::<MeetingState>("command.meeting_id", &id)
                    .await
            }
        };
        let (unit, addressee) = match &request.command {
            Command::HoldMeeting(c) => (c.unit_id.clone(), None),
            // The city publishes the bulletin and launches the push: its coordinators.
            Command::PublishBulletin(_) | Command::LaunchPush(_) => {
                let city = match &request.actor.unit_id {
                    Some(unit) => self.require::<UnitState>("actor.unit_id", unit).await.ok(),
                    None => None,
                };
                let is_city = city.is_some_and(|u| u.kind == Some(UnitKind::City));
                if is_city && request.actor.has_role(Role::Coordinator) {
                    return Ok(());
                }
                return Err(CommandError::new(
                    ErrorKind::Forbidden,
                    "只有市级专班协调员可以发布月通报、部署季度攻坚 (city coordinators only)",
                ));
            }
            Command::IssueInstruction(c) => match meeting(&c.meeting_id).await {
                Ok(state) => (state.unit_id, None),
                Err(_) => return Ok(()),
            },
            Command::RecordInstructionFeedback(c) => match meeting(&c.meeting_id).await {
                Ok(state) => match state.instructions.get(&c.number).cloned() {
                    Some(addressee) => (state.unit_id, Some(addressee)),
                    None => return Ok(()),
                },
                Err(_) => return Ok(()),
            },
            _ => return Ok(()),
        };
        let Ok(meeting_ancestry) = self.ancestry(&unit).await else {
            return Ok(());
        };
        let (addressee_unit, addressee_leader) = addressee.unwrap_or_default();
        let addressee_ancestry = match &addressee_unit {
            Some(unit) => self.ancestry(unit).await.unwrap_or_default(),
            None => Vec::new(),
        };
        access::check_campaign(
            &request.actor,
            &meeting_ancestry,
            &addressee_ancestry,
            addressee_leader.as_deref(),
        )
    }
}
