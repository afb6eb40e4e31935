//! The monthly bulletin as spreadsheet tables (districts, towns, departments, 督办), as the
//! export writes them.

use zhzj_export::{Cell, Table};

use super::{AreaFigures, Bulletin, Ratio};

impl Bulletin {
    /// The bulletin as spreadsheet tables: districts, towns, departments.
    pub fn tables(&self) -> Vec<Table> {
        let headers = |first: &[&str]| -> Vec<String> {
            first
                .iter()
                .copied()
                .chain([
                    "排名",
                    "化解数",
                    "清单案件数",
                    "化解率(%)",
                    "及时受理数",
                    "应受理数",
                    "及时受理率(%)",
                    "按期办结数",
                    "应办结数",
                    "按期办结率(%)",
                    "重复信访",
                    "回潮",
                    "满意数",
                    "参评数",
                    "满意率(%)",
                    "评价记录数",
                    "参评率(%)",
                    "领导活动次数",
                    "接访天数",
                ])
                .map(str::to_owned)
                .collect()
        };
        let percent = |r: Ratio| r.percent().map_or(Cell::Empty, Cell::Number);
        let row = |a: &AreaFigures, first: Vec<Cell>| -> Vec<Cell> {
            let mut cells = first;
            let rank = i64::try_from(a.rank).unwrap_or(0);
            cells.extend([
                Cell::Int(rank),
                Cell::Int(a.resolution.numerator),
                Cell::Int(a.resolution.denominator),
                percent(a.resolution),
                Cell::Int(a.timely_acceptance.numerator),
                Cell::Int(a.timely_acceptance.denominator),
                percent(a.timely_acceptance),
                Cell::Int(a.on_time_completion.numerator),
                Cell::Int(a.on_time_completion.denominator),
                percent(a.on_time_completion),
                Cell::Int(a.repeat_petitions),
                Cell::Int(a.relapses),
                Cell::Int(a.satisfaction.numerator),
                Cell::Int(a.satisfaction.denominator),
                percent(a.satisfaction),
                Cell::Int(a.participation.denominator),
                percent(a.participation),
                Cell::Int(a.leader_activities),
                Cell::Int(a.reception_days),
            ]);
            cells
        };
        vec![
            Table {
                name: "区".into(),
                headers: headers(&["区"]),
                rows: self
                    .districts
                    .iter()
                    .map(|a| row(a, vec![Cell::from(a.name.clone())]))
                    .collect(),
            },
            Table {
                name: "镇街".into(),
                headers: headers(&["区", "镇街"]),
                rows: self
                    .towns
                    .iter()
                    .map(|a| {
                        row(
                            a,
                            vec![Cell::from(a.district.clone()), Cell::from(a.name.clone())],
                        )
                    })
                    .collect(),
            },
            Table {
                name: "职能部门".into(),
                headers: headers(&["部门"]),
                rows: self
                    .departments
                    .iter()
                    .map(|a| row(a, vec![Cell::from(a.name.clone())]))
                    .collect(),
            },
            Table {
                name: "督办".into(),
                headers: [
                    "承办单位",
                    "下发督办单",
                    "按期反馈",
                    "逾期反馈",
                    "升级",
                    "月末逾期未反馈",
                ]
                .map(str::to_owned)
                .to_vec(),
                rows: self
                    .supervision
                    .iter()
                    .map(|s| {
                        vec![
                            Cell::from(s.name.clone()),
                            Cell::Int(s.issued),
                            Cell::Int(s.answered_on_time),
                            Cell::Int(s.answered_late),
                            Cell::Int(s.escalated),
                            Cell::Int(s.overdue_at_end),
                        ]
                    })
                    .collect(),
            },
        ]
    }
}
