-- The net order's life as an explicit state machine (``system_databse/orders.py`` holds the table
-- of allowed transitions; ``orchestra/net_order.py`` applies the broker's events):
--   pending -> submitted -> partially_filled -> filled | cancelled | failed;  crossed (no broker order)
-- 'partially_filled' records what the broker has filled of an order still open; 'cancelled' is an
-- order the broker ended before it filled completely (its fills, if any, are recorded). SQLite
-- cannot widen a CHECK in place, so broker_orders is rebuilt (the migration runner turns foreign
-- keys off for the rebuild and checks them before it commits); every old row keeps its state.
CREATE TABLE broker_orders_rebuilt (
    client_order_id TEXT PRIMARY KEY,
    ticker TEXT NOT NULL,
    minute TEXT NOT NULL,
    side TEXT CHECK(side IN ('buy', 'sell')),
    shares INTEGER NOT NULL CHECK(shares >= 0),  -- a fractional sell is stored as REAL (column affinity)
    cross_price REAL,                            -- the minute's price: crosses, and what open orders reserve
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK(status IN ('pending', 'submitted', 'partially_filled', 'filled', 'cancelled', 'failed', 'crossed')),
    broker_order_id TEXT,
    filled_shares INTEGER NOT NULL DEFAULT 0 CHECK(filled_shares >= 0),
    filled_avg_price REAL,
    missed_lookups INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO broker_orders_rebuilt (client_order_id, ticker, minute, side, shares, cross_price, status, broker_order_id,
                                   filled_shares, filled_avg_price, missed_lookups, error, created_at, updated_at)
SELECT client_order_id, ticker, minute, side, shares, cross_price, status, broker_order_id, filled_shares,
       filled_avg_price, missed_lookups, error, created_at, updated_at FROM broker_orders;
DROP TABLE broker_orders;
ALTER TABLE broker_orders_rebuilt RENAME TO broker_orders;
CREATE INDEX idx_broker_orders_open ON broker_orders (status) WHERE status IN ('pending', 'submitted', 'partially_filled');
CREATE INDEX idx_broker_orders_ticker ON broker_orders (ticker, minute);

-- Every event applied to an order, in order: what the broker said and the state it moved the order
-- to. The order's row is the current state; this is how it got there (read by people and tests).
CREATE TABLE order_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL REFERENCES broker_orders(client_order_id),
    event TEXT NOT NULL,            -- journaled | accepted | broker_update | rejected | missing
    state_before TEXT,
    state_after TEXT NOT NULL,
    filled_shares REAL NOT NULL DEFAULT 0,
    avg_price REAL,
    detail TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL                -- the trading clock when it was applied
);
CREATE INDEX idx_order_events_order ON order_events (client_order_id, id);
