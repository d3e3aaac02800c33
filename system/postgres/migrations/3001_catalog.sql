-- Catalog: events and their seat layouts (seat status lives in Redis).

CREATE TABLE events (
    event_id  TEXT COLLATE "C" PRIMARY KEY,
    title     TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    rows      INTEGER NOT NULL,
    cols      INTEGER NOT NULL
);

CREATE TABLE seats (
    event_id    TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    seat_id     TEXT NOT NULL,
    row         INTEGER NOT NULL,
    col         INTEGER NOT NULL,
    price_cents BIGINT NOT NULL,
    PRIMARY KEY (event_id, seat_id)
);
