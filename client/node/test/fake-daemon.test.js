// The library against an in-process fake daemon: framing, id matching,
// malformed responses, disconnects, timeouts, aborts and streaming, each
// provoked on purpose. No promptd binary needed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import {
  AbortError,
  ConnectionClosedError,
  DaemonNotRunningError,
  PromptdClient,
  PromptdError,
  ProtocolError,
  TimeoutError,
  connect,
} from "../dist/index.js";
import { LineSplitter } from "../dist/lines.js";
import { FakeDaemon, ok, sleep, tempHome } from "./helpers.js";

/** Runs fn with a fake daemon and a client on it; both are closed afterwards. */
async function withFake(handler, fn, clientOptions = {}) {
  const fake = await new FakeDaemon(handler).start();
  const client = new PromptdClient({ socketPath: fake.socketPath, ...clientOptions });
  try {
    await fn(fake, client);
  } finally {
    client.close();
    await fake.stop();
  }
}

const RESULT = {
  id: 1,
  improved_prompt: "You are a helpful assistant.",
  role: "r",
  directive: "d",
  framework: "RTF",
  guardrails: ["g"],
  reasoning: null,
  confidence: 0.5,
  quality_score: 0.5,
  backend: "zero-shot",
  provider: "builtin",
  model: "builtin",
  latency_ms: 1,
  tokens: null,
  parent_id: null,
};

test("line splitter: lines across chunks, UTF-8 split inside a character, limit", () => {
  const s = new LineSplitter(16);
  const bytes = Buffer.from('{"a":"é€"}\n{"b":1}\n');
  const lines = [];
  for (let i = 0; i < bytes.length; i++) lines.push(...s.push(bytes.subarray(i, i + 1)));
  assert.deepEqual(lines, ['{"a":"é€"}', '{"b":1}']);
  assert.deepEqual(s.push(Buffer.from("x\ny\nz")), ["x", "y"]);
  assert.equal(s.pendingBytes, 1);
  assert.throws(() => s.push(Buffer.alloc(20, 0x41)), RangeError);
});

test("requests carry jsonrpc 2.0, a numeric id and params only when given", async () => {
  await withFake(
    (msg, conn) => conn.send(ok(msg, msg.method === "ping" ? "pong" : {})),
    async (fake, client) => {
      assert.equal(await client.ping(), "pong");
      await client.history.list({ limit: 3 });
      const [ping, list] = fake.received;
      assert.deepEqual(ping, { jsonrpc: "2.0", id: ping.id, method: "ping" });
      assert.equal(typeof ping.id, "number");
      assert.deepEqual(list.params, { limit: 3 });
      assert.notEqual(list.id, ping.id);
    },
  );
});

test("pipelined calls are matched by id when answers come in reverse order", async () => {
  const held = [];
  await withFake(
    (msg, conn) => {
      held.push(msg);
      if (held.length === 50) for (const m of held.reverse()) conn.send(ok(m, m.params.n));
    },
    async (fake, client) => {
      const calls = Array.from({ length: 50 }, (_, n) => client.request("echo", { n }));
      assert.deepEqual(await Promise.all(calls), Array.from({ length: 50 }, (_, n) => n));
      assert.equal(new Set(fake.received.map((m) => m.id)).size, 50);
    },
  );
});

test("a response delivered one byte at a time, with multi-byte UTF-8, is decoded", async () => {
  await withFake(
    async (msg, conn) => {
      const bytes = Buffer.from(`${JSON.stringify(ok(msg, "héllo wörld — ✓ 😀"))}\n`);
      for (let i = 0; i < bytes.length; i++) {
        conn.sock.write(bytes.subarray(i, i + 1));
        if (i % 7 === 0) await sleep(1);
      }
    },
    async (_fake, client) => {
      assert.equal(await client.request("x"), "héllo wörld — ✓ 😀");
    },
  );
});

