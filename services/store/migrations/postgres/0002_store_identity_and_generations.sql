-- Identifies this read store, so that projectors of different stores never share a consumer.
CREATE TABLE read_store_identity (
    id TEXT PRIMARY KEY
);

-- The last generation number handed out per projection, so that two rebuilds never build into
-- the same tables.
ALTER TABLE projection_checkpoints ADD COLUMN last_generation BIGINT NOT NULL DEFAULT 1;
