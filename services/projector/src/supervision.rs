//! The supervision view: `supervision_orders`, one row per supervision order (督办单) with its
//! level, due date and where it stands, and `supervision_order_cases`, the cases each order
//! names (for the case page). The order's history is read from the event archive.

use sqlx::AssertSqlSafe;
use zhzj_proto::{DomainEvent, SupervisionEvent};
use zhzj_store::{Dialect, china_date, sql::timestamp_text};

use crate::projection::{DeadLetter, ReadCommit};
use crate::sqlbuild::{SqlValue, enum_text, query_with_values, sql_position};

/// Where an order stands, as the `status` column holds it.
pub mod status {
    /// Issued, not signed for (待签收).
    pub const ISSUED: &str = "issued";
    /// Signed for, being worked (办理中).
    pub const ACKNOWLEDGED: &str = "acknowledged";
    /// Answered, awaiting the issuer's review (待审核).
    pub const ANSWERED: &str = "answered";
    /// The answer was sent back (已退回): being worked again.
    pub const SENT_BACK: &str = "sent_back";
    /// An answer was accepted (已办结).
    pub const ACCEPTED: &str = "accepted";
}

pub(crate) fn create_tables(suffix: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE supervision_orders{suffix} (
                order_id            TEXT    PRIMARY KEY,
                issuer_unit_id      TEXT    NOT NULL,
                issuer_unit_name    TEXT    NOT NULL,
                addressee_unit_id   TEXT    NOT NULL,
                addressee_unit_name TEXT    NOT NULL,
                level               TEXT    NOT NULL,
                matter              TEXT    NOT NULL,
                responsible         TEXT    NOT NULL,
                case_count          BIGINT  NOT NULL,
                first_due_on        TEXT    NOT NULL,
                answer_due_on       TEXT    NOT NULL,
                status              TEXT    NOT NULL,
                issued_at           TEXT    NOT NULL,
                issued_on           TEXT    NOT NULL,
                acknowledged_on     TEXT,
                progress            TEXT,
                progress_on         TEXT,
                answers             BIGINT  NOT NULL,
                answered_on         TEXT,
                answered_on_time    BIGINT,
                accepted_on         TEXT,
                escalations         BIGINT  NOT NULL,
                position            BIGINT  NOT NULL
            )"
        ),
        format!(
            "CREATE INDEX supervision_orders{suffix}_addressee ON supervision_orders{suffix} \
             (addressee_unit_id, status)"
        ),
        format!(
            "CREATE INDEX supervision_orders{suffix}_due ON supervision_orders{suffix} \
             (status, answer_due_on)"
        ),
        format!(
            "CREATE TABLE supervision_order_cases{suffix} (
                order_id TEXT NOT NULL,
                case_id  TEXT NOT NULL,
                PRIMARY KEY (order_id, case_id)
            )"
        ),
        format!(
            "CREATE INDEX supervision_order_cases{suffix}_case ON supervision_order_cases{suffix} \
             (case_id)"
        ),
    ]
}

/// Runs `UPDATE supervision_orders SET <set> WHERE order_id = <last>` with `values` bound in
/// order, then the order id.
async fn update(
    conn: &mut sqlx::AnyConnection,
    suffix: &str,
    set: &str,
    mut values: Vec<SqlValue>,
    order_id: &str,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "UPDATE supervision_orders{suffix} SET {set} WHERE order_id = ${}",
        values.len() + 1
    );
    values.push(SqlValue::Text(order_id.to_owned()));
    query_with_values(sql, values)?.execute(conn).await?;
    Ok(())
}

fn text(value: impl ToString) -> SqlValue {
    SqlValue::Text(value.to_string())
}

