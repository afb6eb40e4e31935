//! Field checks shared by the decisions; each error names its field.

use zhzj_proto::CommandError;

/// A required text: trimmed, non-empty, at most `max_chars` characters.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, CommandError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(CommandError::invalid(
            field,
            format!("{field} 不能为空 (required)"),
        ));
    }
    check_no_control(field, trimmed)?;
    if trimmed.chars().count() > max_chars {
        return Err(CommandError::invalid(
            field,
            format!("{field} 超过 {max_chars} 字 (too long)"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// An optional text: absent or blank is None, else as [`required_text`].
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, CommandError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => required_text(field, text, max_chars).map(Some),
    }
}

/// Refuses control characters other than line breaks and tabs: they are never meant, and some
/// (NUL) cannot be stored by PostgreSQL at all.
pub fn check_no_control(field: &str, value: &str) -> Result<(), CommandError> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(CommandError::invalid(
            field,
            format!("{field} 含有不可见的控制字符 (control characters are not allowed)"),
        ));
    }
    Ok(())
}

/// A date under the system's one date rule ([`zhzj_proto::dates`]), the error naming `field`.
pub fn date(
    field: &str,
    value: chrono::NaiveDate,
    kind: zhzj_proto::dates::DateKind,
    today: chrono::NaiveDate,
) -> Result<(), CommandError> {
    zhzj_proto::dates::check(value, kind, today)
        .map_err(|message| CommandError::invalid(field, format!("{field}：{message}")))
}
