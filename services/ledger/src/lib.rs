//! The ledger (台账) in and out. Coordinators arrive with their cases in Excel; this crate reads
//! such a ledger (XLSX, or CSV in UTF-8 or GBK; columns matched by header name against the
//! template the system offers, the header found below any title rows), validates every row before
//! anything is written — reporting each problem with its row and column — and turns each case
//! (one row per petitioner, rows sharing a case number) into the commands that register the case,
//! assign its leader and set its lead unit. The case id is derived from the case number, so
//! importing the same ledger again finds its cases already there, checks that they still agree
//! with what the system holds, and adds nothing. The same template is how the ledger is exported,
//! so export then import round-trips.

mod checks;
mod compare;
mod existing;
mod export;
mod read;

use checks::{
    check_case_number, check_channel, check_first_filed, check_group_size, check_later_rows,
    check_list_source, check_named, check_place,
};
use compare::{LedgerValues, compare};
pub use existing::{
    Existing, ExistingCase, ExistingPetitioner, OUTSIDE_SCOPE_CASE_NUMBER, OUTSIDE_SCOPE_ID_NUMBER,
};
pub use export::{LedgerRow, table};

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use chrono::NaiveDate;
use serde::Serialize;
use uuid::Uuid;
use zhzj_export::{Cell, Table};
use zhzj_proto::Command;
use zhzj_proto::commands::{AssignLeader, RegisterCase, SetResponsibleUnits};
use zhzj_proto::events::{Channel, ListSource, Petitioner};

use read::{RawRow, Value};
pub use zhzj_proto::names::normalize_name;

/// Namespace of the case ids the ledger derives from case numbers.
const LEDGER_NAMESPACE: Uuid = Uuid::from_u128(0x7c1d_02e4_8a6b_4f39_b5d0_3e91_a4c7_2f68);

/// The template's columns, in order; the required ones are marked.
pub const COLUMNS: [(&str, bool); 15] = [
    ("案件编号", true),
    ("信访人姓名", true),
    ("身份证号", false),
    ("联系电话", false),
    ("住址", false),
    ("诉求", true),
    ("类别", true),
    ("区", true),
    ("镇街", false),
    ("信访渠道", true),
    ("首次信访日期", true),
    ("列入方式", true),
    ("涉及人数", false),
    ("包案领导", false),
    ("责任单位", false),
];

/// The columns that describe the case rather than one petitioner: every row of a case carries
/// the same value, or leaves the cell empty.
const CASE_COLUMNS: [&str; 10] = [
    "诉求",
    "类别",
    "区",
    "镇街",
    "信访渠道",
    "首次信访日期",
    "列入方式",
    "涉及人数",
    "包案领导",
    "责任单位",
];

/// Most rows one import takes.
pub const MAX_ROWS: usize = 20_000;

/// A ledger file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An XLSX workbook (the first sheet is read).
    Xlsx,
    /// CSV in UTF-8 (a byte-order mark is allowed) or in GBK / GB18030.
    Csv,
}

/// One problem found in a ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RowError {
    /// The spreadsheet row, counted from 1 like the spreadsheet does (title rows above the
    /// header included); 0 when the whole file cannot be read.
    pub row: usize,
    /// The column's header, when the problem is in one cell.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

fn error(row: usize, column: &str, message: impl Into<String>) -> RowError {
    RowError {
        row,
        column: Some(column.to_owned()),
        message: message.into(),
    }
}

/// The directory a ledger is checked against, as the read store has it. Names are matched after
/// [`normalize_name`] on both sides, so the keys may be given as stored.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Districts: name → unit id.
    pub districts: HashMap<String, String>,
    /// Towns: (district id, name) → unit id.
    pub towns: HashMap<(String, String), String>,
    /// Every unit: name → unit ids (more than one when the name is ambiguous).
    pub units: HashMap<String, Vec<String>>,
    /// Leaders: name → leader ids.
    pub leaders: HashMap<String, Vec<String>>,
}

/// A valid case, ready to become commands.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerCase {
    /// Its first spreadsheet row.
    pub row: usize,
    /// The case id, derived from the case number.
    pub case_id: Uuid,
    /// The registration, with every petitioner in row order.
    pub register: RegisterCase,
    /// The owning leader.
    pub leader_id: Option<String>,
    /// The lead unit.
    pub unit_id: Option<String>,
}

