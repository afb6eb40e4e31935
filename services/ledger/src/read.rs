//! From a file's bytes to the ledger's rows. Ledgers come from clerks' own spreadsheets, not only
//! from the template: CSV saved by Chinese Excel or WPS is GBK, and a sheet often has a title row
//! (a merged cell), a blank row or a note above the header. This module decodes the file, finds
//! the header within the first rows, and hands back each data row with its real spreadsheet row
//! number, so every problem is reported where the clerk sees it.

use std::collections::HashMap;

use calamine::{Data, Reader};
use chrono::NaiveDate;

use crate::{COLUMNS, Format, MAX_ROWS, RowError, error, normalize_name};

/// The header is looked for in this many first rows.
pub(crate) const HEADER_ROWS: usize = 10;

/// What a file that can be read neither as UTF-8 nor as GBK is answered with.
const UNREADABLE_CSV: &str = "文件无法读取：请另存为 CSV（UTF-8 或 GBK 编码）或 XLSX 工作簿";

/// A cell as read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Text(String),
    Number(f64),
    Date(NaiveDate),
}

impl Value {
    pub(crate) fn text(&self) -> String {
        match self {
            Self::Text(t) => t.trim().to_owned(),
            Self::Number(n) if n.fract() == 0.0 => format!("{n:.0}"),
            Self::Number(n) => n.to_string(),
            Self::Date(d) => d.to_string(),
        }
    }
}

/// A data row as read: its spreadsheet row number (1-based) and its non-empty cells by header.
pub(crate) type RawRow = (usize, HashMap<&'static str, Value>);

/// A sheet as read: each row that has cells, with its spreadsheet row number.
type Grid = Vec<(usize, Vec<Value>)>;

fn whole_file(message: impl Into<String>) -> Vec<RowError> {
    vec![RowError {
        row: 0,
        column: None,
        message: message.into(),
    }]
}

/// The text of a CSV file: UTF-8 (with or without a byte-order mark), else GB18030, of which
/// the GBK that Chinese Excel and WPS save is a subset.
fn decode(bytes: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text.into()),
        Err(_) => encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes),
    }
}

/// How many line breaks (`\r\n`, `\r` or `\n`) `bytes` starts with.
fn leading_line_breaks(bytes: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'\r' | b'\n' => i += 1,
            _ => break,
        }
        count += 1;
    }
    count
}

fn csv_grid(bytes: &[u8]) -> Result<Grid, Vec<RowError>> {
    let text = decode(bytes).ok_or_else(|| whole_file(UNREADABLE_CSV))?;
    let text = text.as_bytes();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut grid = Vec::new();
    let mut record = csv::StringRecord::new();
    // The csv reader skips empty lines; a blank row still counts in the spreadsheet's numbering,
    // so the line breaks between one record's end and the next record are counted here.
    let mut row = 0;
    let mut end = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => {
                return Err(vec![RowError {
                    row: row + 1,
                    column: None,
                    message: format!("第 {} 行无法读取，请检查该行的引号和分隔符", row + 1),
                }]);
            }
        }
        let mut start = end;
        // The line feed of the previous record's "\r\n" is consumed with the next record.
        if start > 0 && text.get(start - 1) == Some(&b'\r') && text.get(start) == Some(&b'\n') {
            start += 1;
        }
        row += 1 + text.get(start..).map_or(0, leading_line_breaks);
        end = usize::try_from(reader.position().byte()).unwrap_or(text.len());
        grid.push((
            row,
            // A ledger exported by zhzj guards formula-like text with an apostrophe; it is read
            // back as the text it was.
            record
                .iter()
                .map(|c| Value::Text(zhzj_export::csv_cell_as_written(c).to_owned()))
                .collect(),
        ));
    }
    Ok(grid)
}

fn xlsx_grid(bytes: &[u8]) -> Result<Grid, Vec<RowError>> {
    let unreadable =
        || whole_file("文件无法读取：不是可读取的 XLSX 工作簿（请另存为 XLSX 或 CSV）");
    let mut workbook: calamine::Xlsx<_> =
        calamine::Xlsx::new(std::io::Cursor::new(bytes)).map_err(|_| unreadable())?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| whole_file("工作簿没有工作表"))?
        .map_err(|_| unreadable())?;
    // The range starts at the first used cell: rows above it are empty but still numbered.
    let first = range.start().map_or(0, |(row, _)| row as usize);
    Ok(range
        .rows()
        .enumerate()
        .map(|(i, row)| {
            let cells = row
                .iter()
                .map(|cell| match cell {
                    Data::String(s) => Value::Text(s.clone()),
                    Data::Float(f) => Value::Number(*f),
                    Data::Int(i) => Value::Number(*i as f64),
                    Data::DateTime(d) => d
                        .as_datetime()
                        .map_or_else(|| Value::Text(d.to_string()), |t| Value::Date(t.date())),
                    Data::DateTimeIso(s) => Value::Text(s.clone()),
                    Data::Bool(b) => Value::Text(b.to_string()),
                    _ => Value::Text(String::new()),
                })
                .collect();
            (first + i + 1, cells)
        })
        .collect())
}