test("an error response becomes a PromptdError with code, kind, data and field", async () => {
  await withFake(
    (msg, conn) =>
      conn.send({
        jsonrpc: "2.0",
        id: msg.id,
        error: { code: -32602, message: "idea is too short", data: { kind: "invalid_params", field: "idea" } },
      }),
    async (_fake, client) => {
      const err = await client.improve({ idea: "hi" }).catch((e) => e);
      assert.ok(err instanceof PromptdError);
      assert.equal(err.code, -32602);
      assert.equal(err.kind, "invalid_params");
      assert.equal(err.field, "idea");
      assert.equal(err.method, "improve");
      assert.equal(err.message, "idea is too short");
      assert.deepEqual(err.data, { kind: "invalid_params", field: "idea" });
    },
  );
});

test("an error without data gets its kind from the code", async () => {
  await withFake(
    (msg, conn) => conn.send({ jsonrpc: "2.0", id: msg.id, error: { code: -32004, message: "no such row" } }),
    async (_fake, client) => {
      const err = await client.history.get(5).catch((e) => e);
      assert.ok(err instanceof PromptdError);
      assert.equal(err.kind, "not_found");
      assert.deepEqual(err.data, {});
    },
  );
});

test("a line that is not JSON fails the calls in flight, then the client reconnects", async () => {
  let conns = 0;
  await withFake(
    (msg, conn) => {
      if (msg.method === "ping") conn.send(ok(msg, "pong"));
      else if (msg.method === "garbage") conn.raw("this is not json\n");
    },
    async (fake, client) => {
      client.on("connect", () => conns++);
      const slow = client.request("slow");
      await fake.waitFor((m) => m.method === "slow");
      const bad = client.request("garbage");
      const [e1, e2] = await Promise.all([slow.catch((e) => e), bad.catch((e) => e)]);
      assert.ok(e1 instanceof ProtocolError, String(e1));
      assert.ok(e2 instanceof ProtocolError);
      assert.equal(e1.kind, "protocol_error");
      assert.match(e1.message, /not JSON: this is not json/);
      assert.equal(await client.ping(), "pong");
      assert.equal(conns, 2);
    },
  );
});

test("a response with neither result nor error fails only its own call", async () => {
  await withFake(
    (msg, conn) => {
      if (msg.method === "bad") conn.send({ jsonrpc: "2.0", id: msg.id });
      else if (msg.method === "both") conn.send({ jsonrpc: "2.0", id: msg.id, result: 1, error: { code: 1, message: "x" } });
      else if (msg.method === "weird-error") conn.send({ jsonrpc: "2.0", id: msg.id, error: "oops" });
      else conn.send(ok(msg, "pong"));
    },
    async (_fake, client) => {
      await assert.rejects(client.request("bad"), ProtocolError);
      await assert.rejects(client.request("both"), ProtocolError);
      await assert.rejects(client.request("weird-error"), /malformed error object/);
      assert.equal(await client.ping(), "pong");
      assert.equal(client.connected, true);
    },
  );
});

test("a message without jsonrpc 2.0, or a JSON array, is a protocol error", async () => {
  for (const line of ['{"id":1,"result":"pong"}', "[1,2]", '"just a string"']) {
    await withFake(
      (msg, conn) => conn.raw(`${line.replace('"id":1', `"id":${msg.id}`)}\n`),
      async (_fake, client) => {
        const err = await client.ping().catch((e) => e);
        assert.ok(err instanceof ProtocolError, `${line}: ${err}`);
      },
      { reconnectWindowMs: 0 },
    );
  }
});

test("answers to unknown ids are reported and ignored; the right answer still lands", async () => {
  await withFake(
    (msg, conn) => {
      conn.send({ jsonrpc: "2.0", id: 987654, result: "stray" });
      conn.send({ jsonrpc: "2.0", id: "text-id", result: "stray" });
      conn.send(ok(msg, "pong"));
    },
    async (_fake, client) => {
      const stray = [];
      client.on("protocolError", (e) => stray.push(e));
      assert.equal(await client.ping(), "pong");
      assert.equal(stray.length, 2);
      assert.ok(stray.every((e) => e instanceof ProtocolError));
    },
  );
});

