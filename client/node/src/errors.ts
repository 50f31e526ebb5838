/**
 * Errors this library throws. Every one has a stable `kind` string, so a
 * caller can switch on `err.kind` without caring which class it is:
 *
 * - PromptdError: the daemon answered a JSON-RPC error (`code`, `kind`, `data`).
 * - DaemonNotRunningError (kind "not_running"): nothing listens on the socket.
 * - ConnectionClosedError (kind "connection_closed"): the connection dropped
 *   while the call was in flight (the daemon stopped or restarted).
 * - ProtocolError (kind "protocol_error"): the daemon sent something that is
 *   not valid newline-delimited JSON-RPC.
 * - TimeoutError (kind "timeout"): the call's `timeoutMs` elapsed.
 * - AbortError (kind "aborted"): the call's AbortSignal fired.
 * - UnsafeSocketError (kind "unsafe_socket"): the socket or its directory
 *   belongs to another user or is open to others; nothing was sent.
 *
 * A message that quotes what the daemon or a backend wrote has its control
 * characters shown as visible escapes (sanitizeForDisplay), so printing an
 * error cannot drive the terminal; PromptdError keeps the exact text in
 * `daemonMessage`, and `data` is exactly what the daemon sent.
 */
import { sanitizeForDisplay } from "./display.js";

/** JSON-RPC error codes of protocol version 1. */
export const ErrorCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL: -32603,
  UPSTREAM_UNAVAILABLE: -32000,
  UPSTREAM_TIMEOUT: -32001,
  UPSTREAM_ERROR: -32002,
  BAD_MODEL_OUTPUT: -32003,
  NOT_FOUND: -32004,
  OVERLOADED: -32005,
  CANCELLED: -32800,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** `data.kind` values the daemon sends (protocol version 1). */
export type DaemonErrorKind =
  | "parse_error"
  | "invalid_request"
  | "too_large"
  | "method_not_found"
  | "invalid_params"
  | "internal"
  | "upstream_unavailable"
  | "upstream_timeout"
  | "upstream_error"
  | "bad_model_output"
  | "not_found"
  | "overloaded"
  | "cancelled";

/** Kinds of the errors raised by the library itself. */
export type ClientErrorKind =
  | "not_running"
  | "connection_closed"
  | "protocol_error"
  | "timeout"
  | "aborted"
  | "unsafe_socket";

const KIND_BY_CODE: Record<number, DaemonErrorKind> = {
  [-32700]: "parse_error",
  [-32600]: "invalid_request",
  [-32601]: "method_not_found",
  [-32602]: "invalid_params",
  [-32603]: "internal",
  [-32000]: "upstream_unavailable",
  [-32001]: "upstream_timeout",
  [-32002]: "upstream_error",
  [-32003]: "bad_model_output",
  [-32004]: "not_found",
  [-32005]: "overloaded",
  [-32800]: "cancelled",
};

/** The `data` object of a daemon error. */
export interface PromptdErrorData {
  kind?: string;
  /** invalid_params: the offending param. */
  field?: string;
  /** upstream_error: the backend's HTTP status. */
  http_status?: number;
  /** upstream_error, bad_model_output: the backend's message or output. */
  detail?: string;
  [extra: string]: unknown;
}

/** An error answered by the daemon. */
export class PromptdError extends Error {
  override name = "PromptdError";
  /** The JSON-RPC error code, e.g. -32602. */
  readonly code: number;
  /** `data.kind`, e.g. "invalid_params" (derived from the code when absent). */
  readonly kind: string;
  /** The error's `data` object ({} when the daemon sent none). */
  readonly data: PromptdErrorData;
  /** The method whose call failed, when known. */
  readonly method: string | undefined;
  /** The message exactly as the daemon sent it (`message` has its control characters escaped). */
  readonly daemonMessage: string;

  constructor(code: number, message: string, data?: PromptdErrorData, method?: string) {
    super(sanitizeForDisplay(message));
    this.daemonMessage = message;
    this.code = code;
    this.data = data ?? {};
    this.kind = typeof this.data.kind === "string" ? this.data.kind : (KIND_BY_CODE[code] ?? "unknown");
    this.method = method;
  }

  /** invalid_params: the param the daemon named. */
  get field(): string | undefined {
    return typeof this.data.field === "string" ? this.data.field : undefined;
  }
}

/** Nothing listens on the socket: promptd is not running. */
export class DaemonNotRunningError extends Error {
  override name = "DaemonNotRunningError";
  readonly kind = "not_running" as const;
  /** The socket that was tried. */
  readonly socketPath: string;
  /** A sentence saying how to start the daemon. */
  readonly advice: string;

  constructor(socketPath: string, advice: string, cause?: unknown) {
    super(`promptd is not running (nothing listens on ${socketPath}). ${advice}`, { cause });
    this.socketPath = socketPath;
    this.advice = advice;
  }
}

/**
 * The socket, or the directory it is in, is not safe to talk to: another
 * user owns it, could replace it (a directory open to others, a symbolic
 * link), so whoever listens there may not be promptd. Nothing was sent.
 */
export class UnsafeSocketError extends Error {
  override name = "UnsafeSocketError";
  readonly kind = "unsafe_socket" as const;
  /** The socket that was refused. */
  readonly socketPath: string;

  constructor(socketPath: string, problem: string) {
    super(`refusing to connect to promptd at ${socketPath}: ${problem}; nothing was sent`);
    this.socketPath = socketPath;
  }
}

/** The connection closed while the call was in flight. */
export class ConnectionClosedError extends Error {
  override name = "ConnectionClosedError";
  readonly kind = "connection_closed" as const;
  readonly method: string | undefined;

  constructor(message: string, method?: string, cause?: unknown) {
    super(message, { cause });
    this.method = method;
  }
}

/** The daemon sent something that is not valid newline-delimited JSON-RPC. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  readonly kind = "protocol_error" as const;
  /** The start of the offending line, when there was one. */
  readonly line: string | undefined;

  constructor(message: string, line?: string) {
    super(sanitizeForDisplay(message));
    this.line = line;
  }
}

/** The call did not finish within its `timeoutMs`; it was cancelled. */
export class TimeoutError extends Error {
  override name = "TimeoutError";
  readonly kind = "timeout" as const;
  readonly code = "ETIMEDOUT";
  readonly method: string;
  readonly timeoutMs: number;

  constructor(method: string, timeoutMs: number) {
    super(`promptd did not answer ${method} within ${timeoutMs} ms; the request was cancelled`);
    this.method = method;
    this.timeoutMs = timeoutMs;
  }
}

/** The call's AbortSignal fired; the request was cancelled on the daemon. */
export class AbortError extends Error {
  override name = "AbortError";
  readonly kind = "aborted" as const;
  readonly code = "ABORT_ERR";

  constructor(message = "The operation was aborted", cause?: unknown) {
    super(message, { cause });
  }
}

/** Any error this library throws. */
export type AnyPromptdError =
  | PromptdError
  | DaemonNotRunningError
  | ConnectionClosedError
  | ProtocolError
  | TimeoutError
  | AbortError
  | UnsafeSocketError;

/** True for every error class of this library. */
export function isPromptdClientError(err: unknown): err is AnyPromptdError {
  return (
    err instanceof PromptdError ||
    err instanceof DaemonNotRunningError ||
    err instanceof ConnectionClosedError ||
    err instanceof ProtocolError ||
    err instanceof TimeoutError ||
    err instanceof AbortError ||
    err instanceof UnsafeSocketError
  );
}
