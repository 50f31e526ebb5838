// Connection life: a daemon that is not running, the default socket path
// shared with the daemon, a restart mid-session, a call in flight when the
// daemon dies.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";

import { ConnectionClosedError, DaemonNotRunningError, PromptdClient, connect } from "../dist/index.js";
import { Daemon, FakeLlm, daemonMissing, fakeLlmMissing, sleep, tempHome } from "./helpers.js";

describe("daemon not running", () => {
  test("a call rejects at once with DaemonNotRunningError and the advice", async () => {
    const home = tempHome();
    try {
      const socketPath = join(home, "s", "promptd.sock");
      const client = new PromptdClient({ socketPath });
      const started = Date.now();
      const err = await client.ping().catch((e) => e);
      assert.ok(err instanceof DaemonNotRunningError, String(err));
      assert.ok(Date.now() - started < 1000, "no waiting on a first connection");
      assert.equal(err.socketPath, socketPath);
      assert.match(err.message, /promptd is not running/);
      assert.match(err.message, /Start it with `promptd --socket /);
      await assert.rejects(connect({ socketPath }), DaemonNotRunningError);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("real daemon: connection life", { skip: daemonMissing() }, () => {
  const cleanups = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test("client and daemon resolve the same default socket from XDG_RUNTIME_DIR", async () => {
    const daemon = new Daemon({ args: [] });
    cleanups.push(() => daemon.cleanup());
    daemon.socketPath = join(daemon.env.XDG_RUNTIME_DIR, "promptd", "promptd.sock");
    await daemon.start();
    const client = new PromptdClient({ env: { XDG_RUNTIME_DIR: daemon.env.XDG_RUNTIME_DIR } });
    try {
      assert.equal(client.socketPath, daemon.socketPath);
      assert.equal(await client.ping(), "pong");
      assert.equal((await client.health()).socket, client.socketPath);
    } finally {
      client.close();
    }
  });

  test("the client reconnects transparently after the daemon restarts", async () => {
    const daemon = await new Daemon().start();
    cleanups.push(() => daemon.cleanup());
    const client = new PromptdClient({ socketPath: daemon.socketPath });
    const events = [];
    client.on("connect", () => events.push("connect"));
    client.on("disconnect", () => events.push("disconnect"));
    try {
      assert.equal(await client.ping(), "pong");
      const uptimeBefore = await client.health();
      await daemon.stop();
      for (let i = 0; i < 100 && client.connected; i++) await sleep(10);
      assert.equal(client.connected, false);
      await daemon.start();
      assert.equal(await client.ping(), "pong");
      const v = await client.version();
      assert.equal(v.protocol, 1);
      assert.ok((await client.health()).requests.served <= uptimeBefore.requests.served + 5, "a new daemon");
      assert.deepEqual(events, ["connect", "disconnect", "connect"]);
    } finally {
      client.close();
    }
  });

  test("a call made while the daemon restarts waits for it (reconnect window)", async () => {
    const daemon = await new Daemon().start();
    cleanups.push(() => daemon.cleanup());
    const client = new PromptdClient({ socketPath: daemon.socketPath, reconnectWindowMs: 5000 });
    try {
      assert.equal(await client.ping(), "pong");
      await daemon.stop();
      for (let i = 0; i < 100 && client.connected; i++) await sleep(10);
      const call = client.ping();
      await sleep(300);
      await daemon.start();
      assert.equal(await call, "pong");
    } finally {
      client.close();
    }
  });

  test("after the reconnect window a stopped daemon gives DaemonNotRunningError", async () => {
    const daemon = await new Daemon().start();
    cleanups.push(() => daemon.cleanup());
    const client = new PromptdClient({ socketPath: daemon.socketPath, reconnectWindowMs: 200 });
    try {
      assert.equal(await client.ping(), "pong");
      await daemon.stop();
      for (let i = 0; i < 100 && client.connected; i++) await sleep(10);
      const err = await client.ping().catch((e) => e);
      assert.ok(err instanceof DaemonNotRunningError, String(err));
    } finally {
      client.close();
    }
  });

  test(
    "an improve in flight when the daemon dies rejects with ConnectionClosedError",
    { skip: fakeLlmMissing() },
    async (t) => {
      const fake = await new FakeLlm("ollama").start();
      cleanups.push(() => fake.stop());
      await fake.configure({ fault: "no_headers" });
      const daemon = await new Daemon({ env: { LLM_PROVIDER: "ollama", LLM_BASE_URL: fake.url } }).start();
      cleanups.push(() => daemon.cleanup());
      const client = new PromptdClient({ socketPath: daemon.socketPath, reconnectWindowMs: 5000 });
      try {
        const call = client.improve({ idea: "an idea that never gets an answer", record: false });
        const early = await Promise.race([call.catch((e) => e), sleep(300).then(() => "pending")]);
        if (early?.kind === "method_not_found") return t.skip("the daemon does not implement improve yet");
        assert.equal(early, "pending");
        await daemon.stop("SIGKILL");
        const err = await call.catch((e) => e);
        assert.ok(err instanceof ConnectionClosedError, String(err));
        assert.match(err.message, /closed while improve/);
        // The next call goes to the restarted daemon.
        await daemon.start();
        assert.equal(await client.ping(), "pong");
      } finally {
        client.close();
      }
    },
  );
});
