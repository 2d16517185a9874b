-- Corporate actions (splits, reverse splits, cash dividends) as they affected each card, one row
-- per (action, card). The broker's action id is part of the key, so reading the same action
-- again never applies it twice. The card's shares and cash are still derived, never stored:
--   shares            += share_change          (whole shares; a split multiplies them)
--   fractional shares += fractional_change     (a reverse split's remainder, kept as the broker keeps it)
--   invested          -= cash                  (a dividend is cash the shares paid back to the card)
CREATE TABLE corporate_action_effects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    algorithm_id INTEGER NOT NULL REFERENCES algorithm_instances(id),
    action_id TEXT NOT NULL,
    ticker TEXT NOT NULL,
    kind TEXT NOT NULL CHECK(kind IN ('forward_split', 'reverse_split', 'cash_dividend')),
    ex_date TEXT NOT NULL,                 -- New York date, YYYY-MM-DD
    effective_at TEXT NOT NULL,            -- UTC open of the ex-date session
    old_rate REAL,                         -- splits: old_rate shares become new_rate shares
    new_rate REAL,
    rate REAL,                             -- dividends: cash per share
    shares_before REAL NOT NULL CHECK(shares_before >= 0),
    share_change INTEGER NOT NULL DEFAULT 0,
    fractional_change REAL NOT NULL DEFAULT 0,
    cash REAL NOT NULL DEFAULT 0 CHECK(cash >= 0),
    recorded_at TEXT NOT NULL,
    UNIQUE (algorithm_id, action_id)
);
CREATE INDEX idx_corporate_action_effects_ticker ON corporate_action_effects (ticker, effective_at);
