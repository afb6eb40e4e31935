//! Comparing a ledger row with the case already registered under its number: which columns differ,
//! so that a re-import of the same ledger adds nothing and a changed row is named, not silently
//! applied.

use super::*;

/// A ledger case's values as the system would store them; None where the ledger's value is
/// missing or wrong (already reported, so not compared).
pub(crate) struct LedgerValues<'a> {
    pub(crate) matter: Option<&'a str>,
    pub(crate) category: Option<&'a str>,
    pub(crate) district_id: Option<&'a str>,
    pub(crate) town_id: Option<Option<&'a str>>,
    pub(crate) channel: Option<Channel>,
    pub(crate) first_filed_on: Option<NaiveDate>,
    pub(crate) list_source: Option<ListSource>,
    pub(crate) group_size: Option<u32>,
}

/// Reports where a case imported before differs from what the system holds. A petitioner's
/// stored data is never shown: the case may lie outside the importing user's area.
pub(crate) fn compare(
    stored: &ExistingCase,
    number: &str,
    row: usize,
    ledger: &LedgerValues<'_>,
    petitioners: &[(usize, Option<Petitioner>)],
    lookup: &Lookup,
    errors: &mut Vec<RowError>,
) {
    let hint = "（修改已导入的案件请在系统中进行）";
    let mut differs = |column: &str, value: Option<&str>| {
        let value = value.map_or_else(|| "为空".to_owned(), |v| format!("为“{v}”"));
        errors.push(error(
            row,
            column,
            format!("案件编号 {number} 已导入，系统中的“{column}”{value}，与本行不一致{hint}"),
        ));
    };
    if ledger.matter.is_some_and(|m| m != stored.matter.trim()) {
        differs("诉求", Some(&stored.matter));
    }
    if ledger.category.is_some_and(|c| c != stored.category.trim()) {
        differs("类别", Some(&stored.category));
    }
    if ledger.district_id.is_some_and(|d| d != stored.district_id) {
        differs("区", Some(lookup.name(&stored.district_id)));
    }
    if ledger
        .town_id
        .is_some_and(|t| t != stored.town_id.as_deref())
    {
        differs("镇街", stored.town_id.as_deref().map(|t| lookup.name(t)));
    }
    if ledger.channel.is_some_and(|c| c != stored.channel) {
        differs("信访渠道", Some(stored.channel.label()));
    }
    if ledger
        .first_filed_on
        .is_some_and(|d| d != stored.first_filed_on)
    {
        differs("首次信访日期", Some(&stored.first_filed_on.to_string()));
    }
    if ledger.list_source.is_some_and(|s| s != stored.list_source) {
        differs("列入方式", Some(list_source_label(stored.list_source)));
    }
    if ledger.group_size.is_some_and(|n| n != stored.group_size) {
        differs("涉及人数", Some(&stored.group_size.to_string()));
    }
    // Petitioners: matched by name and ID number, then by name alone (an ID number that
    // differs); what is left on either side differs.
    let mut unmatched: Vec<(String, Option<String>)> = stored
        .petitioners
        .iter()
        .map(|p| {
            (
                normalize_name(&p.name),
                p.id_number
                    .as_deref()
                    .map(|id| id.trim().to_ascii_uppercase()),
            )
        })
        .collect();
    let mut left = Vec::new();
    for (prow, petitioner) in petitioners {
        let Some(petitioner) = petitioner else {
            continue;
        };
        match unmatched
            .iter()
            .position(|(name, id)| *name == petitioner.name && *id == petitioner.id_number)
        {
            Some(i) => {
                unmatched.swap_remove(i);
            }
            None => left.push((*prow, petitioner)),
        }
    }
    let checked_all = petitioners.iter().all(|(_, p)| p.is_some());
    for (prow, petitioner) in left {
        let (column, what) = match unmatched
            .iter()
            .position(|(name, _)| *name == petitioner.name)
        {
            Some(i) => {
                unmatched.swap_remove(i);
                ("身份证号", "该信访人的身份证号")
            }
            None => ("信访人姓名", "信访人"),
        };
        errors.push(error(
            prow,
            column,
            format!("案件编号 {number} 已导入，与系统中{what}不一致{hint}"),
        ));
    }
    if checked_all && !unmatched.is_empty() {
        errors.push(error(
            row,
            "信访人姓名",
            format!("案件编号 {number} 已导入，系统中该案件另有信访人未列入本台账{hint}"),
        ));
    }
}
