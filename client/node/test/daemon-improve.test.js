// improve through the real promptd with the offline builtin provider:
// result shape, params validation, streaming (callback and iterator),
// record: false, concurrency. Skipped while the daemon lacks improve.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { PromptdClient, PromptdError } from "../dist/index.js";
import { Daemon, daemonMissing } from "./helpers.js";

const IDEA = "email my landlord about the broken heater";

function assertResultShape(r) {
  assert.ok(r.id === null || Number.isInteger(r.id), `id ${r.id}`);
  for (const k of ["improved_prompt", "role", "directive", "framework", "backend", "provider", "model"]) {
    assert.equal(typeof r[k], "string", k);
  }
  assert.ok(r.improved_prompt.length > 0);
  assert.ok(Array.isArray(r.guardrails) && r.guardrails.every((g) => typeof g === "string"));
  assert.ok(r.reasoning === null || typeof r.reasoning === "string");
  assert.ok(r.confidence === null || (r.confidence >= 0 && r.confidence <= 1), `confidence ${r.confidence}`);
  assert.ok(r.quality_score >= 0 && r.quality_score <= 1, `quality ${r.quality_score}`);
  assert.ok(Number.isInteger(r.latency_ms) && r.latency_ms >= 0);
  assert.ok(r.tokens === null || (typeof r.tokens.prompt === "number" && typeof r.tokens.completion === "number"));
  assert.ok(r.parent_id === null || Number.isInteger(r.parent_id));
  const expected = Math.min(1, Math.max(0, (r.confidence ?? 0.5) - Math.min(r.latency_ms / 10000, 0.3)));
  assert.ok(Math.abs(r.quality_score - expected) < 1e-6, `quality ${r.quality_score} != ${expected}`);
}

describe("real daemon: improve with the builtin provider", { skip: daemonMissing() }, () => {
  let daemon;
  let client;
  let hasImprove = false;

  before(async () => {
    daemon = await new Daemon({ env: { LLM_PROVIDER: "builtin" } }).start();
    client = new PromptdClient({ socketPath: daemon.socketPath, clientName: "node-test" });
    const probe = await client.improve({ idea: "x" }).catch((e) => e);
    hasImprove = probe?.kind !== "method_not_found";
  });

  after(async () => {
    client?.close();
    await daemon?.cleanup();
  });

  const needImprove = (t) => {
    if (!hasImprove) t.skip("the daemon does not implement improve yet");
    return hasImprove;
  };

  test("a result with every field, from the builtin provider", async (t) => {
    if (!needImprove(t)) return;
    const r = await client.improve({ idea: IDEA, context: "third time this winter, I have a toddler" });
    assertResultShape(r);
    assert.equal(r.provider, "builtin");
    assert.ok(r.confidence === null || r.confidence <= 0.3, "builtin is labelled low-confidence");
    assert.equal(r.fallback_from, undefined);
  });

  test("params out of range reject with invalid_params naming the field", async (t) => {
    if (!needImprove(t)) return;
    const cases = [
      [{ idea: "hi" }, "idea"],
      [{ idea: "   abc    " }, "idea"],
      [{ idea: "y".repeat(20001) }, "idea"],
      [{ idea: IDEA, context: "c".repeat(100001) }, "context"],
      [{ idea: IDEA, provider: "nope" }, "provider"],
      [{ idea: IDEA, mode: "many-shot" }, "mode"],
      [{ idea: 42 }, "idea"],
      [{ idea: IDEA, record: "yes" }, "record"],
    ];
    for (const [params, field] of cases) {
      const err = await client.improve(params).catch((e) => e);
      assert.ok(err instanceof PromptdError, `${JSON.stringify(params).slice(0, 60)}: ${err}`);
      assert.equal(err.code, -32602, field);
      assert.equal(err.kind, "invalid_params");
      assert.equal(err.field, field);
    }
  });

  test("the idea limits are inclusive: 5 and 20000 characters are accepted", async (t) => {
    if (!needImprove(t)) return;
    assertResultShape(await client.improve({ idea: "  abcde  ", record: false }));
    assertResultShape(await client.improve({ idea: "é".repeat(20000), record: false }));
  });

  test("onDelta streams the improved prompt before the result arrives", async (t) => {
    if (!needImprove(t)) return;
    const order = [];
    const result = await client.improve(
      { idea: IDEA },
      { onDelta: (text, soFar) => order.push({ text, soFar }) },
    );
    order.push("result");
    assert.ok(order.length >= 2, "at least one delta");
    assert.equal(order.at(-1), "result");
    const joined = order.slice(0, -1).map((d) => d.text).join("");
    assert.equal(joined, result.improved_prompt);
    assert.equal(order.at(-2).soFar, result.improved_prompt);
  });

  test("improveStream yields deltas then exactly one result", async (t) => {
    if (!needImprove(t)) return;
    const events = [];
    for await (const ev of client.improveStream({ idea: IDEA, record: false })) events.push(ev);
    const results = events.filter((e) => e.type === "result");
    assert.equal(results.length, 1);
    assert.equal(events.at(-1).type, "result");
    const text = events.filter((e) => e.type === "delta").map((e) => e.text).join("");
    assert.equal(text, results[0].result.improved_prompt);
  });

  test("record: false answers id null", async (t) => {
    if (!needImprove(t)) return;
    const r = await client.improve({ idea: IDEA, record: false });
    assert.equal(r.id, null);
  });

  test("30 improves pipelined with pings on one connection all answer", async (t) => {
    if (!needImprove(t)) return;
    const calls = [];
    for (let i = 0; i < 30; i++) {
      calls.push(client.improve({ idea: `${IDEA} number ${i}`, record: false }, i % 2 ? { onDelta: () => {} } : {}));
      calls.push(client.ping());
    }
    const results = await Promise.all(calls);
    for (let i = 0; i < 30; i++) {
      assertResultShape(results[2 * i]);
      assert.equal(results[2 * i + 1], "pong");
    }
  });

  test("models answers a provider and a list", async (t) => {
    const r = await client.models().catch((e) => e);
    if (r?.kind === "method_not_found") return t.skip("the daemon does not implement models yet");
    assert.ok(!(r instanceof Error), String(r));
    assert.equal(typeof r.provider, "string");
    assert.ok(Array.isArray(r.models));
  });
});
