/**
 * promptd-client: a typed client for promptd, the local prompt-improvement
 * daemon. See README.md for an example and docs/protocol.md in the promptd
 * repository for the wire protocol.
 */
export { PromptdClient, connect } from "./client.js";
export type { CallOptions, ImproveOptions, ImproveStreamEvent, PromptdClientOptions } from "./client.js";
export {
  AbortError,
  ConnectionClosedError,
  DaemonNotRunningError,
  ErrorCode,
  ProtocolError,
  PromptdError,
  TimeoutError,
  UnsafeSocketError,
  isPromptdClientError,
} from "./errors.js";
export type {
  AnyPromptdError,
  ClientErrorKind,
  DaemonErrorKind,
  ErrorCodeValue,
  PromptdErrorData,
} from "./errors.js";
export { sanitizeForDisplay, stripControls } from "./display.js";
export { resolveSocketPath, socketSafetyProblem, startAdvice } from "./socket-path.js";
export type { SocketPathOptions } from "./socket-path.js";
export type * from "./types.js";
