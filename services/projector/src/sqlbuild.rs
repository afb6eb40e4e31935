//! Builds multi-row statements with `$n` placeholders that both SQLite and PostgreSQL accept, and
//! binds their values through sqlx's Any driver.

use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, AssertSqlSafe};

use zhzj_store::Dialect;

/// A stream position as SQL stores it (BIGINT). Positions never reach 2^63.
pub fn sql_position(position: u64) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}

/// The text a unit enum serialises to (`"district"`), as the views store it.
pub fn enum_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A value bound into a statement.
#[derive(Debug, Clone)]
pub enum SqlValue {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Nullable text.
    OptText(Option<String>),
    /// A nullable integer.
    OptInt(Option<i64>),
}

/// One column of a multi-row insert: its name and whether it holds JSON.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Column name.
    pub name: &'static str,
    /// Whether the value is JSON text bound into a JSON column.
    pub json: bool,
}

/// A plain column.
pub const fn col(name: &'static str) -> Column {
    Column { name, json: false }
}

/// A JSON column.
pub const fn json_col(name: &'static str) -> Column {
    Column { name, json: true }
}

/// Most parameters one statement carries. PostgreSQL takes up to 65,535; SQLite up to 32,766,
/// but its statements get slower to prepare and bind well before that.
fn max_params(dialect: Dialect) -> usize {
    match dialect {
        Dialect::Sqlite => 4_000,
        Dialect::Postgres => 30_000,
    }
}

/// Appends the placeholder of parameter `index` (1-based). SQLite gets anonymous `?`: binding
/// named `$n` parameters costs a lookup per parameter that grows with the statement.
pub fn push_placeholder(sql: &mut String, dialect: Dialect, index: usize) {
    match dialect {
        Dialect::Sqlite => sql.push('?'),
        Dialect::Postgres => {
            sql.push('$');
            sql.push_str(&index.to_string());
        }
    }
}

/// Executes `INSERT INTO table (cols) VALUES (…),(…) <tail>` for all rows, in as few statements
/// as the parameter limits allow.
pub async fn insert_rows(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    table: &str,
    columns: &[Column],
    rows: Vec<Vec<SqlValue>>,
    tail: &str,
) -> Result<(), sqlx::Error> {
    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    let statement = |values: &str| {
        format!(
            "INSERT INTO {table} ({}) VALUES {values} {tail}",
            names.join(", ")
        )
    };
    execute_with_values(conn, dialect, columns, rows, statement).await
}

/// Updates existing rows of `table`, matched on the first column, setting the other columns:
/// `WITH v (cols) AS (VALUES …) UPDATE table SET c = v.c … FROM v WHERE table.key = v.key`.
/// Cheaper than an upsert of whole rows when only a few columns change.
pub async fn update_rows(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    table: &str,
    columns: &[Column],
    rows: Vec<Vec<SqlValue>>,
) -> Result<(), sqlx::Error> {
    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    let Some((key, rest)) = names.split_first() else {
        return Ok(());
    };
    let sets: Vec<String> = rest.iter().map(|c| format!("{c} = v.{c}")).collect();
    let statement = |values: &str| {
        format!(
            "WITH v ({}) AS (VALUES {values}) UPDATE {table} SET {} FROM v \
             WHERE {table}.{key} = v.{key}",
            names.join(", "),
            sets.join(", ")
        )
    };
    execute_with_values(conn, dialect, columns, rows, statement).await
}

/// Runs `statement(values)` for the rows, where `values` is `(…),(…)` with a placeholder per
/// value, splitting the rows over as few statements as the parameter limits allow.
async fn execute_with_values(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    columns: &[Column],
    rows: Vec<Vec<SqlValue>>,
    statement: impl Fn(&str) -> String,
) -> Result<(), sqlx::Error> {
    let rows_per_statement = (max_params(dialect) / columns.len().max(1)).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut values = String::new();
        let mut args = AnyArguments::default();
        let mut index = 0;
        for (r, row) in rows.by_ref().take(rows_per_statement).enumerate() {
            if r > 0 {
                values.push(',');
            }
            values.push('(');
            for (c, value) in row.into_iter().enumerate() {
                index += 1;
                if c > 0 {
                    values.push(',');
                }
                if columns[c].json {
                    values.push_str(&dialect.json_param(index));
                } else {
                    push_placeholder(&mut values, dialect, index);
                }
                bind(&mut args, value)?;
            }
            values.push(')');
        }
        sqlx::query_with(AssertSqlSafe(statement(&values)), args)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn bind(args: &mut AnyArguments, value: SqlValue) -> Result<(), sqlx::Error> {
    let result = match value {
        SqlValue::Int(v) => args.add(v),
        SqlValue::Text(v) => args.add(v),
        SqlValue::OptText(v) => args.add(v),
        SqlValue::OptInt(v) => args.add(v),
    };
    result.map_err(sqlx::Error::Encode)
}

/// `n` placeholders separated by commas.
pub fn placeholders(dialect: Dialect, n: usize) -> String {
    let mut sql = String::new();
    for index in 1..=n {
        if index > 1 {
            sql.push_str(", ");
        }
        push_placeholder(&mut sql, dialect, index);
    }
    sql
}

/// Binds values to a query built from a dynamic string.
pub fn query_with_values(
    sql: String,
    values: Vec<SqlValue>,
) -> Result<sqlx::query::Query<'static, Any, AnyArguments>, sqlx::Error> {
    let mut args = AnyArguments::default();
    for value in values {
        bind(&mut args, value)?;
    }
    Ok(sqlx::query_with(AssertSqlSafe(sql), args))
}
