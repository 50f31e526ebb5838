// The built no-view command (dist/improve-selected-text.js, from `ray build`)
// run under a stand-in for @raycast/api: every failure must end as a toast,
// never as an unhandled rejection, and a result is pasted or copied with a HUD.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const EXT = resolve(HERE, "..", "..");
const BUNDLE = join(EXT, "dist", "improve-selected-text.js");
const HELPERS = resolve(EXT, "..", "node", "test", "helpers.js");

interface FakeToast {
  style: string;
  title: string;
  message?: string;
  primaryAction?: { title: string; onAction: () => void };
  hide(): Promise<void>;
}

/** What the command did through the stand-in API. */
const calls = {
  toasts: [] as FakeToast[],
  huds: [] as string[],
  pasted: [] as string[],
  copied: [] as string[],
};
let selection: string | Error = "";
let prefs: Record<string, string> = {};

const raycastStandIn = {
  Toast: { Style: { Animated: "animated", Success: "success", Failure: "failure" } },
  getPreferenceValues: () => prefs,
  getSelectedText: async () => {
    if (selection instanceof Error) throw selection;
    return selection;
  },
  showToast: async (options: Omit<FakeToast, "hide">) => {
    const toast: FakeToast = { ...options, hide: async () => undefined };
    calls.toasts.push(toast);
    return toast;
  },
  showHUD: async (text: string) => {
    calls.huds.push(text);
  },
  Clipboard: {
    copy: async (text: string) => {
      calls.copied.push(text);
    },
    paste: async (text: string) => {
      calls.pasted.push(text);
    },
  },
};

type Command = () => Promise<void>;
let command: Command | undefined;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

function reset(newPrefs: Record<string, string>, newSelection: string | Error) {
  prefs = newPrefs;
  selection = newSelection;
  calls.toasts = [];
  calls.huds = [];
  calls.pasted = [];
  calls.copied = [];
}

async function settle() {
  await new Promise((r) => setTimeout(r, 20));
}

describe(
  "Improve Selected Text (built bundle)",
  { skip: existsSync(BUNDLE) ? false : `${BUNDLE} not built (npm run build)` },
  () => {
    let home: string;

    before(() => {
      type Loader = (request: string, parent: unknown, isMain: boolean) => unknown;
      const mod = Module as unknown as { _load: Loader };
      const original = mod._load;
      mod._load = function (request: string, parent: unknown, isMain: boolean) {
        if (request === "@raycast/api") return raycastStandIn;
        return original.call(this, request, parent, isMain);
      };
      const required = createRequire(import.meta.url)(BUNDLE) as { default: Command };
      command = required.default;
      process.on("unhandledRejection", onUnhandled);
      home = mkdtempSync("/tmp/pdr-");
    });

    after(() => {
      process.off("unhandledRejection", onUnhandled);
      rmSync(home, { recursive: true, force: true });
    });

    test("no selection: a failure toast", async () => {
      reset({}, new Error("Unable to get selected text"));
      await command?.();
      assert.equal(calls.toasts.length, 1);
      assert.equal(calls.toasts[0]?.style, "failure");
      assert.equal(calls.toasts[0]?.title, "No text selected");
    });

    test("a selection shorter than 5 characters: a failure toast, nothing sent", async () => {
      reset({ socketPath: join(home, "none.sock") }, "hey");
      await command?.();
      assert.equal(calls.toasts[0]?.style, "failure");
      assert.match(calls.toasts[0]?.message ?? "", /at least 5/);
    });

    test("daemon not running: the toast says so and offers the start command", async () => {
      const socketPath = join(home, "none.sock");
      reset({ socketPath }, "email my landlord about the broken heater");
      await command?.();
      await settle();
      assert.equal(calls.toasts.length, 1, "the animated toast is turned into the failure");
      const toast = calls.toasts[0];
      assert.equal(toast?.style, "failure");
      assert.equal(toast?.title, "promptd is not running");
      assert.match(toast?.message ?? "", new RegExp(`promptd --socket ${socketPath.replace(/[.]/g, "\\.")}`));
      assert.equal(toast?.primaryAction?.title, "Copy Start Command");
      toast?.primaryAction?.onAction();
      await settle();
      assert.deepEqual(calls.copied, [`promptd --socket ${socketPath}`]);
      assert.deepEqual(calls.pasted, []);
      assert.deepEqual(unhandled, []);
    });

    describe("against the real daemon (builtin provider)", () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      let daemon: any;
      let skip: string | undefined;

      before(async () => {
        const helpers = await import(pathToFileURL(HELPERS).href);
        skip = helpers.daemonMissing();
        if (skip) return;
        daemon = await new helpers.Daemon().start();
      });

      after(async () => {
        await daemon?.cleanup();
      });

      for (const action of ["paste", "copy"] as const) {
        test(`the result is ${action === "paste" ? "pasted" : "copied"} with a HUD`, async (t) => {
          if (skip) return t.skip(skip);
          reset(
            { socketPath: daemon.socketPath, selectedTextAction: action },
            "email my landlord about the broken heater",
          );
          await command?.();
          await settle();
          const failure = calls.toasts.find((x) => x.style === "failure");
          if (failure?.title === "Update promptd") return t.skip("the daemon does not implement improve yet");
          assert.equal(failure, undefined, failure && `${failure.title}: ${failure.message}`);
          const out = action === "paste" ? calls.pasted : calls.copied;
          assert.equal(out.length, 1);
          assert.ok((out[0] ?? "").length > 0);
          assert.equal(calls.huds.length, 1);
          assert.match(
            calls.huds[0] ?? "",
            action === "paste" ? /^Pasted the improved prompt/ : /^Copied the improved prompt/,
          );
          assert.deepEqual(unhandled, []);
        });
      }
    });
  },
);
