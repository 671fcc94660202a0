-- A database as the Keysat licensing service leaves it: its own tables (a subset), its
-- migration bookkeeping, and the webhook tables of its 0003_expanded_features.sql, with rows.
CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);
INSERT INTO _sqlx_migrations VALUES (1, 'initial', '2026-01-02 10:00:00', 1, x'00', 10);
INSERT INTO _sqlx_migrations VALUES (3, 'expanded features', '2026-03-04 10:00:00', 1, x'01', 12);
CREATE TABLE licenses (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL
);
INSERT INTO licenses VALUES ('lic-1', 'KEY-AAAA', 'active', '2026-03-05T10:00:00Z');
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    event_types TEXT NOT NULL DEFAULT '["*"]',
    active INTEGER NOT NULL DEFAULT 1,
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX idx_webhook_endpoints_active ON webhook_endpoints(active);
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
    event_type TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_status_code INTEGER,
    last_error TEXT,
    delivered_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id);
CREATE INDEX idx_webhook_deliveries_pending ON webhook_deliveries(next_attempt_at) WHERE delivered_at IS NULL;
INSERT INTO webhook_endpoints (id, url, secret, event_types, created_at, updated_at)
VALUES ('8f14e45f-ceea-4e7a-9c5e-1a2b3c4d5e6f', 'https://hooks.example.com/keysat',
        'a3f1c0de5eed00112233445566778899aabbccddeeff00112233445566778899',
        '["license.issued","license.revoked"]', '2026-03-05T10:00:00.123Z', '2026-03-05T10:00:00.123Z');
INSERT INTO webhook_endpoints (id, url, secret, created_at, updated_at)
VALUES ('0c9a1d2e-3f40-4b5c-8d6e-7f8091a2b3c4', 'https://ops.example.com/all',
        '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', '2026-03-06T08:00:00Z', '2026-03-06T08:00:00Z');
INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at, last_status_code, delivered_at, created_at)
VALUES ('d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6', '8f14e45f-ceea-4e7a-9c5e-1a2b3c4d5e6f', 'license.issued',
        '{"event_type":"license.issued","timestamp":"2026-03-05T10:01:00Z","data":{"license_id":"lic-1"}}',
        1, NULL, 200, '2026-03-05T10:01:01.5Z', '2026-03-05T10:01:00Z');
