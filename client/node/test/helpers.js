// Test helpers: start the real promptd (PROMPTD_BUILD, default <repo>/build)
// on a private socket, a fake LLM server (tests/fakes/fake_llm.py), and
// in-process fake daemons for the malformed-response tests.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, openSync, closeSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const BUILD = process.env.PROMPTD_BUILD ? resolve(process.env.PROMPTD_BUILD) : join(REPO_ROOT, "build");
export const PROMPTD = join(BUILD, "promptd");
export const FAKE_LLM = join(REPO_ROOT, "tests", "fakes", "fake_llm.py");

/** Why daemon tests cannot run, or undefined when they can. */
export function daemonMissing() {
  return existsSync(PROMPTD) ? undefined : `${PROMPTD} is not built (run make, or set PROMPTD_BUILD)`;
}

export function fakeLlmMissing() {
  return existsSync(FAKE_LLM) ? undefined : `${FAKE_LLM} does not exist yet`;
}

/** A private directory under /tmp (short: socket paths are limited to 104 bytes). */
export function tempHome(prefix = "pdn-") {
  return mkdtempSync(join("/tmp", prefix));
}

function baseEnv(home) {
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    XDG_RUNTIME_DIR: join(home, "run"),
    XDG_CONFIG_HOME: join(home, "config"),
    XDG_DATA_HOME: join(home, "data"),
    ASAN_OPTIONS: "detect_leaks=1:abort_on_error=0:exitcode=99",
  };
  for (const d of ["run", "config", "data"]) mkdirSync(join(home, d), { recursive: true, mode: 0o700 });
  return env;
}

