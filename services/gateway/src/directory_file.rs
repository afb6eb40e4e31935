//! The org directory as a file, so a second instance can be filled from the first: what
//! `zhzj org export` writes (TOML or JSON) and `zhzj org import` / `POST /api/v1/org/import`
//! read. A file is checked whole — by the command service's own decisions, run dry against the
//! directory as it stands — before anything is written, and importing it again adds nothing.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zhzj_cases::aggregate::Aggregate;
use zhzj_cases::directory::{LeaderState, UnitState, add_leader, add_unit, check_token_id};
use zhzj_proto::commands::{AddLeader, AddUnit};
use zhzj_proto::events::{LeaderLevel, UnitKind};
use zhzj_proto::{Command, DirectoryEvent, DomainEvent};

use crate::routes::OrgView;

/// Namespace of the command ids an import sends: the same entry always sends the same id.
const DIRECTORY_IMPORT_NAMESPACE: Uuid = Uuid::from_u128(0x2b6f_91d4_0c3e_4a57_9e18_d6a2_53f0_7c41);

/// A directory file: units (parents before children) and leaders.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryFile {
    /// The units, each after its parent.
    #[serde(default)]
    pub units: Vec<AddUnit>,
    /// The leaders, each of a unit above or already in the directory.
    #[serde(default)]
    pub leaders: Vec<AddLeader>,
}

/// One problem in a directory file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DirectoryProblem {
    /// Where: `units[3]` or `leaders[0]` (counted from 0).
    pub entry: String,
    /// The id of the entry.
    pub id: String,
    /// What is wrong.
    pub message: String,
}

/// What importing a file will do.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryPlan {
    /// The commands to send, in order, each with its command id.
    pub commands: Vec<(Uuid, Command)>,
    /// Entries already in the directory exactly as the file has them.
    pub already_present: usize,
}

/// The directory as the read store has it.
#[derive(Debug, Clone, Default)]
pub struct CurrentDirectory {
    /// Units by id.
    pub units: HashMap<String, UnitState>,
    /// Leaders by id.
    pub leaders: HashMap<String, LeaderState>,
}

/// A kind or level as the read store writes it (`district`), back to its enum.
pub(crate) fn parse_label<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

/// The state an aggregate reaches from `events`, by its own fold.
fn folded<A: Aggregate>(events: Vec<DirectoryEvent>) -> A {
    let mut state = A::default();
    for event in events {
        state.apply(&DomainEvent::Directory(event));
    }
    state
}

impl CurrentDirectory {
    /// The directory `GET /org` lists.
    pub fn from_view(view: &OrgView) -> Self {
        let units = view
            .units
            .iter()
            .map(|u| {
                let state = UnitState {
                    added: true,
                    unit_id: u.unit_id.clone(),
                    parent_id: u.parent_id.clone(),
                    name: u.name.clone(),
                    kind: parse_label(&u.kind),
                };
                (u.unit_id.clone(), state)
            })
            .collect();
        let leaders = view
            .leaders
            .iter()
            .map(|l| {
                let state = LeaderState {
                    added: true,
                    leader_id: l.leader_id.clone(),
                    unit_id: l.unit_id.clone(),
                    name: l.name.clone(),
                    title: l.title.clone(),
                    level: parse_label(&l.level),
                };
                (l.leader_id.clone(), state)
            })
            .collect();
        Self { units, leaders }
    }

