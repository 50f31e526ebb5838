-- What promptd records beyond the old backend's columns. All nullable, so
-- adopted rows stay valid as they are.
ALTER TABLE prompt_history ADD COLUMN provider TEXT;          -- ollama, openai, ...
ALTER TABLE prompt_history ADD COLUMN client TEXT;            -- who asked: raycast, promptctl
-- The row this one refined (improve's parent_id). Deliberately not a
-- FOREIGN KEY: deleting an old row must stay a plain delete (retention
-- runs in batches), and a refinement outlives the row it started from.
ALTER TABLE prompt_history ADD COLUMN parent_id INTEGER;
ALTER TABLE prompt_history ADD COLUMN prompt_tokens INTEGER;
ALTER TABLE prompt_history ADD COLUMN completion_tokens INTEGER;

-- The old backend's quality score, computed by SQLite so that every row,
-- adopted or new, has one and it can never disagree with its inputs:
-- clamp01(c - min(latency_ms / 10000, 0.3)), c = confidence or 0.5 when
-- null (0.0 is a value). 10000.0: integer division would truncate.
-- VIRTUAL because ALTER TABLE cannot add STORED columns; it is indexed.
ALTER TABLE prompt_history ADD COLUMN quality_score REAL
    GENERATED ALWAYS AS (
        max(0.0, min(1.0, coalesce(confidence, 0.5)
                          - min(max(coalesce(latency_ms, 0), 0) / 10000.0, 0.3)))
    ) VIRTUAL;

-- Adopted rows written by other code paths may carry ISO text
-- ('2025-01-02T03:04:05.123Z'). One text format keeps ORDER BY, range
-- filters and retention correct across old and new rows.
UPDATE prompt_history
   SET timestamp = coalesce(strftime('%Y-%m-%d %H:%M:%S', timestamp), timestamp)
 WHERE length(timestamp) <> 19 OR timestamp GLOB '*T*';
