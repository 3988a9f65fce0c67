-- A sync refused before its run could start (a manifest that refuses the drop, a missing
-- file, a source that cannot be listed) is recorded too, so that `runs list` shows
-- every night: status 'refused', the reason in `error`, nothing applied.
ALTER TABLE sync_run DROP CONSTRAINT sync_run_status_check;
ALTER TABLE sync_run ADD CONSTRAINT sync_run_status_check CHECK (status IN
    ('running', 'succeeded', 'succeeded_with_warnings', 'held', 'failed', 'rejected', 'refused'));

-- What an adapter said for the summary that is no record: rows a mapping's filter
-- skipped, per value; SIS codes that no table maps.
ALTER TABLE sync_run ADD COLUMN notes text[] NOT NULL DEFAULT '{}';
