-- What a projection's live generation was computed with (shape version, internal limits): the
-- projector rebuilds a projection whose settings changed.
ALTER TABLE projection_checkpoints ADD COLUMN settings TEXT;

-- Every read of unmasked personal data (个人信息保护法): who, which case, when, for which request.
CREATE TABLE personal_data_reads (
    id BIGSERIAL PRIMARY KEY,
    username       TEXT NOT NULL,
    case_id        TEXT NOT NULL,
    read_at        TEXT NOT NULL,
    correlation_id TEXT NOT NULL
);
CREATE INDEX personal_data_reads_case ON personal_data_reads (case_id, read_at);
