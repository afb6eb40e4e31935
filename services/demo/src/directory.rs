//! The demo's org directory: unit and leader ids, and the commands that add them.

use crate::DemoStep;
use crate::rng::*;
use crate::tables::*;
use chrono::{DateTime, Utc};
use zhzj_proto::Command;
use zhzj_proto::commands::{AddLeader, AddUnit};
use zhzj_proto::events::{LeaderLevel, UnitKind};

pub(crate) fn district_unit_id(district: &District) -> String {
    format!("xm-{}", district.key)
}

pub(crate) fn town_unit_id(district: &District, town_key: &str) -> String {
    format!("xm-{}-{town_key}", district.key)
}

pub(crate) fn city_leader_ids() -> Vec<String> {
    (1..=CITY_LEADER_TITLES.len())
        .map(|i| format!("ldr-xm-{i}"))
        .collect()
}

pub(crate) fn district_leader_ids(district: &District) -> Vec<String> {
    (1..=DISTRICT_LEADER_TITLES.len())
        .map(|i| format!("ldr-{}-{i}", district.key))
        .collect()
}

pub(crate) fn town_leader_id(district: &District, town_key: &str) -> String {
    format!("ldr-{}-{town_key}-1", district.key)
}

// ---------------------------------------------------------------------------------------------
// The directory
// ---------------------------------------------------------------------------------------------

pub(crate) fn directory_steps(at: DateTime<Utc>) -> Vec<DemoStep> {
    unit_commands()
        .into_iter()
        .chain(leader_commands())
        .map(|(name, command)| DemoStep {
            at,
            command_id: demo_uuid(&name),
            command,
        })
        .collect()
}

pub(crate) fn add_unit(
    unit_id: String,
    parent: Option<String>,
    name: &str,
    kind: UnitKind,
) -> (String, Command) {
    (
        format!("demo:unit:{unit_id}"),
        Command::AddUnit(AddUnit {
            unit_id,
            parent_id: parent,
            name: name.to_owned(),
            kind,
        }),
    )
}

/// The city, each district followed by its towns, then the departments.
pub(crate) fn unit_commands() -> Vec<(String, Command)> {
    let mut units = vec![add_unit(CITY_ID.to_owned(), None, "厦门市", UnitKind::City)];
    for district in DISTRICTS {
        let district_id = district_unit_id(district);
        units.push(add_unit(
            district_id.clone(),
            Some(CITY_ID.to_owned()),
            district.name,
            UnitKind::District,
        ));
        for &(key, name) in district.towns {
            units.push(add_unit(
                town_unit_id(district, key),
                Some(district_id.clone()),
                name,
                UnitKind::Town,
            ));
        }
    }
    for &(id, name) in DEPARTMENTS {
        units.push(add_unit(
            id.to_owned(),
            Some(CITY_ID.to_owned()),
            name,
            UnitKind::Department,
        ));
    }
    units
}

/// Leaders `(id, unit, title, level)` in directory order; names are given by position.
pub(crate) fn leader_commands() -> Vec<(String, Command)> {
    let mut leaders: Vec<(String, String, String, LeaderLevel)> = Vec::new();
    for (id, title) in city_leader_ids().into_iter().zip(CITY_LEADER_TITLES) {
        leaders.push((
            id,
            CITY_ID.to_owned(),
            (*title).to_owned(),
            LeaderLevel::City,
        ));
    }
    for district in DISTRICTS {
        for (id, title) in district_leader_ids(district)
            .into_iter()
            .zip(DISTRICT_LEADER_TITLES)
        {
            let title = format!("{}{title}", district.short);
            leaders.push((id, district_unit_id(district), title, LeaderLevel::District));
        }
        for &(key, name) in district.towns {
            leaders.push((
                town_leader_id(district, key),
                town_unit_id(district, key),
                town_leader_title(name),
                LeaderLevel::Town,
            ));
        }
    }
    leaders
        .into_iter()
        .enumerate()
        .map(|(k, (leader_id, unit_id, title, level))| {
            (
                format!("demo:leader:{leader_id}"),
                Command::AddLeader(AddLeader {
                    leader_id,
                    unit_id,
                    name: official_name(k),
                    title,
                    level,
                }),
            )
        })
        .collect()
}

/// A town has a party committee (党委), a street a party working committee (党工委).
pub(crate) fn town_leader_title(town_name: &str) -> String {
    if town_name.ends_with('镇') {
        format!("{town_name}党委书记")
    } else {
        format!("{town_name}党工委书记")
    }
}

/// The invented name of the `k`th leader.
pub(crate) fn official_name(k: usize) -> String {
    let surname = OFFICIAL_SURNAMES[k % OFFICIAL_SURNAMES.len()];
    let given = OFFICIAL_GIVEN_NAMES[(k * 7) % OFFICIAL_GIVEN_NAMES.len()];
    format!("{surname}{given}")
}
