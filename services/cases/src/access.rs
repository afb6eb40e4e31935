//! Who may do what, where: the roles and the org scope the command service enforces on every
//! command (the gateway checks nothing the service does not check again).
//!
//! - `admin` (city administrator): everything, everywhere, including the directory and reviews.
//! - `coordinator` (city, district or town task force): case work on cases in their unit's
//!   subtree.
//! - `reviewer`: reviews of claims on cases in their subtree, at their own level (a district
//!   unit reviews as 区联席办, the city as 市信访局).
//! - `leader`: logs activities and notes, adds and ticks off measures, on the cases they own.
//! - a `coordinator` of a responsible unit (责任单位, lead or assisting — typically a functional
//!   department, 职能部门, outside the case's own part of the tree): the same work as a leader,
//!   on the cases their unit is responsible for.
//! - `viewer`, or no role: reads only.
//!
//! A case outside the actor's scope is answered as not found, so that its existence does not
//! leak; a command the actor's role does not allow on a case in scope is forbidden. Which cases
//! are in an actor's scope is [`CaseReach`], the one rule the gateway's reads use too.

use zhzj_proto::accounts::Role;

use crate::handle::HandledCommand;
use zhzj_proto::{Actor, Command, CommandError, ErrorKind, events::ReviewLevel, events::UnitKind};

/// What a command asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add units and leaders.
    Directory,
    /// Register a case where the actor works.
    Register,
    /// Work a case as a coordinator does.
    CaseWork,
    /// Work a leader may do on a case they own (also allowed to coordinators).
    LeaderWork,
    /// Review a claim at a level.
    Review(ReviewLevel),
    /// Repair a case's history.
    Repair,
    /// Erase a petitioner's personal data.
    Erase,
}

/// The action a command asks for (each command says, beside its aggregate).
pub fn action_of(command: &Command) -> Action {
    zhzj_proto::match_command!(command, c => c.action())
}

fn forbidden(message: impl Into<String>) -> CommandError {
    CommandError::new(ErrorKind::Forbidden, message)
}

/// Whether the actor may act on a case regardless of where it is.
pub fn sees_everything(actor: &Actor) -> bool {
    actor.has_role(Role::Admin)
}

/// Checks a directory command.
pub fn check_directory(actor: &Actor) -> Result<(), CommandError> {
    if actor.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(forbidden("只有系统管理员可以维护组织架构 (admin only)"))
    }
}

/// Checks an erasure of a petitioner's personal data.
pub fn check_erase(actor: &Actor) -> Result<(), CommandError> {
    if actor.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(forbidden(
            "只有系统管理员可以删除信访人个人信息 (admin only)",
        ))
    }
}

/// Checks a repair of a case's history.
pub fn check_repair(actor: &Actor) -> Result<(), CommandError> {
    if actor.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(forbidden("只有系统管理员可以修复案件历史 (admin only)"))
    }
}

/// Where a case is and who owns it, as the access check needs it.
#[derive(Debug, Clone)]
pub struct CasePlace {
    /// The units from the case's town (or district) up to the city.
    pub ancestry: Vec<String>,
    /// The owning leader.
    pub leader_id: Option<String>,
    /// The responsible units (lead and assisting).
    pub responsible_units: Vec<String>,
}

/// The cases an actor reaches: the command service checks a case's place against it, and the
/// gateway reads only the cases it allows (expanding `area` to the units under it), so that
/// what a user may see and what they may act on are one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseReach {
    /// Every case (the city administrator).
    Everywhere,
    /// The cases placed in `area` or under it, owned by `leader_id`, or that `responsible_unit`
    /// answers for.
    Within {
        /// The actor's unit, when a role of theirs works with cases (an auditor's does not).
        area: Option<String>,
        /// The leader the actor is, with the `leader` role.
        leader_id: Option<String>,
        /// The actor's unit, with the `coordinator` role: a functional department (职能部门)
        /// reaches the cases it is a responsible unit (责任单位) of, wherever they are.
        responsible_unit: Option<String>,
    },
}

