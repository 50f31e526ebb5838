import { Action, ActionPanel, Form, Icon, useNavigation } from "@raycast/api";
import type { ImproveParams, ImproveResult } from "promptd-client";
import { useEffect, useState } from "react";

import { showError, useClient } from "../client";
import { plain, truncate } from "../lib/format";
import {
  DAEMON_DEFAULT,
  MODES,
  PROVIDERS,
  buildImproveParams,
  validateContext,
  validateIdea,
  type ImproveFormValues,
  type Preferences,
} from "../lib/params";
import { ImproveView } from "./improve-view";

const PROVIDER_TITLES: Record<string, string> = {
  ollama: "Ollama",
  openai: "OpenAI-compatible",
  anthropic: "Anthropic",
  gemini: "Gemini",
  builtin: "Builtin (offline)",
};

/**
 * The Improve Prompt form: idea, context, mode, provider and model (choices
 * from the daemon's `models`). With `parent` it refines that history row.
 */
export function ImproveForm({
  prefs,
  parent,
  initialIdea,
}: {
  prefs: Preferences;
  parent?: Pick<ImproveResult, "id" | "improved_prompt"> | undefined;
  initialIdea?: string;
}) {
  const { push } = useNavigation();
  const client = useClient();
  const [models, setModels] = useState<string[] | undefined>(undefined);
  const [loadingModels, setLoadingModels] = useState(true);
  const [ideaError, setIdeaError] = useState<string | undefined>();
  const [contextError, setContextError] = useState<string | undefined>();

  useEffect(() => {
    let live = true;
    client
      .models({ timeoutMs: 10000 })
      .then((r) => {
        if (live) setModels(r.models);
      })
      .catch((err: unknown) => {
        // The model list is a convenience; only a missing daemon is worth saying now.
        if (live && (err as { kind?: string })?.kind === "not_running") void showError(err);
      })
      .finally(() => {
        if (live) setLoadingModels(false);
      });
    return () => {
      live = false;
    };
  }, [client]);

  function submit(values: ImproveFormValues) {
    const ideaProblem = validateIdea(values.idea);
    const contextProblem = validateContext(values.context);
    setIdeaError(ideaProblem);
    setContextError(contextProblem);
    if (ideaProblem || contextProblem) return;
    const params: ImproveParams = buildImproveParams(values, prefs, { parentId: parent?.id ?? null });
    push(<ImproveView params={params} prefs={prefs} />);
  }

  const defaultModel = prefs.model?.trim() || DAEMON_DEFAULT;
  const modelChoices = models && models.length > 0 ? models : undefined;

  return (
    <Form
      isLoading={loadingModels}
      navigationTitle={parent ? `Refine #${parent.id}` : "Improve Prompt"}
      actions={
        <ActionPanel>
          <Action.SubmitForm title={parent ? "Refine" : "Improve"} icon={Icon.Wand} onSubmit={submit} />
        </ActionPanel>
      }
    >
      {parent ? <Form.Description title="Refining" text={truncate(parent.improved_prompt, 300)} /> : null}
      <Form.TextArea
        id="idea"
        title={parent ? "What to Change" : "Idea"}
        placeholder={parent ? "Make it shorter and friendlier" : "email my landlord about the broken heater"}
        defaultValue={initialIdea}
        error={ideaError}
        onChange={() => ideaError && setIdeaError(undefined)}
        onBlur={(e) => setIdeaError(validateIdea(e.target.value))}
      />
      <Form.TextArea
        id="context"
        title="Context"
        placeholder="Optional background: audience, constraints, what you tried"
        error={contextError}
        onChange={() => contextError && setContextError(undefined)}
      />
      <Form.Separator />
      <Form.Dropdown id="provider" title="Provider" defaultValue={prefs.defaultProvider || DAEMON_DEFAULT}>
        <Form.Dropdown.Item value={DAEMON_DEFAULT} title="Daemon's Default" />
        {PROVIDERS.map((p) => (
          <Form.Dropdown.Item key={p} value={p} title={PROVIDER_TITLES[p] ?? p} />
        ))}
      </Form.Dropdown>
      {modelChoices ? (
        <Form.Dropdown id="model" title="Model" defaultValue={defaultModel}>
          <Form.Dropdown.Item value={DAEMON_DEFAULT} title="Daemon's Default" />
          {defaultModel !== DAEMON_DEFAULT && !modelChoices.includes(defaultModel) ? (
            <Form.Dropdown.Item value={defaultModel} title={plain(defaultModel)} />
          ) : null}
          {modelChoices.map((m) => (
            <Form.Dropdown.Item key={m} value={m} title={plain(m)} />
          ))}
        </Form.Dropdown>
      ) : (
        <Form.TextField id="model" title="Model" placeholder="Daemon's default" defaultValue={prefs.model ?? ""} />
      )}
      <Form.Dropdown id="mode" title="Mode" defaultValue={prefs.mode || DAEMON_DEFAULT}>
        <Form.Dropdown.Item value={DAEMON_DEFAULT} title="Daemon's Default" />
        {MODES.map((m) => (
          <Form.Dropdown.Item key={m} value={m} title={m === "zero-shot" ? "Zero-shot" : "Few-shot"} />
        ))}
      </Form.Dropdown>
    </Form>
  );
}
