import { join } from "node:path";

/** What the socket path is resolved from; every field defaults to this process's own. */
export interface SocketPathOptions {
  /** An explicit path (a `--socket` flag, a preference); wins over everything. */
  socketPath?: string | undefined;
  /** Environment to read PROMPTD_SOCKET, XDG_RUNTIME_DIR and TMPDIR from. */
  env?: Record<string, string | undefined>;
  /** `process.platform`. */
  platform?: string;
  /** The numeric user id (`process.getuid()`). */
  uid?: number;
}

function nonEmpty(value: string | undefined): value is string {
  return typeof value === "string" && value.length > 0;
}

/**
 * The daemon's socket path, resolved as the protocol says (first match wins):
 * an explicit path, `PROMPTD_SOCKET`, `$XDG_RUNTIME_DIR/promptd/promptd.sock`,
 * else `/tmp/promptd-$UID/promptd.sock` (macOS: `$TMPDIR/promptd-$UID/promptd.sock`).
 */
export function resolveSocketPath(options: SocketPathOptions = {}): string {
  if (nonEmpty(options.socketPath)) return options.socketPath;
  const env = options.env ?? process.env;
  if (nonEmpty(env.PROMPTD_SOCKET)) return env.PROMPTD_SOCKET;
  if (nonEmpty(env.XDG_RUNTIME_DIR)) return join(env.XDG_RUNTIME_DIR, "promptd", "promptd.sock");
  const platform = options.platform ?? process.platform;
  const uid = options.uid ?? (typeof process.getuid === "function" ? process.getuid() : 0);
  const base = platform === "darwin" && nonEmpty(env.TMPDIR) ? env.TMPDIR : "/tmp";
  return join(base, `promptd-${uid}`, "promptd.sock");
}

/**
 * A sentence saying how to start the daemon on this platform; it names the
 * socket only when that is not the default one.
 */
export function startAdvice(socketPath: string, platform: string = process.platform): string {
  const flag = socketPath === resolveSocketPath({ platform }) ? "" : ` --socket ${socketPath}`;
  if (platform === "darwin") {
    return `Start it with \`promptd${flag}\`, or load its LaunchAgent with \`launchctl\` (see promptd's README).`;
  }
  return `Start it with \`promptd${flag}\`, or as a service with \`systemctl --user start promptd\`.`;
}
