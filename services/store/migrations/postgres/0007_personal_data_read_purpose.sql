-- Why personal data was looked at: `reveal` (a case shown unmasked), `ledger_export`,
-- `duplicate_check` (a lookup by ID number or name; case_id is empty when it named no case).
ALTER TABLE personal_data_reads ADD COLUMN purpose TEXT NOT NULL DEFAULT 'reveal';
