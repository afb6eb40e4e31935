//! Personal data on a case, as each reader may see it: ID numbers, phones, names and addresses
//! masked in a case's events and free text (numbers a clerk typed into a note), and the unmasked
//! value revealed only to a role allowed to see it, each reveal recorded.

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;
use zhzj_proto::accounts::Role;
use zhzj_proto::events::{CaseEvent, Petitioner, RecordedPetitioner};

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
    // Field by field on the JSON as stored, whatever else a petitioner object holds.
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

/// A petitioner's fields masked for a reader who may not see them; an erased field says so and
/// stays as it is.
pub(crate) fn mask_petitioner(petitioner: &mut Petitioner) {
    let masked = |text: &mut String, masker: Masker| {
        if text != crate::personal::ERASED {
            *text = masker(text);
        }
    };
    masked(&mut petitioner.name, mask_name);
    for (field, masker) in [
        (&mut petitioner.id_number, mask as Masker),
        (&mut petitioner.phone, mask),
        (&mut petitioner.address, mask_address),
    ] {
        if let Some(text) = field {
            masked(text, masker);
        }
    }
}

/// A case event as a reader without `?reveal=personal` sees it: the petitioners' fields masked
/// and ID and phone numbers masked in every free-text field. The match names every event, so a
/// new event (or a new text field in one) is a decision made here, not a leak.
pub(crate) fn mask_case_event(event: &mut CaseEvent) {
    fn free(text: &mut String) {
        if let std::borrow::Cow::Owned(masked) = mask_free_text(text) {
            *text = masked;
        }
    }
    fn free_opt(text: &mut Option<String>) {
        if let Some(text) = text {
            free(text);
        }
    }
    match event {
        CaseEvent::Registered(registered) => {
            for recorded in &mut registered.petitioners {
                match recorded {
                    RecordedPetitioner::Plain(petitioner) => mask_petitioner(petitioner),
                    // Sealed fields are ciphertext; nothing readable to mask.
                    RecordedPetitioner::Sealed(_) => {}
                }
            }
            free(&mut registered.matter);
        }
        CaseEvent::LeaderAssigned(assigned) => free_opt(&mut assigned.reason),
        CaseEvent::LeaderReassigned(reassigned) => free(&mut reassigned.reason),
        CaseEvent::ResponsibleUnitsSet(units) => free_opt(&mut units.handler),
        CaseEvent::MeasureAdded(added) => free(&mut added.description),
        CaseEvent::MeasureCompleted(completed) => free(&mut completed.result),
        CaseEvent::NoteRecorded(note) => free(&mut note.text),
        CaseEvent::Classified(classified) => free_opt(&mut classified.reason),
        CaseEvent::ResolutionClaimed(claimed) => {
            free(&mut claimed.summary);
            claimed.evidence.iter_mut().for_each(free);
        }
        CaseEvent::ClaimAccepted(accepted) => free_opt(&mut accepted.opinion),
        CaseEvent::ClaimSentBack(sent_back) => free(&mut sent_back.reasons),
        CaseEvent::PetitionRecorded(petition) => free(&mut petition.summary),
        CaseEvent::SatisfactionRated(rated) => free(&mut rated.rated_by),
        CaseEvent::LeaderActivity(activity) => {
            activity.participants.iter_mut().for_each(free);
            free(&mut activity.summary);
        }
        CaseEvent::HandlingExtended(extended) => {
            free(&mut extended.reason);
            free(&mut extended.approved_by);
        }
        CaseEvent::ProcedureStep(step) => free(&mut step.summary),
        CaseEvent::UnreadableCommitsSkipped(skipped) => free(&mut skipped.reason),
        CaseEvent::PetitionerErased(erased) => free(&mut erased.reason),
        CaseEvent::CrossedOff(_) | CaseEvent::Reopened(_) => {}
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
    use super::{mask_case_event, mask_free_text};
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};
    use zhzj_proto::DomainEvent;
    use zhzj_proto::events::CaseEvent;

    const PHONE: &str = "电话13912345678";

    fn of<T: DeserializeOwned>(data: Value) -> T {
        serde_json::from_value(data).expect("sample event data")
    }

    /// One event of every kind a case has, with a phone number in every text field.
    fn every_case_event() -> Vec<CaseEvent> {
        let unit = json!({"id": "u1", "name": PHONE});
        let leader = json!({"id": "l1", "name": PHONE, "title": PHONE, "unit_id": "u1"});
        let petitioner =
            json!({"name": PHONE, "id_number": PHONE, "phone": PHONE, "address": PHONE});
        vec![
            CaseEvent::Registered(of(json!({
                "case_number": "XF1", "petitioners": [petitioner], "matter": PHONE,
                "category": "征地拆迁", "district": unit, "town": null, "channel": "visit",
                "first_filed_on": "2025-06-01", "list_source": "screening", "group_size": 1}))),
            CaseEvent::LeaderAssigned(of(json!({"leader": leader, "reason": PHONE}))),
            CaseEvent::LeaderReassigned(of(json!({"from": leader, "to": leader, "reason": PHONE}))),
            CaseEvent::ResponsibleUnitsSet(of(
                json!({"lead": unit, "assisting": [], "handler": PHONE}),
            )),
            CaseEvent::MeasureAdded(of(json!({"measure_id": "m1", "description": PHONE,
                "due_on": null, "responsible_unit": null}))),
            CaseEvent::MeasureCompleted(of(json!({"measure_id": "m1", "result": PHONE}))),
            CaseEvent::NoteRecorded(of(json!({"text": PHONE}))),
            CaseEvent::Classified(of(
                json!({"class": "reasonable", "category": "征地", "reason": PHONE}),
            )),
            CaseEvent::ResolutionClaimed(of(json!({"claim": 1, "ground": "solved",
                "summary": PHONE, "evidence": [PHONE]}))),
            CaseEvent::ClaimAccepted(of(json!({"claim": 1, "level": "district",
                "opinion": PHONE}))),
            CaseEvent::ClaimSentBack(of(json!({"claim": 1, "level": "district",
                "reasons": PHONE}))),
            CaseEvent::CrossedOff(of(json!({"claim": 1}))),
            CaseEvent::PetitionRecorded(of(json!({"received_on": "2026-01-02",
                "channel": "visit", "summary": PHONE, "repeat_count": 1}))),
            CaseEvent::Reopened(of(json!({"crossed_off_by_claim": 1, "relapse_count": 1}))),
            CaseEvent::SatisfactionRated(of(json!({"rating": "satisfied",
                "rated_on": "2026-01-02", "rated_by": PHONE}))),
            CaseEvent::LeaderActivity(of(json!({"leader": leader, "kind": "home_visit",
                "held_on": "2026-01-02", "participants": [PHONE], "summary": PHONE}))),
            CaseEvent::HandlingExtended(of(
                json!({"days": 30, "reason": PHONE, "approved_by": PHONE}),
            )),
            CaseEvent::ProcedureStep(of(json!({"step": "replied", "on": "2026-01-02",
                "summary": PHONE, "hearing_days": 0}))),
            CaseEvent::UnreadableCommitsSkipped(of(json!({"positions": [3], "reason": PHONE}))),
            CaseEvent::PetitionerErased(of(
                json!({"petitioner": 1, "key_id": "k1", "reason": PHONE}),
            )),
        ]
    }

    /// The case view shows typed events masked by `mask_case_event`: no field a clerk can type
    /// into keeps a phone number. Names, titles and units are not personal data of the
    /// petitioner and stay as they are, so the sample only checks the fields that are masked.
    #[test]
    fn every_text_field_of_every_case_event_is_masked() {
        let events = every_case_event();
        for mut event in events {
            mask_case_event(&mut event);
            let (event_type, _, data) = DomainEvent::Case(event).encode().expect("encodable event");
            let mut data: Value = serde_json::from_str(data.get()).expect("JSON");
            // Directory references (units, leaders) are not free text.
            for reference in ["leader", "from", "to", "lead", "district"] {
                if let Some(fields) = data.as_object_mut() {
                    fields.remove(reference);
                }
            }
            let text = data.to_string();
            assert!(
                !text.contains("13912345678"),
                "{event_type} shows a phone number: {text}"
            );
        }
    }

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
