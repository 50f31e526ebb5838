// A hostile model, backend or stored row (issue 11 item 3): no control
// character (but newline and tab) reaches what the extension renders:
// markdown, metadata, list titles, snippets, toasts.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PromptdError, ProtocolError, type HistoryRow, type ImproveResult } from "promptd-client";

import { describeError } from "../src/lib/errors.js";
import {
  fallbackNotice,
  historyMarkdown,
  improveMarkdown,
  modelLabel,
  plain,
  resultMetadata,
  snippetMarkdown,
  snippetText,
  truncate,
} from "../src/lib/format.js";
import { improveReducer, initialImproveState } from "../src/lib/state.js";

// A window title, a clear-screen, a hyperlink, an 8-bit CSI, NUL,
// backspace, DEL and a carriage return.
const EVIL =
  "A\x1b]0;pwned\x07B \x1b[2J C\u009b31m D\x00E \x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\ F\x08\x7f\rG";
/** The first control character in text other than newline and tab, or undefined. */
function firstControl(text: string): string | undefined {
  return Array.from(text).find((ch) => {
    const c = ch.charCodeAt(0);
    return (c < 0x20 && ch !== "\n" && ch !== "\t") || (c >= 0x7f && c <= 0x9f);
  });
}

const RESULT: ImproveResult = {
  id: 7,
  improved_prompt: `line one ${EVIL}\nline two`,
  role: `role ${EVIL}`,
  directive: `directive ${EVIL}`,
  framework: `framework ${EVIL}`,
  guardrails: [`guard ${EVIL}`],
  reasoning: `reasoning ${EVIL}`,
  confidence: 0.5,
  quality_score: 0.5,
  backend: "zero-shot",
  provider: "ollama",
  model: `model ${EVIL}`,
  latency_ms: 10,
  tokens: null,
  parent_id: null,
  fallback_from: `openai ${EVIL}`,
};

const ROW: HistoryRow = {
  ...RESULT,
  id: 7,
  timestamp: "2026-03-01T10:00:00Z",
  original_idea: `idea ${EVIL}`,
  context: `context ${EVIL}`,
  client: `client ${EVIL}`,
};

function assertClean(text: string) {
  assert.equal(firstControl(text), undefined, JSON.stringify(text));
}

test("plain drops control characters and keeps newline, tab and the text", () => {
  assert.equal(plain(EVIL), "A]0;pwnedB [2J C31m DE ]8;;http://evil.example/\\link]8;;\\ FG");
  assert.equal(plain("a\n\tb é 🚀"), "a\n\tb é 🚀");
  assert.equal(plain(null), "");
});

test("improve markdown, streamed and done, carries no control character", () => {
  let state = improveReducer(initialImproveState, { type: "delta", text: "A\x1b]0;pw" });
  state = improveReducer(state, { type: "delta", text: "ned\x07 \u009b2J" });
  const streaming = improveMarkdown({ idea: `idea ${EVIL}`, text: state.text, streaming: true });
  assertClean(streaming);
  assert.match(streaming, /A\]0;pwned 2J/);
  const done = improveMarkdown({
    idea: `idea ${EVIL}`,
    text: RESULT.improved_prompt,
    reasoning: RESULT.reasoning,
    notice: fallbackNotice(RESULT),
  });
  assertClean(done);
  assert.match(done, /line one A\]0;pwnedB/);
  assert.match(done, /\nline two/);
});

test("history markdown, metadata, titles and snippets carry none", () => {
  assertClean(historyMarkdown(ROW));
  assert.match(historyMarkdown(ROW), /context A\]0;pwnedB/);
  for (const entry of resultMetadata(ROW)) {
    if (entry.kind === "label") assertClean(entry.text);
    if (entry.kind === "tags") entry.tags.forEach(assertClean);
  }
  assertClean(modelLabel(RESULT));
  assertClean(truncate(ROW.original_idea, 20));
  const snippet = `… «pwned» ${EVIL} …`;
  assertClean(snippetText(snippet));
  assertClean(snippetMarkdown(snippet));
  assert.match(snippetMarkdown(snippet), /\*\*pwned\*\*/);
});

test("error toasts carry none, whatever the daemon or a backend wrote", () => {
  const upstream = new PromptdError(-32002, `Ollama answered HTTP 400: ${EVIL}`, {
    kind: "upstream_error",
    http_status: 400,
    detail: EVIL,
  });
  const info = describeError(upstream);
  assertClean(info.title);
  assertClean(info.message);
  assert.equal(info.message, `Ollama answered HTTP 400: ${plain(EVIL)}`);
  for (const err of [
    new PromptdError(-32003, `bad ${EVIL}`),
    new PromptdError(-32601, `no method ${EVIL}`, { kind: "method_not_found" }),
    new ProtocolError(`promptd sent a line that is not JSON: ${EVIL}`),
    new Error(`boom ${EVIL}`),
  ]) {
    const d = describeError(err);
    assertClean(d.title);
    assertClean(d.message);
  }
});
