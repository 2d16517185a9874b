-- A covering index for the P&L aggregates: summing a card's shares and costs reads only this
-- index, never the table, so a card with 100,000 transactions is still computed in milliseconds.
CREATE INDEX idx_transactions_totals ON transactions (algorithm_id, type, shares, price);
