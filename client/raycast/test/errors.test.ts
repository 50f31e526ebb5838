// What a person reads when a call fails.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AbortError,
  ConnectionClosedError,
  DaemonNotRunningError,
  PromptdError,
  ProtocolError,
  TimeoutError,
  startAdvice,
} from "promptd-client";

import { describeError, startCommand } from "../src/lib/errors.js";

test("not running: title, advice and the start command", () => {
  const err = new DaemonNotRunningError("/tmp/p.sock", startAdvice("/tmp/p.sock", "linux"));
  const info = describeError(err);
  assert.equal(info.title, "promptd is not running");
  assert.match(info.message, /systemctl --user start promptd/);
  assert.equal(info.command, "promptd --socket /tmp/p.sock");
  assert.equal(startCommand(new DaemonNotRunningError("/x", "no backticks here")), "promptd");
});

test("daemon errors by kind", () => {
  const cases: [PromptdError, RegExp][] = [
    [
      new PromptdError(-32000, "Ollama is not running at http://localhost:11434: start it with `ollama serve`"),
      /not reachable/,
    ],
    [new PromptdError(-32001, "no first byte"), /took too long/],
    [new PromptdError(-32002, "bad key", { kind: "upstream_error", http_status: 401 }), /HTTP 401/],
    [new PromptdError(-32003, "not json"), /not usable/],
    [new PromptdError(-32602, "idea too short", { kind: "invalid_params", field: "idea" }), /Check the input/],
    [new PromptdError(-32005, "busy"), /busy/],
    [new PromptdError(-32004, "no row"), /Not in the history/],
    [new PromptdError(-32600, "too long", { kind: "too_large" }), /too large/],
    [new PromptdError(-32099, "odd"), /promptd answered an error/],
  ];
  for (const [err, title] of cases) {
    const info = describeError(err);
    assert.match(info.title, title, err.message);
    assert.equal(info.message, err.message);
    assert.equal(info.cancelled, undefined);
  }
});

test("an older daemon without the method says to update", () => {
  const info = describeError(new PromptdError(-32601, "unknown method", undefined, "history.search"));
  assert.equal(info.title, "Update promptd");
  assert.equal(info.unsupported, true);
  assert.match(info.message, /history\.search/);
});

test("cancellations are marked so no failure toast is shown", () => {
  assert.equal(describeError(new AbortError()).cancelled, true);
  assert.equal(describeError(new PromptdError(-32800, "cancelled")).cancelled, true);
});

test("client-side failures", () => {
  assert.match(describeError(new ConnectionClosedError("closed while improve")).title, /Lost the connection/);
  assert.match(describeError(new TimeoutError("improve", 100)).title, /took too long/);
  assert.match(describeError(new ProtocolError("bad line")).title, /unexpected answer/);
  assert.equal(describeError(new Error("boom")).message, "boom");
  assert.equal(describeError("a string").message, "a string");
});