test("a response line longer than maxLineBytes fails the connection", async () => {
  await withFake(
    (msg, conn) => conn.send(ok(msg, "x".repeat(5000))),
    async (_fake, client) => {
      const err = await client.ping().catch((e) => e);
      assert.ok(err instanceof ProtocolError, String(err));
      assert.match(err.message, /longer than 1024 bytes/);
    },
    { maxLineBytes: 1024, reconnectWindowMs: 0 },
  );
});

test("a disconnect rejects every call in flight with ConnectionClosedError; none hangs", async () => {
  await withFake(
    () => {},
    async (fake, client) => {
      const calls = [client.improve({ idea: "a long idea" }), client.request("history.delete", { all: true })];
      await fake.waitFor((m) => m.method === "history.delete");
      fake.dropClients();
      for (const c of calls) {
        const err = await c.catch((e) => e);
        assert.ok(err instanceof ConnectionClosedError, String(err));
        assert.equal(err.kind, "connection_closed");
        assert.match(err.message, /closed while (improve|history\.delete)/);
      }
      assert.equal(client.connected, false);
    },
    { reconnectWindowMs: 0 },
  );
});

test("an idempotent call is retried once on a new connection after a disconnect", async () => {
  let first = true;
  await withFake(
    (msg, conn) => {
      if (first) {
        first = false;
        conn.close();
      } else conn.send(ok(msg, "pong"));
    },
    async (fake, client) => {
      assert.equal(await client.ping(), "pong");
      assert.equal(fake.received.filter((m) => m.method === "ping").length, 2);
    },
  );
});

test("too_large with id null, then close: calls in flight get that PromptdError", async () => {
  await withFake(
    (msg, conn) => {
      if (msg.method !== "improve") return;
      conn.send({
        jsonrpc: "2.0",
        id: null,
        error: { code: -32600, message: "request line too long", data: { kind: "too_large" } },
      });
      conn.close();
    },
    async (_fake, client) => {
      const err = await client.improve({ idea: "big" }).catch((e) => e);
      assert.ok(err instanceof PromptdError, String(err));
      assert.equal(err.code, -32600);
      assert.equal(err.kind, "too_large");
    },
    { reconnectWindowMs: 0 },
  );
});

test("a per-call timeout rejects with TimeoutError and sends cancel", async () => {
  await withFake(
    (msg, conn) => {
      if (msg.method === "cancel") conn.send(ok(msg, { cancelled: true }));
    },
    async (fake, client) => {
      const started = Date.now();
      const err = await client.improve({ idea: "never answered" }, { timeoutMs: 100 }).catch((e) => e);
      assert.ok(err instanceof TimeoutError, String(err));
      assert.equal(err.kind, "timeout");
      assert.ok(Date.now() - started >= 90);
      const improve = fake.received.find((m) => m.method === "improve");
      const cancel = await fake.waitFor((m) => m.method === "cancel");
      assert.deepEqual(cancel.params, { request_id: improve.id });
    },
  );
});

test("the client-wide timeoutMs applies and a call can lift it with 0", async () => {
  await withFake(
    (msg, conn) => {
      if (msg.method === "slow") setTimeout(() => conn.send(ok(msg, "late")), 150);
    },
    async (_fake, client) => {
      await assert.rejects(client.request("slow"), TimeoutError);
      assert.equal(await client.request("slow", undefined, { timeoutMs: 0 }), "late");
    },
    { timeoutMs: 50 },
  );
});

