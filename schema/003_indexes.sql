-- One index per query shape the daemon serves (docs/schema.md lists them).
-- history.list newest first, since/until, cleanup and delete-before, last_24h;
-- with latency_ms, stats' percentiles over a short `since` read the index alone.
CREATE INDEX IF NOT EXISTS idx_prompt_history_timestamp ON prompt_history(timestamp, latency_ms);
-- history.list filtered by backend or provider, newest first.
CREATE INDEX IF NOT EXISTS idx_prompt_history_backend_ts ON prompt_history(backend, timestamp);
CREATE INDEX IF NOT EXISTS idx_prompt_history_provider_ts ON prompt_history(provider, timestamp);
-- stats p50/p95: the n-th latency in order (OFFSET walk from either end),
-- optionally since a time, read from the index alone.
CREATE INDEX IF NOT EXISTS idx_prompt_history_latency_ts ON prompt_history(latency_ms, timestamp);
-- history.list min_quality (its total without a table scan).
CREATE INDEX IF NOT EXISTS idx_prompt_history_quality ON prompt_history(quality_score);
-- Refinement chains: the rows refined from a given row.
CREATE INDEX IF NOT EXISTS idx_prompt_history_parent ON prompt_history(parent_id)
    WHERE parent_id IS NOT NULL;
