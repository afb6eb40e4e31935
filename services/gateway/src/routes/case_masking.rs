//! Personal data on a case, as each reader may see it: ID numbers, phones, names and addresses
//! masked in a case's events and free text (numbers a clerk typed into a note), and the unmasked
//! value revealed only to a role allowed to see it, each reveal recorded.

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;
use zhzj_proto::accounts::Role;

use super::checklist::ChecklistItem;
use crate::{ApiError, AppState};

/// Masks all but the first 3 and last 4 characters.
pub(crate) fn mask(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// Masks one personal field.
type Masker = fn(&str) -> String;

/// Masks a name: the surname stays (张**).
pub(crate) fn mask_name(text: &str) -> String {
    let mut chars = text.chars();
    let first: String = chars.next().into_iter().collect();
    format!("{first}{}", "*".repeat(chars.count()))
}

/// Masks an address after its first six characters (the district and street).
pub(crate) fn mask_address(text: &str) -> String {
    let kept: String = text.chars().take(6).collect();
    let hidden = text.chars().count().saturating_sub(6);
    format!("{kept}{}", "*".repeat(hidden))
}

/// Masks petitioners' names, ID numbers, phones and addresses in event data (个人信息保护法); an
/// unmasked read is asked for with `?reveal=personal` and logged.
pub(crate) fn mask_personal_data(event_type: &str, data: &mut Value) {
    if event_type != "CaseRegistered" {
        return;
    }
    let maskers: [(&str, Masker); 4] = [
        ("name", mask_name),
        ("id_number", mask),
        ("phone", mask),
        ("address", mask_address),
    ];
    if let Some(petitioners) = data.get_mut("petitioners").and_then(Value::as_array_mut) {
        for petitioner in petitioners {
            for (field, masker) in maskers {
                // An erased field says so; there is nothing left to mask.
                if let Some(value) = petitioner.get_mut(field)
                    && let Some(text) = value.as_str()
                    && text != crate::personal::ERASED
                {
                    *value = Value::String(masker(text));
                }
            }
        }
    }
}

/// `?reveal=personal`: show petitioners' personal data unmasked (logged).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealQuery {
    /// `personal` to see names, ID numbers, phones and addresses unmasked. Allowed to the city
    /// administrator, coordinators of the case's own area (not a responsible department: the
    /// accused unit must not learn who accuses it, 条例 第30条) and the owning leader; every such
    /// read is recorded.
    pub reveal: Option<String>,
}

/// Whether the read is to be unmasked: checks the user may, and records the read.
pub(crate) async fn reveal_personal_data(
    state: &AppState,
    user: &crate::User,
    row: &ChecklistItem,
    query: &RevealQuery,
    correlation: Uuid,
) -> Result<bool, ApiError> {
    match query.reveal.as_deref() {
        None => return Ok(false),
        Some("personal") => {}
        Some(other) => {
            return Err(ApiError::BadRequest {
                message: format!("reveal 只能为 personal，收到 `{other}`"),
                field: Some("reveal".into()),
            });
        }
    }
    let has = |role: Role| user.has_role(role);
    let allowed = if has(Role::Admin) {
        true
    } else {
        let owns = has(Role::Leader)
            && user.leader_id.is_some()
            && row.leader.as_ref().map(|l| &l.id) == user.leader_id.as_ref();
        let own_area = has(Role::Coordinator)
            && match crate::scope::Scope::of(state, user).await? {
                crate::scope::Scope::All => true,
                crate::scope::Scope::Within { units, .. } => {
                    units.contains(&row.district.id)
                        || row.town.as_ref().is_some_and(|t| units.contains(&t.id))
                }
            };
        owns || own_area
    };
    if !allowed {
        return Err(ApiError::Forbidden(
            "您无权查看信访人的个人信息 (personal data stays masked for your role)".into(),
        ));
    }
    let mut tx = state.store().begin_write().await?;
    sqlx::query(
        "INSERT INTO personal_data_reads (username, case_id, read_at, correlation_id, purpose) \
         VALUES ($1, $2, $3, $4, 'reveal')",
    )
    .bind(&user.username)
    .bind(&row.case_id)
    .bind(zhzj_store::sql::timestamp_text(state.now()))
    .bind(correlation.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(username = %user.username, case_id = %row.case_id, "personal data read unmasked");
    Ok(true)
}

/// Runs of digits a clerk may have typed an ID or a phone number as: 15 to 18 characters (an
/// old or new resident ID, possibly ending in X), 11 (a mobile number), 13 (one with the country
/// code, `+8613812345678`), or an area code and a number (`0592-1234567`, `05921234567`). Case
/// numbers (`XF20250601-0001`) and amounts do not match.
pub(crate) static FREE_TEXT_NUMBERS: std::sync::LazyLock<Option<regex::Regex>> =
    std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"0[0-9]{2,3}-[0-9]{7,8}|[0-9]{14,17}[0-9Xx]|(?:86)?1[3-9][0-9]{9}|[0-9]+",
        )
        .ok()
    });

/// Whether a run of digits found in free text is a mobile number (with or without the country
/// code 86) or a landline with its area code, written without a dash.
fn is_phone_number(number: &str) -> bool {
    let mobile = |digits: &str| {
        digits.len() == 11
            && digits.starts_with('1')
            && digits
                .as_bytes()
                .get(1)
                .is_some_and(|b| (b'3'..=b'9').contains(b))
    };
    let landline = number.starts_with('0') && (10..=12).contains(&number.len());
    mobile(number) || number.strip_prefix("86").is_some_and(mobile) || landline
}

/// Free text with ID-number and phone-number patterns masked like the structured fields
/// (`350***********0423`, `138****5678`); other text is left as it is.
pub(crate) fn mask_free_text(text: &str) -> std::borrow::Cow<'_, str> {
    let Some(numbers) = FREE_TEXT_NUMBERS.as_ref() else {
        return std::borrow::Cow::Borrowed(text);
    };
    numbers.replace_all(text, |found: &regex::Captures<'_>| {
        let number = &found[0];
        // Other runs of digits match the last alternative whole and are kept.
        if number.contains('-') || (15..=18).contains(&number.len()) || is_phone_number(number) {
            mask(number)
        } else {
            number.to_owned()
        }
    })
}

/// Masks ID-number and phone-number patterns in every string of `data`.
pub(crate) fn mask_free_text_in(data: &mut Value) {
    match data {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(masked) = mask_free_text(text) {
                *text = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_free_text_in),
        Value::Object(fields) => fields.values_mut().for_each(mask_free_text_in),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::mask_free_text;

    #[test]
    fn id_and_phone_numbers_in_free_text_are_masked_and_nothing_else() {
        let cases = [
            (
                "约访张三（身份证350203199001010423，电话13812345678）",
                "约访张三（身份证350***********0423，电话138****5678）",
            ),
            (
                "身份证号 35020319900101042X 已核实",
                "身份证号 350***********042X 已核实",
            ),
            ("旧证 350203900101042", "旧证 350********1042"),
            ("座机0592-1234567转", "座机059*****4567转"),
            (
                "案件 XF20250601-0001，补偿 120000 元，12345678901",
                "案件 XF20250601-0001，补偿 120000 元，12345678901",
            ),
            ("2026年3月2日", "2026年3月2日"),
            // The country code or no dash after the area code hid these numbers.
            ("电话+8613812345678", "电话+861******5678"),
            ("座机05921234567", "座机059****4567"),
            ("金额 1000000000 元", "金额 1000000000 元"),
        ];
        for (text, masked) in cases {
            assert_eq!(mask_free_text(text), masked, "{text}");
        }
    }
}