impl LedgerCase {
    /// The commands the case becomes, each with a command id derived from the case, so a retry
    /// of a partly applied import lands each once.
    pub fn commands(&self) -> Vec<(Uuid, Command)> {
        let mut commands = vec![(
            Uuid::new_v5(&self.case_id, b"register"),
            Command::RegisterCase(self.register.clone()),
        )];
        if let Some(leader_id) = &self.leader_id {
            commands.push((
                Uuid::new_v5(&self.case_id, b"leader"),
                Command::AssignLeader(AssignLeader {
                    case_id: self.case_id,
                    leader_id: leader_id.clone(),
                    reason: None,
                }),
            ));
        }
        if let Some(unit_id) = &self.unit_id {
            commands.push((
                Uuid::new_v5(&self.case_id, b"units"),
                Command::SetResponsibleUnits(SetResponsibleUnits {
                    case_id: self.case_id,
                    lead_unit_id: unit_id.clone(),
                    assisting_unit_ids: Vec::new(),
                    handler: None,
                }),
            ));
        }
        commands
    }
}

/// The outcome of checking a ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Cases to import.
    pub cases: Vec<LedgerCase>,
    /// Cases this ledger imported before, found to agree with what the system holds.
    pub already_imported: usize,
}

/// The id of the case a ledger row with this case number registers.
pub fn case_id_for(case_number: &str) -> Uuid {
    Uuid::new_v5(&LEDGER_NAMESPACE, case_number.as_bytes())
}

fn channel(label: &str) -> Option<Channel> {
    [
        Channel::Online,
        Channel::Letter,
        Channel::Visit,
        Channel::Phone,
    ]
    .into_iter()
    .find(|c| c.label() == label)
}

/// The label of a list source in the ledger.
pub fn list_source_label(source: ListSource) -> &'static str {
    match source {
        ListSource::NewPetition => "新发信访",
        ListSource::HandedDown => "上级交办",
        ListSource::Screening => "滚动排查",
    }
}

fn list_source(label: &str) -> Option<ListSource> {
    [
        ListSource::NewPetition,
        ListSource::HandedDown,
        ListSource::Screening,
    ]
    .into_iter()
    .find(|s| list_source_label(*s) == label)
}

fn parse_date(value: &Value) -> Option<NaiveDate> {
    match value {
        Value::Date(d) => Some(*d),
        other => {
            let text = other.text();
            ["%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(&text, f).ok())
        }
    }
}

/// Whether a later row's case-level cell says the same as the case's first row.
fn same_value(column: &str, first: Option<&Value>, later: &Value) -> bool {
    let Some(first) = first else {
        return false;
    };
    match column {
        "区" | "镇街" | "包案领导" | "责任单位" => {
            normalize_name(&first.text()) == normalize_name(&later.text())
        }
        "首次信访日期" => match (parse_date(first), parse_date(later)) {
            (Some(a), Some(b)) => a == b,
            _ => first.text() == later.text(),
        },
        "涉及人数" => match (first.text().parse::<u32>(), later.text().parse::<u32>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => first.text() == later.text(),
        },
        _ => first.text() == later.text(),
    }
}

/// The directory with every name in its normal form, and unit names by id for messages.
struct Lookup {
    districts: HashMap<String, Vec<String>>,
    towns: HashMap<(String, String), Vec<String>>,
    units: HashMap<String, Vec<String>>,
    leaders: HashMap<String, Vec<String>>,
    names: HashMap<String, String>,
}

fn add<K: Eq + Hash>(map: &mut HashMap<K, Vec<String>>, key: K, id: &str) {
    let ids = map.entry(key).or_default();
    if !ids.iter().any(|i| i == id) {
        ids.push(id.to_owned());
    }
}

impl Lookup {
    fn new(directory: &Directory) -> Self {
        let mut lookup = Self {
            districts: HashMap::new(),
            towns: HashMap::new(),
            units: HashMap::new(),
            leaders: HashMap::new(),
            names: HashMap::new(),
        };
        for (name, id) in &directory.districts {
            add(&mut lookup.districts, normalize_name(name), id);
            lookup.names.insert(id.clone(), name.clone());
        }
        for ((district, name), id) in &directory.towns {
            add(
                &mut lookup.towns,
                (district.clone(), normalize_name(name)),
                id,
            );
            lookup.names.insert(id.clone(), name.clone());
        }
        for (pool, into) in [
            (&directory.units, &mut lookup.units),
            (&directory.leaders, &mut lookup.leaders),
        ] {
            for (name, ids) in pool {
                for id in ids {
                    add(into, normalize_name(name), id);
                }
            }
        }
        lookup
    }

    /// A unit's name for a message (its id when the directory does not have it).
    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.names.get(id).map_or(id, String::as_str)
    }
}

