// Raycast's own ESLint configuration (what `ray lint` applies), flat config.
const { defineConfig } = require("eslint/config");
const raycastConfig = require("@raycast/eslint-config");

module.exports = defineConfig([
  { ignores: ["dist/", "build-test/", "node_modules/", "raycast-env.d.ts"] },
  ...raycastConfig,
]);
