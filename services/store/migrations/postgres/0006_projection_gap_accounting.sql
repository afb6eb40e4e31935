-- How many log positions a projection has applied (commits and dead letters), kept in the same
-- transaction as its checkpoint: applied + recorded gaps must equal the checkpoint, or the
-- projection has skipped something. NULL on projections made before this count was kept; the
-- projector rebuilds those once to count them.
ALTER TABLE projection_checkpoints ADD COLUMN applied BIGINT;
UPDATE projection_checkpoints SET applied = 0 WHERE position = 0;

-- Positions of the log a projection found empty (a deleted message, or a message outside the
-- event subjects), recorded with the reason when it stepped over them.
CREATE TABLE projection_gaps (
    projection  TEXT   NOT NULL,
    position    BIGINT NOT NULL,
    reason      TEXT   NOT NULL,
    recorded_at TEXT   NOT NULL,
    PRIMARY KEY (projection, position)
);

-- The position of the repair (UnreadableCommitsSkipped) that told the projection to skip a
-- dead-lettered message for good; NULL while nobody has repaired it.
ALTER TABLE dead_letters ADD COLUMN repaired_by BIGINT;
