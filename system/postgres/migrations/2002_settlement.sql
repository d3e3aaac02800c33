-- Settlement: payments and ledger entries carry their event, and closed
-- batches take ledger entries, each entry at most once (the primary key of
-- settlement_entries), in the same transaction that writes the batch.

ALTER TABLE payments ADD COLUMN event_id TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN event_id TEXT NOT NULL DEFAULT '';

CREATE TABLE settlement_batches (
    batch_id       BIGSERIAL PRIMARY KEY,
    event_id       TEXT NOT NULL,
    closed_at_ms   BIGINT NOT NULL,
    captured_cents BIGINT NOT NULL,
    refunded_cents BIGINT NOT NULL
);

CREATE TABLE settlement_entries (
    seq      BIGINT PRIMARY KEY REFERENCES ledger (seq),
    batch_id BIGINT NOT NULL REFERENCES settlement_batches (batch_id)
);

CREATE INDEX settlement_entries_by_batch ON settlement_entries (batch_id);
-- Finding what is left to settle: settled kinds only.
CREATE INDEX ledger_settled_kinds ON ledger (seq) WHERE kind IN ('CAPTURE', 'REFUND');
