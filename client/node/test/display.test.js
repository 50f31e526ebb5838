// Control characters relayed from a model or a backend (issue 11 item 3):
// the library hands data over exactly, offers sanitizeForDisplay (visible
// escapes, as promptctl prints them) and stripControls (for a UI), and its
// error messages are safe to print. No promptd binary needed.
import { test } from "node:test";
import assert from "node:assert/strict";

import { PromptdClient, PromptdError, ProtocolError, sanitizeForDisplay, stripControls } from "../dist/index.js";
import { FakeDaemon } from "./helpers.js";

// A window title, a clear-screen, a hyperlink, an 8-bit CSI, NUL, backspace,
// DEL and a carriage return; then characters that must stay as they are.
const EVIL =
  "A\x1b]0;pwned\x07B \x1b[2J C\u009b31m D\x00E \x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\ F\x08\x7f\rG";
const KEEP = "line 1\n\tcafé 🚀 \u00a0 C:\\menus « »";

test("sanitizeForDisplay shows controls as promptctl does", () => {
  assert.equal(
    sanitizeForDisplay(EVIL),
    "A\\x1b]0;pwned\\x07B \\x1b[2J C\\u009b31m D\\x00E \\x1b]8;;http://evil.example/\\x1b\\link" +
      "\\x1b]8;;\\x1b\\ F\\x08\\x7f\\x0dG",
  );
  assert.equal(sanitizeForDisplay(KEEP), KEEP);
  assert.equal(sanitizeForDisplay("\u0080\u009f\u00a0"), "\\u0080\\u009f\u00a0");
  assert.doesNotMatch(sanitizeForDisplay(EVIL), /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
});

test("stripControls removes them and keeps newline, tab and the rest", () => {
  assert.equal(stripControls(EVIL), "A]0;pwnedB [2J C31m DE ]8;;http://evil.example/\\link]8;;\\ FG");
  assert.equal(stripControls(KEEP), KEEP);
});

async function withFake(handler, fn) {
  const fake = await new FakeDaemon(handler).start();
  const client = new PromptdClient({ socketPath: fake.socketPath });
  try {
    await fn(client);
  } finally {
    client.close();
    await fake.stop();
  }
}

test("a daemon error's message is safe to print; the exact text stays in daemonMessage and data", async () => {
  const message = `Ollama answered HTTP 400: ${EVIL}`;
  await withFake(
    (msg, conn) =>
      conn.send({
        jsonrpc: "2.0",
        id: msg.id,
        error: { code: -32002, message, data: { kind: "upstream_error", http_status: 400, detail: EVIL } },
      }),
    async (client) => {
      const err = await client.improve({ idea: "write a limerick" }).catch((e) => e);
      assert.ok(err instanceof PromptdError);
      assert.equal(err.message, sanitizeForDisplay(message));
      assert.doesNotMatch(err.message, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
      assert.equal(err.daemonMessage, message);
      assert.equal(err.data.detail, EVIL);
      assert.doesNotMatch(String(err), /\x1b/);
    },
  );
});

test("results are handed over exactly as the daemon sent them", async () => {
  await withFake(
    (msg, conn) => conn.send({ jsonrpc: "2.0", id: msg.id, result: { provider: "ollama", models: [EVIL] } }),
    async (client) => {
      assert.deepEqual((await client.models()).models, [EVIL]);
    },
  );
});

test("a protocol error quoting a hostile line is safe to print", async () => {
  await withFake(
    (_msg, conn) => conn.raw(`not json \x1b]0;pwned\x07\u009b2J\n`),
    async (client) => {
      const err = await client.ping().catch((e) => e);
      assert.ok(err instanceof ProtocolError, String(err));
      assert.doesNotMatch(err.message, /[\x1b\x07\u009b]/);
      assert.match(err.message, /\\x1b\]0;pwned\\x07\\u009b2J/);
      assert.equal(err.line, "not json \x1b]0;pwned\x07\u009b2J");
    },
  );
});
