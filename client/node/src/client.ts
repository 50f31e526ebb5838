import { EventEmitter } from "node:events";
import { createConnection, type Socket } from "node:net";

import {
  AbortError,
  ConnectionClosedError,
  DaemonNotRunningError,
  ProtocolError,
  PromptdError,
  TimeoutError,
  UnsafeSocketError,
  type PromptdErrorData,
} from "./errors.js";
import { LineSplitter } from "./lines.js";
import { resolveSocketPath, socketSafetyProblem, startAdvice } from "./socket-path.js";
import type {
  CancelResult,
  CleanupParams,
  ConfigResult,
  DbBackupResult,
  DbCheckResult,
  DbRestoreResult,
  DeletedResult,
  HealthResult,
  HistoryDeleteParams,
  HistoryListParams,
  HistoryListResult,
  HistoryRow,
  HistorySearchParams,
  HistorySearchResult,
  ImproveParams,
  ImproveResult,
  MethodName,
  ModelsResult,
  PromptdMethods,
  RequestId,
  StatsParams,
  StatsResult,
  VersionResult,
} from "./types.js";

export interface PromptdClientOptions {
  /** The daemon's socket; default: resolved as the protocol says (see resolveSocketPath). */
  socketPath?: string | undefined;
  /** Environment used to resolve the socket path (default process.env). */
  env?: Record<string, string | undefined>;
  /** Default per-call timeout in ms; 0 or absent: none (the daemon bounds LLM calls itself). */
  timeoutMs?: number;
  /** How long connecting may take, in ms (default 5000). */
  connectTimeoutMs?: number;
  /**
   * After a connection was lost (the daemon restarting), how long a new call
   * keeps trying to reconnect before it fails with DaemonNotRunningError, in
   * ms (default 3000). The first connection never waits.
   */
  reconnectWindowMs?: number;
  /** The `client` param sent with `improve` unless the call names one. */
  clientName?: string;
  /** The longest response line accepted, in bytes (default 64 MiB). */
  maxLineBytes?: number;
}

export interface CallOptions {
  /** Aborting sends `cancel` for the request and rejects with AbortError. */
  signal?: AbortSignal | undefined;
  /** Overrides the client's timeoutMs for this call; 0: none. On expiry the request is cancelled. */
  timeoutMs?: number | undefined;
}

export interface ImproveOptions extends CallOptions {
  /**
   * Called with each piece of the improved prompt as the model writes it
   * (`soFar` is everything received until now). Giving it sets `stream: true`.
   */
  onDelta?: ((text: string, soFar: string) => void) | undefined;
}

/** What `improveStream()` yields: the deltas in order, then the result. */
export type ImproveStreamEvent =
  | { type: "delta"; text: string; soFar: string }
  | { type: "result"; result: ImproveResult };

interface Pending {
  id: number;
  method: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
  onNotify: ((params: Record<string, unknown>) => void) | undefined;
  cleanup(): void;
}

/** Methods safe to send again when the connection dropped before their answer. */
const IDEMPOTENT = new Set<string>([
  "ping",
  "version",
  "health",
  "config.get",
  "models",
  "history.list",
  "history.get",
  "history.search",
  "stats",
  "db.check",
]);

