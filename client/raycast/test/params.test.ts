// Form values and preferences to improve params; the form's checks; history requests.
import assert from "node:assert/strict";
import { test } from "node:test";

import { buildImproveParams, charCount, historyRequest, validateContext, validateIdea } from "../src/lib/params.js";

test("the idea must be 5..20000 characters after trimming, counted in code points", () => {
  assert.match(validateIdea("") ?? "", /at least 5/);
  assert.match(validateIdea("   abcd   ") ?? "", /at least 5/);
  assert.equal(validateIdea("  abcde "), undefined);
  assert.equal(validateIdea("😀😀😀😀😀"), undefined);
  assert.equal(charCount("😀"), 1);
  assert.equal(validateIdea("x".repeat(20000)), undefined);
  assert.match(validateIdea("x".repeat(20001)) ?? "", /At most 20000/);
  assert.match(validateIdea(undefined) ?? "", /at least/);
});

test("context is at most 100000 characters", () => {
  assert.equal(validateContext(undefined), undefined);
  assert.equal(validateContext("c".repeat(100000)), undefined);
  assert.match(validateContext("c".repeat(100001)) ?? "", /100000/);
});

test("daemon defaults are left out; form values win over preferences", () => {
  assert.deepEqual(buildImproveParams({ idea: "  my idea here  " }), { idea: "my idea here", client: "raycast" });
  assert.deepEqual(
    buildImproveParams(
      { idea: "my idea", context: " ctx ", provider: "daemon", model: "", mode: "daemon" },
      { defaultProvider: "ollama", model: "llama3.2:3b", mode: "zero-shot" },
    ),
    { idea: "my idea", client: "raycast", context: "ctx", provider: "ollama", model: "llama3.2:3b", mode: "zero-shot" },
  );
  assert.deepEqual(
    buildImproveParams(
      { idea: "my idea", provider: "builtin", model: "other", mode: "few-shot" },
      { defaultProvider: "ollama", model: "llama3.2:3b", mode: "zero-shot" },
    ),
    { idea: "my idea", client: "raycast", provider: "builtin", model: "other", mode: "few-shot" },
  );
});

test("unknown providers and modes are dropped; parent_id is passed for refine", () => {
  const p = buildImproveParams({ idea: "my idea", provider: "bogus", mode: "many" }, {}, { parentId: 9 });
  assert.deepEqual(p, { idea: "my idea", client: "raycast", parent_id: 9 });
  assert.equal(buildImproveParams({ idea: "my idea" }, {}, { parentId: null }).parent_id, undefined);
});

test("an empty search bar lists recent prompts, text searches", () => {
  assert.deepEqual(historyRequest(""), { method: "history.list", params: { limit: 50 } });
  assert.deepEqual(historyRequest("   "), { method: "history.list", params: { limit: 50 } });
  assert.deepEqual(historyRequest(" heater ", 10), {
    method: "history.search",
    params: { query: "heater", limit: 10 },
  });
});
