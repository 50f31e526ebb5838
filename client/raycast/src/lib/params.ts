/**
 * From form values and preferences to `improve` params, and the checks the
 * form runs before sending (the daemon's limits, docs/protocol.md "Limits").
 */
import type { HistoryListParams, HistorySearchParams, ImproveParams, Mode, Provider } from "promptd-client";

export const IDEA_MIN_CHARS = 5;
export const IDEA_MAX_CHARS = 20000;
export const CONTEXT_MAX_CHARS = 100000;
/** The dropdown value meaning "let the daemon decide". */
export const DAEMON_DEFAULT = "daemon";

export const PROVIDERS: readonly Provider[] = ["ollama", "openai", "anthropic", "gemini", "builtin"];
export const MODES: readonly Mode[] = ["zero-shot", "few-shot"];

export interface Preferences {
  socketPath?: string;
  defaultProvider?: string;
  model?: string;
  mode?: string;
  selectedTextAction?: string;
}

export interface ImproveFormValues {
  idea: string;
  context?: string;
  provider?: string;
  model?: string;
  mode?: string;
}

/** Characters as the daemon counts them: Unicode code points. */
export function charCount(text: string): number {
  return Array.from(text).length;
}

/** An error sentence for the idea field, or undefined when it is fine. */
export function validateIdea(idea: string | undefined): string | undefined {
  const n = charCount((idea ?? "").trim());
  if (n < IDEA_MIN_CHARS) return `Write at least ${IDEA_MIN_CHARS} characters`;
  if (n > IDEA_MAX_CHARS) return `At most ${IDEA_MAX_CHARS} characters (this has ${n})`;
  return undefined;
}

export function validateContext(context: string | undefined): string | undefined {
  const n = charCount(context ?? "");
  return n > CONTEXT_MAX_CHARS ? `At most ${CONTEXT_MAX_CHARS} characters (this has ${n})` : undefined;
}

function chosen(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v && v !== DAEMON_DEFAULT ? v : undefined;
}

function isProvider(value: string | undefined): value is Provider {
  return value !== undefined && (PROVIDERS as readonly string[]).includes(value);
}

function isMode(value: string | undefined): value is Mode {
  return value !== undefined && (MODES as readonly string[]).includes(value);
}

/**
 * The params of `improve`: form values win over preferences; "daemon" and
 * empty values are left out so the daemon's configuration applies.
 */
export function buildImproveParams(
  values: ImproveFormValues,
  prefs: Preferences = {},
  extra: { parentId?: number | null } = {},
): ImproveParams {
  const params: ImproveParams = { idea: values.idea.trim(), client: "raycast" };
  const context = values.context?.trim();
  if (context) params.context = context;
  const provider = chosen(values.provider) ?? chosen(prefs.defaultProvider);
  if (isProvider(provider)) params.provider = provider;
  const model = chosen(values.model) ?? chosen(prefs.model);
  if (model) params.model = model;
  const mode = chosen(values.mode) ?? chosen(prefs.mode);
  if (isMode(mode)) params.mode = mode;
  if (typeof extra.parentId === "number") params.parent_id = extra.parentId;
  return params;
}

/** history.list for an empty search bar (recent items), else history.search. */
export function historyRequest(
  searchText: string,
  limit = 50,
): { method: "history.list"; params: HistoryListParams } | { method: "history.search"; params: HistorySearchParams } {
  const query = searchText.trim();
  if (!query) return { method: "history.list", params: { limit } };
  return { method: "history.search", params: { query, limit } };
}
