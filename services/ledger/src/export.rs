//! The ledger as an export: one row per petitioner of each case, in the import template's columns,
//! so that an exported ledger imports again unchanged.

use super::*;

/// One case as the ledger exports it.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    /// 案件编号.
    pub case_number: String,
    /// Every petitioner, in the registration's order: one spreadsheet row each.
    pub petitioners: Vec<Petitioner>,
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

/// The ledger as a table in the template's columns (the template itself when `rows` is empty):
/// one row per petitioner, the case's columns repeated on each (a case without petitioners
/// still gets one row).
pub fn table(rows: &[LedgerRow]) -> Table {
    let text = |value: &Option<String>| Cell::from(value.clone());
    let mut out = Vec::new();
    for r in rows {
        let nobody = [Petitioner {
            name: String::new(),
            id_number: None,
            phone: None,
            address: None,
        }];
        let petitioners = if r.petitioners.is_empty() {
            &nobody[..]
        } else {
            &r.petitioners[..]
        };
        for p in petitioners {
            out.push(vec![
                Cell::from(r.case_number.clone()),
                Cell::from(p.name.clone()),
                text(&p.id_number),
                text(&p.phone),
                text(&p.address),
                Cell::from(r.matter.clone()),
                Cell::from(r.category.clone()),
                Cell::from(r.district.clone()),
                text(&r.town),
                text(&r.channel.map(|c| c.label().to_owned())),
                Cell::from(r.first_filed_on),
                text(&r.list_source.map(|s| list_source_label(s).to_owned())),
                r.group_size
                    .map_or(Cell::Empty, |n| Cell::Int(i64::from(n))),
                text(&r.leader),
                text(&r.lead_unit),
            ]);
        }
    }
    Table {
        name: "台账".into(),
        headers: COLUMNS.iter().map(|(name, _)| (*name).to_owned()).collect(),
        rows: out,
    }
}
