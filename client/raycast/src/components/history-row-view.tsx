import { Detail, useNavigation } from "@raycast/api";
import type { HistoryRow } from "promptd-client";
import { useEffect, useState } from "react";

import { showError, useClient } from "../client";
import { describeError } from "../lib/errors";
import { historyMarkdown, resultMetadata } from "../lib/format";
import type { Preferences } from "../lib/params";
import { HistoryActions } from "./history-actions";
import { DetailMetadata } from "./metadata";

/** One history row by id (from "Show in History"). */
export function HistoryRowView({ id, prefs }: { id: number; prefs: Preferences }) {
  const client = useClient();
  const { pop } = useNavigation();
  const [row, setRow] = useState<HistoryRow | undefined>();
  const [problem, setProblem] = useState<string | undefined>();

  useEffect(() => {
    let live = true;
    client.history
      .get(id)
      .then((r) => live && setRow(r))
      .catch((err: unknown) => {
        if (!live) return;
        const info = describeError(err);
        setProblem(`**${info.title}.** ${info.message}`);
        void showError(err);
      });
    return () => {
      live = false;
    };
  }, [client, id]);

  if (!row) {
    return <Detail isLoading={!problem} navigationTitle={`History #${id}`} markdown={problem ?? ""} />;
  }
  return (
    <Detail
      navigationTitle={`History #${id}`}
      markdown={historyMarkdown(row)}
      metadata={<DetailMetadata entries={resultMetadata(row)} />}
      actions={<HistoryActions row={row} client={client} prefs={prefs} onDeleted={() => pop()} />}
    />
  );
}
