import { lstat } from "node:fs/promises";
import { dirname, join } from "node:path";

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

async function lstatOrUndefined(path: string): Promise<Awaited<ReturnType<typeof lstat>> | undefined> {
  try {
    return await lstat(path);
  } catch {
    return undefined; // missing: connecting will say the daemon is not running
  }
}

/**
 * Why the socket must not be used, or undefined when it may. Node cannot
 * ask who listens on a Unix socket (SO_PEERCRED), so the file system
 * answers instead, before connecting: the socket must be the user's own,
 * in a directory that is a real directory (not a symbolic link), the
 * user's own, and closed to group and others, so that nobody else can
 * have put their socket there. `uid` defaults to `process.getuid()`; where
 * there is none (Windows) nothing is checked.
 */
export async function socketSafetyProblem(socketPath: string, uid?: number): Promise<string | undefined> {
  const me = uid ?? (typeof process.getuid === "function" ? process.getuid() : undefined);
  if (me === undefined) return undefined;
  const dir = dirname(socketPath);
  const d = await lstatOrUndefined(dir);
  if (d === undefined) return undefined;
  if (d.isSymbolicLink()) return `its directory ${dir} is a symbolic link, which another user may control`;
  if (!d.isDirectory()) return `${dir} is not a directory`;
  if (d.uid !== me) return `its directory ${dir} belongs to another user (uid ${d.uid})`;
  const mode = Number(d.mode) & 0o777;
  if ((mode & 0o077) !== 0) {
    return `its directory ${dir} is open to other users (mode 0${mode.toString(8)}): run chmod 700 ${dir}`;
  }
  const s = await lstatOrUndefined(socketPath);
  if (s !== undefined && s.uid !== me) return `the socket belongs to another user (uid ${s.uid})`;
  return undefined;
}
