-- Full-text search over the idea, its context and the improved prompt.
-- External content: the text lives once, in prompt_history; the FTS table
-- holds only the index. Triggers keep it in step, including deletes, so a
-- deleted row leaves the index too. Porter stemming: "heater" finds
-- "heaters"; remove_diacritics: "cafe" finds "café".
CREATE VIRTUAL TABLE prompt_history_fts USING fts5(
    original_idea, context, improved_prompt,
    content = 'prompt_history', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER prompt_history_fts_ai AFTER INSERT ON prompt_history BEGIN
    INSERT INTO prompt_history_fts(rowid, original_idea, context, improved_prompt)
    VALUES (new.id, new.original_idea, new.context, new.improved_prompt);
END;

CREATE TRIGGER prompt_history_fts_ad AFTER DELETE ON prompt_history BEGIN
    INSERT INTO prompt_history_fts(prompt_history_fts, rowid, original_idea, context,
                                   improved_prompt)
    VALUES ('delete', old.id, old.original_idea, old.context, old.improved_prompt);
END;

CREATE TRIGGER prompt_history_fts_au AFTER UPDATE OF original_idea, context, improved_prompt
ON prompt_history BEGIN
    INSERT INTO prompt_history_fts(prompt_history_fts, rowid, original_idea, context,
                                   improved_prompt)
    VALUES ('delete', old.id, old.original_idea, old.context, old.improved_prompt);
    INSERT INTO prompt_history_fts(rowid, original_idea, context, improved_prompt)
    VALUES (new.id, new.original_idea, new.context, new.improved_prompt);
END;

-- Adopted rows become searchable.
INSERT INTO prompt_history_fts(prompt_history_fts) VALUES ('rebuild');