/// How an actor stands to one case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// The case is placed in the actor's area.
    pub in_area: bool,
    /// The actor is the leader who owns it.
    pub owns: bool,
    /// The actor's unit is one of its responsible units.
    pub responsible: bool,
}

impl Standing {
    /// Whether the case is in the actor's scope at all.
    pub fn reaches(self) -> bool {
        self.in_area || self.owns || self.responsible
    }
}

impl CaseReach {
    /// The reach of an actor, from their roles, unit and leader.
    pub fn of(actor: &Actor) -> Self {
        if sees_everything(actor) {
            return Self::Everywhere;
        }
        Self::Within {
            area: actor
                .unit_id
                .clone()
                .filter(|_| Role::any_works_with_cases(&actor.roles)),
            leader_id: actor
                .leader_id
                .clone()
                .filter(|_| actor.has_role(Role::Leader)),
            responsible_unit: actor
                .unit_id
                .clone()
                .filter(|_| actor.has_role(Role::Coordinator)),
        }
    }

    /// How an actor with this reach stands to a case at `place`.
    pub fn standing(&self, place: &CasePlace) -> Standing {
        let Self::Within {
            area,
            leader_id,
            responsible_unit,
        } = self
        else {
            return Standing {
                in_area: true,
                ..Standing::default()
            };
        };
        Standing {
            in_area: area
                .as_ref()
                .is_some_and(|unit| place.ancestry.contains(unit)),
            owns: leader_id.is_some() && *leader_id == place.leader_id,
            responsible: responsible_unit
                .as_ref()
                .is_some_and(|unit| place.responsible_units.contains(unit)),
        }
    }
}

/// Checks a case command against the actor's roles and scope. `actor_unit_kind` is the kind of
/// the actor's unit (for the review level).
pub fn check_case(
    actor: &Actor,
    action: Action,
    place: &CasePlace,
    actor_unit_kind: Option<UnitKind>,
) -> Result<(), CommandError> {
    if actor.has_role(Role::Admin) {
        return Ok(());
    }
    let standing = CaseReach::of(actor).standing(place);
    let Standing {
        in_area: in_scope,
        owns,
        responsible,
    } = standing;
    if action == Action::Register && !in_scope {
        return Err(forbidden(
            "只能在本单位管辖范围内登记案件 (outside your unit)",
        ));
    }
    if !standing.reaches() {
        return Err(CommandError::new(
            ErrorKind::NotFound,
            "案件不存在或不在您的管辖范围内 (not found)",
        ));
    }
    let allowed = match action {
        Action::Directory | Action::Repair | Action::Erase => false,
        Action::Register | Action::CaseWork => in_scope && actor.has_role(Role::Coordinator),
        Action::LeaderWork => {
            (in_scope && actor.has_role(Role::Coordinator)) || owns || responsible
        }
        Action::Review(level) => {
            let own_level = match actor_unit_kind {
                Some(UnitKind::City) => Some(ReviewLevel::City),
                Some(UnitKind::District) => Some(ReviewLevel::District),
                _ => None,
            };
            if in_scope && actor.has_role(Role::Reviewer) && own_level != Some(level) {
                return Err(forbidden(format!(
                    "您不能以{}身份审核 (review at your own level only)",
                    level.label()
                )));
            }
            in_scope && actor.has_role(Role::Reviewer)
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(forbidden(
            "您的角色不能进行此项操作 (your role may not do this)",
        ))
    }
}

/// The case a case command names (none for a registration or a directory command).
pub fn case_id_of(command: &Command) -> Option<uuid::Uuid> {
    zhzj_proto::match_command!(command, c => c.case_id())
}

/// Checks a campaign command. `meeting_ancestry` is the chain of units from the meeting's unit up
/// to the city: a coordinator of any of them (or the administrator) runs the meeting, issues
/// instructions at it and records feedback. Feedback may also come from a coordinator of the
/// unit an instruction went to (`addressee_ancestry`) and from the leader it went to.
pub fn check_campaign(
    actor: &Actor,
    meeting_ancestry: &[String],
    addressee_ancestry: &[String],
    addressee_leader: Option<&str>,
) -> Result<(), CommandError> {
    if actor.has_role(Role::Admin) {
        return Ok(());
    }
    let within = |chain: &[String]| {
        actor.has_role(Role::Coordinator)
            && actor
                .unit_id
                .as_ref()
                .is_some_and(|unit| chain.contains(unit))
    };
    let addressed = actor.has_role(Role::Leader)
        && addressee_leader.is_some()
        && actor.leader_id.as_deref() == addressee_leader;
    if within(meeting_ancestry) || within(addressee_ancestry) || addressed {
        Ok(())
    } else {
        Err(forbidden(
            "只有本级及上级专班协调员可以召开调度会、下达和反馈调度指令 (not your meeting)",
        ))
    }
}

/// Which side of a supervision order a command acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The issuing unit: issues the order and reviews its answers.
    Issuer,
    /// The receiving unit: signs for it, reports progress, answers.
    Addressee,
    /// The system: escalates it.
    System,
}

