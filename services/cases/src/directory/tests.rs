//! The directory decisions, given/when/then: a unit sits under a parent of the right kind, and is
//! added once.

use zhzj_proto::{
    DirectoryEvent, ErrorKind,
    commands::AddUnit,
    events::{UnitAdded, UnitKind},
};

use super::*;
use crate::given::given;

fn add(unit_id: &str, parent_id: Option<&str>, kind: UnitKind) -> AddUnit {
    AddUnit {
        unit_id: unit_id.into(),
        parent_id: parent_id.map(str::to_owned),
        name: format!("单位{unit_id}"),
        kind,
    }
}

fn added(command: &AddUnit) -> DirectoryEvent {
    DirectoryEvent::UnitAdded(UnitAdded {
        unit_id: command.unit_id.clone(),
        parent_id: command.parent_id.clone(),
        name: command.name.clone(),
        kind: command.kind,
    })
}

#[test]
fn a_district_sits_under_the_city_a_town_under_a_district_and_each_is_added_once() {
    let city = given::<UnitState>([added(&add("xm", None, UnitKind::City))]);
    let district = given::<UnitState>([added(&add("siming", Some("xm"), UnitKind::District))]);
    let town_under_city = add("lujiang", Some("xm"), UnitKind::Town);
    given::<UnitState>(Vec::<DirectoryEvent>::new())
        .when(|unit| add_unit(unit, &town_under_city, Some(city.state())))
        .then_refused(ErrorKind::Invalid, "不能作为该类单位的上级单位");
    let orphan = add("siming", None, UnitKind::District);
    given::<UnitState>(Vec::<DirectoryEvent>::new())
        .when(|unit| add_unit(unit, &orphan, None))
        .then_refused(ErrorKind::Invalid, "须指定上级单位");
    let town = add("lujiang", Some("siming"), UnitKind::Town);
    given::<UnitState>(Vec::<DirectoryEvent>::new())
        .when(|unit| add_unit(unit, &town, Some(district.state())))
        .then([added(&town)])
        .when(|unit| add_unit(unit, &town, Some(district.state())))
        .then_refused(ErrorKind::Conflict, "已存在");
}
