-- Learning contracts (crate conpere-contracts): one per (source, year, student), made
-- from the synced store and refreshed in the transaction of every run that touches it.
-- A contract is never deleted; its versions are numbered 1, 2, …; a version's `content`
-- is the RFC 8785 serialisation its `hash` (sha256:<hex>) is computed from, kept as the
-- exact text so that anyone can recompute the hash.
CREATE TABLE contract (
    id             bigserial PRIMARY KEY,
    source_id      int NOT NULL REFERENCES source (id),
    year           int NOT NULL,
    student        text COLLATE "C" NOT NULL,
    state          text NOT NULL DEFAULT 'draft'
                   CHECK (state IN ('draft', 'proposed', 'signed', 'validated', 'refused', 'closed')),
    flags          text[] NOT NULL DEFAULT '{}',
    version        int NOT NULL DEFAULT 1,          -- the current version
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    refreshed_run  bigint,                         -- the run that last refreshed it
    UNIQUE (source_id, year, student)
);

CREATE TABLE contract_version (
    contract_id  bigint NOT NULL REFERENCES contract (id),
    version      int NOT NULL,
    hash         text NOT NULL,
    content      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    reason       text,
    PRIMARY KEY (contract_id, version)
);
CREATE INDEX contract_version_hash ON contract_version (hash);

-- Contract generation finds a node's parents.
CREATE INDEX edge_child ON edge (source_id, year, child);
-- A student's registrations to a step over the years (the `repeater` flag).
CREATE INDEX registration_student_step ON registration (source_id, student, step);
