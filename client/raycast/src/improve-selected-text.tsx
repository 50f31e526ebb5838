import { Clipboard, Toast, getSelectedText, showHUD, showToast } from "@raycast/api";

import { createClient, getPrefs, showError } from "./client";
import { plain } from "./lib/format";
import { buildImproveParams, validateIdea } from "./lib/params";

/** Improve Selected Text: improves the selection, then pastes or copies the result. */
export default async function Command() {
  const prefs = getPrefs();
  let selected: string;
  try {
    selected = await getSelectedText();
  } catch {
    await showToast({ style: Toast.Style.Failure, title: "No text selected", message: "Select some text first." });
    return;
  }
  const problem = validateIdea(selected);
  if (problem) {
    await showToast({ style: Toast.Style.Failure, title: "Cannot improve the selection", message: problem });
    return;
  }
  const toast = await showToast({ style: Toast.Style.Animated, title: "Improving…" });
  const client = createClient(prefs);
  try {
    const result = await client.improve(buildImproveParams({ idea: selected }, prefs));
    const note = result.fallback_from ? plain(` (by ${result.provider}: ${result.fallback_from} was unavailable)`) : "";
    if (prefs.selectedTextAction === "copy") {
      await Clipboard.copy(result.improved_prompt);
      await showHUD(`Copied the improved prompt${note}`);
    } else {
      await Clipboard.paste(result.improved_prompt);
      await showHUD(`Pasted the improved prompt${note}`);
    }
  } catch (err) {
    await showError(err, toast);
  } finally {
    client.close();
  }
}
