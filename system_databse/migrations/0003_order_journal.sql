-- The orchestrator's order journal: an intent is written before an order is sent, and closed
-- (with the transaction it produced) in the same database transaction that records the fill.
-- client_order_id is deterministic, so a restart can find the order at the broker again.
CREATE TABLE order_journal (
    client_order_id TEXT PRIMARY KEY,
    algorithm_id INTEGER NOT NULL REFERENCES algorithm_instances(id),
    side TEXT NOT NULL CHECK(side IN ('buy', 'sell')),
    shares INTEGER NOT NULL CHECK(shares > 0),
    reason TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK(status IN ('pending', 'submitted', 'filled', 'failed')),
    broker_order_id TEXT,
    filled_shares INTEGER NOT NULL DEFAULT 0 CHECK(filled_shares >= 0),
    filled_avg_price REAL,
    transaction_id INTEGER REFERENCES transactions(id),
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX idx_order_journal_open ON order_journal (status) WHERE status IN ('pending', 'submitted');
CREATE INDEX idx_order_journal_algorithm ON order_journal (algorithm_id);
