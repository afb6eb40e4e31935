//! Notifications that reach people: the notifier turns fired warnings and supervision events
//! (read from the event archive past its cursor) into in-app messages (站内消息) for the users
//! concerned — the owning leader's bound account (of a warned case, or of a case an order names),
//! the coordinators of the unit (and of a case's district), the issuer of an order — and into
//! deliveries on the units' outbound channels (SMTP mail, WeCom / DingTalk robots); it makes each
//! unit's and each owning leader's daily digest; and it sends what is due, retrying a failed
//! delivery with backoff and recording what happened. No message carries a petitioner's personal
//! data: they name case numbers, units, levels and dates, and link to the page.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;
use zhzj_proto::accounts::Role;
use zhzj_proto::{DomainEvent, SupervisionEvent};
use zhzj_store::{Clock, ReadStore, WriteTransaction, china_date, sql::timestamp_text};

use crate::channels::{ChannelError, send};
use crate::rules::{Channel, SupervisionRules};

/// Deliveries a pass sends at most.
const DELIVERIES_PER_PASS: i64 = 100;
/// Attempts before a delivery is recorded as failed.
pub const MAX_ATTEMPTS: i64 = 5;
/// Namespace of inbox message ids (one per source and user).
const MESSAGE_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x51c0_8e27_3b4d_4a96_9f1e_d2a7_60c3_8b45);
/// Supervision events older than this are not notified (the cursor passes them): a first run
/// on a long history does not send its whole past, and a week-old step is no news.
const STALE_AFTER_DAYS: i64 = 7;
/// Supervision events read per pass at most.
const EVENTS_PER_PASS: i64 = 500;
/// Notices of one group (warnings of one rule, supervision steps) a pass sends one user (or one
/// channel) one by one; more become one message that counts them — the first pass over a
/// long-kept checklist fires thousands of warnings, a meeting may issue dozens of orders at once,
/// and a group robot takes about twenty messages a minute.
const ONE_BY_ONE: usize = 3;
/// How long a notifier holds a delivery it is sending: another notifier (of another gateway on
/// the same store) leaves it alone meanwhile, and takes it up after if this one died sending.
const SENDING_LEASE_MINUTES: i64 = 2;
/// Titles a summary message quotes.
const SUMMARY_QUOTES: usize = 10;

/// What one notifier pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyPass {
    /// In-app messages made.
    pub messages: usize,
    /// Deliveries queued.
    pub queued: usize,
    /// Deliveries sent.
    pub sent: usize,
    /// Attempts that failed (to be retried, or given up).
    pub failed_attempts: usize,
}

/// Why a pass could not finish.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The read store.
    #[error("read store: {0}")]
    Store(#[from] sqlx::Error),
}

/// A notice to make: who gets it in the inbox, which units' channels carry it.
#[derive(Debug, Clone)]
struct Notice {
    /// Names the source (a warning key, `event:<position>:<index>`, `digest:<day>`).
    source: String,
    kind: &'static str,
    title: String,
    body: String,
    link: Option<String>,
    /// Units whose coordinators get it, and whose channels carry it.
    units: Vec<String>,
    /// Leaders whose bound accounts get it.
    leader_ids: Vec<String>,
    /// What it is counted with when many reach one person or channel in a pass (none: always
    /// sent alone, as the digests are).
    group: Option<Group>,
}

/// What several notices to one person or channel in a pass are summed up as.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    /// Warnings of one rule.
    Warnings(String),
    /// Supervision orders' steps.
    Supervision,
}

impl Notice {
    /// One message for several notices of `group`: how many, the first titles, and a link to
    /// the list (of warnings, filtered by the rule; of orders).
    fn summary(group: &Group, members: &[&Notice]) -> Notice {
        let first = members.first().map_or("", |notice| notice.source.as_str());
        let count = members.len();
        let (source, kind, title, link, list) = match group {
            Group::Warnings(rule) => (
                format!("warnings:{rule}:{first}"),
                "warning",
                format!(
                    "【预警·{}】新增 {count} 条",
                    crate::warnings::rule_label(rule)
                ),
                format!("/warnings?rule={rule}"),
                "预警列表",
            ),
            Group::Supervision => (
                format!("supervision:{first}"),
                "supervision",
                format!("【督办】新增 {count} 条督办消息"),
                "/supervision".to_owned(),
                "督办列表",
            ),
        };
        let mut body = members
            .iter()
            .take(SUMMARY_QUOTES)
            .map(|notice| notice.body.as_str())
            .collect::<Vec<_>>()
            .join("；");
        if count > SUMMARY_QUOTES {
            body.push_str(&format!("……共 {count} 条，详见{list}。"));
        }
        Notice {
            source,
            kind,
            title,
            body,
            link: Some(link),
            units: Vec::new(),
            leader_ids: Vec::new(),
            group: Some(group.clone()),
        }
    }
}

