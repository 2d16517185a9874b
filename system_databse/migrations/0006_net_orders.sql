-- One broker order per ticker per minute, and its allocations to the cards.
-- The intent (order + every allocation) is written in one transaction before the order is sent;
-- the fill, every card's transaction and the closing of the order in one transaction after.
-- Shares that cancel out between cards of the ticker are 'cross' allocations, recorded with the
-- intent at the minute's last price; an order whose decisions cancel out completely is 'crossed'.
CREATE TABLE broker_orders (
    client_order_id TEXT PRIMARY KEY,
    ticker TEXT NOT NULL,
    minute TEXT NOT NULL,  -- when the minute's decisions were made (its bar's close); crosses carry it
    side TEXT CHECK(side IN ('buy', 'sell')),
    shares INTEGER NOT NULL CHECK(shares >= 0),
    cross_price REAL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK(status IN ('pending', 'submitted', 'filled', 'failed', 'crossed')),
    broker_order_id TEXT,
    filled_shares INTEGER NOT NULL DEFAULT 0 CHECK(filled_shares >= 0),
    filled_avg_price REAL,
    missed_lookups INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX idx_broker_orders_open ON broker_orders (status) WHERE status IN ('pending', 'submitted');
CREATE INDEX idx_broker_orders_ticker ON broker_orders (ticker, minute);

CREATE TABLE order_allocations (
    client_order_id TEXT NOT NULL REFERENCES broker_orders(client_order_id),
    algorithm_id INTEGER NOT NULL REFERENCES algorithm_instances(id),
    kind TEXT NOT NULL CHECK(kind IN ('order', 'cross')),
    side TEXT NOT NULL CHECK(side IN ('buy', 'sell')),
    shares INTEGER NOT NULL CHECK(shares > 0),
    reason TEXT NOT NULL DEFAULT '',
    filled_shares INTEGER NOT NULL DEFAULT 0 CHECK(filled_shares >= 0),
    transaction_id INTEGER REFERENCES transactions(id),
    PRIMARY KEY (client_order_id, algorithm_id, kind)
);
CREATE INDEX idx_order_allocations_algorithm ON order_allocations (algorithm_id);

-- The one-card-one-order journal becomes orders with a single allocation each.
INSERT INTO broker_orders (client_order_id, ticker, minute, side, shares, status, broker_order_id, filled_shares,
                           filled_avg_price, error, created_at, updated_at)
SELECT j.client_order_id, a.ticker, j.created_at, j.side, j.shares, j.status, j.broker_order_id, j.filled_shares,
       j.filled_avg_price, j.error, j.created_at, j.updated_at
FROM order_journal j JOIN algorithm_instances a ON a.id = j.algorithm_id;
INSERT INTO order_allocations (client_order_id, algorithm_id, kind, side, shares, reason, filled_shares, transaction_id)
SELECT client_order_id, algorithm_id, 'order', side, shares, reason, filled_shares, transaction_id FROM order_journal;
DROP TABLE order_journal;
