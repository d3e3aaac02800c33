-- Users service: customer accounts. One account per email key (the email
-- trimmed and lowercased) and per customer id, by unique keys, so two
-- concurrent sign-ups of one email create one account.

CREATE TABLE accounts (
    customer_id   TEXT PRIMARY KEY,
    email_key     TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