const NOT_RUNNING_CODES = new Set(["ENOENT", "ECONNREFUSED", "ENOTSOCK"]);

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function preview(line: string): string {
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

/** One socket and the calls in flight on it. */
class Connection {
  readonly pending = new Map<number, Pending>();
  /** Ids whose caller gave up (abort, timeout): their answers are dropped. */
  readonly abandoned = new Set<number>();
  dead = false;
  /** An error the daemon sent with id null just before closing (too_large). */
  fatal: PromptdError | undefined;
  lastError: Error | undefined;
  private readonly splitter: LineSplitter;

  constructor(
    readonly socket: Socket,
    maxLineBytes: number,
    private readonly owner: PromptdClient,
  ) {
    this.splitter = new LineSplitter(maxLineBytes);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => {
      this.lastError = err;
    });
    socket.on("close", () => this.onClose());
    this.updateRef();
  }

  send(message: object): boolean {
    return this.write(`${JSON.stringify(message)}\n`);
  }

  write(line: string): boolean {
    if (this.dead) return false;
    this.socket.write(line);
    return true;
  }

  /** Keeps the process alive only while calls are in flight. */
  updateRef(): void {
    if (this.dead) return;
    if (this.pending.size > 0) this.socket.ref();
    else this.socket.unref();
  }

  /** Ends the connection now: every call in flight rejects with err. */
  fail(err: Error): void {
    if (this.dead) return;
    this.lastError = err;
    this.dead = true;
    this.rejectAll(() => err);
    this.socket.destroy();
    this.owner.onConnectionClosed(this);
  }

  private rejectAll(makeError: (p: Pending) => Error): void {
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const p of calls) {
      p.cleanup();
      p.reject(makeError(p));
    }
  }

  private onData(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.splitter.push(chunk);
    } catch (err) {
      this.fail(new ProtocolError(`promptd sent a malformed response: ${(err as Error).message}`));
      return;
    }
    for (const line of lines) {
      if (this.dead) return;
      if (line.trim() === "") continue;
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      // The framing can no longer be trusted: nothing on this connection can be matched.
      this.fail(new ProtocolError(`promptd sent a line that is not JSON: ${preview(line)}`, preview(line)));
      return;
    }
    if (!isObject(msg) || msg.jsonrpc !== "2.0") {
      this.fail(new ProtocolError(`promptd sent a message that is not a JSON-RPC 2.0 object: ${preview(line)}`, preview(line)));
      return;
    }
    if (!("id" in msg)) {
      this.onNotification(msg, line);
      return;
    }
    const id = msg.id;
    if (id === null) {
      this.onOrphanError(msg, line);
      return;
    }
    if (typeof id !== "number") {
      // This client only sends numeric ids.
      this.owner.emit("protocolError", new ProtocolError(`promptd answered an id this client never sent: ${JSON.stringify(id)}`, preview(line)));
      return;
    }
    const call = this.pending.get(id);
    if (!call) {
      if (!this.abandoned.delete(id)) {
        this.owner.emit("protocolError", new ProtocolError(`promptd answered an id this client never sent: ${id}`, preview(line)));
      }
      return;
    }
    this.pending.delete(id);
    call.cleanup();
    this.updateRef();
    const hasResult = "result" in msg;
    const hasError = "error" in msg;
    if (hasError && !hasResult) {
      const e = msg.error;
      if (isObject(e) && typeof e.code === "number" && typeof e.message === "string") {
        call.reject(new PromptdError(e.code, e.message, isObject(e.data) ? (e.data as PromptdErrorData) : undefined, call.method));
        return;
      }
      call.reject(new ProtocolError(`promptd answered ${call.method} with a malformed error object: ${preview(line)}`, preview(line)));
      return;
    }
    if (hasResult && !hasError) {
      call.resolve(msg.result);
      return;
    }
    call.reject(new ProtocolError(`promptd answered ${call.method} with neither one result nor one error: ${preview(line)}`, preview(line)));
  }

  private onNotification(msg: Record<string, unknown>, line: string): void {
    if (typeof msg.method !== "string") {
      this.owner.emit("protocolError", new ProtocolError(`promptd sent a message with neither id nor method: ${preview(line)}`, preview(line)));
      return;
    }
    const params = isObject(msg.params) ? msg.params : {};
    if (msg.method === "improve.delta") {
      const target = typeof params.request_id === "number" ? this.pending.get(params.request_id) : undefined;
      if (target?.onNotify) {
        target.onNotify(params);
        return;
      }
      if (typeof params.request_id === "number" && this.abandoned.has(params.request_id)) return;
    }
    this.owner.emit("notification", msg.method, params);
  }

  /** An error with id null: a request the daemon could not read. */
  private onOrphanError(msg: Record<string, unknown>, line: string): void {
    const e = msg.error;
    if (isObject(e) && typeof e.code === "number" && typeof e.message === "string") {
      const err = new PromptdError(e.code, e.message, isObject(e.data) ? (e.data as PromptdErrorData) : undefined);
      // too_large is followed by the daemon closing the connection; the calls
      // in flight then fail with this error rather than a bare "closed".
      if (err.kind === "too_large") this.fatal = err;
      this.owner.emit("protocolError", err);
      return;
    }
    this.owner.emit("protocolError", new ProtocolError(`promptd sent a response with id null and no error: ${preview(line)}`, preview(line)));
  }

  private onClose(): void {
    if (this.dead) return;
    this.dead = true;
    const cause = this.lastError;
    const fatal = this.fatal;
    this.rejectAll((p) => {
      if (fatal) return new PromptdError(fatal.code, fatal.message, fatal.data, p.method);
      return new ConnectionClosedError(
        `the connection to promptd closed while ${p.method} (id ${p.id}) was in flight: the daemon stopped or restarted; the request may or may not have been carried out`,
        p.method,
        cause,
      );
    });
    this.owner.onConnectionClosed(this);
  }
}

