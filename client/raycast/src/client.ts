/**
 * The bridge between Raycast and promptd-client: preferences, one client
 * per command, and failure toasts. Every promptd error ends here as a toast,
 * so no rejection ever reaches Raycast unhandled.
 */
import { Clipboard, Toast, getPreferenceValues, showToast } from "@raycast/api";
import { PromptdClient } from "promptd-client";
import { useEffect, useRef } from "react";

import { describeError } from "./lib/errors";
import type { Preferences } from "./lib/params";

export function getPrefs(): Preferences {
  return getPreferenceValues<Preferences>();
}

export function createClient(prefs: Preferences = getPrefs()): PromptdClient {
  const socketPath = prefs.socketPath?.trim() || undefined;
  return new PromptdClient({ socketPath, clientName: "raycast", connectTimeoutMs: 3000 });
}

/** A client for the life of a view, closed when the view goes. */
export function useClient(): PromptdClient {
  const ref = useRef<PromptdClient | null>(null);
  if (ref.current === null) ref.current = createClient();
  useEffect(() => {
    const client = ref.current;
    return () => client?.close();
  }, []);
  return ref.current;
}

/**
 * Shows what went wrong as a failure toast (reusing `toast` when given). A
 * daemon that is not running gets the command that starts it, with an action
 * that copies it. Cancellations show nothing. Never throws.
 */
export async function showError(err: unknown, toast?: Toast): Promise<void> {
  const info = describeError(err);
  if (info.cancelled) {
    toast?.hide().catch(() => undefined);
    return;
  }
  const command = info.command;
  const primaryAction = command
    ? { title: "Copy Start Command", onAction: () => void Clipboard.copy(command).catch(() => undefined) }
    : undefined;
  try {
    if (toast) {
      toast.style = Toast.Style.Failure;
      toast.title = info.title;
      toast.message = info.message;
      if (primaryAction) toast.primaryAction = primaryAction;
    } else {
      await showToast({ style: Toast.Style.Failure, title: info.title, message: info.message, primaryAction });
    }
  } catch {
    // Raycast could not show the toast (the command is closing): nothing more to do.
  }
}
