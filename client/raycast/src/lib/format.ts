/**
 * Formatting and the mapping from promptd results to markdown and metadata.
 * Plain TypeScript: no Raycast import, unit-tested with node --test.
 *
 * Every text that came from a model, a backend or the history goes through
 * `plain` (promptd-client's stripControls) on its way to the screen: a
 * hostile model's escape sequences and C1 controls are dropped, newline and
 * tab stay. Copy and paste actions get the prompt exactly as stored.
 */
import { stripControls, type HistoryRow, type ImproveResult } from "promptd-client";

/** Text for the screen: control characters (but newline and tab) removed. */
export function plain(text: string | null | undefined): string {
  return text ? stripControls(text) : "";
}

/** "82%", or "n/a" when the model gave no confidence. */
export function formatPercent(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "n/a";
  return `${Math.round(Math.min(1, Math.max(0, value)) * 100)}%`;
}

/** "812 ms" under a second, "1.2 s" under a minute, "2 min 5 s" beyond. */
export function formatLatency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return "n/a";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return seconds ? `${minutes} min ${seconds} s` : `${minutes} min`;
}

/** "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", else the date (YYYY-MM-DD). */
export function formatRelativeTime(iso: string, now: Date = new Date()): string {
  const then = new Date(iso);
  const t = then.getTime();
  if (Number.isNaN(t)) return iso;
  const seconds = Math.round((now.getTime() - t) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  if (days === 1) return "yesterday";
  if (days < 7) return `${days} days ago`;
  return then.toISOString().slice(0, 10);
}

/** The text cut to at most max characters (code points), "…" marking a cut; one line. */
export function truncate(text: string, max: number): string {
  const flat = plain(text).replace(/\s+/g, " ").trim();
  const chars = Array.from(flat);
  if (chars.length <= max) return flat;
  return `${chars
    .slice(0, Math.max(0, max - 1))
    .join("")
    .trimEnd()}…`;
}

/** Quotes text as a markdown blockquote, line by line. */
export function blockquote(text: string): string {
  return plain(text)
    .split("\n")
    .map((line) => (line.length ? `> ${line}` : ">"))
    .join("\n");
}

/** The model name with its provider: "llama3.2:3b (ollama)". */
export function modelLabel(result: Pick<ImproveResult, "model" | "provider" | "fallback_from">): string {
  const base =
    result.model && result.model !== result.provider ? `${result.model} (${result.provider})` : result.provider;
  return plain(result.fallback_from ? `${base}, fallback from ${result.fallback_from}` : base);
}

/** One entry of the metadata panel; the view maps it to Raycast's components. */
export type MetadataEntry =
  | { kind: "label"; title: string; text: string }
  | { kind: "tags"; title: string; tags: string[] }
  | { kind: "separator" };

/** The metadata panel of an improve result or a history row. */
export function resultMetadata(result: ImproveResult | HistoryRow, now?: Date): MetadataEntry[] {
  const entries: MetadataEntry[] = [
    { kind: "label", title: "Role", text: plain(result.role) || "—" },
    { kind: "label", title: "Directive", text: plain(result.directive) || "—" },
    { kind: "label", title: "Framework", text: plain(result.framework) || "—" },
  ];
  if (result.guardrails.length) {
    entries.push({ kind: "tags", title: "Guardrails", tags: result.guardrails.map((g) => plain(g)) });
  }
  entries.push({ kind: "separator" });
  entries.push({ kind: "label", title: "Confidence", text: formatPercent(result.confidence) });
  entries.push({ kind: "label", title: "Quality", text: formatPercent(result.quality_score) });
  entries.push({ kind: "label", title: "Latency", text: formatLatency(result.latency_ms) });
  entries.push({ kind: "label", title: "Model", text: modelLabel(result) });
  if (result.tokens) {
    entries.push({
      kind: "label",
      title: "Tokens",
      text: `${result.tokens.prompt} in, ${result.tokens.completion} out`,
    });
  }
  if ("timestamp" in result && typeof result.timestamp === "string") {
    entries.push({ kind: "label", title: "When", text: formatRelativeTime(result.timestamp, now) });
  }
  if (result.id !== null) entries.push({ kind: "label", title: "History ID", text: String(result.id) });
  if (result.parent_id !== null) entries.push({ kind: "label", title: "Refines", text: `#${result.parent_id}` });
  return entries;
}

/** Markdown for an improve result, or for the prompt while it streams. */
export function improveMarkdown(options: {
  idea: string;
  text: string;
  streaming?: boolean;
  reasoning?: string | null | undefined;
  notice?: string | undefined;
}): string {
  const parts: string[] = [];
  if (options.notice) parts.push(`> ${plain(options.notice)}`);
  const text = plain(options.text);
  const body = text.length ? text : options.streaming ? "_Waiting for the model…_" : "";
  parts.push(`## Improved Prompt\n\n${body}${options.streaming && text.length ? " ▍" : ""}`);
  if (options.reasoning) parts.push(`### Why\n\n${plain(options.reasoning)}`);
  parts.push(`### Your Idea\n\n${blockquote(options.idea.trim())}`);
  return parts.join("\n\n");
}

/** Markdown for a history row's detail. */
export function historyMarkdown(row: HistoryRow): string {
  const parts = [`## Improved Prompt\n\n${plain(row.improved_prompt)}`];
  if (row.reasoning) parts.push(`### Why\n\n${plain(row.reasoning)}`);
  parts.push(`### Original Idea\n\n${blockquote(row.original_idea.trim())}`);
  if (row.context && row.context.trim()) parts.push(`### Context\n\n${blockquote(row.context.trim())}`);
  return parts.join("\n\n");
}

/** The notice shown above a result that the fallback provider produced. */
export function fallbackNotice(result: Pick<ImproveResult, "fallback_from" | "provider">): string | undefined {
  if (!result.fallback_from) return undefined;
  return plain(`${result.fallback_from} was not available: this prompt comes from the ${result.provider} fallback.`);
}

/** promptd marks search matches in a snippet with « and ». */
const MARKERS = /[«»]|<\/?(b|mark)>|\*\*/g;

/** A history search snippet as one plain line (match markers removed). */
export function snippetText(snippet: string | undefined): string {
  if (!snippet) return "";
  return truncate(snippet.replace(MARKERS, ""), 120);
}

/** A history search snippet as markdown: the matches in bold. */
export function snippetMarkdown(snippet: string | undefined): string {
  if (!snippet) return "";
  const flat = plain(snippet).replace(/\s+/g, " ").trim().replace(/\*/g, "\\*");
  return flat.replace(/«([^«»]*)»/g, "**$1**").replace(/[«»]/g, "");
}