/// The one id a name stands for in `pool`, or an error at `row` and `column`.
fn unique<K: Eq + Hash>(
    errors: &mut Vec<RowError>,
    (row, column): (usize, &str),
    pool: &HashMap<K, Vec<String>>,
    key: &K,
    name: &str,
    what: &str,
    missing: String,
) -> Option<String> {
    match pool.get(key).map(Vec::as_slice) {
        Some([id]) => Some(id.clone()),
        Some([_, _, ..]) => {
            errors.push(error(
                row,
                column,
                format!("有多个名为“{name}”的{what}，无法确定"),
            ));
            None
        }
        _ => {
            errors.push(error(row, column, missing));
            None
        }
    }
}

/// What became of one case of a ledger.
enum Outcome {
    New(Box<LedgerCase>),
    AlreadyImported,
    Invalid,
}

/// Reads and checks a ledger: every case valid, or every problem found.
pub fn check(
    bytes: &[u8],
    format: Format,
    directory: &Directory,
    existing: &Existing,
    today: NaiveDate,
) -> Result<Checked, Vec<RowError>> {
    let rows = read::read_rows(bytes, format)?;
    let lookup = Lookup::new(directory);
    // Rows sharing a case number are one case, one petitioner a row, in the order each number
    // first appears; a row without a number stands alone (and is reported).
    let mut groups: Vec<Vec<&RawRow>> = Vec::new();
    let mut by_number: HashMap<String, usize> = HashMap::new();
    for raw in &rows {
        let group = match raw.1.get("案件编号").map(Value::text) {
            Some(number) => match by_number.entry(number) {
                Entry::Occupied(at) => groups.get_mut(*at.get()),
                Entry::Vacant(at) => {
                    at.insert(groups.len());
                    None
                }
            },
            None => None,
        };
        match group {
            Some(group) => group.push(raw),
            None => groups.push(vec![raw]),
        }
    }
    let mut errors = Vec::new();
    let mut cases = Vec::new();
    let mut already_imported = 0;
    for group in &groups {
        match check_case(group, &lookup, existing, today, &mut errors) {
            Outcome::New(case) => cases.push(*case),
            Outcome::AlreadyImported => already_imported += 1,
            Outcome::Invalid => {}
        }
    }
    if errors.is_empty() {
        Ok(Checked {
            cases,
            already_imported,
        })
    } else {
        // By row, and within a row in the template's column order.
        errors.sort_by_key(|e| {
            let column = e.column.as_deref().map_or(0, |c| {
                COLUMNS
                    .iter()
                    .position(|(name, _)| *name == c)
                    .map_or(COLUMNS.len() + 1, |i| i + 1)
            });
            (e.row, column)
        });
        Err(errors)
    }
}