test("aborting a call sends cancel with its id and rejects with AbortError; the late answer is dropped", async () => {
  let answer;
  await withFake(
    (msg, conn) => {
      if (msg.method === "improve") answer = () => conn.send({ jsonrpc: "2.0", id: msg.id, error: { code: -32800, message: "cancelled", data: { kind: "cancelled" } } });
      if (msg.method === "cancel") {
        conn.send(ok(msg, { cancelled: true }));
        answer();
      }
      if (msg.method === "ping") conn.send(ok(msg, "pong"));
    },
    async (fake, client) => {
      const stray = [];
      client.on("protocolError", (e) => stray.push(e));
      const ac = new AbortController();
      const call = client.improve({ idea: "cancel me please" }, { signal: ac.signal });
      const improve = await fake.waitFor((m) => m.method === "improve");
      ac.abort();
      const err = await call.catch((e) => e);
      assert.ok(err instanceof AbortError, String(err));
      assert.equal(err.name, "AbortError");
      const cancel = await fake.waitFor((m) => m.method === "cancel");
      assert.equal(cancel.params.request_id, improve.id);
      assert.equal(await client.ping(), "pong");
      assert.deepEqual(stray, []);
    },
  );
});

test("a signal aborted before the call sends nothing", async () => {
  await withFake(
    (msg, conn) => conn.send(ok(msg, "pong")),
    async (fake, client) => {
      const err = await client.ping({ signal: AbortSignal.abort() }).catch((e) => e);
      assert.ok(err instanceof AbortError);
      await sleep(20);
      assert.equal(fake.received.length, 0);
    },
  );
});

function streamingHandler(pieces, { delayMs = 0 } = {}) {
  return async (msg, conn) => {
    if (msg.method === "cancel") {
      conn.send(ok(msg, { cancelled: true }));
      return;
    }
    if (msg.method !== "improve") return;
    for (const text of pieces) {
      conn.send({ jsonrpc: "2.0", method: "improve.delta", params: { request_id: msg.id, text } });
      if (delayMs) await sleep(delayMs);
      if (conn.sock.destroyed) return;
    }
    conn.send(ok(msg, { ...RESULT, improved_prompt: pieces.join("") }));
  };
}

test("onDelta gets each piece in order, with the text so far, before the result", async () => {
  const pieces = ["You are ", "a careful ", "editor.", " ✓"];
  await withFake(streamingHandler(pieces), async (fake, client) => {
    const seen = [];
    const result = await client.improve({ idea: "edit my essay" }, { onDelta: (t, soFar) => seen.push([t, soFar]) });
    assert.deepEqual(
      seen.map((s) => s[0]),
      pieces,
    );
    assert.equal(seen.at(-1)[1], pieces.join(""));
    assert.equal(result.improved_prompt, pieces.join(""));
    assert.equal(fake.received[0].params.stream, true);
  });
});

test("clientName fills improve's client param unless the call sets one", async () => {
  await withFake(
    (msg, conn) => conn.send(ok(msg, RESULT)),
    async (fake, client) => {
      await client.improve({ idea: "one idea" });
      await client.improve({ idea: "two idea", client: "other" });
      assert.equal(fake.received[0].params.client, "raycast-test");
      assert.equal(fake.received[1].params.client, "other");
      assert.equal(fake.received[0].params.stream, undefined);
    },
    { clientName: "raycast-test" },
  );
});

test("improveStream yields the deltas then the result", async () => {
  const pieces = ["a", "b", "c"];
  await withFake(streamingHandler(pieces, { delayMs: 5 }), async (_fake, client) => {
    const events = [];
    for await (const ev of client.improveStream({ idea: "letters please" })) events.push(ev);
    assert.deepEqual(
      events.map((e) => e.type),
      ["delta", "delta", "delta", "result"],
    );
    assert.deepEqual(
      events.slice(0, 3).map((e) => e.text),
      pieces,
    );
    assert.equal(events[3].result.improved_prompt, "abc");
  });
});

test("leaving improveStream early cancels the request on the daemon", async () => {
  await withFake(streamingHandler(["1", "2", "3", "4", "5"], { delayMs: 30 }), async (fake, client) => {
    for await (const ev of client.improveStream({ idea: "count slowly" })) {
      assert.equal(ev.type, "delta");
      break;
    }
    const improve = fake.received.find((m) => m.method === "improve");
    const cancel = await fake.waitFor((m) => m.method === "cancel");
    assert.equal(cancel.params.request_id, improve.id);
  });
});

