-- Payment gateway: one payment per order and an append-only ledger.

CREATE TABLE payments (
    order_id     TEXT PRIMARY KEY,
    amount_cents BIGINT NOT NULL,
    status       TEXT NOT NULL
);

CREATE TABLE ledger (
    seq          BIGSERIAL PRIMARY KEY,
    order_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    at_ms        BIGINT NOT NULL
);

-- Append-only, enforced by the database rather than by convention.
CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only';
END;
$$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