/// Who gets a notice in the inbox, looked up once per unit and leader in a pass.
#[derive(Default)]
struct RecipientCache {
    coordinators: HashMap<String, Vec<String>>,
    bound_accounts: HashMap<String, Vec<String>>,
}

impl RecipientCache {
    /// The enabled coordinators of the notice's units and the accounts bound to its leaders.
    async fn recipients(
        &mut self,
        tx: &mut WriteTransaction,
        notice: &Notice,
    ) -> Result<BTreeSet<String>, sqlx::Error> {
        let mut recipients = BTreeSet::new();
        for unit in &notice.units {
            if !self.coordinators.contains_key(unit) {
                let users: Vec<(String, String)> = sqlx::query_as(
                    "SELECT username, roles FROM users WHERE unit_id = $1 AND disabled_at IS NULL",
                )
                .bind(unit)
                .fetch_all(&mut **tx)
                .await?;
                let coordinators = users
                    .into_iter()
                    .filter(|(_, roles)| {
                        let names: Vec<&str> = roles.split(',').map(str::trim).collect();
                        Role::Coordinator.is_in(&names)
                    })
                    .map(|(username, _)| username)
                    .collect();
                self.coordinators.insert(unit.clone(), coordinators);
            }
            recipients.extend(self.coordinators[unit].iter().cloned());
        }
        for leader in &notice.leader_ids {
            if !self.bound_accounts.contains_key(leader) {
                let users: Vec<String> = sqlx::query_scalar(
                    "SELECT username FROM users WHERE leader_id = $1 AND disabled_at IS NULL",
                )
                .bind(leader)
                .fetch_all(&mut **tx)
                .await?;
                self.bound_accounts.insert(leader.clone(), users);
            }
            recipients.extend(self.bound_accounts[leader].iter().cloned());
        }
        Ok(recipients)
    }
}

/// The notifier.
#[derive(Debug, Clone)]
pub struct Notifier {
    store: ReadStore,
    clock: Arc<dyn Clock>,
    rules: Arc<SupervisionRules>,
    http: reqwest::Client,
}