test("improveStream rethrows the call's error and honours an outer signal", async () => {
  await withFake(
    (msg, conn) => {
      if (msg.method === "improve" && msg.params.idea === "fail")
        conn.send({ jsonrpc: "2.0", id: msg.id, error: { code: -32000, message: "Ollama is not running", data: { kind: "upstream_unavailable" } } });
    },
    async (_fake, client) => {
      await assert.rejects(
        async () => {
          for await (const _ of client.improveStream({ idea: "fail" }));
        },
        (e) => e instanceof PromptdError && e.kind === "upstream_unavailable",
      );
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 30);
      await assert.rejects(async () => {
        for await (const _ of client.improveStream({ idea: "hang" }, { signal: ac.signal }));
      }, AbortError);
    },
  );
});

test("an onDelta that throws cancels the call and rejects with that error", async () => {
  await withFake(streamingHandler(["x", "y"], { delayMs: 20 }), async (fake, client) => {
    const err = await client
      .improve(
        { idea: "throwing callback" },
        {
          onDelta: () => {
            throw new Error("callback broke");
          },
        },
      )
      .catch((e) => e);
    assert.equal(err.message, "callback broke");
    await fake.waitFor((m) => m.method === "cancel");
  });
});

test("unclaimed notifications are emitted as events", async () => {
  await withFake(
    (msg, conn) => {
      conn.send({ jsonrpc: "2.0", method: "server.notice", params: { hello: 1 } });
      conn.send(ok(msg, "pong"));
    },
    async (_fake, client) => {
      const got = [];
      client.on("notification", (method, params) => got.push([method, params]));
      await client.ping();
      assert.deepEqual(got, [["server.notice", { hello: 1 }]]);
    },
  );
});

test("close() rejects calls in flight and later calls", async () => {
  await withFake(
    () => {},
    async (fake, client) => {
      const call = client.improve({ idea: "never mind" });
      await fake.waitFor((m) => m.method === "improve");
      client.close();
      await assert.rejects(call, ConnectionClosedError);
      await assert.rejects(client.ping(), ConnectionClosedError);
    },
  );
});

test("no socket file: DaemonNotRunningError with the path and advice", async (t) => {
  const home = tempHome();
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const path = join(home, "nothing.sock");
  const client = new PromptdClient({ socketPath: path });
  const err = await client.ping().catch((e) => e);
  assert.ok(err instanceof DaemonNotRunningError, String(err));
  assert.equal(err.kind, "not_running");
  assert.equal(err.socketPath, path);
  assert.match(err.message, /promptd is not running/);
  assert.match(err.advice, /Start it with `promptd --socket /);
  await assert.rejects(connect({ socketPath: path }), DaemonNotRunningError);
});

test("a stale socket file (nothing listening) or a plain file: DaemonNotRunningError", async () => {
  const fake = await new FakeDaemon(() => {}).start();
  const path = fake.socketPath;
  // Closing the server leaves no listener; recreate a stale file in its place.
  await new Promise((r) => fake.server.close(r));
  writeFileSync(path, "");
  const client = new PromptdClient({ socketPath: path });
  await assert.rejects(client.ping(), DaemonNotRunningError);
  rmSync(fake.home, { recursive: true, force: true });
});

test("after a lost connection the client reconnects once the daemon is back", async () => {
  const fake = await new FakeDaemon((msg, conn) => conn.send(ok(msg, "pong"))).start();
  const client = new PromptdClient({ socketPath: fake.socketPath, reconnectWindowMs: 2000 });
  try {
    assert.equal(await client.ping(), "pong");
    // The daemon goes away ...
    fake.dropClients();
    await new Promise((r) => fake.server.close(r));
    await sleep(20);
    assert.equal(client.connected, false);
    // ... and comes back 200 ms later while a call is waiting to connect.
    const pending = client.ping();
    await sleep(200);
    await new Promise((r) => fake.server.listen(fake.socketPath, r));
    assert.equal(await pending, "pong");
  } finally {
    client.close();
    await fake.stop();
  }
});