pub(crate) async fn apply(
    conn: &mut sqlx::AnyConnection,
    _dialect: Dialect,
    suffix: &str,
    batch: &[ReadCommit],
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    for commit in batch {
        for (envelope, event) in commit.envelopes.iter().zip(&commit.events) {
            let DomainEvent::Supervision(event) = event else {
                continue;
            };
            let order_id = envelope.aggregate_id.as_str();
            let position = sql_position(commit.position);
            let on = china_date(envelope.occurred_at);
            let Some((set, values)) = changes(event, on) else {
                if let SupervisionEvent::Issued(e) = event {
                    insert_order(conn, suffix, order_id, envelope.occurred_at, e, position).await?;
                }
                continue;
            };
            update(conn, suffix, set, values, order_id).await?;
            update(
                conn,
                suffix,
                "position = $1",
                vec![SqlValue::Int(position)],
                order_id,
            )
            .await?;
        }
    }
    Ok(Vec::new())
}

/// The order row and its cases, as issued.
async fn insert_order(
    conn: &mut sqlx::AnyConnection,
    suffix: &str,
    order_id: &str,
    issued_at: chrono::DateTime<chrono::Utc>,
    e: &zhzj_proto::events::SupervisionOrderIssued,
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO supervision_orders{suffix} (order_id, issuer_unit_id, \
         issuer_unit_name, addressee_unit_id, addressee_unit_name, level, matter, \
         responsible, case_count, first_due_on, answer_due_on, status, issued_at, \
         issued_on, answers, escalations, position) VALUES ($1, $2, $3, $4, $5, \
         $6, $7, $8, $9, $10, $10, $11, $12, $13, 0, 0, $14) ON CONFLICT DO NOTHING"
    )))
    .bind(order_id)
    .bind(&e.issuer.id)
    .bind(&e.issuer.name)
    .bind(&e.addressee.id)
    .bind(&e.addressee.name)
    .bind(enum_text(&e.level))
    .bind(&e.matter)
    .bind(&e.responsible)
    .bind(i64::try_from(e.case_ids.len()).unwrap_or(i64::MAX))
    .bind(e.answer_due_on.to_string())
    .bind(status::ISSUED)
    .bind(timestamp_text(issued_at))
    .bind(china_date(issued_at).to_string())
    .bind(position)
    .execute(&mut *conn)
    .await?;
    for case_id in &e.case_ids {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO supervision_order_cases{suffix} (order_id, case_id) \
             VALUES ($1, $2) ON CONFLICT DO NOTHING"
        )))
        .bind(order_id)
        .bind(case_id.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What a later step changes on the order row (the columns to set, their values); none for the
/// issue, which inserts the row.
fn changes(
    event: &SupervisionEvent,
    on: chrono::NaiveDate,
) -> Option<(&'static str, Vec<SqlValue>)> {
    Some(match event {
        SupervisionEvent::Issued(_) => return None,
        SupervisionEvent::Acknowledged(e) => (
            "acknowledged_on = $1, status = $2",
            vec![text(e.on), text(status::ACKNOWLEDGED)],
        ),
        SupervisionEvent::ProgressReported(e) => (
            "progress = $1, progress_on = $2",
            vec![text(&e.text), text(e.on)],
        ),
        SupervisionEvent::Answered(e) => (
            "answers = answers + 1, answered_on = $1, answered_on_time = $2, status = $3",
            vec![
                text(e.on),
                SqlValue::Int(i64::from(e.on_time)),
                text(status::ANSWERED),
            ],
        ),
        SupervisionEvent::AnswerAccepted(_) => (
            "accepted_on = $1, status = $2",
            vec![text(on), text(status::ACCEPTED)],
        ),
        SupervisionEvent::AnswerSentBack(e) => (
            "answer_due_on = $1, status = $2",
            vec![text(e.answer_due_on), text(status::SENT_BACK)],
        ),
        SupervisionEvent::Escalated(e) => (
            "level = $1, answer_due_on = $2, escalations = escalations + 1",
            vec![text(enum_text(&e.to)), text(e.answer_due_on)],
        ),
    })
}

crate::projection::projection_kind! {
    /// The supervision view: supervision orders and the cases they name.
    SupervisionView {
        name: "supervision",
        tables: ["supervision_orders", "supervision_order_cases"],
        create: |_dialect, suffix| create_tables(suffix),
        apply: |conn, dialect, suffix, batch, _run| apply(conn, dialect, suffix, batch).await,
    }
}
