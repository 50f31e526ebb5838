// The library through the real promptd against a fake Ollama
// (tests/fakes/fake_llm.py): exact content, streaming order and content,
// cancellation reaching the upstream, timeouts, models, upstream errors and
// the builtin fallback.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";

import { AbortError, PromptdClient, PromptdError, TimeoutError } from "../dist/index.js";
import { Daemon, FakeLlm, closedPort, daemonMissing, fakeLlmMissing, sleep } from "./helpers.js";

// fake_llm.py's default answer: non-ASCII (also outside the BMP), a quote,
// a backslash and a newline inside improved_prompt.
const FAKE_PROMPT =
  'Act as a senior p\u00e2tissier at a small caf\u00e9 \u{1F680} and write a "launch plan" for the spring menu.\n' +
  "Store drafts under C:\\menus\\spring and keep every step under 20 words.";

const IDEA = "plan the launch of our spring menu";

describe("real daemon with a fake Ollama", { skip: daemonMissing() ?? fakeLlmMissing() }, () => {
  let fake;
  let daemon;
  let client;
  let hasImprove = false;

  before(async () => {
    fake = await new FakeLlm("ollama").start();
    daemon = await new Daemon({
      env: { LLM_PROVIDER: "ollama", LLM_BASE_URL: fake.url, LLM_MODEL: "llama3.2:3b" },
    }).start();
    client = new PromptdClient({ socketPath: daemon.socketPath, clientName: "node-test" });
    const probe = await client.improve({ idea: "x" }).catch((e) => e);
    hasImprove = probe?.kind !== "method_not_found";
  });

  beforeEach(async () => {
    await fake?.reset();
  });

  after(async () => {
    client?.close();
    await daemon?.cleanup();
    await fake?.stop();
  });

  const needImprove = (t) => {
    if (!hasImprove) t.skip("the daemon does not implement improve yet");
    return hasImprove;
  };

  test("improve returns the model's structured answer exactly", async (t) => {
    if (!needImprove(t)) return;
    const r = await client.improve({ idea: IDEA, record: false });
    assert.equal(r.improved_prompt, FAKE_PROMPT);
    assert.equal(r.provider, "ollama");
    assert.equal(r.model, "llama3.2:3b");
    assert.equal(r.framework, "CO-STAR");
    assert.deepEqual(r.guardrails, ["Keep every step under 20 words.", "Do not invent prices or suppliers."]);
    assert.equal(r.confidence, 0.82);
    assert.equal(r.fallback_from, undefined);
    const reqs = await fake.requests();
    assert.ok(reqs.some((q) => q.route_path === "/api/chat" || q.path.startsWith("/api/chat")));
  });

  test("streaming: deltas in order, joined they are the improved prompt, all before the result", async (t) => {
    if (!needImprove(t)) return;
    await fake.configure({ chunk_size: 5 });
    const seen = [];
    const r = await client.improve({ idea: IDEA, record: false }, { onDelta: (text) => seen.push(text) });
    seen.push(null); // the result resolved after every delta
    assert.ok(seen.length > 5, `only ${seen.length - 1} deltas`);
    assert.equal(seen.at(-1), null);
    assert.equal(seen.slice(0, -1).join(""), FAKE_PROMPT);
    assert.equal(r.improved_prompt, FAKE_PROMPT);
  });

  test("streaming with \\u escapes split across chunks gives the same text", async (t) => {
    if (!needImprove(t)) return;
    await fake.configure({ chunk_size: 3, escape_unicode: "content" });
    const events = [];
    for await (const ev of client.improveStream({ idea: IDEA, record: false })) events.push(ev);
    const text = events.filter((e) => e.type === "delta").map((e) => e.text).join("");
    assert.equal(text, FAKE_PROMPT);
    assert.equal(events.at(-1).result.improved_prompt, FAKE_PROMPT);
  });

  test("an AbortSignal cancels mid-stream: AbortError, and the upstream request is dropped", async (t) => {
    if (!needImprove(t)) return;
    await fake.configure({ chunk_size: 4, chunk_delay_s: 0.2 });
    // Whether health counts itself as in flight is the daemon's choice: take it as the baseline.
    const idle = (await client.health()).requests.in_flight;
    const ac = new AbortController();
    let deltas = 0;
    const call = client.improve(
      { idea: IDEA, record: false },
      {
        signal: ac.signal,
        onDelta: () => {
          deltas++;
          if (deltas === 2) ac.abort();
        },
      },
    );
    const err = await call.catch((e) => e);
    assert.ok(err instanceof AbortError, String(err));
    await fake.waitEvent("client_disconnected");
    assert.equal(await client.ping(), "pong");
    // The daemon forgets the cancelled request.
    for (let i = 0; i < 50 && (await client.health()).requests.in_flight > idle; i++) await sleep(20);
    assert.equal((await client.health()).requests.in_flight, idle, "nothing left in flight");
  });

  test("breaking out of improveStream cancels the upstream too", async (t) => {
    if (!needImprove(t)) return;
    await fake.configure({ chunk_size: 4, chunk_delay_s: 0.2 });
    for await (const ev of client.improveStream({ idea: IDEA, record: false })) {
      assert.equal(ev.type, "delta");
      break;
    }
    await fake.waitEvent("client_disconnected");
  });

  test("a per-call timeout rejects with TimeoutError and cancels the upstream", async (t) => {
    if (!needImprove(t)) return;
    await fake.configure({ fault: "no_headers" });
    const err = await client.improve({ idea: IDEA, record: false }, { timeoutMs: 300 }).catch((e) => e);
    assert.ok(err instanceof TimeoutError, String(err));
    await fake.waitEvent("client_disconnected");
  });

  test("upstream HTTP 500 rejects with upstream_error and the status", async (t) => {
    if (!needImprove(t)) return;
    await fake.configure({ fault: "http_500" });
    const err = await client.improve({ idea: IDEA, record: false }).catch((e) => e);
    assert.ok(err instanceof PromptdError, String(err));
    assert.equal(err.code, -32002);
    assert.equal(err.kind, "upstream_error");
    assert.equal(err.data.http_status, 500);
  });

  test("a missing model says how to pull it", async (t) => {
    if (!needImprove(t)) return;
    await fake.configure({ fault: "model_not_found" });
    const err = await client.improve({ idea: IDEA, record: false }).catch((e) => e);
    assert.ok(err instanceof PromptdError, String(err));
    assert.equal(err.kind, "upstream_error");
    assert.match(err.message, /ollama pull/);
  });

  test("prose instead of JSON rejects with bad_model_output", async (t) => {
    if (!needImprove(t)) return;
    await fake.configure({ fault: "prose_only" });
    const err = await client.improve({ idea: IDEA, record: false }).catch((e) => e);
    assert.ok(err instanceof PromptdError, String(err));
    assert.equal(err.code, -32003);
    assert.equal(err.kind, "bad_model_output");
  });

  test("models lists the fake's models", async (t) => {
    const r = await client.models().catch((e) => e);
    if (r?.kind === "method_not_found") return t.skip("the daemon does not implement models yet");
    assert.ok(!(r instanceof Error), String(r));
    assert.equal(r.provider, "ollama");
    assert.ok(r.models.includes("llama3.2:3b"), JSON.stringify(r));
  });
});

