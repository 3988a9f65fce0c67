-- When the source last changed each record, when it says so (OneRoster's
-- dateLastModified): a change read later but older than the stored version does not
-- overwrite it (nor a tombstone older than it delete it); such changes are counted as
-- `stale` in the run's counts.
ALTER TABLE student ADD COLUMN source_modified timestamptz;
ALTER TABLE node ADD COLUMN source_modified timestamptz;
ALTER TABLE edge ADD COLUMN source_modified timestamptz;
ALTER TABLE registration ADD COLUMN source_modified timestamptz;
ALTER TABLE enrolment ADD COLUMN source_modified timestamptz;
ALTER TABLE result ADD COLUMN source_modified timestamptz;
