// Marks a compiled test folder as ES modules (the extension's own
// package.json must stay CommonJS for Raycast's bundle).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2] ?? "build-test";
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