/**
 * A client for promptd. It opens one connection on the first call, pipelines
 * every call over it, and opens a new one after the daemon restarts.
 *
 * ```ts
 * const client = new PromptdClient({ clientName: "my-script" });
 * const result = await client.improve({ idea: "email my landlord about the heater" });
 * client.close();
 * ```
 *
 * Events: "connect" (socketPath), "disconnect" (error | undefined),
 * "notification" (method, params) for notifications no call claimed,
 * "protocolError" (error) for daemon output that matched no call.
 */
export class PromptdClient extends EventEmitter {
  /** The socket this client connects to. */
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly reconnectWindowMs: number;
  private readonly clientName: string | undefined;
  private readonly maxLineBytes: number;
  private conn: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private nextId = 1;
  private closed = false;
  private lostAt: number | undefined;

  /** `history.*` methods. */
  readonly history = {
    /** Rows newest first, with the total that match the filters. */
    list: (params: HistoryListParams = {}, options?: CallOptions): Promise<HistoryListResult> =>
      this.call("history.list", params, options),
    /** One row; rejects with PromptdError kind "not_found" when there is none. */
    get: (id: number, options?: CallOptions): Promise<HistoryRow> => this.call("history.get", { id }, options),
    /** Full-text search, best match first. */
    search: (query: string | HistorySearchParams, options?: CallOptions): Promise<HistorySearchResult> =>
      this.call("history.search", typeof query === "string" ? { query } : query, options),
    /** Deletes one row ({id}), rows before a date ({before}) or all ({all: true}). */
    delete: (params: HistoryDeleteParams, options?: CallOptions): Promise<DeletedResult> =>
      this.call("history.delete", params, options),
  };

  /** `db.*` methods. */
  readonly db = {
    /** A consistent copy of the history database at path (mode 0600). */
    backup: (path: string, options?: CallOptions): Promise<DbBackupResult> => this.call("db.backup", { path }, options),
    /** Replaces the live history with the backup at path. */
    restore: (path: string, options?: CallOptions): Promise<DbRestoreResult> =>
      this.call("db.restore", { path }, options),
    /** PRAGMA quick_check on the live database. */
    check: (options?: CallOptions): Promise<DbCheckResult> => this.call("db.check", undefined, options),
  };

  constructor(options: PromptdClientOptions = {}) {
    super();
    this.socketPath = resolveSocketPath({ socketPath: options.socketPath, env: options.env ?? process.env });
    this.timeoutMs = options.timeoutMs ?? 0;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.reconnectWindowMs = options.reconnectWindowMs ?? 3000;
    this.clientName = options.clientName;
    this.maxLineBytes = options.maxLineBytes ?? 64 * 1024 * 1024;
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.conn !== undefined && !this.conn.dead;
  }

  /** Calls waiting for their answer. */
  get inFlight(): number {
    return this.conn && !this.conn.dead ? this.conn.pending.size : 0;
  }

  /** Connects now (calls connect on their own); rejects with DaemonNotRunningError. */
  async connect(): Promise<void> {
    await this.connection();
  }

  /** Closes the connection; calls in flight reject with ConnectionClosedError. Final. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn?.fail(new ConnectionClosedError("the promptd client was closed"));
    this.conn = undefined;
  }

  /** Sends any method, known to this library or not; resolves with its raw result. */
  async request(method: string, params?: unknown, options: CallOptions = {}): Promise<unknown> {
    return this.send(method, params, options, undefined, IDEMPOTENT.has(method) ? 1 : 0);
  }

