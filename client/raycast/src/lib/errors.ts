/**
 * What a person should read when a promptd call fails: a toast title, a
 * message, and for a daemon that is not running the command that starts it.
 * A message quoting a backend has its control characters removed.
 */
import {
  AbortError,
  ConnectionClosedError,
  DaemonNotRunningError,
  PromptdError,
  ProtocolError,
  TimeoutError,
  stripControls,
  UnsafeSocketError,
} from "promptd-client";

export interface ErrorInfo {
  title: string;
  message: string;
  /** A shell command that fixes it (start the daemon), when there is one. */
  command?: string;
  /** The user (or the view) cancelled: not worth a failure toast. */
  cancelled?: boolean;
  /** The daemon does not know this method: an older promptd. */
  unsupported?: boolean;
}

/** The command in the advice sentence (the first `...` span), or `promptd`. */
export function startCommand(err: DaemonNotRunningError): string {
  const m = /`([^`]+)`/.exec(err.advice);
  return m?.[1] ?? "promptd";
}

const TITLES: Record<string, string> = {
  upstream_unavailable: "The LLM is not reachable",
  upstream_timeout: "The LLM took too long",
  upstream_error: "The LLM answered with an error",
  bad_model_output: "The model's answer was not usable",
  invalid_params: "Check the input",
  overloaded: "promptd is busy",
  not_found: "Not in the history",
  too_large: "The request is too large",
  internal: "promptd hit an internal error",
};

export function describeError(err: unknown): ErrorInfo {
  const info = describe(err);
  return { ...info, title: stripControls(info.title), message: stripControls(info.message) };
}

function describe(err: unknown): ErrorInfo {
  if (err instanceof DaemonNotRunningError) {
    return { title: "promptd is not running", message: err.advice, command: startCommand(err) };
  }
  if (err instanceof UnsafeSocketError) return { title: "The promptd socket is not safe", message: err.message };
  if (err instanceof AbortError) return { title: "Cancelled", message: "The request was cancelled.", cancelled: true };
  if (err instanceof PromptdError) {
    // The daemon's own words, not the library's escaped copy: stripped above.
    const message = err.daemonMessage;
    if (err.kind === "cancelled") return { title: "Cancelled", message, cancelled: true };
    if (err.kind === "method_not_found") {
      return {
        title: "Update promptd",
        message: `This promptd does not support ${err.method ?? "this command"} yet: ${message}`,
        unsupported: true,
      };
    }
    if (err.kind === "upstream_error" && typeof err.data.http_status === "number") {
      return { title: `${TITLES.upstream_error} (HTTP ${err.data.http_status})`, message };
    }
    return { title: TITLES[err.kind] ?? "promptd answered an error", message };
  }
  if (err instanceof ConnectionClosedError) return { title: "Lost the connection to promptd", message: err.message };
  if (err instanceof TimeoutError) return { title: "promptd took too long", message: err.message };
  if (err instanceof ProtocolError) return { title: "promptd sent an unexpected answer", message: err.message };
  if (err instanceof Error) return { title: "Something went wrong", message: err.message };
  return { title: "Something went wrong", message: String(err) };
}
