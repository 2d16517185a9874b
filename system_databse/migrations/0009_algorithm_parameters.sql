-- The parameter values each card was created with (one row per declared name, defaults included).
-- Values are JSON (int, float or string), so a card reads back exactly what it was given.
CREATE TABLE algorithm_parameters (
    algorithm_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (algorithm_id, name),
    FOREIGN KEY (algorithm_id) REFERENCES algorithm_instances(id)
);