    /// The directory as a file, parents before children.
    pub fn to_file(&self) -> DirectoryFile {
        let mut units: Vec<&UnitState> = self.units.values().collect();
        units.sort_by(|a, b| a.unit_id.cmp(&b.unit_id));
        let mut ordered: Vec<AddUnit> = Vec::new();
        let mut placed = std::collections::HashSet::new();
        // Parents first: repeatedly place the units whose parent is placed.
        while ordered.len() < units.len() {
            let before = ordered.len();
            for unit in &units {
                let ready = unit
                    .parent_id
                    .as_ref()
                    .is_none_or(|p| placed.contains(p) || !self.units.contains_key(p));
                if !placed.contains(&unit.unit_id) && ready {
                    placed.insert(unit.unit_id.clone());
                    ordered.push(AddUnit {
                        unit_id: unit.unit_id.clone(),
                        parent_id: unit.parent_id.clone(),
                        name: unit.name.clone(),
                        kind: unit.kind.unwrap_or(UnitKind::Department),
                    });
                }
            }
            if ordered.len() == before {
                break;
            }
        }
        let mut leaders: Vec<AddLeader> = self
            .leaders
            .values()
            .map(|l| AddLeader {
                leader_id: l.leader_id.clone(),
                unit_id: l.unit_id.clone(),
                name: l.name.clone(),
                title: l.title.clone(),
                level: l.level.unwrap_or(LeaderLevel::Town),
            })
            .collect();
        leaders.sort_by(|a, b| a.leader_id.cmp(&b.leader_id));
        DirectoryFile {
            units: ordered,
            leaders,
        }
    }
}

