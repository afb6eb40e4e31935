//! The ledger (台账) in and out. Coordinators arrive with their cases in Excel; this crate reads
//! such a ledger (XLSX or CSV, columns matched by header name against the template the system
//! offers), validates every row before anything is written — reporting each problem with its row
//! and column — and turns each valid row into the commands that register the case, assign its
//! leader and set its lead unit. The case id is derived from the case number, so importing the
//! same ledger again finds its cases already there and adds nothing. The same template is how the
//! ledger is exported, so export then import round-trips.

use std::collections::{HashMap, HashSet};

use calamine::{Data, Reader};
use chrono::NaiveDate;
use serde::Serialize;
use uuid::Uuid;
use zhzj_export::{Cell, Table};
use zhzj_proto::Command;
use zhzj_proto::commands::{AssignLeader, RegisterCase, SetResponsibleUnits};
use zhzj_proto::events::{Channel, ListSource, Petitioner};

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

/// Most rows one import takes.
pub const MAX_ROWS: usize = 20_000;

/// A ledger file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An XLSX workbook (the first sheet is read).
    Xlsx,
    /// CSV in UTF-8 (a byte-order mark is allowed).
    Csv,
}

/// One problem found in a ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RowError {
    /// The spreadsheet row (the header is row 1).
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

/// The directory a ledger is checked against, as the read store has it.
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

/// What already exists, for the duplicate checks.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    /// Case number → case id.
    pub case_numbers: HashMap<String, String>,
    /// Petitioner ID number → the case number it is on.
    pub id_numbers: HashMap<String, String>,
    /// The units the importing user may register cases in (none: everywhere).
    pub scope: Option<HashSet<String>>,
}

/// A valid row, ready to become commands.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerCase {
    /// Its spreadsheet row.
    pub row: usize,
    /// The case id, derived from the case number.
    pub case_id: Uuid,
    /// The registration.
    pub register: RegisterCase,
    /// The owning leader.
    pub leader_id: Option<String>,
    /// The lead unit.
    pub unit_id: Option<String>,
}

impl LedgerCase {
    /// The commands the row becomes, each with a command id derived from the case, so a retry
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
    /// Rows to import.
    pub cases: Vec<LedgerCase>,
    /// Rows whose case this ledger imported before.
    pub already_imported: usize,
}

/// The id of the case a ledger row with this case number registers.
pub fn case_id_for(case_number: &str) -> Uuid {
    Uuid::new_v5(&LEDGER_NAMESPACE, case_number.as_bytes())
}

/// A cell as read.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Number(f64),
    Date(NaiveDate),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Self::Text(t) => t.trim().to_owned(),
            Self::Number(n) if n.fract() == 0.0 => format!("{n:.0}"),
            Self::Number(n) => n.to_string(),
            Self::Date(d) => d.to_string(),
        }
    }
}