/** Connects with a raw socket and sends ping; true when "pong" comes back. */
export function rawPing(socketPath, timeoutMs = 1000) {
  return new Promise((resolvePing) => {
    const sock = createConnection({ path: socketPath });
    let buf = "";
    const done = (ok) => {
      clearTimeout(timer);
      sock.destroy();
      resolvePing(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on("error", () => done(false));
    sock.on("connect", () => sock.write('{"jsonrpc":"2.0","id":1,"method":"ping"}\n'));
    sock.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\n")) done(buf.includes('"pong"'));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * One promptd process on a private socket. env entries are added to a clean
 * environment (LLM_PROVIDER defaults to builtin).
 */
export class Daemon {
  constructor({ env = {}, home, args } = {}) {
    this.ownHome = home === undefined;
    this.args = args;
    this.home = home ?? tempHome();
    this.env = { ...baseEnv(this.home), LLM_PROVIDER: "builtin", ...env };
    this.socketPath = join(this.home, "s", "promptd.sock");
    this.logPath = join(this.home, "promptd.log");
    this.proc = undefined;
  }

  async start(timeoutMs = 15000) {
    const fd = openSync(this.logPath, "a");
    this.proc = spawn(PROMPTD, this.args ?? ["--socket", this.socketPath], {
      env: this.env,
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    this.exited = once(this.proc, "exit");
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`promptd exited with ${this.proc.exitCode}:\n${this.log()}`);
      if (await rawPing(this.socketPath, 500)) return this;
      await sleep(20);
    }
    throw new Error(`promptd did not answer ping within ${timeoutMs} ms:\n${this.log()}`);
  }

  log() {
    try {
      return readFileSync(this.logPath, "utf8");
    } catch {
      return "";
    }
  }

  /** Stops the process (SIGTERM by default); resolves with its exit code. */
  async stop(signal = "SIGTERM", timeoutMs = 10000) {
    const proc = this.proc;
    if (!proc) return null;
    this.proc = undefined;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    return proc.exitCode;
  }

  async restart() {
    await this.stop();
    return this.start();
  }

  async cleanup() {
    await this.stop("SIGKILL").catch(() => {});
    if (this.ownHome) rmSync(this.home, { recursive: true, force: true });
  }
}

/**
 * tests/fakes/fake_llm.py speaking one provider's wire format on 127.0.0.1;
 * resolves once it printed "PORT <n>".
 */
export class FakeLlm {
  constructor(provider = "ollama", args = []) {
    this.provider = provider;
    this.args = args;
  }

  async start(timeoutMs = 10000) {
    this.proc = spawn("python3", [FAKE_LLM, "--provider", this.provider, "--port", "0", ...this.args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.stderr = "";
    this.proc.stderr.on("data", (d) => {
      this.stderr += d.toString();
    });
    const lines = createInterface({ input: this.proc.stdout });
    this.port = await new Promise((resolvePort, reject) => {
      const timer = setTimeout(() => reject(new Error(`fake_llm.py printed no PORT line:\n${this.stderr}`)), timeoutMs);
      lines.on("line", (line) => {
        const m = /^PORT (\d+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolvePort(Number(m[1]));
        }
      });
      this.proc.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`fake_llm.py exited with ${code}:\n${this.stderr}`));
      });
    });
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /** Replaces the fake's configuration (fault, chunk_delay_s, result, ...). */
  async configure(config = {}) {
    const res = await fetch(`${this.url}/_fake/config`, { method: "POST", body: JSON.stringify(config) });
    const body = await res.json();
    if (!res.ok) throw new Error(`fake_llm.py refused the config: ${JSON.stringify(body)}`);
    return body;
  }

  /** Back to defaults, with no recorded requests or events. */
  async reset() {
    await fetch(`${this.url}/_fake/reset`, { method: "POST" });
  }

  /** The fake's recorded events (e.g. {type: "client_disconnected"}). */
  async events() {
    return (await fetch(`${this.url}/_fake/events`)).json();
  }

  /** The requests the fake received. */
  async requests() {
    return (await fetch(`${this.url}/_fake/requests`)).json();
  }

  /** Waits for an event of this type. */
  async waitEvent(type, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const ev = (await this.events()).find((e) => e.type === type);
      if (ev) return ev;
      await sleep(50);
    }
    throw new Error(`fake_llm.py saw no ${type} event within ${timeoutMs} ms`);
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill("SIGTERM");
      await once(this.proc, "exit").catch(() => {});
    }
  }
}

/** A TCP port on 127.0.0.1 where nothing listens (for connection-refused tests). */
export async function closedPort() {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address();
  srv.close();
  await once(srv, "close");
  return port;
}

/**
 * True when the daemon knows the method (any answer but method_not_found);
 * otherwise marks the test skipped. params should make the call harmless.
 */
export async function supports(t, client, method, params) {
  try {
    await client.request(method, params);
  } catch (err) {
    if (err?.kind === "method_not_found") {
      t.skip(`the daemon does not implement ${method} yet`);
      return false;
    }
  }
  return true;
}

/**
 * An in-process fake daemon on a Unix socket. handler(msg, conn) is called
 * for each request line parsed as JSON; conn.send(obj) / conn.raw(text)
 * write to that client. Every received message is kept in `received`.
 */
export class FakeDaemon {
  constructor(handler) {
    this.handler = handler;
    this.home = tempHome("pdf-");
    this.socketPath = join(this.home, "fake.sock");
    this.received = [];
    this.sockets = new Set();
  }

  async start() {
    this.server = createServer((sock) => {
      this.sockets.add(sock);
      sock.on("close", () => this.sockets.delete(sock));
      sock.on("error", () => {});
      const conn = {
        sock,
        send: (obj) => sock.write(`${JSON.stringify(obj)}\n`),
        raw: (text) => sock.write(text),
        close: () => sock.destroy(),
      };
      let buf = "";
      sock.on("data", (d) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const msg = JSON.parse(line);
          this.received.push(msg);
          this.handler(msg, conn);
        }
      });
    });
    this.server.listen(this.socketPath);
    await once(this.server, "listening");
    return this;
  }

  /** Waits until a received message satisfies pred. */
  async waitFor(pred, timeoutMs = 3000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = this.received.find(pred);
      if (m) return m;
      await sleep(5);
    }
    throw new Error(`no such message received; got ${JSON.stringify(this.received)}`);
  }

  dropClients() {
    for (const s of this.sockets) s.destroy();
  }

  async stop() {
    this.dropClients();
    await new Promise((r) => this.server.close(r));
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** The standard answer to a request. */
export function ok(msg, result) {
  return { jsonrpc: "2.0", id: msg.id, result };
}

export { sleep };
