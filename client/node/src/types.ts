/**
 * Types of the promptd wire protocol, version 1 (docs/protocol.md in the
 * promptd repository). Result types list the fields the protocol promises;
 * a newer daemon may send more, which are kept on the objects as they came.
 */

/** The LLM backends a request may name. */
export type Provider = "ollama" | "openai" | "anthropic" | "gemini" | "builtin";

/** How the prompt is improved. */
export type Mode = "zero-shot" | "few-shot";

/** A JSON-RPC request id as this library sends it. */
export type RequestId = number | string;

/** Parameters of `improve`. */
export interface ImproveParams {
  /** The rough idea: 5 to 20000 characters after trimming. */
  idea: string;
  /** Background the prompt should use (default ""); at most 100000 characters. */
  context?: string;
  /** Default: the daemon's configuration. */
  mode?: Mode;
  /** Default: the daemon's LLM_PROVIDER. */
  provider?: Provider;
  /** Default: the daemon's LLM_MODEL. */
  model?: string;
  /**
   * Ask for `improve.delta` notifications. Set for you by `improve(params,
   * { onDelta })` and `improveStream()`.
   */
  stream?: boolean;
  /** Refine an earlier history row: its improved prompt is the starting point. */
  parent_id?: number;
  /** false keeps this request out of the history (default true). */
  record?: boolean;
  /** Who asks, e.g. "raycast"; defaults to the client's `clientName` option. */
  client?: string;
}

/** Token counts reported by the backend. */
export interface TokenCounts {
  prompt: number;
  completion: number;
}

/** The result of `improve`. */
export interface ImproveResult {
  /** The history row's id, or null when nothing was recorded. */
  id: number | null;
  improved_prompt: string;
  role: string;
  directive: string;
  framework: string;
  guardrails: string[];
  reasoning: string | null;
  /** 0..1, or null when the model gave none. */
  confidence: number | null;
  /** 0..1: clamp01((confidence ?? 0.5) - min(latency_ms / 10000, 0.3)). */
  quality_score: number;
  /** e.g. "zero-shot". */
  backend: string;
  /** The provider that answered. */
  provider: string;
  model: string;
  latency_ms: number;
  tokens: TokenCounts | null;
  parent_id: number | null;
  /** Present only when the fallback provider answered: the one that failed. */
  fallback_from?: string;
}

/** One history row: the improve result plus what was asked and when. */
export interface HistoryRow extends ImproveResult {
  id: number;
  /** ISO-8601 UTC. */
  timestamp: string;
  original_idea: string;
  context: string;
  client: string | null;
}

/** A history row found by `history.search`. */
export interface HistorySearchRow extends HistoryRow {
  /** An excerpt with the match marked. */
  snippet: string;
}

export interface HistoryListParams {
  /** 1..500, default 20. */
  limit?: number;
  /** >= 0, default 0. */
  offset?: number;
  backend?: string;
  provider?: string;
  /** ISO-8601 date or date-time (UTC). */
  since?: string;
  /** ISO-8601 date or date-time (UTC). */
  until?: string;
  /** 0..1. */
  min_quality?: number;
}

export interface HistoryListResult {
  /** Newest first. */
  items: HistoryRow[];
  /** Rows matching the filters, all pages together. */
  total: number;
  /** The page stopped at the daemon's 4 MiB bound: fewer than `limit`
   * items; page on with `offset` advanced by `items.length`. */
  truncated?: boolean;
}

export interface HistorySearchParams {
  /** Full-text query; any text is valid (searched literally), at most
   * 1024 bytes and 16 different words. */
  query: string;
  /** 1..500, default 20. */
  limit?: number;
}

export interface HistorySearchResult {
  /** Best match first. */
  items: HistorySearchRow[];
  /** Fewer items than `limit`: the page stopped at the daemon's 4 MiB bound. */
  truncated?: boolean;
}

/** Exactly one of `id`, `before` or `all: true`. */
export type HistoryDeleteParams = { id: number } | { before: string } | { all: true };

export interface DeletedResult {
  deleted: number;
}

export interface StatsParams {
  /** ISO-8601 date or date-time (UTC). */
  since?: string;
}

export interface StatsGroup {
  count: number;
  average_quality: number | null;
  average_latency_ms: number | null;
}

export interface StatsResult {
  total_count: number;
  average_confidence: number | null;
  average_latency_ms: number | null;
  average_quality: number | null;
  p50_latency_ms: number | null;
  p95_latency_ms: number | null;
  by_backend: Record<string, StatsGroup>;
  by_provider: Record<string, StatsGroup>;
  by_model: Record<string, StatsGroup>;
  last_24h: number;
}

export type DatabaseStatus = "healthy" | "disabled" | "circuit_open" | "unhealthy";

export interface HealthResult {
  status: "ok" | "degraded";
  version: string;
  uptime_s: number;
  socket: string;
  database: {
    status: DatabaseStatus;
    path?: string | null;
    total_records?: number | null;
    average_confidence?: number | null;
    average_latency_ms?: number | null;
    pending_writes?: number;
    dropped_writes?: number;
    failures?: number;
    [extra: string]: unknown;
  };
  llm: {
    provider: string;
    model: string | null;
    base_url: string | null;
    [extra: string]: unknown;
  };
  requests: {
    in_flight: number;
    served: number;
    failed: number;
  };
}

export interface VersionResult {
  version: string;
  /** The wire protocol's version: 1. */
  protocol: number;
  sqlite: string;
  libuv: string;
  libcurl: string;
}

export interface ModelsResult {
  provider: string;
  models: string[];
}

/** The effective configuration keyed by its names; secrets are "***". */
export type ConfigResult = Record<string, string | number | boolean | null>;

export interface CleanupParams {
  /** Rows older than this many days are deleted; >= 0. */
  days: number;
}

export interface DbBackupResult {
  path: string;
  bytes: number;
  rows: number;
}

export interface DbRestoreResult {
  rows: number;
}

export interface DbCheckResult {
  ok: boolean;
  detail: string;
}

export interface CancelResult {
  cancelled: boolean;
}

/** Params of the `improve.delta` notification. */
export interface ImproveDeltaParams {
  request_id: RequestId;
  text: string;
}

/**
 * Every method of protocol version 1 with its params and result: the map
 * behind the typed `call()`.
 */
export interface PromptdMethods {
  ping: { params: undefined; result: "pong" };
  version: { params: undefined; result: VersionResult };
  health: { params: undefined; result: HealthResult };
  "config.get": { params: undefined; result: ConfigResult };
  improve: { params: ImproveParams; result: ImproveResult };
  cancel: { params: { request_id: RequestId }; result: CancelResult };
  models: { params: undefined; result: ModelsResult };
  "history.list": { params: HistoryListParams | undefined; result: HistoryListResult };
  "history.get": { params: { id: number }; result: HistoryRow };
  "history.search": { params: HistorySearchParams; result: HistorySearchResult };
  "history.delete": { params: HistoryDeleteParams; result: DeletedResult };
  stats: { params: StatsParams | undefined; result: StatsResult };
  cleanup: { params: CleanupParams; result: DeletedResult };
  "db.backup": { params: { path: string }; result: DbBackupResult };
  "db.restore": { params: { path: string }; result: DbRestoreResult };
  "db.check": { params: undefined; result: DbCheckResult };
}

export type MethodName = keyof PromptdMethods;