/// A row as read: its number and its cells by header.
type RawRow = (usize, HashMap<&'static str, Value>);

/// Reads the header and rows of a ledger.
fn read_rows(bytes: &[u8], format: Format) -> Result<Vec<RawRow>, Vec<RowError>> {
    let grid: Vec<Vec<Value>> = match format {
        Format::Csv => {
            let text = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(text);
            let mut grid = Vec::new();
            for (i, record) in reader.records().enumerate() {
                let record = record.map_err(|e| {
                    vec![RowError {
                        row: i + 1,
                        column: None,
                        message: format!("CSV 无法读取（须为 UTF-8 编码）：{e}"),
                    }]
                })?;
                grid.push(record.iter().map(|c| Value::Text(c.to_owned())).collect());
            }
            grid
        }
        Format::Xlsx => {
            let unreadable = |e: String| {
                vec![RowError {
                    row: 0,
                    column: None,
                    message: format!("不是可读取的 XLSX 工作簿：{e}"),
                }]
            };
            let mut workbook: calamine::Xlsx<_> = calamine::Xlsx::new(std::io::Cursor::new(bytes))
                .map_err(|e| unreadable(e.to_string()))?;
            let range = workbook
                .worksheet_range_at(0)
                .ok_or_else(|| unreadable("工作簿没有工作表".into()))?
                .map_err(|e| unreadable(e.to_string()))?;
            range
                .rows()
                .map(|row| {
                    row.iter()
                        .map(|cell| match cell {
                            Data::String(s) => Value::Text(s.clone()),
                            Data::Float(f) => Value::Number(*f),
                            #[allow(clippy::cast_precision_loss)]
                            Data::Int(i) => Value::Number(*i as f64),
                            Data::DateTime(d) => d.as_datetime().map_or_else(
                                || Value::Text(d.to_string()),
                                |t| Value::Date(t.date()),
                            ),
                            Data::DateTimeIso(s) => Value::Text(s.clone()),
                            Data::Bool(b) => Value::Text(b.to_string()),
                            _ => Value::Text(String::new()),
                        })
                        .collect()
                })
                .collect()
        }
    };
    let Some(header) = grid.first() else {
        return Err(vec![RowError {
            row: 1,
            column: None,
            message: "文件是空的：第 1 行须为表头".into(),
        }]);
    };
    let positions: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, v)| (v.text(), i))
        .collect();
    let missing: Vec<RowError> = COLUMNS
        .iter()
        .filter(|(name, required)| *required && !positions.contains_key(*name))
        .map(|(name, _)| {
            error(
                1,
                name,
                format!("缺少必填列“{name}”（请使用系统提供的模板）"),
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    if grid.len() - 1 > MAX_ROWS {
        return Err(vec![RowError {
            row: MAX_ROWS + 2,
            column: None,
            message: format!("一次最多导入 {MAX_ROWS} 行"),
        }]);
    }
    Ok(grid
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, cells)| cells.iter().any(|c| !c.text().is_empty()))
        .map(|(i, cells)| {
            let row = COLUMNS
                .iter()
                .filter_map(|(name, _)| {
                    let cell = cells.get(*positions.get(*name)?)?;
                    (!cell.text().is_empty()).then(|| (*name, cell.clone()))
                })
                .collect();
            (i + 1, row)
        })
        .collect())
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

/// Reads and checks a ledger: every row valid, or every problem found.
pub fn check(
    bytes: &[u8],
    format: Format,
    directory: &Directory,
    existing: &Existing,
    today: NaiveDate,
) -> Result<Checked, Vec<RowError>> {
    let rows = read_rows(bytes, format)?;
    let mut errors = Vec::new();
    let mut cases = Vec::new();
    let mut already_imported = 0;
    let mut numbers_seen: HashMap<String, usize> = HashMap::new();
    for (row, cells) in &rows {
        let row = *row;
        let text = |column: &str| cells.get(column).map(Value::text);
        let before = errors.len();
        let mut required = |column: &str| match text(column) {
            Some(value) => Some(value),
            None => {
                errors.push(error(row, column, format!("“{column}”不能为空")));
                None
            }
        };
        let number = required("案件编号");
        let name = required("信访人姓名");
        let matter = required("诉求");
        let category = required("类别");
        let district_name = required("区");
        let channel_label = required("信访渠道");
        let source_label = required("列入方式");
        let first_filed = cells.get("首次信访日期");
        if first_filed.is_none() {
            errors.push(error(row, "首次信访日期", "“首次信访日期”不能为空"));
        }
        let case_id = number.as_deref().map(case_id_for);
        if let (Some(number), Some(case_id)) = (&number, case_id) {
            if let Some(first) = numbers_seen.insert(number.clone(), row) {
                errors.push(error(
                    row,
                    "案件编号",
                    format!("案件编号 {number} 与第 {first} 行重复"),
                ));
            }
            match existing.case_numbers.get(number) {
                Some(id) if *id == case_id.to_string() => {
                    // Imported from a ledger before: nothing to do.
                    already_imported += 1;
                    continue;
                }
                Some(_) => errors.push(error(
                    row,
                    "案件编号",
                    format!("案件编号 {number} 已有案件登记，疑似重复"),
                )),
                None => {}
            }
        }
        if number.as_ref().is_some_and(|n| n.chars().count() > 64) {
            errors.push(error(row, "案件编号", "案件编号最长 64 个字符"));
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
                } else if let Some(on) = existing.id_numbers.get(&id) {
                    errors.push(error(
                        row,
                        "身份证号",
                        format!("与已有案件 {on} 的信访人身份证号相同，疑似重复（请在该案件上登记重复信访）"),
                    ));
                }
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
        let district_id = district_name.as_ref().and_then(|name| {
            let found = directory.districts.get(name).cloned();
            if found.is_none() {
                errors.push(error(row, "区", format!("没有名为“{name}”的区")));
            }
            found
        });
        let town_id = match (text("镇街"), &district_id) {
            (Some(town), Some(district)) => {
                let found = directory
                    .towns
                    .get(&(district.clone(), town.clone()))
                    .cloned();
                if found.is_none() {
                    errors.push(error(
                        row,
                        "镇街",
                        format!(
                            "{}没有名为“{town}”的镇街",
                            district_name.clone().unwrap_or_default()
                        ),
                    ));
                }
                found
            }
            _ => None,
        };
        if let (Some(scope), Some(district)) = (&existing.scope, &district_id) {
            let place = town_id.as_ref().unwrap_or(district);
            if !scope.contains(place) {
                errors.push(error(row, "区", "不在您的管辖范围内，不能导入"));
            }
        }
        let channel = channel_label.as_deref().and_then(|label| {
            let found = channel(label);
            if found.is_none() {
                errors.push(error(
                    row,
                    "信访渠道",
                    format!("信访渠道须为 网上、来信、来访、电话，收到“{label}”"),
                ));
            }
            found
        });
        let source = source_label.as_deref().and_then(|label| {
            let found = list_source(label);
            if found.is_none() {
                errors.push(error(
                    row,
                    "列入方式",
                    format!("列入方式须为 新发信访、上级交办、滚动排查，收到“{label}”"),
                ));
            }
            found
        });
        let first_filed_on = first_filed.and_then(|value| {
            let found = parse_date(value);
            match found {
                None => errors.push(error(
                    row,
                    "首次信访日期",
                    format!("无法识别的日期“{}”（应为 YYYY-MM-DD）", value.text()),
                )),
                Some(day) if day > today => {
                    errors.push(error(row, "首次信访日期", "首次信访日期不能晚于今天"))
                }
                Some(_) => {}
            }
            found
        });
        let group_size = match text("涉及人数") {
            Some(n) => match n.parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    errors.push(error(
                        row,
                        "涉及人数",
                        format!("涉及人数须为正整数，收到“{n}”"),
                    ));
                    None
                }
            },
            None => None,
        };
        let mut unique = |column: &str,
                          name: Option<String>,
                          pool: &HashMap<String, Vec<String>>,
                          what: &str| {
            let name = name?;
            match pool.get(&name).map(Vec::as_slice) {
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
                    errors.push(error(
                        row,
                        column,
                        format!("组织架构中没有名为“{name}”的{what}"),
                    ));
                    None
                }
            }
        };
        let leader_id = unique("包案领导", text("包案领导"), &directory.leaders, "领导");
        let unit_id = unique("责任单位", text("责任单位"), &directory.units, "单位");
        if errors.len() > before {
            continue;
        }
        let (
            Some(case_id),
            Some(number),
            Some(name),
            Some(matter),
            Some(category),
            Some(district_id),
            Some(channel),
            Some(first_filed_on),
            Some(list_source),
        ) = (
            case_id,
            number,
            name,
            matter,
            category,
            district_id,
            channel,
            first_filed_on,
            source,
        )
        else {
            continue;
        };
        cases.push(LedgerCase {
            row,
            case_id,
            register: RegisterCase {
                case_id: Some(case_id),
                case_number: Some(number),
                petitioners: vec![Petitioner {
                    name,
                    id_number,
                    phone,
                    address: text("住址"),
                }],
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
        });
    }
    if errors.is_empty() {
        Ok(Checked {
            cases,
            already_imported,
        })
    } else {
        Err(errors)
    }
}

