-- Liveness reports written by the daemon and read by the API's health endpoint.
-- One row per component; payload is a JSON object (never secrets).
CREATE TABLE heartbeat (
    component TEXT PRIMARY KEY,
    updated_at TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}'
);
