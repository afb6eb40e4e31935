//! The checks of one case's columns in a ledger: that its rows agree, its number is new (or the
//! same case imported before), its place is in the directory and the importer's scope, and each
//! value is one the system knows.

use super::*;

/// The case's district and town, found by name in the directory (a town within its district),
/// and within the importer's scope. The town is Some(None) when none is given, None when it could
/// not be determined.
pub(crate) fn check_place(
    row: usize,
    district_name: Option<&str>,
    town_name: Option<String>,
    lookup: &Lookup,
    existing: &Existing,
    errors: &mut Vec<RowError>,
) -> (Option<String>, Option<Option<String>>) {
    let district_id = district_name.and_then(|name| {
        unique(
            errors,
            (row, "区"),
            &lookup.districts,
            &name.to_owned(),
            name,
            "区",
            format!("没有名为“{name}”的区"),
        )
    });
    let town_id = match (town_name, &district_id) {
        (None, _) => Some(None),
        (Some(town), Some(district)) => unique(
            errors,
            (row, "镇街"),
            &lookup.towns,
            &(district.clone(), town.clone()),
            &town,
            "镇街",
            format!(
                "{}没有名为“{town}”的镇街",
                district_name.unwrap_or_default()
            ),
        )
        .map(Some),
        (Some(_), None) => None,
    };
    if let (Some(scope), Some(district)) = (&existing.scope, &district_id) {
        let place = town_id
            .as_ref()
            .and_then(Option::as_ref)
            .unwrap_or(district);
        if !scope.contains(place) {
            errors.push(error(row, "区", "不在您的管辖范围内，不能导入"));
        }
    }
    (district_id, town_id)
}

/// A case's later rows add one petitioner each: the case's columns must be the same as its first
/// row's, or empty.
pub(crate) fn check_later_rows(group: &[&RawRow], errors: &mut Vec<RowError>) {
    let Some(&&(row, ref cells)) = group.first() else {
        return;
    };
    for &&(later, ref later_cells) in group.iter().skip(1) {
        for column in CASE_COLUMNS {
            if let Some(value) = later_cells.get(column)
                && !same_value(column, cells.get(column), value)
            {
                errors.push(error(
                    later,
                    column,
                    format!(
                        "与第 {row} 行同一案件的“{column}”不一致（同一案件的各行，此列须相同或留空）"
                    ),
                ));
            }
        }
    }
}

/// Checks a case number against the cases that exist: whether this ledger imported it before
/// (and what the system holds for it, to compare), or another case has it.
pub(crate) fn check_case_number<'a>(
    row: usize,
    number: &str,
    case_id: Uuid,
    existing: &'a Existing,
    errors: &mut Vec<RowError>,
) -> (bool, Option<&'a ExistingCase>) {
    if number.chars().count() > 64 {
        errors.push(error(row, "案件编号", "案件编号最长 64 个字符"));
    }
    match existing.case_numbers.get(number) {
        Some(_) if existing.outside_scope.contains(number) => {
            errors.push(error(row, "案件编号", OUTSIDE_SCOPE_CASE_NUMBER));
            (false, None)
        }
        Some(id) if *id == case_id.to_string() => {
            let stored = existing.cases.get(number);
            if stored.is_none() {
                errors.push(error(
                    row,
                    "案件编号",
                    format!("案件编号 {number} 已导入，但无法核对系统中的该案件，请稍后重试"),
                ));
            }
            (true, stored)
        }
        Some(_) => {
            errors.push(error(
                row,
                "案件编号",
                format!("案件编号 {number} 已有案件登记，疑似重复"),
            ));
            (false, None)
        }
        None => (false, None),
    }
}

pub(crate) fn check_channel(
    row: usize,
    label: &str,
    errors: &mut Vec<RowError>,
) -> Option<Channel> {
    let found = channel(label);
    if found.is_none() {
        errors.push(error(
            row,
            "信访渠道",
            format!("信访渠道须为 网上、来信、来访、电话，收到“{label}”"),
        ));
    }
    found
}

pub(crate) fn check_list_source(
    row: usize,
    label: &str,
    errors: &mut Vec<RowError>,
) -> Option<ListSource> {
    let found = list_source(label);
    if found.is_none() {
        errors.push(error(
            row,
            "列入方式",
            format!("列入方式须为 新发信访、上级交办、滚动排查，收到“{label}”"),
        ));
    }
    found
}

/// The first filing date: a date, not before the system's earliest (the one date rule of
/// `zhzj_proto::dates`, said in the ledger's words), not after today.
pub(crate) fn check_first_filed(
    row: usize,
    value: Option<&Value>,
    today: NaiveDate,
    errors: &mut Vec<RowError>,
) -> Option<NaiveDate> {
    let Some(value) = value else {
        errors.push(error(row, "首次信访日期", "“首次信访日期”不能为空"));
        return None;
    };
    let found = parse_date(value);
    match found {
        None => errors.push(error(
            row,
            "首次信访日期",
            format!("无法识别的日期“{}”（应为 YYYY-MM-DD）", value.text()),
        )),
        Some(day) if day < zhzj_proto::dates::EARLIEST => errors.push(error(
            row,
            "首次信访日期",
            format!(
                "首次信访日期不能早于 {}（收到 {day}）",
                zhzj_proto::dates::EARLIEST
            ),
        )),
        Some(day) if day > today => {
            errors.push(error(row, "首次信访日期", "首次信访日期不能晚于今天"));
        }
        Some(_) => {}
    }
    found
}

/// The directory id of the leader or unit named in `column`, if any.
pub(crate) fn check_named(
    (row, cells): (usize, &HashMap<&'static str, Value>),
    column: &str,
    pool: &HashMap<String, Vec<String>>,
    what: &str,
    errors: &mut Vec<RowError>,
) -> Option<String> {
    let name = normalize_name(&cells.get(column)?.text());
    unique(
        errors,
        (row, column),
        pool,
        &name,
        &name,
        what,
        format!("组织架构中没有名为“{name}”的{what}"),
    )
}

/// The number of people: Some(None) when not given, None when not a positive number.
pub(crate) fn check_group_size(
    row: usize,
    text: Option<String>,
    errors: &mut Vec<RowError>,
) -> Option<Option<u32>> {
    match text {
        Some(n) => match n.parse::<u32>() {
            Ok(n) if n > 0 => Some(Some(n)),
            _ => {
                errors.push(error(
                    row,
                    "涉及人数",
                    format!("涉及人数须为正整数，收到“{n}”"),
                ));
                None
            }
        },
        None => Some(None),
    }
}
