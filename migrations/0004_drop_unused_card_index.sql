-- Issue #24: no query reads issued_cards by (service_id, issued_at) any
-- more: the summary reads card_counts (0003), feedback finds a card by its
-- uuid, and retention walks issued_cards_by_time. The index still cost every
-- card written a fourth b-tree insert: 15-20% of SQLite's work per card.
DROP INDEX IF EXISTS issued_cards_by_service_and_time;
