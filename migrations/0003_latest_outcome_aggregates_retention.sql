-- Issue #21: the store stays bounded whatever clients send.
--
-- A card's outcome is its latest feedback entry (by outcomeTimestamp), kept
-- on the card; feedback keeps one entry per card and outcome (the latest), so
-- a flood of entries for one card costs at most two rows.
ALTER TABLE issued_cards ADD COLUMN outcome TEXT;
ALTER TABLE issued_cards ADD COLUMN outcome_at BIGINT;
ALTER TABLE issued_cards ADD COLUMN override_system TEXT;
ALTER TABLE issued_cards ADD COLUMN override_code TEXT;
ALTER TABLE issued_cards ADD COLUMN override_display TEXT;
-- 1 once the card's outcome has changed (accepted, then overridden, say)
ALTER TABLE issued_cards ADD COLUMN outcome_changed INTEGER NOT NULL DEFAULT 0;

DELETE FROM feedback WHERE EXISTS (
    SELECT 1 FROM feedback g
    WHERE g.card_uuid = feedback.card_uuid AND g.outcome = feedback.outcome
      AND (g.outcome_at > feedback.outcome_at OR (g.outcome_at = feedback.outcome_at AND g.entry_id > feedback.entry_id))
);
CREATE UNIQUE INDEX feedback_one_per_card_and_outcome ON feedback (card_uuid, outcome);

UPDATE issued_cards SET
    outcome = (SELECT f.outcome FROM feedback f WHERE f.card_uuid = issued_cards.card_uuid
               ORDER BY f.outcome_at DESC, f.received_at DESC, f.outcome LIMIT 1),
    outcome_at = (SELECT MAX(f.outcome_at) FROM feedback f WHERE f.card_uuid = issued_cards.card_uuid),
    override_system = (SELECT f.override_system FROM feedback f WHERE f.card_uuid = issued_cards.card_uuid
                       ORDER BY f.outcome_at DESC, f.received_at DESC, f.outcome LIMIT 1),
    override_code = (SELECT f.override_code FROM feedback f WHERE f.card_uuid = issued_cards.card_uuid
                     ORDER BY f.outcome_at DESC, f.received_at DESC, f.outcome LIMIT 1),
    override_display = (SELECT f.override_display FROM feedback f WHERE f.card_uuid = issued_cards.card_uuid
                        ORDER BY f.outcome_at DESC, f.received_at DESC, f.outcome LIMIT 1),
    outcome_changed = CASE WHEN (SELECT COUNT(*) FROM feedback f WHERE f.card_uuid = issued_cards.card_uuid) > 1 THEN 1 ELSE 0 END
WHERE card_uuid IN (SELECT card_uuid FROM feedback);

-- The summary reads these hourly counts, never the cards: its time and
-- memory depend on the window and the kinds of card, not on how many cards
-- there are. `finding` is '' on a card type's own row. Kept up to date by
-- the card writer and the feedback handler; filled from existing cards by
-- the service at start-up (it has to split finding_codes).
CREATE TABLE card_counts (
    service_id TEXT NOT NULL,
    hour BIGINT NOT NULL,
    card_type TEXT NOT NULL,
    finding TEXT NOT NULL,
    issued BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    overridden BIGINT NOT NULL,
    changed BIGINT NOT NULL,
    PRIMARY KEY (service_id, hour, card_type, finding)
);

-- Override reasons of the cards whose latest outcome is overridden; '' for
-- an absent part.
CREATE TABLE override_counts (
    service_id TEXT NOT NULL,
    hour BIGINT NOT NULL,
    card_type TEXT NOT NULL,
    reason_system TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    reason_display TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (service_id, hour, card_type, reason_system, reason_code, reason_display)
);

-- Retention deletes the oldest cards first.
CREATE INDEX issued_cards_by_time ON issued_cards (issued_at);