/// One case as the ledger exports it.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    /// 案件编号.
    pub case_number: String,
    /// The first petitioner.
    pub petitioner: Petitioner,
    /// 诉求.
    pub matter: String,
    /// 类别.
    pub category: String,
    /// 区 (name).
    pub district: String,
    /// 镇街 (name).
    pub town: Option<String>,
    /// 信访渠道.
    pub channel: Option<Channel>,
    /// 首次信访日期.
    pub first_filed_on: Option<NaiveDate>,
    /// 列入方式.
    pub list_source: Option<ListSource>,
    /// 涉及人数.
    pub group_size: Option<u32>,
    /// 包案领导 (name).
    pub leader: Option<String>,
    /// 责任单位 (name).
    pub lead_unit: Option<String>,
}

/// The ledger as a table in the template's columns (the template itself when `rows` is empty).
pub fn table(rows: &[LedgerRow]) -> Table {
    let text = |value: Option<String>| Cell::from(value);
    Table {
        name: "台账".into(),
        headers: COLUMNS.iter().map(|(name, _)| (*name).to_owned()).collect(),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    Cell::from(r.case_number.clone()),
                    Cell::from(r.petitioner.name.clone()),
                    text(r.petitioner.id_number.clone()),
                    text(r.petitioner.phone.clone()),
                    text(r.petitioner.address.clone()),
                    Cell::from(r.matter.clone()),
                    Cell::from(r.category.clone()),
                    Cell::from(r.district.clone()),
                    text(r.town.clone()),
                    text(r.channel.map(|c| c.label().to_owned())),
                    Cell::from(r.first_filed_on),
                    text(r.list_source.map(|s| list_source_label(s).to_owned())),
                    r.group_size
                        .map_or(Cell::Empty, |n| Cell::Int(i64::from(n))),
                    text(r.leader.clone()),
                    text(r.lead_unit.clone()),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        let mut d = Directory::default();
        d.districts.insert("思明区".into(), "xm-siming".into());
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

    const HEADER: &str = "案件编号,信访人姓名,身份证号,联系电话,住址,诉求,类别,区,镇街,信访渠道,首次信访日期,列入方式,涉及人数,包案领导,责任单位";

    #[test]
    fn a_valid_row_becomes_three_commands() -> Result<(), Vec<RowError>> {
        let csv = format!(
            "\u{feff}{HEADER}\nTZ-1,张三,11010519491231002X,13800000000,中华路1号,补偿问题,征地拆迁,思明区,中华街道,来访,2025-06-01,滚动排查,3,李明,市住房局\n"
        );
        let checked = check(
            csv.as_bytes(),
            Format::Csv,
            &directory(),
            &Existing::default(),
            today(),
        )?;
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
             TZ-2,李四,,,,,征地拆迁,湖里区,,来访,2025-06-01,滚动排查,,,\n\
             TZ-2,王五,,12ab,,诉求,征地拆迁,思明区,东方街道,飞鸽,昨天,随便,0,王芳,无此局\n"
        );
        let Err(errors) = check(
            csv.as_bytes(),
            Format::Csv,
            &directory(),
            &Existing::default(),
            today(),
        ) else {
            panic!("errors expected");
        };
        let found: Vec<(usize, &str)> = errors
            .iter()
            .map(|e| (e.row, e.column.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            found,
            [
                (2, "身份证号"),
                (3, "诉求"),
                (3, "区"),
                (4, "案件编号"),
                (4, "联系电话"),
                (4, "镇街"),
                (4, "信访渠道"),
                (4, "列入方式"),
                (4, "首次信访日期"),
                (4, "涉及人数"),
                (4, "包案领导"),
                (4, "责任单位"),
            ]
        );
    }

    #[test]
    fn a_missing_column_is_named() {
        let Err(errors) = check(
            "案件编号,诉求\n".as_bytes(),
            Format::Csv,
            &directory(),
            &Existing::default(),
            today(),
        ) else {
            panic!("errors expected");
        };
        assert!(
            errors
                .iter()
                .any(|e| e.row == 1 && e.column.as_deref() == Some("信访人姓名"))
        );
    }
}
