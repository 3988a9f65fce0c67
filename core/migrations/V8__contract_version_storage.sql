-- A version's content is a few kilobytes of JSON text, written for every student at once
-- by a generation: lz4 compresses it several times faster than the default pglz. A server
-- built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE contract_version ALTER COLUMN content SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4: contract contents stay compressed with pglz';
END $$;

-- Versions are found by their contract (and number), never by hash alone: an index on the
-- hash only cost every generation its upkeep.
DROP INDEX contract_version_hash;
