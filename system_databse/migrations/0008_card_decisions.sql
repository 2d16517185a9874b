-- Each card's recent decisions as the daemon made them: what the algorithm asked for, what the
-- checker allowed, the reason it gave, or the error that stopped it. The daemon keeps only the
-- newest rows of each kind per card (``system_db_manager.DECISIONS_KEPT``), so the table stays small.
CREATE TABLE card_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    algorithm_id INTEGER NOT NULL REFERENCES algorithm_instances(id),
    minute TEXT NOT NULL,
    kind TEXT NOT NULL CHECK(kind IN ('decision', 'refused', 'error')),
    action TEXT NOT NULL DEFAULT 'hold' CHECK(action IN ('buy', 'sell', 'hold')),
    shares INTEGER NOT NULL DEFAULT 0 CHECK(shares >= 0),
    requested_action TEXT,
    requested_shares INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    price REAL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX idx_card_decisions_card ON card_decisions (algorithm_id, kind, id);
