// A node:test reporter that writes one JSON object per finished test or
// suite, for tests/integration/test_node.py (which maps each to a unittest).
// Usage: node --test --test-reporter=./test/json-reporter.mjs test/*.test.js
import { inspect } from "node:util";

function describeError(error) {
  if (!error) return undefined;
  const inner = error.cause ?? error;
  return inspect(inner, { depth: 4, breakLength: 100 }).slice(0, 4000);
}

export default async function* jsonReporter(source) {
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const d = event.data;
    yield `${JSON.stringify({
      status: event.type === "test:pass" ? "pass" : "fail",
      name: d.name,
      nesting: d.nesting,
      file: d.file ?? null,
      suite: d.details?.type === "suite",
      skip: d.skip === undefined || d.skip === false ? null : d.skip === true ? "" : String(d.skip),
      todo: d.todo === undefined || d.todo === false ? null : String(d.todo),
      duration_ms: d.details?.duration_ms ?? null,
      error: event.type === "test:fail" ? describeError(d.details?.error) : undefined,
    })}\n`;
  }
}
