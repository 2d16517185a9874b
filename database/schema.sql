-- stocks.db: minute bars keyed by (ticker, bar-start UTC minute), and every regular-session
-- NYSE minute from 2018 through 2030. Idempotent: safe to run on an existing database.
CREATE TABLE IF NOT EXISTS timestamps (
    timestamp TEXT PRIMARY KEY            -- bar start, "YYYY-MM-DDTHH:MM:SSZ"
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS bars (
    ticker TEXT NOT NULL,
    timestamp TEXT NOT NULL,              -- bar start, "YYYY-MM-DDTHH:MM:SSZ"
    open REAL NOT NULL,
    high REAL NOT NULL,
    low REAL NOT NULL,
    close REAL NOT NULL,
    volume INTEGER NOT NULL DEFAULT 0,
    vwap REAL,
    trade_count INTEGER,
    PRIMARY KEY (ticker, timestamp)
) WITHOUT ROWID;

-- Sparse feeds: minutes up to checked_through were asked of the source; a market minute up to it without a bar had no trade, one after it is not known yet.
CREATE TABLE IF NOT EXISTS checked_minutes (
    ticker TEXT PRIMARY KEY,
    checked_through TEXT NOT NULL          -- bar start of the newest checked minute
) WITHOUT ROWID;

-- Splits already applied to the stored bars of a ticker: bars before the ex-date were scaled once,
-- in the same transaction that wrote this row, so a restart or a re-read never scales them twice.
CREATE TABLE IF NOT EXISTS bar_adjustments (
    action_id TEXT PRIMARY KEY,           -- the broker's id of the split
    ticker TEXT NOT NULL,
    ex_date TEXT NOT NULL,                -- New York date
    price_factor REAL NOT NULL,           -- prices before the ex-date were multiplied by this (old/new)
    rows_adjusted INTEGER NOT NULL,
    adjusted_at TEXT NOT NULL
);
