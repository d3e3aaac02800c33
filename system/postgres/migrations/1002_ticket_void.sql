-- After-sale (issue 17): a cancelled order's tickets are voided, not
-- deleted (the audit keeps them), and its seats can be sold again. The
-- second line of defence against oversell becomes "at most one VALID
-- ticket per seat": a partial unique index instead of the primary key.
ALTER TABLE tickets DROP CONSTRAINT tickets_pkey;
ALTER TABLE tickets ADD COLUMN ticket_id BIGSERIAL PRIMARY KEY;
ALTER TABLE tickets ADD COLUMN voided BOOLEAN NOT NULL DEFAULT false;
CREATE UNIQUE INDEX tickets_one_valid_per_seat ON tickets (event_id, seat_id) WHERE NOT voided;
CREATE INDEX tickets_by_order ON tickets (order_id) WHERE NOT voided;
