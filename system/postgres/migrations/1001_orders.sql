-- Order service: orders with their saga, idempotency keys, processed bus
-- messages, durable tickets and the transactional outbox.
-- Text keys use COLLATE "C" so ORDER BY matches byte order (and the
-- in-memory model's BTreeMap order).

CREATE TABLE orders (
    order_id           TEXT COLLATE "C" PRIMARY KEY,
    hold_id            TEXT NOT NULL,
    event_id           TEXT NOT NULL,
    seat_ids           JSONB NOT NULL,
    amount_cents       BIGINT NOT NULL,
    customer_id        TEXT,
    saga               JSONB NOT NULL,
    done               BOOLEAN NOT NULL,
    created_at_ms      BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL,
    attempts           INTEGER NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    version            BIGINT NOT NULL,
    trace_id           TEXT
);
-- The watchdog's query: non-terminal orders that are due, oldest first.
CREATE INDEX orders_due ON orders (next_attempt_at_ms) WHERE NOT done;

CREATE TABLE idempotency_keys (
    key           TEXT PRIMARY KEY,
    request_hash  TEXT NOT NULL,
    order_id      TEXT NOT NULL,
    -- NULL until the request finished; then replayed verbatim.
    response      JSONB,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE processed_messages (
    message_id TEXT PRIMARY KEY
);

-- The second line of defence against oversell: one ticket per seat.
CREATE TABLE tickets (
    event_id TEXT COLLATE "C" NOT NULL,
    seat_id  TEXT COLLATE "C" NOT NULL,
    order_id TEXT NOT NULL,
    PRIMARY KEY (event_id, seat_id)
);

CREATE TABLE outbox (
    seq             BIGSERIAL PRIMARY KEY,
    message_id      TEXT NOT NULL,
    topic           TEXT NOT NULL,
    key             TEXT NOT NULL,
    payload         BYTEA NOT NULL,
    headers         JSONB NOT NULL,
    leased_until_ms BIGINT NOT NULL DEFAULT 0
);
