-- Deletions a run did not apply: a full read that could not read some line with its key
-- cannot vouch for the absence of any record of that kind, and a record that a live
-- record still refers to is not deleted (the store never holds an orphan).
ALTER TABLE sync_run
    ADD COLUMN deferred       bigint NOT NULL DEFAULT 0,
    ADD COLUMN deferred_notes text[] NOT NULL DEFAULT '{}';  -- one line per kind and cause
