-- The leader (from the directory) an account is, for the `leader` role.
ALTER TABLE users ADD COLUMN leader_id TEXT;