/// Checks one case: its first row for the case-level columns, each of its rows for a petitioner,
/// its later rows for agreeing with the first, and, if it was imported before, what the system
/// holds for it.
fn check_case(
    group: &[&RawRow],
    lookup: &Lookup,
    existing: &Existing,
    today: NaiveDate,
    errors: &mut Vec<RowError>,
) -> Outcome {
    let Some(&&(row, ref cells)) = group.first() else {
        return Outcome::Invalid;
    };
    let before = errors.len();
    let text = |column: &str| cells.get(column).map(Value::text);
    let required = |errors: &mut Vec<RowError>, column: &str| {
        let value = text(column);
        if value.is_none() {
            errors.push(error(row, column, format!("“{column}”不能为空")));
        }
        value
    };
    let number = required(errors, "案件编号");
    let case_id = number.as_deref().map(case_id_for);
    check_later_rows(group, errors);
    let (imported_before, stored) = match (&number, case_id) {
        (Some(number), Some(case_id)) => check_case_number(row, number, case_id, existing, errors),
        _ => (false, None),
    };
    let petitioners = check_petitioners(group, number.as_deref(), existing, errors);
    let matter = required(errors, "诉求");
    let category = required(errors, "类别");
    let district_name = required(errors, "区").map(|n| normalize_name(&n));
    let channel_label = required(errors, "信访渠道");
    let first_filed = cells.get("首次信访日期");
    let source_label = required(errors, "列入方式");
    let (district_id, town_id) = check_place(
        row,
        district_name.as_deref(),
        text("镇街").map(|t| normalize_name(&t)),
        lookup,
        existing,
        errors,
    );
    let channel = channel_label
        .as_deref()
        .and_then(|label| check_channel(row, label, errors));
    let list_source = source_label
        .as_deref()
        .and_then(|label| check_list_source(row, label, errors));
    let first_filed_on = check_first_filed(row, first_filed, today, errors);
    let group_size = check_group_size(row, text("涉及人数"), errors);
    let leader_id = check_named((row, cells), "包案领导", &lookup.leaders, "领导", errors);
    let unit_id = check_named((row, cells), "责任单位", &lookup.units, "单位", errors);
    if let (Some(stored), Some(number)) = (stored, &number) {
        let ledger = LedgerValues {
            matter: matter.as_deref(),
            category: category.as_deref(),
            district_id: district_id.as_deref(),
            town_id: town_id.as_ref().map(Option::as_deref),
            channel,
            first_filed_on,
            list_source,
            group_size: group_size.map(|n| n.unwrap_or(1)),
        };
        compare(stored, number, row, &ledger, &petitioners, lookup, errors);
    }
    if errors.len() > before {
        return Outcome::Invalid;
    }
    if imported_before {
        return Outcome::AlreadyImported;
    }
    let (
        Some(case_id),
        Some(number),
        Some(matter),
        Some(category),
        Some(district_id),
        Some(town_id),
        Some(channel),
        Some(first_filed_on),
        Some(list_source),
        Some(group_size),
    ) = (
        case_id,
        number,
        matter,
        category,
        district_id,
        town_id,
        channel,
        first_filed_on,
        list_source,
        group_size,
    )
    else {
        return Outcome::Invalid;
    };
    Outcome::New(Box::new(LedgerCase {
        row,
        case_id,
        register: RegisterCase {
            case_id: Some(case_id),
            case_number: Some(number),
            petitioners: petitioners.into_iter().filter_map(|(_, p)| p).collect(),
            matter,
            category,
            district_id,
            town_id,
            channel,
            first_filed_on,
            list_source,
            group_size,
        },
        leader_id,
        unit_id,
    }))
}

/// Each row's petitioner (None for a row with a problem in its petitioner columns).
fn check_petitioners(
    group: &[&RawRow],
    number: Option<&str>,
    existing: &Existing,
    errors: &mut Vec<RowError>,
) -> Vec<(usize, Option<Petitioner>)> {
    let mut ids_seen: HashMap<String, usize> = HashMap::new();
    let mut petitioners = Vec::with_capacity(group.len());
    for &&(row, ref cells) in group {
        let before = errors.len();
        let text = |column: &str| cells.get(column).map(Value::text);
        let name = text("信访人姓名")
            .map(|n| normalize_name(&n))
            .filter(|n| !n.is_empty());
        if name.is_none() {
            errors.push(error(row, "信访人姓名", "“信访人姓名”不能为空"));
        }
        let id_number = match cells.get("身份证号") {
            Some(Value::Number(_)) => {
                errors.push(error(
                    row,
                    "身份证号",
                    "身份证号须以文本格式填写（数字格式会丢失末位）",
                ));
                None
            }
            Some(value) => {
                let id = value.text().to_ascii_uppercase();
                if !zhzj_proto::ids::is_valid_resident_id(&id) {
                    errors.push(error(
                        row,
                        "身份证号",
                        format!("身份证号 {id} 格式或校验位不正确"),
                    ));
                } else if let Some(first) = ids_seen.get(&id) {
                    errors.push(error(
                        row,
                        "身份证号",
                        format!("身份证号 {id} 与第 {first} 行同一案件的信访人重复"),
                    ));
                } else if let Some(on) = existing.id_numbers.get(&id)
                    && Some(on.as_str()) != number
                {
                    if existing.outside_scope.contains(on) {
                        errors.push(error(row, "身份证号", OUTSIDE_SCOPE_ID_NUMBER));
                    } else {
                        errors.push(error(
                        row,
                        "身份证号",
                        format!("与已有案件 {on} 的信访人身份证号相同，疑似重复（请在该案件上登记重复信访）"),
                    ));
                    }
                }
                ids_seen.entry(id.clone()).or_insert(row);
                Some(id)
            }
            None => None,
        };
        let phone = text("联系电话");
        if let Some(phone) = &phone
            && (phone.len() < 5
                || !phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | ' ')))
        {
            errors.push(error(
                row,
                "联系电话",
                format!("联系电话 {phone} 格式不正确"),
            ));
        }
        let petitioner = name
            .filter(|_| errors.len() == before)
            .map(|name| Petitioner {
                name,
                id_number,
                phone,
                address: text("住址"),
            });
        petitioners.push((row, petitioner));
    }
    petitioners
}

#[cfg(test)]
mod tests;
