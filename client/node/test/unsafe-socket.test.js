// Issue 11: the library checks, before connecting, that nobody else can
// have put the socket where it looks (Node has no SO_PEERCRED): the socket
// and its directory must be the user's own, the directory a real one,
// closed to group and others. A listener in a refused place must see no
// connection at all.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, chownSync, lchownSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { once } from "node:events";
import { join } from "node:path";

import { PromptdClient, UnsafeSocketError, isPromptdClientError, socketSafetyProblem } from "../dist/index.js";
import { tempHome } from "./helpers.js";

const NOBODY = 65534;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** A listener at path that counts the connections it gets. */
async function listener(path) {
  const server = createServer((sock) => {
    server.connections += 1;
    sock.destroy();
  });
  server.connections = 0;
  server.listen(path);
  await once(server, "listening");
  return server;
}

/** Expects a ping through path to be refused with kind unsafe_socket before any connection. */
async function assertRefused(path, server, pattern) {
  const client = new PromptdClient({ socketPath: path });
  try {
    await assert.rejects(client.ping(), (err) => {
      assert.ok(err instanceof UnsafeSocketError, `${err}`);
      assert.equal(err.kind, "unsafe_socket");
      assert.equal(err.socketPath, path);
      assert.ok(isPromptdClientError(err));
      assert.match(err.message, pattern);
      assert.match(err.message, /nothing was sent/);
      return true;
    });
  } finally {
    client.close();
  }
  assert.equal(server.connections, 0, "the client connected anyway");
}

async function withHome(fn) {
  const home = tempHome("pdu-");
  const servers = [];
  try {
    await fn(home, servers);
  } finally {
    for (const s of servers) await new Promise((r) => s.close(r));
    rmSync(home, { recursive: true, force: true });
  }
}

test("a socket directory open to other users is refused before connecting", async () => {
  await withHome(async (home, servers) => {
    const dir = join(home, "s");
    mkdirSync(dir, { mode: 0o700 });
    const path = join(dir, "p.sock");
    const server = await listener(path);
    servers.push(server);
    chmodSync(dir, 0o777);
    await assertRefused(path, server, /open to other users \(mode 0777\): run chmod 700/);
    chmodSync(dir, 0o750);
    await assertRefused(path, server, /mode 0750/);
    chmodSync(dir, 0o700);
    assert.equal(await socketSafetyProblem(path), undefined);
  });
});

test("a symbolic link as the socket directory is refused", async () => {
  await withHome(async (home, servers) => {
    const real = join(home, "real");
    mkdirSync(real, { mode: 0o700 });
    const server = await listener(join(real, "p.sock"));
    servers.push(server);
    const link = join(home, "link");
    symlinkSync(real, link);
    await assertRefused(join(link, "p.sock"), server, /symbolic link/);
  });
});

test("a socket or directory owned by another user is refused", { skip: !isRoot && "needs root to chown" }, async () => {
  await withHome(async (home, servers) => {
    const dir = join(home, "s");
    mkdirSync(dir, { mode: 0o700 });
    const path = join(dir, "p.sock");
    const server = await listener(path);
    servers.push(server);
    lchownSync(path, NOBODY, NOBODY);
    await assertRefused(path, server, new RegExp(`the socket belongs to another user \\(uid ${NOBODY}\\)`));
    chownSync(dir, NOBODY, NOBODY);
    await assertRefused(path, server, new RegExp(`directory .* belongs to another user \\(uid ${NOBODY}\\)`));
  });
});

test("a missing socket is still 'not running', not unsafe", async () => {
  await withHome(async (home) => {
    const client = new PromptdClient({ socketPath: join(home, "none", "p.sock") });
    try {
      await assert.rejects(client.ping(), (err) => err.kind === "not_running");
    } finally {
      client.close();
    }
  });
});
