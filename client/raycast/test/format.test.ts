// The mapping from promptd results to markdown and metadata, and the small formatters.
import assert from "node:assert/strict";
import { test } from "node:test";

import type { HistoryRow, ImproveResult } from "promptd-client";

import {
  blockquote,
  fallbackNotice,
  formatLatency,
  formatPercent,
  formatRelativeTime,
  historyMarkdown,
  improveMarkdown,
  modelLabel,
  resultMetadata,
  snippetMarkdown,
  snippetText,
  truncate,
} from "../src/lib/format.js";

const RESULT: ImproveResult = {
  id: 42,
  improved_prompt: "You are a tenant-rights advisor.\n\nWrite a firm, polite email.",
  role: "Tenant-rights advisor",
  directive: "Write a firm, polite email to the landlord.",
  framework: "CO-STAR",
  guardrails: ["Do not threaten legal action", "Under 200 words"],
  reasoning: "Added an audience and a length.",
  confidence: 0.82,
  quality_score: 0.7412,
  backend: "zero-shot",
  provider: "ollama",
  model: "llama3.2:3b",
  latency_ms: 812,
  tokens: { prompt: 123, completion: 456 },
  parent_id: null,
};

const ROW: HistoryRow = {
  ...RESULT,
  id: 42,
  timestamp: "2026-03-01T10:00:00Z",
  original_idea: "email my landlord about the broken heater",
  context: "third time this winter",
  client: "raycast",
};

test("percentages round, clamp and say n/a for null", () => {
  assert.equal(formatPercent(0.82), "82%");
  assert.equal(formatPercent(0.7451), "75%");
  assert.equal(formatPercent(1.7), "100%");
  assert.equal(formatPercent(-1), "0%");
  assert.equal(formatPercent(null), "n/a");
  assert.equal(formatPercent(undefined), "n/a");
  assert.equal(formatPercent(Number.NaN), "n/a");
});

test("latency in ms, seconds and minutes", () => {
  assert.equal(formatLatency(0), "0 ms");
  assert.equal(formatLatency(812), "812 ms");
  assert.equal(formatLatency(1234), "1.2 s");
  assert.equal(formatLatency(59_999), "60.0 s");
  assert.equal(formatLatency(60_000), "1 min");
  assert.equal(formatLatency(125_000), "2 min 5 s");
  assert.equal(formatLatency(-5), "n/a");
  assert.equal(formatLatency(null), "n/a");
});

test("relative times", () => {
  const now = new Date("2026-03-10T12:00:00Z");
  assert.equal(formatRelativeTime("2026-03-10T11:59:30Z", now), "just now");
  assert.equal(formatRelativeTime("2026-03-10T11:55:00Z", now), "5 min ago");
  assert.equal(formatRelativeTime("2026-03-10T09:00:00Z", now), "3 h ago");
  assert.equal(formatRelativeTime("2026-03-09T12:00:00Z", now), "yesterday");
  assert.equal(formatRelativeTime("2026-03-06T12:00:00Z", now), "4 days ago");
  assert.equal(formatRelativeTime("2026-01-02T12:00:00Z", now), "2026-01-02");
  assert.equal(formatRelativeTime("not a date", now), "not a date");
});

test("truncate flattens white space and cuts on code points", () => {
  assert.equal(truncate("a\n b   c", 10), "a b c");
  assert.equal(truncate("abcdefghij", 5), "abcd…");
  assert.equal(truncate("😀😀😀😀😀😀", 4), "😀😀😀…");
  assert.equal(Array.from(truncate("x".repeat(500), 80)).length, 80);
});

test("blockquote quotes every line, blank lines too", () => {
  assert.equal(blockquote("one\n\ntwo"), "> one\n>\n> two");
});

test("model label names the provider and a fallback", () => {
  assert.equal(modelLabel(RESULT), "llama3.2:3b (ollama)");
  assert.equal(modelLabel({ ...RESULT, model: "builtin", provider: "builtin" }), "builtin");
  assert.equal(
    modelLabel({ ...RESULT, model: "builtin", provider: "builtin", fallback_from: "ollama" }),
    "builtin, fallback from ollama",
  );
});

