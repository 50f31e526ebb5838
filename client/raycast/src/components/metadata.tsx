import { Detail, List } from "@raycast/api";

import type { MetadataEntry } from "../lib/format";

/** The metadata panel of a Detail view. */
export function DetailMetadata({ entries }: { entries: MetadataEntry[] }) {
  return (
    <Detail.Metadata>
      {entries.map((e, i) => {
        if (e.kind === "separator") return <Detail.Metadata.Separator key={i} />;
        if (e.kind === "tags") {
          return (
            <Detail.Metadata.TagList key={i} title={e.title}>
              {e.tags.map((tag, j) => (
                <Detail.Metadata.TagList.Item key={j} text={tag} />
              ))}
            </Detail.Metadata.TagList>
          );
        }
        return <Detail.Metadata.Label key={i} title={e.title} text={e.text} />;
      })}
    </Detail.Metadata>
  );
}

/** The metadata panel of a List item's detail. */
export function ListMetadata({ entries }: { entries: MetadataEntry[] }) {
  return (
    <List.Item.Detail.Metadata>
      {entries.map((e, i) => {
        if (e.kind === "separator") return <List.Item.Detail.Metadata.Separator key={i} />;
        if (e.kind === "tags") {
          return (
            <List.Item.Detail.Metadata.TagList key={i} title={e.title}>
              {e.tags.map((tag, j) => (
                <List.Item.Detail.Metadata.TagList.Item key={j} text={tag} />
              ))}
            </List.Item.Detail.Metadata.TagList>
          );
        }
        return <List.Item.Detail.Metadata.Label key={i} title={e.title} text={e.text} />;
      })}
    </List.Item.Detail.Metadata>
  );
}
