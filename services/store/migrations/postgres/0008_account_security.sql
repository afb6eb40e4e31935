-- Account security: a password that must be changed (a new account's, a reset one), when it was
-- last changed (for the optional maximum age), a disabled account, when a session was last used
-- (the idle timeout), and the failed logins that lock an account or a client address.
ALTER TABLE users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN password_changed_at TEXT;
ALTER TABLE users ADD COLUMN disabled_at TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;

-- Failed logins by subject: `user:<username>` (known or not, so that a lockout does not tell
-- which names exist) and `addr:<client address>`. Counted within a window; locked at the limit.
CREATE TABLE login_failures (
    subject         TEXT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    first_failed_at TEXT NOT NULL,
    locked_until    TEXT
);