/// A header cell as a column name: normalised like a name (so full-width brackets and stray
/// spaces do not matter), with a required-marker ("*", "（必填）") around it dropped.
fn header_name(cell: &Value) -> String {
    let name = normalize_name(&cell.text());
    let name = name.strip_suffix("(必填)").unwrap_or(&name);
    name.trim_matches('*').to_owned()
}

/// Each template column's position in a header row (the first cell of a name wins).
fn positions(cells: &[Value]) -> HashMap<&'static str, usize> {
    let mut positions = HashMap::new();
    for (i, cell) in cells.iter().enumerate() {
        let name = header_name(cell);
        if let Some((column, _)) = COLUMNS.iter().find(|(column, _)| *column == name) {
            positions.entry(*column).or_insert(i);
        }
    }
    positions
}

fn is_blank(cells: &[Value]) -> bool {
    cells.iter().all(|c| c.text().is_empty())
}

/// Reads the header and the data rows of a ledger.
pub(crate) fn read_rows(bytes: &[u8], format: Format) -> Result<Vec<RawRow>, Vec<RowError>> {
    let grid = match format {
        Format::Csv => csv_grid(bytes)?,
        Format::Xlsx => xlsx_grid(bytes)?,
    };
    // The header: the first of the first rows that names every required column; failing that,
    // the row naming the most template columns is taken to be the header that lacks some.
    let candidates: Vec<(usize, usize, HashMap<&'static str, usize>)> = grid
        .iter()
        .enumerate()
        .take_while(|(_, (row, _))| *row <= HEADER_ROWS)
        .filter(|(_, (_, cells))| !is_blank(cells))
        .map(|(i, (row, cells))| (i, *row, positions(cells)))
        .collect();
    let complete = |positions: &HashMap<&str, usize>| {
        COLUMNS
            .iter()
            .all(|(name, required)| !required || positions.contains_key(name))
    };
    let Some((header_index, header_row, positions)) = candidates
        .iter()
        .find(|(_, _, positions)| complete(positions))
        .cloned()
    else {
        let mut best: Option<&(usize, usize, HashMap<&str, usize>)> = None;
        for candidate in &candidates {
            if best.is_none_or(|b| candidate.2.len() > b.2.len()) {
                best = Some(candidate);
            }
        }
        let Some((_, row, positions)) = best else {
            return Err(vec![RowError {
                row: 1,
                column: None,
                message: "文件是空的：请使用系统提供的模板，表头须在前 10 行内".into(),
            }]);
        };
        return Err(COLUMNS
            .iter()
            .filter(|(name, required)| *required && !positions.contains_key(name))
            .map(|(name, _)| {
                error(
                    *row,
                    name,
                    format!(
                        "缺少必填列“{name}”（请使用系统提供的模板，表头须在前 {HEADER_ROWS} 行内）"
                    ),
                )
            })
            .collect());
    };
    let data = grid.get(header_index + 1..).unwrap_or_default();
    if data.len() > MAX_ROWS {
        return Err(vec![RowError {
            row: header_row + MAX_ROWS + 1,
            column: None,
            message: format!("一次最多导入 {MAX_ROWS} 行"),
        }]);
    }
    Ok(data
        .iter()
        .filter(|(_, cells)| !is_blank(cells))
        .map(|(row, cells)| {
            let cells = COLUMNS
                .iter()
                .filter_map(|(name, _)| {
                    let cell = cells.get(*positions.get(name)?)?;
                    (!cell.text().is_empty()).then(|| (*name, cell.clone()))
                })
                .collect();
            (*row, cells)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(csv: &str) -> Vec<usize> {
        csv_grid(csv.as_bytes())
            .unwrap_or_default()
            .into_iter()
            .map(|(row, _)| row)
            .collect()
    }

    #[test]
    fn csv_rows_keep_their_spreadsheet_numbers() {
        assert_eq!(rows_of("a\nb\nc\n"), [1, 2, 3]);
        assert_eq!(rows_of("a\r\nb\r\nc"), [1, 2, 3]);
        // Blank lines are rows too, wherever they are, with any line ending.
        assert_eq!(rows_of("\na\n\n\nb\n"), [2, 5]);
        assert_eq!(rows_of("\r\na\r\n\r\nb\r\n\r\n"), [2, 4]);
        assert_eq!(rows_of("a\r\rb"), [1, 3]);
        // A quoted cell with line breaks is still one row.
        assert_eq!(rows_of("\"x\ny\",1\r\n\r\n\"p\r\nq\"\r\nz"), [1, 3, 4]);
    }

    #[test]
    fn csv_is_read_as_utf8_or_gbk() {
        let text = "思明区信访积案台账,庄辉珠\r\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert!(std::str::from_utf8(&gbk).is_err());
        for bytes in [
            text.as_bytes().to_vec(),
            [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat(),
            gbk.into_owned(),
        ] {
            let grid = csv_grid(&bytes).unwrap_or_default();
            assert_eq!(
                grid,
                [(
                    1,
                    vec![
                        Value::Text("思明区信访积案台账".into()),
                        Value::Text("庄辉珠".into())
                    ]
                )]
            );
        }
    }

    #[test]
    fn header_names_may_carry_a_required_marker() {
        for cell in [
            "案件编号",
            " *案件编号",
            "案件编号*",
            "案件编号（必填）",
            "案件编号＊",
        ] {
            assert_eq!(header_name(&Value::Text(cell.into())), "案件编号", "{cell}");
        }
    }
}
