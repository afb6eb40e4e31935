-- Early warnings (预警): one row per condition the warning service found, keyed by the rule and
-- what it is about (the case, the clock step and its due date …), so that a condition fires
-- once; `cleared_at` is set when it ends. `notified` says its messages were made.
CREATE TABLE warnings (
    warning_key TEXT PRIMARY KEY,
    rule        TEXT NOT NULL,
    case_id     TEXT,
    order_id    TEXT,
    unit_id     TEXT,
    leader_id   TEXT,
    title       TEXT NOT NULL,
    fired_at    TEXT NOT NULL,
    cleared_at  TEXT,
    notified    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX warnings_open ON warnings (cleared_at, rule);

-- The in-app inbox (站内消息): one message per user and source (a warning, a supervision
-- event, a daily digest); never a petitioner's personal data.
CREATE TABLE inbox_messages (
    message_id TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    username   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    link       TEXT,
    created_at TEXT NOT NULL,
    read_at    TEXT
);
CREATE INDEX inbox_messages_user ON inbox_messages (username, read_at);
CREATE UNIQUE INDEX inbox_messages_source ON inbox_messages (source, username);

-- Outbound deliveries (SMTP mail, WeCom / DingTalk robot webhooks), one per channel and source,
-- retried with backoff; what happened is kept (sent, failed, why).
CREATE TABLE notification_deliveries (
    delivery_id     TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    target          TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    last_error      TEXT,
    next_attempt_at TEXT NOT NULL,
    sent_at         TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_attempt_at);

-- How far the notifier has read the event archive for supervision events.
CREATE TABLE notifier_cursor (
    name     TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
