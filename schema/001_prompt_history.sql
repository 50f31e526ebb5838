-- The table of the Python backend promptd replaces, column for column and
-- CHECK for CHECK. IF NOT EXISTS: a database made by that backend (this
-- table, user_version 0) is adopted as it is; later migrations extend it.
-- Timestamps are UTC text 'YYYY-MM-DD HH:MM:SS'; guardrails is a JSON array
-- as text; backend is 'zero-shot' or 'few-shot'; model_version the model.
CREATE TABLE IF NOT EXISTS prompt_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
    original_idea TEXT NOT NULL,
    context TEXT DEFAULT '',
    improved_prompt TEXT NOT NULL,
    role TEXT NOT NULL,
    directive TEXT NOT NULL,
    framework TEXT NOT NULL,
    guardrails TEXT NOT NULL,
    backend TEXT NOT NULL,
    confidence REAL,
    reasoning TEXT,
    latency_ms INTEGER,
    model_version TEXT,
    CHECK(confidence IS NULL OR (confidence >= 0.0 AND confidence <= 1.0)),
    CHECK(latency_ms IS NULL OR latency_ms >= 0)
);
