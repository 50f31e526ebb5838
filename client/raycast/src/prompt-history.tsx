import { Action, Icon, Keyboard, List } from "@raycast/api";
import type { HistoryRow, HistorySearchRow } from "promptd-client";
import { useCallback, useEffect, useRef, useState } from "react";

import { getPrefs, showError, useClient } from "./client";
import { HistoryActions } from "./components/history-actions";
import { ListMetadata } from "./components/metadata";
import { describeError, type ErrorInfo } from "./lib/errors";
import { formatPercent, historyMarkdown, resultMetadata, snippetMarkdown, truncate } from "./lib/format";
import { historyRequest } from "./lib/params";

type Row = HistoryRow | HistorySearchRow;

/** Prompt History: recent prompts, or history.search as you type. */
export default function Command() {
  const prefs = getPrefs();
  const client = useClient();
  const [searchText, setSearchText] = useState("");
  const [rows, setRows] = useState<Row[]>([]);
  const [total, setTotal] = useState<number | undefined>();
  const [loading, setLoading] = useState(true);
  const [problem, setProblem] = useState<ErrorInfo | undefined>();
  const [reloads, setReloads] = useState(0);
  const latest = useRef(0);

  useEffect(() => {
    const ticket = ++latest.current;
    const req = historyRequest(searchText);
    setLoading(true);
    const call =
      req.method === "history.list"
        ? client.history
            .list(req.params)
            .then((r) => ({ items: r.items as Row[], total: r.total as number | undefined }))
        : client.history.search(req.params).then((r) => ({ items: r.items as Row[], total: undefined }));
    call
      .then(({ items, total: count }) => {
        if (ticket !== latest.current) return;
        setRows(items);
        setTotal(count);
        setProblem(undefined);
      })
      .catch((err: unknown) => {
        if (ticket !== latest.current) return;
        setRows([]);
        setProblem(describeError(err));
        void showError(err);
      })
      .finally(() => {
        if (ticket === latest.current) setLoading(false);
      });
  }, [client, searchText, reloads]);

  const onDeleted = useCallback((id: number) => {
    setRows((current) => current.filter((r) => r.id !== id));
    setTotal((t) => (t === undefined ? t : Math.max(0, t - 1)));
  }, []);

  const reload = (
    <Action
      title="Reload"
      icon={Icon.ArrowClockwise}
      shortcut={Keyboard.Shortcut.Common.Refresh}
      onAction={() => setReloads((n) => n + 1)}
    />
  );

  return (
    <List
      isLoading={loading}
      isShowingDetail={rows.length > 0}
      throttle
      filtering={false}
      searchBarPlaceholder="Search your prompts"
      onSearchTextChange={setSearchText}
      navigationTitle={total !== undefined ? `Prompt History (${total})` : "Prompt History"}
    >
      {problem ? (
        <List.EmptyView icon={Icon.ExclamationMark} title={problem.title} description={problem.message} />
      ) : (
        <List.EmptyView
          icon={Icon.Clock}
          title={searchText ? "No matching prompts" : "No prompts yet"}
          description={searchText ? "Try other words." : "Improve a prompt and it shows up here."}
        />
      )}
      {rows.map((row) => (
        <List.Item
          key={row.id}
          id={String(row.id)}
          title={truncate(row.original_idea, 80)}
          keywords={[row.framework, row.provider]}
          accessories={[
            { text: formatPercent(row.quality_score), tooltip: "Quality" },
            { date: new Date(row.timestamp), tooltip: row.timestamp },
          ]}
          detail={
            <List.Item.Detail
              markdown={
                "snippet" in row && row.snippet
                  ? `> ${snippetMarkdown(row.snippet)}\n\n${historyMarkdown(row)}`
                  : historyMarkdown(row)
              }
              metadata={<ListMetadata entries={resultMetadata(row)} />}
            />
          }
          actions={<HistoryActions row={row} client={client} prefs={prefs} onDeleted={onDeleted} extra={reload} />}
        />
      ))}
    </List>
  );
}
