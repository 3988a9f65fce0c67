-- Learning contracts, part 2: the lifecycle, amendments and the evidence chain.
--
-- `contract` is the head of a contract: the version worked on (`version`, its `hash`, in
-- `state`), the
-- version in force (`in_force`, validated), the version an open amendment departs from
-- (`amendment_of`), the measures and objectives people set (NULL until someone does: the
-- catalogue's suggestions apply), and the head of its evidence chain. Versions and events
-- are append-only: triggers refuse any UPDATE, DELETE or TRUNCATE, and
-- `conpere contracts verify` catches what a superuser could still edit by hand.
ALTER TABLE contract
    ADD COLUMN hash          text,                 -- the hash of `version`
    ADD COLUMN in_force      int,
    ADD COLUMN amendment_of  int,
    ADD COLUMN measures      jsonb,
    ADD COLUMN objectives    jsonb,
    ADD COLUMN events        int NOT NULL DEFAULT 0,
    ADD COLUMN head_hash     text NOT NULL
        DEFAULT 'sha256:0000000000000000000000000000000000000000000000000000000000000000';

UPDATE contract k SET hash = v.hash FROM contract_version v
 WHERE v.contract_id = k.id AND v.version = k.version;
ALTER TABLE contract ALTER COLUMN hash SET NOT NULL;

-- One event per action on a contract, hash-chained (DESIGN.md, "Evidence"): `event` is
-- the RFC 8785 text of the event without its hash, `hash` = sha256 of prev_hash, "\n" and
-- that text. action, at, version, version_hash and bulk_id repeat fields of `event` for
-- queries; `verify` checks that they agree.
-- No foreign key to contract: an event is only ever written in the statement that
-- updates its contract's head (a key check per event was a fifth of a bulk validation),
-- contracts are never deleted (a trigger refuses it), and `verify` names an event whose
-- contract does not exist.
CREATE TABLE contract_event (
    contract_id  bigint NOT NULL,
    seq          int NOT NULL,
    action       text NOT NULL,
    at           timestamptz NOT NULL,
    version      int NOT NULL,
    version_hash text NOT NULL,
    bulk_id      bigint,
    event        text NOT NULL,
    prev_hash    text NOT NULL,
    hash         text NOT NULL,
    PRIMARY KEY (contract_id, seq)
);
-- A bulk action's events are found by bulk_id rarely (an audit): no index to keep up.
CREATE SEQUENCE contract_bulk_id;
ALTER TABLE contract_event ALTER COLUMN event SET STORAGE MAIN;

CREATE FUNCTION conpere_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER contract_version_append_only BEFORE UPDATE OR DELETE ON contract_version
    FOR EACH ROW EXECUTE FUNCTION conpere_append_only();
CREATE TRIGGER contract_version_no_truncate BEFORE TRUNCATE ON contract_version
    FOR EACH STATEMENT EXECUTE FUNCTION conpere_append_only();
CREATE TRIGGER contract_event_append_only BEFORE UPDATE OR DELETE ON contract_event
    FOR EACH ROW EXECUTE FUNCTION conpere_append_only();
CREATE TRIGGER contract_event_no_truncate BEFORE TRUNCATE ON contract_event
    FOR EACH STATEMENT EXECUTE FUNCTION conpere_append_only();

-- A contract is never deleted (a registration gone from the SIS closes its section).
CREATE FUNCTION conpere_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER contract_never_deleted BEFORE DELETE ON contract
    FOR EACH ROW EXECUTE FUNCTION conpere_never_deleted();
CREATE TRIGGER contract_no_truncate BEFORE TRUNCATE ON contract
    FOR EACH STATEMENT EXECUTE FUNCTION conpere_never_deleted();

-- `GET /api/v1/verify/{hash}` (public) finds a version by its hash: a hash index, smaller
-- and cheaper to keep than a B-tree on 71-character keys.
CREATE INDEX contract_version_by_hash ON contract_version USING hash (hash);
