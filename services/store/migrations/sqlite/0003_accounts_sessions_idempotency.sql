-- Accounts of the people who use the gateway. The password is an argon2 PHC string.
CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    -- Role names, comma-separated (roles are enforced from the lifecycle issue on).
    roles         TEXT NOT NULL,
    -- The org unit the user works in, which will bound what they see and do.
    unit_id       TEXT,
    created_at    TEXT NOT NULL
);

-- Login sessions; only a SHA-256 of the token is kept.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES users (username),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Answers to writes sent with an Idempotency-Key, so that a repeat gets the first answer.
CREATE TABLE idempotency_keys (
    username      TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    -- SHA-256 of method, path and body: the same key with another request is refused.
    request_hash  TEXT NOT NULL,
    command_id    TEXT NOT NULL,
    status        BIGINT,
    response_body TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (username, idem_key)
);