impl Notifier {
    /// A notifier writing to `store`, telling time by `clock`.
    pub fn new(store: ReadStore, clock: Arc<dyn Clock>, rules: Arc<SupervisionRules>) -> Self {
        // Robots and STARTTLS mail through rustls with ring, as NATS connections use.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            store,
            clock,
            rules,
            http,
        }
    }

    /// One pass: notices of new warnings and supervision events, the digests due, then the
    /// deliveries due.
    pub async fn run_once(&self) -> Result<NotifyPass, NotifyError> {
        let now = self.clock.now();
        let mut pass = NotifyPass::default();
        let warnings = self.warning_notices().await?;
        let (mut notices, cursor) = self.supervision_notices(now).await?;
        notices.extend(self.digest_notices(now).await?);
        notices.extend(warnings.iter().cloned());
        let mut tx = self.store.begin_write().await?;
        let (messages, queued) = self.record_grouped(&mut tx, &notices, now).await?;
        pass.messages += messages;
        pass.queued += queued;
        for notice in &warnings {
            sqlx::query("UPDATE warnings SET notified = 1 WHERE warning_key = $1")
                .bind(&notice.source)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(position) = cursor {
            sqlx::query(
                "INSERT INTO notifier_cursor (name, position) VALUES ('supervision', $1) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            )
            .bind(position)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let (sent, failed) = self.deliver_due(now).await?;
        pass.sent = sent;
        pass.failed_attempts = failed;
        Ok(pass)
    }

    /// Notices of the warnings that fired and were not notified yet.
    async fn warning_notices(&self) -> Result<Vec<Notice>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT w.warning_key, w.rule, w.case_id, w.order_id, w.unit_id, w.leader_id, \
             w.title, o.issuer_unit_id, c.district_id FROM warnings w \
             LEFT JOIN supervision_orders o ON o.order_id = w.order_id \
             LEFT JOIN checklist_rows c ON c.case_id = w.case_id \
             WHERE w.notified = 0 AND w.cleared_at IS NULL ORDER BY w.fired_at, w.warning_key",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut notices = Vec::with_capacity(rows.len());
        for row in rows {
            let rule: String = row.try_get("rule")?;
            let case_id: Option<String> = row.try_get("case_id")?;
            let order_id: Option<String> = row.try_get("order_id")?;
            // The unit it concerns (a case's town, else its district), the district of a case
            // (its task force oversees the towns), the issuer of an order.
            let units: Vec<String> = [
                row.try_get::<Option<String>, _>("unit_id")?,
                row.try_get::<Option<String>, _>("district_id")?,
                row.try_get::<Option<String>, _>("issuer_unit_id")?,
            ]
            .into_iter()
            .flatten()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
            let title: String = row.try_get("title")?;
            notices.push(Notice {
                source: row.try_get("warning_key")?,
                kind: "warning",
                title: format!("【预警·{}】{title}", crate::warnings::rule_label(&rule)),
                body: title,
                link: match (case_id, order_id) {
                    (Some(case), _) => Some(format!("/cases/{case}")),
                    (None, Some(order)) => Some(format!("/supervision/{order}")),
                    (None, None) => Some("/warnings".to_owned()),
                },
                units,
                leader_ids: row
                    .try_get::<Option<String>, _>("leader_id")?
                    .into_iter()
                    .collect(),
                group: Some(Group::Warnings(rule)),
            });
        }
        Ok(notices)
    }

    /// Notices of the supervision events past the cursor, and the cursor after them.
    async fn supervision_notices(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(Vec<Notice>, Option<i64>), sqlx::Error> {
        let stale_before = timestamp_text(now - chrono::Duration::days(STALE_AFTER_DAYS));
        let cursor: i64 =
            sqlx::query_scalar("SELECT position FROM notifier_cursor WHERE name = 'supervision'")
                .fetch_optional(self.store.pool())
                .await?
                .unwrap_or(0);
        let rows = sqlx::query(
            "SELECT e.position, e.event_index, e.aggregate_id, e.event_type, e.schema_version, \
             e.occurred_at, CAST(e.data AS TEXT) AS data, o.issuer_unit_id, o.issuer_unit_name, \
             o.addressee_unit_id, o.addressee_unit_name FROM event_archive e \
             JOIN supervision_orders o ON o.order_id = e.aggregate_id \
             WHERE e.aggregate_type = 'supervision' AND e.position > $1 \
             ORDER BY e.position, e.event_index LIMIT $2",
        )
        .bind(cursor)
        .bind(EVENTS_PER_PASS)
        .fetch_all(self.store.pool())
        .await?;
        let mut last = None;
        let mut notices = Vec::new();
        for row in rows {
            let position: i64 = row.try_get("position")?;
            let index: i32 = row.try_get("event_index")?;
            last = Some(position);
            let occurred_at: String = row.try_get("occurred_at")?;
            if occurred_at < stale_before {
                continue;
            }
            let event_type: String = row.try_get("event_type")?;
            let version: i32 = row.try_get("schema_version")?;
            let data: String = row.try_get("data")?;
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&data) else {
                continue;
            };
            let Ok(DomainEvent::Supervision(event)) =
                DomainEvent::decode(&event_type, u32::try_from(version).unwrap_or(0), value)
            else {
                continue;
            };
            let order_id: String = row.try_get("aggregate_id")?;
            let issuer: (String, String) = (
                row.try_get("issuer_unit_id")?,
                row.try_get("issuer_unit_name")?,
            );
            let addressee: (String, String) = (
                row.try_get("addressee_unit_id")?,
                row.try_get("addressee_unit_name")?,
            );
            let Some((title, units)) = supervision_message(&event, &issuer, &addressee) else {
                continue;
            };
            // What the addressee must do reaches the owning leaders of the order's cases too.
            let leader_ids = if matches!(
                event,
                SupervisionEvent::Issued(_) | SupervisionEvent::Escalated(_)
            ) {
                sqlx::query_scalar(
                    "SELECT DISTINCT c.leader_id FROM supervision_order_cases s \
                     JOIN checklist_rows c ON c.case_id = s.case_id \
                     WHERE s.order_id = $1 AND c.leader_id IS NOT NULL ORDER BY c.leader_id",
                )
                .bind(&order_id)
                .fetch_all(self.store.pool())
                .await?
            } else {
                Vec::new()
            };
            notices.push(Notice {
                source: format!("event:{position}:{index}"),
                kind: "supervision",
                body: title.clone(),
                title,
                link: Some(format!("/supervision/{order_id}")),
                units,
                leader_ids,
                group: Some(Group::Supervision),
            });
        }
        Ok((notices, last))
    }

    /// Each unit's digest of the day, once the digest hour has come: its open warnings (a
    /// district's include its towns' cases) and its open supervision orders, to its coordinators
    /// and channels; and each owning leader's.
    async fn digest_notices(&self, now: DateTime<Utc>) -> Result<Vec<Notice>, sqlx::Error> {
        let local = now + chrono::Duration::hours(8);
        if chrono::Timelike::hour(&local) < self.rules.digest_hour {
            return Ok(Vec::new());
        }
        let day = china_date(now);
        let source = format!("digest:{day}");
        let done: Option<String> = sqlx::query_scalar(
            "SELECT message_id FROM inbox_messages WHERE source = $1 OR source LIKE $2 LIMIT 1",
        )
        .bind(&source)
        .bind(format!("{source}:%"))
        .fetch_optional(self.store.pool())
        .await?;
        if done.is_some() {
            return Ok(Vec::new());
        }
        let mut notices = Vec::new();
        let rows = sqlx::query(
            "SELECT u.unit_id, (SELECT COUNT(*) FROM warnings w \
             LEFT JOIN checklist_rows c ON c.case_id = w.case_id WHERE w.cleared_at IS NULL \
             AND (w.unit_id = u.unit_id OR c.district_id = u.unit_id)) AS warnings, \
             (SELECT COUNT(*) FROM supervision_orders o WHERE o.addressee_unit_id = u.unit_id AND o.status <> 'accepted') AS orders, \
             (SELECT COUNT(*) FROM supervision_orders o WHERE o.addressee_unit_id = u.unit_id \
             AND o.status IN ('issued', 'acknowledged', 'sent_back') AND o.answer_due_on < $1) \
             AS overdue FROM (SELECT DISTINCT unit_id FROM users WHERE unit_id IS NOT NULL) u \
             ORDER BY u.unit_id",
        )
        .bind(day.to_string())
        .fetch_all(self.store.pool())
        .await?;
        for row in rows {
            let (warnings, orders, overdue): (i64, i64, i64) = (
                row.try_get("warnings")?,
                row.try_get("orders")?,
                row.try_get("overdue")?,
            );
            if warnings + orders == 0 {
                continue;
            }
            let unit: String = row.try_get("unit_id")?;
            let text = format!(
                "{day} 每日摘要：本单位未解除预警 {warnings} 条；承办中的督办单 {orders} 件，其中逾期未反馈 {overdue} 件。"
            );
            notices.push(Notice {
                source: source.clone(),
                kind: "digest",
                title: format!("【每日摘要】{day}"),
                body: text,
                link: Some("/warnings".to_owned()),
                units: vec![unit],
                leader_ids: Vec::new(),
                group: None,
            });
        }
        notices.extend(self.leader_digests(day).await?);
        Ok(notices)
    }

    /// Each owning leader's digest of the day: the open warnings on the cases they own, by rule,
    /// to their bound accounts.
    async fn leader_digests(&self, day: NaiveDate) -> Result<Vec<Notice>, sqlx::Error> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT leader_id, rule, COUNT(*) FROM warnings \
             WHERE cleared_at IS NULL AND leader_id IS NOT NULL \
             GROUP BY leader_id, rule ORDER BY leader_id, rule",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut by_leader: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
        for (leader, rule, count) in rows {
            by_leader.entry(leader).or_default().push((rule, count));
        }
        Ok(by_leader
            .into_iter()
            .map(|(leader, rules)| {
                let total: i64 = rules.iter().map(|(_, count)| count).sum();
                let parts = rules
                    .iter()
                    .map(|(rule, count)| {
                        format!("{} {count} 条", crate::warnings::rule_label(rule))
                    })
                    .collect::<Vec<_>>()
                    .join("，");
                Notice {
                    source: format!("digest:{day}:leader:{leader}"),
                    kind: "digest",
                    title: format!("【每日摘要】{day}"),
                    body: format!(
                        "{day} 每日摘要：您包案的案件有未解除预警 {total} 条（{parts}）。"
                    ),
                    link: Some("/warnings".to_owned()),
                    units: Vec::new(),
                    leader_ids: vec![leader],
                    group: None,
                }
            })
            .collect())
    }

    /// Writes the pass's notices: one by one to a user or a channel that gets few of a group in
    /// this pass, as one summary to one that gets many. Returns (messages, deliveries) new.
    async fn record_grouped(
        &self,
        tx: &mut WriteTransaction,
        notices: &[Notice],
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), sqlx::Error> {
        let mut cache = RecipientCache::default();
        let mut by_user: BTreeMap<(String, Option<&Group>), Vec<&Notice>> = BTreeMap::new();
        let mut by_channel: BTreeMap<(usize, Option<&Group>), Vec<&Notice>> = BTreeMap::new();
        for notice in notices {
            let group = notice.group.as_ref();
            for username in cache.recipients(tx, notice).await? {
                by_user.entry((username, group)).or_default().push(notice);
            }
            for index in self.channels_of(notice) {
                by_channel.entry((index, group)).or_default().push(notice);
            }
        }
        let at = timestamp_text(now);
        let (mut messages, mut queued) = (0, 0);
        for ((username, group), members) in by_user {
            for notice in coalesced(group, &members) {
                messages += usize::from(Self::insert_message(tx, &notice, &username, &at).await?);
            }
        }
        for ((index, group), members) in by_channel {
            for notice in coalesced(group, &members) {
                queued += usize::from(self.queue_delivery(tx, &notice, index, &at).await?);
            }
        }
        Ok((messages, queued))
    }

    /// The indexes of the channels of a notice's units.
    fn channels_of(&self, notice: &Notice) -> Vec<usize> {
        self.rules
            .channels
            .iter()
            .enumerate()
            .filter(|(_, channel)| notice.units.contains(&channel.unit_id))
            .map(|(index, _)| index)
            .collect()
    }

    /// Puts `notice` in `username`'s inbox; whether it was new.
    async fn insert_message(
        tx: &mut WriteTransaction,
        notice: &Notice,
        username: &str,
        at: &str,
    ) -> Result<bool, sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO inbox_messages (message_id, source, username, kind, title, body, \
             link, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(
            uuid::Uuid::new_v5(
                &MESSAGE_NAMESPACE,
                format!("{}/{username}", notice.source).as_bytes(),
            )
            .to_string(),
        )
        .bind(&notice.source)
        .bind(username)
        .bind(notice.kind)
        .bind(&notice.title)
        .bind(&notice.body)
        .bind(&notice.link)
        .bind(at)
        .execute(&mut **tx)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Queues `notice` on the channel numbered `index`; whether it was new.
    async fn queue_delivery(
        &self,
        tx: &mut WriteTransaction,
        notice: &Notice,
        index: usize,
        at: &str,
    ) -> Result<bool, sqlx::Error> {
        let Some(channel) = self.rules.channels.get(index) else {
            return Ok(false);
        };
        let inserted = sqlx::query(
            "INSERT INTO notification_deliveries (delivery_id, channel, kind, target, title, \
             body, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) ON CONFLICT DO NOTHING",
        )
        .bind(format!(
            "{}#{index}/{}/{}",
            channel.unit_id,
            channel.kind.code(),
            notice.source
        ))
        .bind(format!("{}#{index}", channel.unit_id))
        .bind(channel.kind.code())
        .bind(channel.target())
        .bind(&notice.title)
        .bind(&notice.body)
        .bind(at)
        .execute(&mut **tx)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Sends the deliveries due; returns (sent, failed attempts).
    async fn deliver_due(&self, now: DateTime<Utc>) -> Result<(usize, usize), sqlx::Error> {
        let rows = sqlx::query(
            "SELECT delivery_id, channel, title, body, attempts FROM notification_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, delivery_id LIMIT $2",
        )
        .bind(timestamp_text(now))
        .bind(DELIVERIES_PER_PASS)
        .fetch_all(self.store.pool())
        .await?;
        let (mut sent, mut failed) = (0, 0);
        for row in rows {
            let id: String = row.try_get("delivery_id")?;
            if !self.claim(&id, now).await? {
                continue;
            }
            let channel_name: String = row.try_get("channel")?;
            let attempts: i64 = row.try_get::<i64, _>("attempts")? + 1;
            let channel = channel_name
                .rsplit_once('#')
                .and_then(|(_, index)| index.parse::<usize>().ok())
                .and_then(|index| self.rules.channels.get(index));
            let outcome = match channel {
                Some(channel) => {
                    let title: String = row.try_get("title")?;
                    let body: String = row.try_get("body")?;
                    self.send_one(channel, &title, &body).await
                }
                None => Err(ChannelError::Config(
                    "channel no longer configured".to_owned(),
                )),
            };
            let mut tx = self.store.begin_write().await?;
            match outcome {
                Ok(()) => {
                    sqlx::query(
                        "UPDATE notification_deliveries SET status = 'sent', attempts = $1, \
                         sent_at = $2, last_error = NULL WHERE delivery_id = $3",
                    )
                    .bind(attempts)
                    .bind(timestamp_text(now))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    sent += 1;
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!(delivery = id, error = %e, attempts, "notification delivery failed");
                    // 1, 2, 4, 8 minutes between attempts; then given up.
                    let wait = chrono::Duration::minutes(1_i64 << (attempts - 1).clamp(0, 10));
                    let status = if attempts >= MAX_ATTEMPTS {
                        "failed"
                    } else {
                        "pending"
                    };
                    sqlx::query(
                        "UPDATE notification_deliveries SET status = $1, attempts = $2, \
                         last_error = $3, next_attempt_at = $4 WHERE delivery_id = $5",
                    )
                    .bind(status)
                    .bind(attempts)
                    .bind(e.to_string())
                    .bind(timestamp_text(now + wait))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
        }
        Ok((sent, failed))
    }

    /// Takes delivery `id` for sending if it is still due — no other notifier took it since it
    /// was read — by moving its next attempt past the lease.
    async fn claim(&self, id: &str, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
        let mut tx = self.store.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE notification_deliveries SET next_attempt_at = $1 \
             WHERE delivery_id = $2 AND status = 'pending' AND next_attempt_at <= $3",
        )
        .bind(timestamp_text(
            now + chrono::Duration::minutes(SENDING_LEASE_MINUTES),
        ))
        .bind(id)
        .bind(timestamp_text(now))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn send_one(
        &self,
        channel: &Channel,
        title: &str,
        body: &str,
    ) -> Result<(), ChannelError> {
        send(&self.http, self.rules.smtp.as_ref(), channel, title, body).await
    }
}

/// The notices of one group for one user or channel as sent: one by one when few (or of no
/// group), else one summary.
fn coalesced<'a>(
    group: Option<&Group>,
    members: &[&'a Notice],
) -> Vec<std::borrow::Cow<'a, Notice>> {
    match group {
        Some(group) if members.len() > ONE_BY_ONE => {
            vec![std::borrow::Cow::Owned(Notice::summary(group, members))]
        }
        _ => members
            .iter()
            .map(|notice| std::borrow::Cow::Borrowed(*notice))
            .collect(),
    }
}

/// The message of a supervision event and the units it goes to: the addressee for what it must
/// do, the issuer for what it must review.
fn supervision_message(
    event: &SupervisionEvent,
    (issuer_id, issuer): &(String, String),
    (addressee_id, addressee): &(String, String),
) -> Option<(String, Vec<String>)> {
    Some(match event {
        SupervisionEvent::Issued(e) => (
            format!(
                "【{}】{issuer}向{addressee}下发{}单，请于 {} 前办结反馈",
                e.level.label(),
                e.level.label(),
                e.answer_due_on
            ),
            vec![addressee_id.clone()],
        ),
        SupervisionEvent::Escalated(e) => (
            format!(
                "【督办升级】{issuer}对{addressee}的督办单逾期未反馈（期限 {}），已由{}升级为{}，请于 {} 前办结反馈",
                e.missed_due_on,
                e.from.label(),
                e.to.label(),
                e.answer_due_on
            ),
            vec![addressee_id.clone(), issuer_id.clone()],
        ),
        SupervisionEvent::Answered(e) => (
            format!(
                "【督办反馈】{addressee}已办结反馈（第 {} 次{}），请审核",
                e.answer,
                if e.on_time { "" } else { "，逾期" }
            ),
            vec![issuer_id.clone()],
        ),
        SupervisionEvent::AnswerSentBack(e) => (
            format!(
                "【督办退回】{issuer}退回了{addressee}的第 {} 次反馈，请于 {} 前重新反馈",
                e.answer, e.answer_due_on
            ),
            vec![addressee_id.clone()],
        ),
        SupervisionEvent::AnswerAccepted(_) => (
            format!("【督办办结】{issuer}已审核通过{addressee}的办结反馈"),
            vec![addressee_id.clone()],
        ),
        SupervisionEvent::Acknowledged(_) | SupervisionEvent::ProgressReported(_) => return None,
    })
}