  /** Typed call of a protocol method. */
  async call<M extends MethodName>(
    method: M,
    params?: PromptdMethods[M]["params"],
    options: CallOptions = {},
  ): Promise<PromptdMethods[M]["result"]> {
    return (await this.request(method, params, options)) as PromptdMethods[M]["result"];
  }

  /** "pong". */
  ping(options?: CallOptions): Promise<"pong"> {
    return this.call("ping", undefined, options);
  }

  version(options?: CallOptions): Promise<VersionResult> {
    return this.call("version", undefined, options);
  }

  health(options?: CallOptions): Promise<HealthResult> {
    return this.call("health", undefined, options);
  }

  /** The daemon's effective configuration, secrets shown as "***". */
  configGet(options?: CallOptions): Promise<ConfigResult> {
    return this.call("config.get", undefined, options);
  }

  models(options?: CallOptions): Promise<ModelsResult> {
    return this.call("models", undefined, options);
  }

  stats(params: StatsParams = {}, options?: CallOptions): Promise<StatsResult> {
    return this.call("stats", params, options);
  }

  /** Deletes the rows older than `days` days. */
  cleanup(days: number | CleanupParams, options?: CallOptions): Promise<DeletedResult> {
    return this.call("cleanup", typeof days === "number" ? { days } : days, options);
  }

  /**
   * Cancels an in-flight request of this client by its JSON-RPC id. Prefer an
   * AbortSignal on the call itself, which does this for you.
   */
  cancel(requestId: RequestId, options?: CallOptions): Promise<CancelResult> {
    return this.call("cancel", { request_id: requestId }, options);
  }

  /**
   * Improves an idea. With `onDelta` the improved prompt is streamed to it as
   * the model writes it; the returned result is authoritative.
   */
  async improve(params: ImproveParams, options: ImproveOptions = {}): Promise<ImproveResult> {
    const full: ImproveParams = { ...params };
    if (full.client === undefined && this.clientName !== undefined) full.client = this.clientName;
    const onDelta = options.onDelta;
    if (onDelta) full.stream = true;
    let soFar = "";
    const notify = onDelta
      ? (p: Record<string, unknown>) => {
          if (typeof p.text !== "string") return;
          soFar += p.text;
          onDelta(p.text, soFar);
        }
      : undefined;
    return (await this.send("improve", full, options, notify, 0)) as ImproveResult;
  }

  /**
   * Improves an idea and yields `{type: "delta"}` events as the improved prompt
   * is written, then one `{type: "result"}`. Leaving the loop early cancels
   * the request on the daemon.
   */
  async *improveStream(params: ImproveParams, options: CallOptions = {}): AsyncGenerator<ImproveStreamEvent, void, undefined> {
    const inner = new AbortController();
    const outer = options.signal;
    const forward = (): void => inner.abort(outer?.reason);
    if (outer?.aborted) forward();
    else outer?.addEventListener("abort", forward, { once: true });

    const queue: ImproveStreamEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let failure: unknown;
    const poke = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const run = this.improve(params, {
      timeoutMs: options.timeoutMs,
      signal: inner.signal,
      onDelta: (text, soFar) => {
        queue.push({ type: "delta", text, soFar });
        poke();
      },
    });
    run.then(
      (result) => {
        queue.push({ type: "result", result });
        done = true;
        poke();
      },
      (err: unknown) => {
        failure = err;
        done = true;
        poke();
      },
    );
    try {
      for (;;) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (done) {
          if (failure !== undefined) throw failure;
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      outer?.removeEventListener("abort", forward);
      if (!done) inner.abort(new AbortError("the stream's consumer stopped reading"));
    }
  }

  // ---- internals ----------------------------------------------------------

  /** @internal Called by a Connection once its socket has closed. */
  onConnectionClosed(conn: Connection): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.lostAt = Date.now();
    this.emit("disconnect", conn.lastError);
  }

