-- Card aggregates and history read a card's transactions by algorithm_id.
CREATE INDEX idx_transactions_algorithm ON transactions (algorithm_id, timestamp);
