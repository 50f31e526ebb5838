// history.*, stats, cleanup and db.* through the real promptd (builtin
// provider). Each test is skipped while the daemon lacks its method.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";

import { PromptdClient, PromptdError } from "../dist/index.js";
import { Daemon, daemonMissing } from "./helpers.js";

describe("real daemon: history, stats, cleanup, db", { skip: daemonMissing() }, () => {
  let daemon;
  let client;
  let ready = false;
  const made = [];

  before(async () => {
    daemon = await new Daemon().start();
    client = new PromptdClient({ socketPath: daemon.socketPath, clientName: "node-test" });
    const probe = await client.history.list({ limit: 1 }).catch((e) => e);
    const improve = await client.improve({ idea: "x" }).catch((e) => e);
    ready = probe?.kind !== "method_not_found" && improve?.kind !== "method_not_found";
    if (!ready) return;
    const ideas = [
      "plan a zanzibar holiday for two",
      "write a haiku about the quokka",
      "summarise the meeting notes from tuesday",
    ];
    for (const idea of ideas) made.push(await client.improve({ idea, context: `ctx for ${idea}` }));
  });

  after(async () => {
    client?.close();
    await daemon?.cleanup();
  });

  const need = (t, method) => {
    if (!ready) t.skip(`the daemon does not implement improve and history yet (${method})`);
    return ready;
  };

  /** Calls fn; skips the test when its method is not there yet. */
  async function orSkip(t, method, fn) {
    try {
      return { value: await fn() };
    } catch (err) {
      if (err?.kind === "method_not_found") {
        t.skip(`the daemon does not implement ${method} yet`);
        return undefined;
      }
      throw err;
    }
  }

  test("improve records a row that history.get returns at once", async (t) => {
    if (!need(t, "history.get")) return;
    const r = made[0];
    assert.ok(Number.isInteger(r.id), `id ${r.id}`);
    const row = await client.history.get(r.id);
    assert.equal(row.id, r.id);
    assert.equal(row.original_idea, "plan a zanzibar holiday for two");
    assert.equal(row.context, "ctx for plan a zanzibar holiday for two");
    assert.equal(row.client, "node-test");
    assert.equal(row.improved_prompt, r.improved_prompt);
    assert.deepEqual(row.guardrails, r.guardrails);
    assert.equal(row.provider, "builtin");
    assert.match(row.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
  });

  test("history.get of a missing id rejects with not_found -32004", async (t) => {
    if (!need(t, "history.get")) return;
    const err = await client.history.get(987654321).catch((e) => e);
    assert.ok(err instanceof PromptdError, String(err));
    assert.equal(err.code, -32004);
    assert.equal(err.kind, "not_found");
  });

  test("history.list pages newest first with a total", async (t) => {
    if (!need(t, "history.list")) return;
    const all = await client.history.list();
    assert.ok(all.total >= 3);
    const ids = all.items.map((r) => r.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => b - a), "newest first");
    const page = await client.history.list({ limit: 1, offset: 1 });
    assert.equal(page.items.length, 1);
    assert.equal(page.items[0].id, all.items[1].id);
    assert.equal(page.total, all.total);
    const byProvider = await client.history.list({ provider: "builtin" });
    assert.ok(byProvider.items.every((r) => r.provider === "builtin"));
    const none = await client.history.list({ provider: "gemini" });
    assert.equal(none.total, 0);
  });

  test("history.list limit is 1..500", async (t) => {
    if (!need(t, "history.list")) return;
    for (const limit of [0, 501]) {
      const err = await client.history.list({ limit }).catch((e) => e);
      assert.ok(err instanceof PromptdError, `limit ${limit}: ${err}`);
      assert.equal(err.kind, "invalid_params");
      assert.equal(err.field, "limit");
    }
    assert.ok((await client.history.list({ limit: 500 })).items.length >= 3);
  });

  test("history.search finds a word, with a snippet; odd queries are not errors", async (t) => {
    if (!need(t, "history.search")) return;
    const got = await orSkip(t, "history.search", () => client.history.search("quokka"));
    if (!got) return;
    const found = got.value;
    assert.ok(found.items.length >= 1);
    assert.equal(found.items[0].original_idea, "write a haiku about the quokka");
    assert.equal(typeof found.items[0].snippet, "string");
    for (const q of ['"unbalanced', "AND", "-hyphen-", "NEAR(", "*", "quokka OR"]) {
      const r = await client.history.search({ query: q, limit: 5 });
      assert.ok(Array.isArray(r.items), q);
    }
  });

  test("improve with parent_id refines a row", async (t) => {
    if (!need(t, "parent_id")) return;
    const parent = made[1];
    const child = await client.improve({ idea: "make it rhyme more", parent_id: parent.id });
    assert.equal(child.parent_id, parent.id);
    made.push(child);
  });

  test("stats sums the rows by provider", async (t) => {
    if (!need(t, "stats")) return;
    const got = await orSkip(t, "stats", () => client.stats());
    if (!got) return;
    const s = got.value;
    assert.ok(s.total_count >= 3);
    assert.ok(s.by_provider.builtin.count >= 3);
    for (const k of ["by_backend", "by_provider", "by_model"]) assert.equal(typeof s[k], "object", k);
    assert.equal(typeof s.last_24h, "number");
    const future = await client.stats({ since: "2999-01-01" });
    assert.equal(future.total_count, 0);
  });

  test("db.check reports ok", async (t) => {
    if (!need(t, "db.check")) return;
    const got = await orSkip(t, "db.check", () => client.db.check());
    if (!got) return;
    assert.equal(got.value.ok, true);
    assert.equal(typeof got.value.detail, "string");
  });

  test("db.backup writes a 0600 copy that db.restore loads back", async (t) => {
    if (!need(t, "db.backup")) return;
    const path = join(daemon.home, "backup.db");
    const got = await orSkip(t, "db.backup", () => client.db.backup(path));
    if (!got) return;
    const b = got.value;
    assert.equal(b.path, path);
    assert.ok(b.bytes > 0);
    const total = (await client.history.list({ limit: 1 })).total;
    assert.equal(b.rows, total);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    // Change the live history, then restore the copy.
    await client.improve({ idea: "a row made after the backup" });
    const restored = await orSkip(t, "db.restore", () => client.db.restore(path));
    if (!restored) return;
    assert.equal(restored.value.rows, b.rows);
    assert.equal((await client.history.list({ limit: 1 })).total, b.rows);
  });

  test("cleanup with a long horizon deletes nothing", async (t) => {
    if (!need(t, "cleanup")) return;
    const got = await orSkip(t, "cleanup", () => client.cleanup(3650));
    if (!got) return;
    assert.deepEqual(got.value, { deleted: 0 });
    const err = await client.cleanup(-1).catch((e) => e);
    assert.equal(err.kind, "invalid_params");
  });

  test("history.delete removes one row, then everything", async (t) => {
    if (!need(t, "history.delete")) return;
    const id = made[2].id;
    const got = await orSkip(t, "history.delete", () => client.history.delete({ id }));
    if (!got) return;
    assert.deepEqual(got.value, { deleted: 1 });
    await assert.rejects(client.history.get(id), (e) => e.kind === "not_found");
    await assert.rejects(client.history.delete({ id }), (e) => e.kind === "not_found");
    const all = await client.history.delete({ all: true });
    assert.ok(all.deleted >= 1);
    assert.equal((await client.history.list()).total, 0);
    assert.equal((await client.history.search("zanzibar")).items.length, 0, "deleted rows leave the index");
  });
});
