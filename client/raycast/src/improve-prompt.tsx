import { getPrefs } from "./client";
import { ImproveForm } from "./components/improve-form";

/** Improve Prompt: the form, then a detail view that streams the result. */
export default function Command() {
  return <ImproveForm prefs={getPrefs()} />;
}