test("metadata lists role, directive, framework, guardrails, confidence, quality, latency, model", () => {
  const entries = resultMetadata(RESULT);
  const labels: Record<string, string | string[]> = {};
  for (const e of entries) {
    if (e.kind === "label") labels[e.title] = e.text;
    else if (e.kind === "tags") labels[e.title] = e.tags;
  }
  assert.equal(labels.Role, "Tenant-rights advisor");
  assert.equal(labels.Directive, RESULT.directive);
  assert.equal(labels.Framework, "CO-STAR");
  assert.deepEqual(labels.Guardrails, RESULT.guardrails);
  assert.equal(labels.Confidence, "82%");
  assert.equal(labels.Quality, "74%");
  assert.equal(labels.Latency, "812 ms");
  assert.equal(labels.Model, "llama3.2:3b (ollama)");
  assert.equal(labels.Tokens, "123 in, 456 out");
  assert.equal(labels["History ID"], "42");
  assert.equal(labels.Refines, undefined);
  assert.equal(labels.When, undefined);
  assert.ok(entries.some((e) => e.kind === "separator"));
});

test("metadata of an unrecorded, refined, token-less result; and of a history row", () => {
  const entries = resultMetadata({ ...RESULT, id: null, parent_id: 7, tokens: null, guardrails: [], confidence: null });
  const titles = entries.flatMap((e) => (e.kind === "separator" ? [] : [e.title]));
  assert.ok(!titles.includes("History ID"));
  assert.ok(!titles.includes("Tokens"));
  assert.ok(!titles.includes("Guardrails"));
  assert.ok(titles.includes("Refines"));
  const rowEntries = resultMetadata(ROW, new Date("2026-03-01T10:10:00Z"));
  assert.ok(rowEntries.some((e) => e.kind === "label" && e.title === "When" && e.text === "10 min ago"));
});

test("improve markdown while streaming shows a cursor, then the final text with reasoning", () => {
  const waiting = improveMarkdown({ idea: "my idea", text: "", streaming: true });
  assert.match(waiting, /Waiting for the model/);
  const streaming = improveMarkdown({ idea: "my idea", text: "You are", streaming: true });
  assert.match(streaming, /## Improved Prompt\n\nYou are ▍/);
  assert.match(streaming, /### Your Idea\n\n> my idea/);
  const done = improveMarkdown({ idea: "my idea", text: RESULT.improved_prompt, reasoning: RESULT.reasoning });
  assert.ok(done.includes(RESULT.improved_prompt));
  assert.ok(!done.includes("▍"));
  assert.match(done, /### Why\n\nAdded an audience/);
  const noticed = improveMarkdown({ idea: "i", text: "t", notice: "ollama was not available" });
  assert.ok(noticed.startsWith("> ollama was not available"));
});

test("history markdown has the prompt, reasoning, idea and context", () => {
  const md = historyMarkdown(ROW);
  assert.ok(md.startsWith(`## Improved Prompt\n\n${ROW.improved_prompt}`));
  assert.match(md, /### Original Idea\n\n> email my landlord/);
  assert.match(md, /### Context\n\n> third time this winter/);
  assert.ok(!historyMarkdown({ ...ROW, context: "  ", reasoning: null }).includes("### Context"));
});

test("fallback notice only when the fallback answered", () => {
  assert.equal(fallbackNotice(RESULT), undefined);
  assert.match(fallbackNotice({ provider: "builtin", fallback_from: "ollama" }) ?? "", /ollama was not available/);
});

test("snippets lose their match markers, or show them in bold", () => {
  assert.equal(snippetText("the «heater» is\n«broken»"), "the heater is broken");
  assert.equal(snippetText("the <b>heater</b> is **broken**"), "the heater is broken");
  assert.equal(snippetText(undefined), "");
  assert.equal(snippetMarkdown("…the «heater» is *very* «broken…"), "…the **heater** is \\*very\\* broken…");
  assert.equal(snippetMarkdown(undefined), "");
});
