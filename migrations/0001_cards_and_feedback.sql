-- One schema for SQLite and PostgreSQL: text, bigint and integer only.
-- Times are Unix milliseconds. No patient names, no tokens: the patient id is
-- stored only as a keyed hash.

CREATE TABLE issued_cards (
    card_uuid TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    hook_instance TEXT NOT NULL,
    card_type TEXT NOT NULL,
    -- finding codes and suggestion uuids, space-separated
    finding_codes TEXT NOT NULL,
    suggestion_uuids TEXT NOT NULL,
    patient_hash TEXT,
    issued_at BIGINT NOT NULL
);

CREATE INDEX issued_cards_by_service_and_time ON issued_cards (service_id, issued_at);

CREATE TABLE feedback (
    -- a hash of the normalised entry: a repeated identical entry is a no-op
    entry_id TEXT PRIMARY KEY,
    card_uuid TEXT NOT NULL REFERENCES issued_cards (card_uuid),
    service_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    accepted_suggestions TEXT NOT NULL,
    override_system TEXT,
    override_code TEXT,
    override_display TEXT,
    -- whether the clinician wrote a comment; its text may name the patient and is not kept
    has_comment INTEGER NOT NULL,
    outcome_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE INDEX feedback_by_card ON feedback (card_uuid);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