  private async connection(): Promise<Connection> {
    if (this.closed) throw new ConnectionClosedError("the promptd client was closed");
    if (this.conn && !this.conn.dead) return this.conn;
    this.connecting ??= this.openWithRetry().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async openWithRetry(): Promise<Connection> {
    for (;;) {
      // Checked before every connection, so nothing (not even a retry)
      // reaches a socket another user may have put there.
      const problem = await socketSafetyProblem(this.socketPath);
      if (problem !== undefined) throw new UnsafeSocketError(this.socketPath, problem);
      try {
        const socket = await this.openSocket();
        if (this.closed) {
          socket.destroy();
          throw new ConnectionClosedError("the promptd client was closed");
        }
        const conn = new Connection(socket, this.maxLineBytes, this);
        this.conn = conn;
        this.lostAt = undefined;
        this.emit("connect", this.socketPath);
        return conn;
      } catch (err) {
        const code = errnoCode(err);
        if (code === undefined || !NOT_RUNNING_CODES.has(code)) {
          if (err instanceof ConnectionClosedError) throw err;
          throw new ConnectionClosedError(
            `cannot connect to promptd at ${this.socketPath}: ${(err as Error).message}`,
            undefined,
            err,
          );
        }
        // The daemon may be restarting: keep trying for a moment after a loss.
        if (this.lostAt !== undefined && Date.now() - this.lostAt < this.reconnectWindowMs && !this.closed) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          continue;
        }
        throw new DaemonNotRunningError(this.socketPath, startAdvice(this.socketPath), err);
      }
    }
  }

  private openSocket(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path: this.socketPath });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      const timer = setTimeout(() => {
        socket.removeListener("error", onError);
        socket.destroy();
        const err = new Error(`connecting took longer than ${this.connectTimeoutMs} ms`) as Error & { code: string };
        err.code = "ETIMEDOUT";
        reject(err);
      }, this.connectTimeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.removeListener("error", onError);
        resolve(socket);
      });
      socket.once("error", onError);
    });
  }

  private async send(
    method: string,
    params: unknown,
    options: CallOptions,
    onNotify: Pending["onNotify"],
    retries: number,
  ): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.sendOnce(method, params, options, onNotify);
      } catch (err) {
        if (err instanceof ConnectionClosedError && attempt < retries && !this.closed && !options.signal?.aborted) {
          continue;
        }
        throw err;
      }
    }
  }

  private async sendOnce(
    method: string,
    params: unknown,
    options: CallOptions,
    onNotify: Pending["onNotify"],
  ): Promise<unknown> {
    const signal = options.signal;
    if (signal?.aborted) throw new AbortError(`${method} was aborted before it was sent`, signal.reason);
    const conn = await this.connection();
    if (signal?.aborted) throw new AbortError(`${method} was aborted before it was sent`, signal.reason);
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;

    const message: Record<string, unknown> = { jsonrpc: "2.0", id, method };
    if (params !== undefined) message.params = params;
    const line = `${JSON.stringify(message)}\n`; // throws on params JSON cannot carry

    return new Promise<unknown>((resolve, reject) => {
      if (conn.dead) {
        reject(new ConnectionClosedError(`the connection to promptd closed before ${method} was sent`, method));
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const giveUp = (err: Error): void => {
        if (conn.pending.get(id) !== call) return;
        conn.pending.delete(id);
        call.cleanup();
        conn.abandoned.add(id);
        conn.updateRef();
        // Tell the daemon, so it stops the work (and the LLM call) too.
        const cancelId = this.nextId++;
        if (conn.send({ jsonrpc: "2.0", id: cancelId, method: "cancel", params: { request_id: id } })) {
          conn.abandoned.add(cancelId);
        }
        reject(err);
      };
      const onAbort = (): void => giveUp(new AbortError(`${method} was aborted`, signal?.reason));
      const call: Pending = {
        id,
        method,
        resolve,
        reject,
        onNotify: onNotify
          ? (p) => {
              try {
                onNotify(p);
              } catch (err) {
                giveUp(err instanceof Error ? err : new Error(String(err)));
              }
            }
          : undefined,
        cleanup: () => {
          if (timer) clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      conn.pending.set(id, call);
      conn.updateRef();
      if (timeoutMs > 0) timer = setTimeout(() => giveUp(new TimeoutError(method, timeoutMs)), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      conn.write(line);
    });
  }
}

/** Creates a client and connects it; rejects with DaemonNotRunningError when nothing listens. */
export async function connect(options: PromptdClientOptions = {}): Promise<PromptdClient> {
  const client = new PromptdClient(options);
  try {
    await client.connect();
  } catch (err) {
    client.close();
    throw err;
  }
  return client;
}
