// The improve view's state machine.
import assert from "node:assert/strict";
import { test } from "node:test";

import { AbortError, DaemonNotRunningError, PromptdError, type ImproveResult } from "promptd-client";

import { improveReducer, improveTitle, initialImproveState, type ImproveState } from "../src/lib/state.js";

const RESULT = {
  id: 1,
  improved_prompt: "Final text.",
  role: "r",
  directive: "d",
  framework: "RTF",
  guardrails: [],
  reasoning: null,
  confidence: null,
  quality_score: 0.5,
  backend: "zero-shot",
  provider: "builtin",
  model: "builtin",
  latency_ms: 3,
  tokens: null,
  parent_id: null,
} satisfies ImproveResult;

function run(actions: Parameters<typeof improveReducer>[1][]): ImproveState {
  return actions.reduce(improveReducer, initialImproveState);
}

test("deltas append in order and count", () => {
  const s = run([
    { type: "delta", text: "Fin" },
    { type: "delta", text: "al" },
  ]);
  assert.deepEqual(s, { status: "streaming", text: "Final", deltas: 2 });
  assert.equal(improveTitle(s), "Writing…");
  assert.equal(improveTitle(initialImproveState), "Improving…");
});

test("the result's improved_prompt replaces the streamed text", () => {
  const s = run([
    { type: "delta", text: "Fin" },
    { type: "result", result: RESULT },
  ]);
  assert.equal(s.status, "done");
  assert.equal(s.text, "Final text.");
  assert.equal(improveTitle(s), "Improved");
  assert.equal(
    improveTitle(run([{ type: "result", result: { ...RESULT, fallback_from: "ollama" } }])),
    "Improved (fallback)",
  );
});

test("late deltas and a second result are ignored once done", () => {
  const s = run([
    { type: "result", result: RESULT },
    { type: "delta", text: "late" },
    { type: "result", result: { ...RESULT, improved_prompt: "other" } },
    { type: "error", error: new Error("late") },
  ]);
  assert.equal(s.status, "done");
  assert.equal(s.text, "Final text.");
});

test("an error keeps the partial text and describes itself", () => {
  const s = run([
    { type: "delta", text: "partial" },
    { type: "error", error: new PromptdError(-32000, "Ollama is not running at http://localhost:11434") },
  ]);
  assert.equal(s.status, "error");
  assert.equal(s.text, "partial");
  if (s.status !== "error") throw new Error("unreachable");
  assert.equal(s.error.title, "The LLM is not reachable");
  assert.equal(improveTitle(s), "The LLM is not reachable");
});

test("a not-running daemon carries the start command", () => {
  const s = run([
    { type: "error", error: new DaemonNotRunningError("/tmp/x.sock", "Start it with `promptd --socket /tmp/x.sock`.") },
  ]);
  if (s.status !== "error") throw new Error(`status ${s.status}`);
  assert.equal(s.error.command, "promptd --socket /tmp/x.sock");
});

test("an abort, a cancelled error or a cancel action end in cancelled", () => {
  assert.equal(run([{ type: "error", error: new AbortError() }]).status, "cancelled");
  assert.equal(run([{ type: "error", error: new PromptdError(-32800, "cancelled") }]).status, "cancelled");
  const s = run([{ type: "delta", text: "x" }, { type: "cancel" }, { type: "delta", text: "y" }]);
  assert.deepEqual(s, { status: "cancelled", text: "x", deltas: 1 });
  assert.equal(improveTitle(s), "Cancelled");
});

test("start resets everything (Try Again)", () => {
  const s = run([{ type: "delta", text: "x" }, { type: "cancel" }, { type: "start" }]);
  assert.deepEqual(s, initialImproveState);
});
