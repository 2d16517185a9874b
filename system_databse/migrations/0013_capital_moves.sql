-- Money the owner moves into or out of a running card after its creation (issue #24): a deposit
-- raises the card's capital and its uninvested cash, a withdrawal lowers both (never more than
-- the card's uninvested cash: it never sells). The amount is exact integer cents, always positive;
-- the kind says which way it went. A card's capital = initial_capital + deposits - withdrawals
-- (``system_databse/positions.py``). Stamped by the trading clock, like a fill.
CREATE TABLE capital_moves (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    algorithm_id INTEGER NOT NULL REFERENCES algorithm_instances(id),
    kind TEXT NOT NULL CHECK(kind IN ('deposit', 'withdrawal')),
    amount_cents INTEGER NOT NULL CHECK(typeof(amount_cents) = 'integer' AND amount_cents > 0),
    timestamp TEXT NOT NULL
);
CREATE INDEX idx_capital_moves_card ON capital_moves (algorithm_id, timestamp);