/// Checks `file` whole against `current`: the commands that add what is new, or every problem.
/// An entry already present with other contents is a problem (a directory entry never changes).
pub fn plan(
    current: &CurrentDirectory,
    file: &DirectoryFile,
) -> Result<DirectoryPlan, Vec<DirectoryProblem>> {
    let mut units = current.units.clone();
    let mut problems = Vec::new();
    let mut commands = Vec::new();
    let mut already_present = 0;
    for (i, unit) in file.units.iter().enumerate() {
        let problem = |message: String| DirectoryProblem {
            entry: format!("units[{i}]"),
            id: unit.unit_id.clone(),
            message,
        };
        if let Err(e) = check_token_id("unit_id", &unit.unit_id) {
            problems.push(problem(e.message));
            continue;
        }
        if let Some(there) = units.get(&unit.unit_id) {
            let same = there.parent_id == unit.parent_id
                && there.name == unit.name.trim()
                && there.kind == Some(unit.kind);
            if same {
                already_present += 1;
            } else {
                problems.push(problem(format!(
                    "单位 {} 已存在（{}），与文件中的内容不同；已有单位不能修改",
                    unit.unit_id, there.name
                )));
            }
            continue;
        }
        let parent = match &unit.parent_id {
            Some(id) => match units.get(id) {
                Some(parent) => Some(parent),
                None => {
                    problems.push(problem(format!(
                        "上级单位 {id} 不存在（须已在系统中，或在文件中排在本单位之前）"
                    )));
                    continue;
                }
            },
            None => None,
        };
        match add_unit(&UnitState::default(), unit, parent) {
            Ok(events) => {
                units.insert(unit.unit_id.clone(), folded(events));
                commands.push((
                    Uuid::new_v5(
                        &DIRECTORY_IMPORT_NAMESPACE,
                        format!("unit:{}", unit.unit_id).as_bytes(),
                    ),
                    Command::AddUnit(unit.clone()),
                ));
            }
            Err(e) => problems.push(problem(e.message)),
        }
    }
    let mut leaders_seen = current.leaders.clone();
    for (i, leader) in file.leaders.iter().enumerate() {
        let problem = |message: String| DirectoryProblem {
            entry: format!("leaders[{i}]"),
            id: leader.leader_id.clone(),
            message,
        };
        if let Err(e) = check_token_id("leader_id", &leader.leader_id) {
            problems.push(problem(e.message));
            continue;
        }
        if let Some(there) = leaders_seen.get(&leader.leader_id) {
            let same = there.unit_id == leader.unit_id
                && there.name == leader.name.trim()
                && there.title == leader.title.trim()
                && there.level == Some(leader.level);
            if same {
                already_present += 1;
            } else {
                problems.push(problem(format!(
                    "领导 {} 已存在（{}），与文件中的内容不同；已有领导不能修改",
                    leader.leader_id, there.name
                )));
            }
            continue;
        }
        if !units.contains_key(&leader.unit_id) {
            problems.push(problem(format!("所在单位 {} 不存在", leader.unit_id)));
            continue;
        }
        match add_leader(&LeaderState::default(), leader) {
            Ok(events) => {
                leaders_seen.insert(leader.leader_id.clone(), folded(events));
                commands.push((
                    Uuid::new_v5(
                        &DIRECTORY_IMPORT_NAMESPACE,
                        format!("leader:{}", leader.leader_id).as_bytes(),
                    ),
                    Command::AddLeader(leader.clone()),
                ));
            }
            Err(e) => problems.push(problem(e.message)),
        }
    }
    if problems.is_empty() {
        Ok(DirectoryPlan {
            commands,
            already_present,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::org::{LeaderView, UnitView};

    fn unit_view(id: &str, parent: Option<&str>, name: &str, kind: &str) -> UnitView {
        UnitView {
            unit_id: id.into(),
            parent_id: parent.map(str::to_owned),
            name: name.into(),
            kind: kind.into(),
        }
    }

    fn unit(id: &str, parent: Option<&str>, name: &str, kind: UnitKind) -> AddUnit {
        AddUnit {
            unit_id: id.into(),
            parent_id: parent.map(str::to_owned),
            name: name.into(),
            kind,
        }
    }

    fn file() -> DirectoryFile {
        DirectoryFile {
            units: vec![
                unit("xm", None, "厦门市", UnitKind::City),
                unit("xm-siming", Some("xm"), "思明区", UnitKind::District),
            ],
            leaders: vec![AddLeader {
                leader_id: "ldr-1".into(),
                unit_id: "xm-siming".into(),
                name: "李明".into(),
                title: "区委副书记".into(),
                level: LeaderLevel::District,
            }],
        }
    }

    #[test]
    fn a_file_plans_its_commands_and_a_second_import_adds_nothing() {
        let Ok(first) = plan(&CurrentDirectory::default(), &file()) else {
            panic!("a valid file");
        };
        assert_eq!((first.commands.len(), first.already_present), (3, 0));
        let current = CurrentDirectory::from_view(&OrgView {
            units: vec![
                unit_view("xm", None, "厦门市", "city"),
                unit_view("xm-siming", Some("xm"), "思明区", "district"),
            ],
            leaders: vec![LeaderView {
                leader_id: "ldr-1".into(),
                unit_id: "xm-siming".into(),
                name: "李明".into(),
                title: "区委副书记".into(),
                level: "district".into(),
            }],
        });
        assert_eq!(current.to_file(), file(), "export gives the file back");
        let Ok(again) = plan(&current, &file()) else {
            panic!("the same file again");
        };
        assert_eq!((again.commands.len(), again.already_present), (0, 3));
    }

    #[test]
    fn every_problem_is_reported_and_nothing_planned() {
        let mut bad = file();
        bad.units
            .push(unit("xm-bad id", Some("xm"), "坏", UnitKind::District));
        bad.units
            .push(unit("xm-town", Some("xm"), "某街道", UnitKind::Town));
        bad.units
            .push(unit("xm-orphan", Some("nowhere"), "孤", UnitKind::District));
        bad.leaders.push(AddLeader {
            leader_id: "ldr-2".into(),
            unit_id: "nowhere".into(),
            name: "王芳".into(),
            title: "镇长".into(),
            level: LeaderLevel::Town,
        });
        let current = CurrentDirectory::from_view(&OrgView {
            units: vec![unit_view("xm", None, "厦门", "city")],
            leaders: Vec::new(),
        });
        let Err(problems) = plan(&current, &bad) else {
            panic!("problems expected");
        };
        let entries: Vec<&str> = problems.iter().map(|p| p.entry.as_str()).collect();
        assert_eq!(
            entries,
            ["units[0]", "units[2]", "units[3]", "units[4]", "leaders[1]"],
            "{problems:?}"
        );
    }
}
