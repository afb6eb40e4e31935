-- Where each projection stands in the log, and which generation of its tables is live.
CREATE TABLE projection_checkpoints (
    projection TEXT PRIMARY KEY,
    position   BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    updated_at TEXT   NOT NULL
);

-- Messages a projection could not read, kept with the reason; the projection went on past them.
CREATE TABLE dead_letters (
    projection  TEXT   NOT NULL,
    position    BIGINT NOT NULL,
    subject     TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    payload     TEXT   NOT NULL,
    recorded_at TEXT   NOT NULL,
    PRIMARY KEY (projection, position)
);
