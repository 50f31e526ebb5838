// Socket path resolution and the "not running" advice (no daemon needed).
import { test } from "node:test";
import assert from "node:assert/strict";

import { resolveSocketPath, startAdvice } from "../dist/index.js";

test("an explicit path wins over everything", () => {
  const env = { PROMPTD_SOCKET: "/env.sock", XDG_RUNTIME_DIR: "/run/user/7" };
  assert.equal(resolveSocketPath({ socketPath: "/x.sock", env, uid: 7 }), "/x.sock");
});

test("PROMPTD_SOCKET wins over XDG_RUNTIME_DIR", () => {
  const env = { PROMPTD_SOCKET: "/env.sock", XDG_RUNTIME_DIR: "/run/user/7" };
  assert.equal(resolveSocketPath({ env, uid: 7 }), "/env.sock");
});

test("XDG_RUNTIME_DIR gives <dir>/promptd/promptd.sock", () => {
  assert.equal(resolveSocketPath({ env: { XDG_RUNTIME_DIR: "/run/user/7" }, uid: 7 }), "/run/user/7/promptd/promptd.sock");
  assert.equal(resolveSocketPath({ env: { XDG_RUNTIME_DIR: "/run/user/7/" }, uid: 7 }), "/run/user/7/promptd/promptd.sock");
});

test("empty values count as unset", () => {
  const env = { PROMPTD_SOCKET: "", XDG_RUNTIME_DIR: "" };
  assert.equal(resolveSocketPath({ socketPath: "", env, uid: 1000, platform: "linux" }), "/tmp/promptd-1000/promptd.sock");
});

test("Linux falls back to /tmp/promptd-$UID, ignoring TMPDIR", () => {
  assert.equal(resolveSocketPath({ env: { TMPDIR: "/var/tmp" }, uid: 1000, platform: "linux" }), "/tmp/promptd-1000/promptd.sock");
});

test("macOS falls back to $TMPDIR/promptd-$UID, else /tmp", () => {
  assert.equal(
    resolveSocketPath({ env: { TMPDIR: "/var/folders/ab/T/" }, uid: 501, platform: "darwin" }),
    "/var/folders/ab/T/promptd-501/promptd.sock",
  );
  assert.equal(resolveSocketPath({ env: {}, uid: 501, platform: "darwin" }), "/tmp/promptd-501/promptd.sock");
});

test("the default uses this process's environment and uid", () => {
  const saved = { ...process.env };
  try {
    delete process.env.PROMPTD_SOCKET;
    process.env.XDG_RUNTIME_DIR = "/run/user/test";
    assert.equal(resolveSocketPath(), "/run/user/test/promptd/promptd.sock");
    process.env.PROMPTD_SOCKET = "/from/env.sock";
    assert.equal(resolveSocketPath(), "/from/env.sock");
  } finally {
    process.env = saved;
  }
});

test("the advice names a non-default socket and how to start the service", () => {
  const linux = startAdvice("/tmp/custom.sock", "linux");
  assert.match(linux, /promptd --socket \/tmp\/custom\.sock/);
  assert.match(linux, /systemctl --user start promptd/);
  const mac = startAdvice("/tmp/custom.sock", "darwin");
  assert.match(mac, /launchctl/);
  const saved = process.env.PROMPTD_SOCKET;
  process.env.PROMPTD_SOCKET = "/tmp/default.sock";
  try {
    assert.match(startAdvice("/tmp/default.sock", "linux"), /Start it with `promptd`,/);
  } finally {
    if (saved === undefined) delete process.env.PROMPTD_SOCKET;
    else process.env.PROMPTD_SOCKET = saved;
  }
});
