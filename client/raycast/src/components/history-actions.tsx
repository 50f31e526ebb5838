import {
  Action,
  ActionPanel,
  Alert,
  Icon,
  Keyboard,
  Toast,
  confirmAlert,
  showToast,
  useNavigation,
} from "@raycast/api";
import type { HistoryRow, PromptdClient } from "promptd-client";

import { showError } from "../client";
import { truncate } from "../lib/format";
import type { Preferences } from "../lib/params";
import { ImproveForm } from "./improve-form";

/** Copy, paste, refine and delete for one history row. */
export function HistoryActions({
  row,
  client,
  prefs,
  onDeleted,
  extra,
}: {
  row: HistoryRow;
  client: PromptdClient;
  prefs: Preferences;
  onDeleted: (id: number) => void;
  extra?: JSX.Element;
}) {
  const { push } = useNavigation();

  async function remove() {
    const confirmed = await confirmAlert({
      title: "Delete this prompt?",
      message: truncate(row.original_idea, 120),
      primaryAction: { title: "Delete", style: Alert.ActionStyle.Destructive },
    });
    if (!confirmed) return;
    try {
      await client.history.delete({ id: row.id });
      onDeleted(row.id);
      await showToast({ style: Toast.Style.Success, title: "Deleted" });
    } catch (err) {
      await showError(err);
    }
  }

  return (
    <ActionPanel>
      <Action.CopyToClipboard title="Copy Prompt" content={row.improved_prompt} />
      <Action.Paste title="Paste Prompt" content={row.improved_prompt} />
      <Action
        title="Refine"
        icon={Icon.Pencil}
        shortcut={Keyboard.Shortcut.Common.Edit}
        onAction={() => push(<ImproveForm prefs={prefs} parent={row} />)}
      />
      <Action.CopyToClipboard
        title="Copy Original Idea"
        content={row.original_idea}
        shortcut={Keyboard.Shortcut.Common.CopyName}
      />
      {extra}
      <Action
        title="Delete"
        icon={Icon.Trash}
        style={Action.Style.Destructive}
        shortcut={Keyboard.Shortcut.Common.Remove}
        onAction={() => void remove()}
      />
    </ActionPanel>
  );
}