/// Checks a supervision command. `units` are the units whose coordinators act for `side`: for
/// the issuer, the issuing unit and every unit above it; for the addressee, its unit alone (a
/// unit answers for itself; its superiors do not answer in its place). Escalation is the
/// system's (the administrator passes every check before this one).
pub fn check_supervision(actor: &Actor, side: Side, units: &[String]) -> Result<(), CommandError> {
    let coordinator_of = actor.has_role(Role::Coordinator)
        && actor
            .unit_id
            .as_ref()
            .is_some_and(|unit| units.contains(unit));
    match side {
        Side::Issuer if coordinator_of => Ok(()),
        Side::Issuer => Err(forbidden(
            "只有督办单位及其上级的专班协调员可以下发督办单、审核反馈 (not the issuer)",
        )),
        Side::Addressee if coordinator_of => Ok(()),
        Side::Addressee => Err(forbidden(
            "只有承办单位的专班协调员可以签收、报告进展和办结反馈 (not the addressee)",
        )),
        Side::System => Err(forbidden("督办升级由系统按规则执行 (the system escalates)")),
    }
}

#[cfg(test)]
mod tests {
    use super::{CasePlace, CaseReach, Standing};
    use zhzj_proto::Actor;

    fn actor(roles: &[&str], unit: &str, leader: Option<&str>) -> Actor {
        Actor {
            user_id: "u".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            unit_id: Some(unit.into()),
            leader_id: leader.map(str::to_owned),
        }
    }

    /// A case in 中华街道 of 思明区, owned by leader l1, with 市住房局 as its lead unit.
    fn place() -> CasePlace {
        CasePlace {
            ancestry: vec!["zhonghua".into(), "siming".into(), "city".into()],
            leader_id: Some("l1".into()),
            responsible_units: vec!["housing".into()],
        }
    }

    #[test]
    fn who_reaches_a_case_and_how() {
        let standing = |roles: &[&str], unit: &str, leader: Option<&str>| {
            CaseReach::of(&actor(roles, unit, leader)).standing(&place())
        };
        let area = Standing {
            in_area: true,
            ..Standing::default()
        };
        assert_eq!(standing(&["admin"], "elsewhere", None), area);
        assert_eq!(standing(&["viewer"], "siming", None), area);
        assert_eq!(standing(&["coordinator"], "zhonghua", None), area);
        // A district's coordinator does not reach a neighbour's case.
        assert!(!standing(&["coordinator"], "huli", None).reaches());
        // A functional department reaches the cases it answers for, as a coordinator only.
        assert_eq!(
            standing(&["coordinator"], "housing", None),
            Standing {
                responsible: true,
                ..Standing::default()
            }
        );
        assert!(!standing(&["viewer"], "housing", None).reaches());
        // The owning leader, with the leader role only.
        assert_eq!(
            standing(&["leader"], "huli", Some("l1")),
            Standing {
                owns: true,
                ..Standing::default()
            }
        );
        assert!(!standing(&["viewer"], "huli", Some("l1")).reaches());
        // An auditor reads the audit trail, no case, whatever unit the account names; a role
        // name this version does not know grants nothing.
        assert!(!standing(&["auditor"], "siming", None).reaches());
        assert!(!standing(&["superuser"], "siming", None).reaches());
    }
}
