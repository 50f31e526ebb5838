import { Action, ActionPanel, Clipboard, Detail, Icon, Keyboard, useNavigation } from "@raycast/api";
import type { ImproveParams } from "promptd-client";
import { useEffect, useReducer, useRef, useState } from "react";

import { createClient, showError } from "../client";
import { fallbackNotice, improveMarkdown, resultMetadata } from "../lib/format";
import type { Preferences } from "../lib/params";
import { improveReducer, improveTitle, initialImproveState } from "../lib/state";
import { HistoryRowView } from "./history-row-view";
import { ImproveForm } from "./improve-form";
import { DetailMetadata } from "./metadata";

/**
 * Streams one improve request: the prompt appears as the model writes it,
 * then the metadata panel and the actions. Leaving the view cancels it.
 */
export function ImproveView({ params, prefs }: { params: ImproveParams; prefs: Preferences }) {
  const { push } = useNavigation();
  const [state, dispatch] = useReducer(improveReducer, initialImproveState);
  const [attempt, setAttempt] = useState(0);
  const abortRef = useRef<AbortController | null>(null);

  useEffect(() => {
    const client = createClient(prefs);
    const ac = new AbortController();
    abortRef.current = ac;
    dispatch({ type: "start" });
    client
      .improve(params, { signal: ac.signal, onDelta: (text) => dispatch({ type: "delta", text }) })
      .then((result) => dispatch({ type: "result", result }))
      .catch((err: unknown) => {
        dispatch({ type: "error", error: err });
        if (!ac.signal.aborted) void showError(err);
      })
      .finally(() => client.close());
    return () => ac.abort();
  }, [params, prefs, attempt]);

  const result = state.status === "done" ? state.result : undefined;
  const markdown = improveMarkdown({
    idea: params.idea,
    text: state.text,
    streaming: state.status === "streaming",
    reasoning: result?.reasoning,
    notice:
      state.status === "error"
        ? `**${state.error.title}.** ${state.error.message}`
        : state.status === "cancelled"
          ? "Cancelled."
          : result
            ? fallbackNotice(result)
            : undefined,
  });

  return (
    <Detail
      isLoading={state.status === "streaming"}
      navigationTitle={improveTitle(state)}
      markdown={markdown}
      metadata={result ? <DetailMetadata entries={resultMetadata(result)} /> : undefined}
      actions={
        <ActionPanel>
          {result ? (
            <>
              <Action.CopyToClipboard title="Copy Prompt" content={result.improved_prompt} />
              <Action.Paste title="Paste Prompt" content={result.improved_prompt} />
              <Action
                title="Refine"
                icon={Icon.Pencil}
                shortcut={Keyboard.Shortcut.Common.Edit}
                onAction={() => push(<ImproveForm prefs={prefs} parent={result} />)}
              />
              {result.id !== null ? (
                <Action
                  title="Show in History"
                  icon={Icon.Clock}
                  shortcut={{ modifiers: ["cmd", "shift"], key: "h" }}
                  onAction={() => push(<HistoryRowView id={result.id as number} prefs={prefs} />)}
                />
              ) : null}
            </>
          ) : null}
          {state.status === "streaming" ? (
            <Action
              title="Cancel"
              icon={Icon.XMarkCircle}
              shortcut={Keyboard.Shortcut.Common.Remove}
              onAction={() => {
                abortRef.current?.abort();
                dispatch({ type: "cancel" });
              }}
            />
          ) : null}
          {state.status === "error" || state.status === "cancelled" ? (
            <Action title="Try Again" icon={Icon.RotateClockwise} onAction={() => setAttempt((n) => n + 1)} />
          ) : null}
          {state.status === "error" && state.error.command ? (
            <Action
              title="Copy Start Command"
              icon={Icon.Terminal}
              onAction={() => void Clipboard.copy(state.error.command ?? "promptd").catch(() => undefined)}
            />
          ) : null}
          {state.text && !result ? <Action.CopyToClipboard title="Copy Partial Prompt" content={state.text} /> : null}
        </ActionPanel>
      }
    />
  );
}