describe("real daemon with an Ollama that is not running", { skip: daemonMissing() }, () => {
  let port;
  let plain;
  let withFallback;

  before(async () => {
    port = await closedPort();
    const url = `http://127.0.0.1:${port}`;
    plain = await new Daemon({ env: { LLM_PROVIDER: "ollama", LLM_BASE_URL: url } }).start();
    withFallback = await new Daemon({
      env: { LLM_PROVIDER: "ollama", LLM_BASE_URL: url, LLM_FALLBACK_PROVIDER: "builtin" },
    }).start();
  });

  after(async () => {
    await plain?.cleanup();
    await withFallback?.cleanup();
  });

  test("upstream_unavailable with a sentence on how to start it", async (t) => {
    const client = new PromptdClient({ socketPath: plain.socketPath });
    try {
      const err = await client.improve({ idea: IDEA, record: false }).catch((e) => e);
      if (err?.kind === "method_not_found") return t.skip("the daemon does not implement improve yet");
      assert.ok(err instanceof PromptdError, String(err));
      assert.equal(err.code, -32000);
      assert.equal(err.kind, "upstream_unavailable");
      assert.match(err.message, /ollama serve/);
    } finally {
      client.close();
    }
  });

  test("with LLM_FALLBACK_PROVIDER=builtin the builtin answers, with fallback_from", async (t) => {
    const client = new PromptdClient({ socketPath: withFallback.socketPath });
    try {
      const r = await client.improve({ idea: IDEA, record: false }).catch((e) => e);
      if (r?.kind === "method_not_found") return t.skip("the daemon does not implement improve yet");
      assert.ok(!(r instanceof Error), String(r));
      assert.equal(r.provider, "builtin");
      assert.equal(r.fallback_from, "ollama");
    } finally {
      client.close();
    }
  });
});
