-- Trading controls (issue #24): the account-wide PAUSE, each card's optional limits and their trips,
-- the two numbers the daemon keeps per card to check them, and which decisions were held back.
-- Written by the API (pause, resume, limits, resume card) and the daemon (trips, the daily order
-- limit's pause, the marks); read by both (system_databse/controls.py holds the SQL).

-- One row: whether trading is paused, since when, by whom and why. 'daily order limit' is the
-- daemon pausing itself when the trading day's broker orders reach AUTOTRADER_DAILY_ORDER_LIMIT.
CREATE TABLE trading_pause (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    since TEXT,                  -- when the pause began (NULL while trading)
    paused_by TEXT CHECK (paused_by IN ('owner', 'daily order limit')),
    reason TEXT NOT NULL DEFAULT '',
    resumed_at TEXT              -- the last RESUME: the day's order count starts again from it
);
INSERT INTO trading_pause (id, paused) VALUES (1, 0);

-- A card's limits (NULL: no such limit) and its trip. A trip holds the card's trades back until
-- RESUME CARD (a cooldown ends by itself at trip_until); with on_trip 'liquidate' the daemon
-- also stops the card, and its shares are sold as STOP sells them.
CREATE TABLE card_limits (
    algorithm_id INTEGER PRIMARY KEY REFERENCES algorithm_instances(id),
    max_drawdown_percent REAL CHECK (max_drawdown_percent IS NULL OR
                                     (max_drawdown_percent > 0 AND max_drawdown_percent < 100)),
    daily_loss_limit REAL CHECK (daily_loss_limit IS NULL OR daily_loss_limit > 0),
    max_trades_per_day INTEGER CHECK (max_trades_per_day IS NULL OR max_trades_per_day > 0),
    cooldown_minutes INTEGER CHECK (cooldown_minutes IS NULL OR cooldown_minutes > 0),
    on_trip TEXT NOT NULL DEFAULT 'pause' CHECK (on_trip IN ('pause', 'liquidate')),
    updated_at TEXT NOT NULL,
    tripped TEXT CHECK (tripped IN ('max_drawdown', 'daily_loss', 'max_trades', 'cooldown')),
    tripped_at TEXT,
    trip_reason TEXT,
    trip_until TEXT,             -- a cooldown's end; NULL: until RESUME CARD
    resumed_at TEXT              -- the last RESUME CARD: peak, day loss and trade count start again from it
);

-- What the daemon saw of a card's P&L (value - capital) at its checks, once a minute: the peak
-- since the card's limits were set (or it was resumed), and the P&L the trading day started from
-- (the last check of the previous session).
CREATE TABLE card_marks (
    algorithm_id INTEGER PRIMARY KEY REFERENCES algorithm_instances(id),
    session TEXT NOT NULL,       -- the open (UTC) of the session of the last check
    day_start_pnl REAL NOT NULL,
    peak_pnl REAL NOT NULL,
    last_pnl REAL NOT NULL,
    checked_at TEXT NOT NULL,
    reset_at TEXT                -- the RESUME CARD these marks started again from
);

-- A trade decision that was made but not sent: why (trading paused, the card's limit tripped, the
-- day's order limit). NULL for every other decision.
ALTER TABLE card_decisions ADD COLUMN held_back TEXT;
