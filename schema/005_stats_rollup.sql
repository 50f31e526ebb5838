-- Per-day totals by backend, provider and model, kept in step by triggers,
-- so `stats` and health's totals read a few thousand small rows instead of
-- scanning a million wide ones. Sums, not averages: deleting a row
-- subtracts exactly what inserting it added. provider/model '' = unknown
-- (adopted rows have no provider). Rows whose n reaches 0 are pruned by
-- the store after deletes.
CREATE TABLE history_rollup (
    day TEXT NOT NULL,               -- 'YYYY-MM-DD' (UTC), substr(timestamp, 1, 10)
    backend TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    n INTEGER NOT NULL,              -- rows
    n_conf INTEGER NOT NULL,         -- rows with a confidence
    sum_conf REAL NOT NULL,
    n_lat INTEGER NOT NULL,          -- rows with a latency
    sum_lat INTEGER NOT NULL,
    sum_quality REAL NOT NULL,
    PRIMARY KEY (day, backend, provider, model)
) WITHOUT ROWID;

CREATE TRIGGER history_rollup_ai AFTER INSERT ON prompt_history BEGIN
    INSERT INTO history_rollup(day, backend, provider, model, n, n_conf, sum_conf, n_lat,
                               sum_lat, sum_quality)
    VALUES (substr(new.timestamp, 1, 10), new.backend, coalesce(new.provider, ''),
            coalesce(new.model_version, ''), 1, new.confidence IS NOT NULL,
            coalesce(new.confidence, 0), new.latency_ms IS NOT NULL,
            coalesce(new.latency_ms, 0), new.quality_score)
    ON CONFLICT (day, backend, provider, model) DO UPDATE SET
        n = n + 1, n_conf = n_conf + excluded.n_conf, sum_conf = sum_conf + excluded.sum_conf,
        n_lat = n_lat + excluded.n_lat, sum_lat = sum_lat + excluded.sum_lat,
        sum_quality = sum_quality + excluded.sum_quality;
END;

CREATE TRIGGER history_rollup_ad AFTER DELETE ON prompt_history BEGIN
    UPDATE history_rollup SET
        n = n - 1, n_conf = n_conf - (old.confidence IS NOT NULL),
        sum_conf = sum_conf - coalesce(old.confidence, 0),
        n_lat = n_lat - (old.latency_ms IS NOT NULL),
        sum_lat = sum_lat - coalesce(old.latency_ms, 0),
        sum_quality = sum_quality - old.quality_score
    WHERE day = substr(old.timestamp, 1, 10) AND backend = old.backend
      AND provider = coalesce(old.provider, '') AND model = coalesce(old.model_version, '');
END;

-- Rows are written once; an update (by hand, or a future migration) moves
-- the row's contribution like a delete followed by an insert.
CREATE TRIGGER history_rollup_au
AFTER UPDATE OF timestamp, backend, provider, model_version, confidence, latency_ms
ON prompt_history BEGIN
    UPDATE history_rollup SET
        n = n - 1, n_conf = n_conf - (old.confidence IS NOT NULL),
        sum_conf = sum_conf - coalesce(old.confidence, 0),
        n_lat = n_lat - (old.latency_ms IS NOT NULL),
        sum_lat = sum_lat - coalesce(old.latency_ms, 0),
        sum_quality = sum_quality - old.quality_score
    WHERE day = substr(old.timestamp, 1, 10) AND backend = old.backend
      AND provider = coalesce(old.provider, '') AND model = coalesce(old.model_version, '');
    INSERT INTO history_rollup(day, backend, provider, model, n, n_conf, sum_conf, n_lat,
                               sum_lat, sum_quality)
    VALUES (substr(new.timestamp, 1, 10), new.backend, coalesce(new.provider, ''),
            coalesce(new.model_version, ''), 1, new.confidence IS NOT NULL,
            coalesce(new.confidence, 0), new.latency_ms IS NOT NULL,
            coalesce(new.latency_ms, 0), new.quality_score)
    ON CONFLICT (day, backend, provider, model) DO UPDATE SET
        n = n + 1, n_conf = n_conf + excluded.n_conf, sum_conf = sum_conf + excluded.sum_conf,
        n_lat = n_lat + excluded.n_lat, sum_lat = sum_lat + excluded.sum_lat,
        sum_quality = sum_quality + excluded.sum_quality;
END;

-- Adopted rows are counted.
INSERT INTO history_rollup(day, backend, provider, model, n, n_conf, sum_conf, n_lat, sum_lat,
                           sum_quality)
SELECT substr(timestamp, 1, 10), backend, coalesce(provider, ''), coalesce(model_version, ''),
       count(*), count(confidence), coalesce(sum(confidence), 0), count(latency_ms),
       coalesce(sum(latency_ms), 0), coalesce(sum(quality_score), 0)
  FROM prompt_history
 GROUP BY 1, 2, 3, 4;
