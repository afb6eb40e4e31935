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
