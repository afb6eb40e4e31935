//! The retention rule (PIPL 第四十七条: personal data is deleted when its retention period
//! ends): which petitioners of cases crossed off (销号) before a day are still to be erased, read
//! from the read store. `zhzj retention` lists them and sends the erasures.

use chrono::NaiveDate;
use sqlx::Row;
use zhzj_proto::events::{CaseRegistered, PetitionerErased, RecordedPetitioner};
use zhzj_store::ReadStore;

/// The reason an erasure under the retention rule records.
pub const RETENTION_REASON: &str = "保存期限届满";

/// One petitioner of a case crossed off before the cut-off day, not erased yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureDue {
    /// The case.
    pub case_id: String,
    /// Its number (案件编号).
    pub case_number: String,
    /// When it was crossed off (RFC 3339).
    pub crossed_off_at: String,
    /// Which petitioner, as the case lists them: 1 for the first.
    pub petitioner: u32,
    /// False for a petitioner registered before encryption: stored in plaintext in the log, they
    /// cannot be erased by destroying a key.
    pub sealed: bool,
}

/// Failure to read the store.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The read store failed.
    #[error("read store: {0}")]
    Store(#[from] sqlx::Error),
    /// An archived event did not decode.
    #[error("archived {event_type} of case {case_id} does not decode: {source}")]
    Event {
        /// The event's type.
        event_type: String,
        /// The case.
        case_id: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// The first day not yet due: `years` before `today`.
pub fn cut_off(today: NaiveDate, years: u32) -> Option<NaiveDate> {
    today.checked_sub_months(chrono::Months::new(years.checked_mul(12)?))
}

/// The petitioners still to erase of the cases that were crossed off before `crossed_off_before`
/// and are still crossed off (a reopened case is live again), oldest first.
pub async fn due_for_erasure(
    store: &ReadStore,
    crossed_off_before: NaiveDate,
) -> Result<Vec<ErasureDue>, RetentionError> {
    let cases = sqlx::query(
        "SELECT l.case_id, c.case_number, l.crossed_off_at FROM case_lifecycle l \
         JOIN checklist_rows c ON c.case_id = l.case_id \
         WHERE l.stage = 'crossed_off' AND l.crossed_off_at < $1 \
         ORDER BY l.crossed_off_at, l.case_id",
    )
    .bind(crossed_off_before.to_string())
    .fetch_all(store.pool())
    .await?;
    let mut due = Vec::new();
    for case in cases {
        let case_id: String = case.try_get("case_id")?;
        let case_number: String = case.try_get("case_number")?;
        let crossed_off_at: String = case.try_get("crossed_off_at")?;
        let events = sqlx::query(
            "SELECT event_type, CAST(data AS TEXT) AS data FROM event_archive \
             WHERE aggregate_type = 'case' AND aggregate_id = $1 \
             AND event_type IN ('CaseRegistered', 'PetitionerErased') \
             ORDER BY position, event_index",
        )
        .bind(&case_id)
        .fetch_all(store.pool())
        .await?;
        let mut sealed = Vec::new();
        let mut erased = std::collections::BTreeSet::new();
        for event in events {
            let event_type: String = event.try_get("event_type")?;
            let data: String = event.try_get("data")?;
            let undecodable = |source| RetentionError::Event {
                event_type: event_type.clone(),
                case_id: case_id.clone(),
                source,
            };
            if event_type == "CaseRegistered" {
                let registered: CaseRegistered =
                    serde_json::from_str(&data).map_err(undecodable)?;
                sealed = registered
                    .petitioners
                    .iter()
                    .map(|p| matches!(p, RecordedPetitioner::Sealed(_)))
                    .collect();
            } else {
                let gone: PetitionerErased = serde_json::from_str(&data).map_err(undecodable)?;
                erased.insert(gone.petitioner);
            }
        }
        for (petitioner, sealed) in (1_u32..).zip(sealed) {
            if !erased.contains(&petitioner) {
                due.push(ErasureDue {
                    case_id: case_id.clone(),
                    case_number: case_number.clone(),
                    crossed_off_at: crossed_off_at.clone(),
                    petitioner,
                    sealed,
                });
            }
        }
    }
    Ok(due)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_off_is_whole_years_back_and_a_leap_day_falls_back() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a real day");
        assert_eq!(cut_off(day(2026, 12, 2), 3), Some(day(2023, 12, 2)));
        assert_eq!(cut_off(day(2028, 2, 29), 1), Some(day(2027, 2, 28)));
        assert_eq!(cut_off(day(2026, 1, 1), 0), Some(day(2026, 1, 1)));
    }
}
