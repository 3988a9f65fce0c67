-- conpere contract store, version 1: canonical records, sources, runs, cursors, history,
-- quarantine, held runs.
--
-- Text keys use the "C" collation: byte-wise order, identical on every server whatever
-- its locale, so the export order (and the primary-key index that serves it) is stable.
-- Record tables carry no foreign keys on purpose: the engine checks references set-wise
-- per run (and quarantines what fails), and per-row FK triggers would dominate bulk loads.

CREATE TABLE source (
    id          serial PRIMARY KEY,
    name        text COLLATE "C" NOT NULL UNIQUE,
    kind        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_run (
    id           bigserial PRIMARY KEY,
    source_id    int NOT NULL REFERENCES source (id),
    status       text NOT NULL CHECK (status IN
                   ('running', 'succeeded', 'succeeded_with_warnings', 'held', 'failed', 'rejected')),
    mode         text NOT NULL CHECK (mode IN ('full', 'incremental')),
    dry_run      boolean NOT NULL DEFAULT false,
    years        int[],          -- NULL: every year the source serves
    kinds        text[],         -- kinds a full read covers (absent records of these are deleted)
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    staged       bigint NOT NULL DEFAULT 0,
    inserted     bigint NOT NULL DEFAULT 0,
    updated      bigint NOT NULL DEFAULT 0,
    deleted      bigint NOT NULL DEFAULT 0,
    unchanged    bigint NOT NULL DEFAULT 0,
    quarantined  bigint NOT NULL DEFAULT 0,
    counts       jsonb,          -- the same counts per record kind
    error        text,
    hold_reason  text,
    cursor_after jsonb,          -- the cursor this run reached (committed with its data)
    hostname     text,
    pid          int,
    decided_by   text,           -- approve / reject of a held run
    decided_at   timestamptz
);
CREATE INDEX sync_run_source ON sync_run (source_id, id DESC);

CREATE TABLE source_cursor (
    source_id   int PRIMARY KEY REFERENCES source (id),
    cursor      jsonb NOT NULL,
    run_id      bigint NOT NULL REFERENCES sync_run (id),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE quarantine (
    id         bigserial PRIMARY KEY,
    run_id     bigint NOT NULL REFERENCES sync_run (id),
    source_id  int NOT NULL REFERENCES source (id),
    kind       text,
    key        text,
    reason     text NOT NULL,
    location   text,
    payload    text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_run ON quarantine (run_id);

-- The staged snapshot of a held run, applied on approval: records and tombstones in
-- canonical line form, and the keys held back by quarantine (kept as stored).
CREATE TABLE held_record (
    run_id  bigint NOT NULL REFERENCES sync_run (id),
    what    text NOT NULL CHECK (what IN ('record', 'tombstone', 'held_back')),
    line    text NOT NULL
);
CREATE INDEX held_record_run ON held_record (run_id);

CREATE TABLE student (
    source_id    int NOT NULL,
    student      text COLLATE "C" NOT NULL,
    ine          text,
    family_name  text NOT NULL,
    usual_name   text,
    given_name   text NOT NULL,
    birth_date   date,
    email        text,
    login        text,
    hash         bigint NOT NULL,
    deleted_at   timestamptz,
    created_run  bigint NOT NULL,
    changed_run  bigint NOT NULL,
    PRIMARY KEY (source_id, student)
);
CREATE INDEX student_ine ON student (ine) WHERE ine IS NOT NULL;

CREATE TABLE node (
    source_id    int NOT NULL,
    year         int NOT NULL,
    node         text COLLATE "C" NOT NULL,
    kind         text NOT NULL,
    code         text NOT NULL,
    version      text,
    label        text NOT NULL,
    ects         double precision,
    period       text,
    hash         bigint NOT NULL,
    deleted_at   timestamptz,
    created_run  bigint NOT NULL,
    changed_run  bigint NOT NULL,
    PRIMARY KEY (source_id, year, node)
);

CREATE TABLE edge (
    source_id    int NOT NULL,
    year         int NOT NULL,
    parent       text COLLATE "C" NOT NULL,
    child        text COLLATE "C" NOT NULL,
    mandatory    boolean NOT NULL,
    min          int,
    max          int,
    position     int,
    hash         bigint NOT NULL,
    deleted_at   timestamptz,
    created_run  bigint NOT NULL,
    changed_run  bigint NOT NULL,
    PRIMARY KEY (source_id, year, parent, child)
);

CREATE TABLE registration (
    source_id         int NOT NULL,
    year              int NOT NULL,
    student           text COLLATE "C" NOT NULL,
    step              text COLLATE "C" NOT NULL,
    diploma           text,
    status            text NOT NULL,
    regime            text NOT NULL,
    main              boolean NOT NULL,
    special_statuses  text[] NOT NULL,
    hash              bigint NOT NULL,
    deleted_at        timestamptz,
    created_run       bigint NOT NULL,
    changed_run       bigint NOT NULL,
    PRIMARY KEY (source_id, year, student, step)
);

CREATE TABLE enrolment (
    source_id     int NOT NULL,
    year          int NOT NULL,
    student       text COLLATE "C" NOT NULL,
    step          text COLLATE "C" NOT NULL,
    node          text COLLATE "C" NOT NULL,
    via           text,
    carried_over  boolean NOT NULL,
    exempted      boolean NOT NULL,
    hash          bigint NOT NULL,
    deleted_at    timestamptz,
    created_run   bigint NOT NULL,
    changed_run   bigint NOT NULL,
    PRIMARY KEY (source_id, year, student, step, node)
);

CREATE TABLE result (
    source_id    int NOT NULL,
    year         int NOT NULL,
    student      text COLLATE "C" NOT NULL,
    node         text COLLATE "C" NOT NULL,
    session      text COLLATE "C" NOT NULL,
    grade        double precision,
    scale        double precision,
    outcome      text,
    ects_earned  double precision,
    hash         bigint NOT NULL,
    deleted_at   timestamptz,
    created_run  bigint NOT NULL,
    changed_run  bigint NOT NULL,
    PRIMARY KEY (source_id, year, student, node, session)
);

-- History: one row per insert / update / delete of a record, in one table per kind whose
-- `before` and `after` are typed records (the kind's key and data columns). Writing a
-- typed row costs a fraction of building JSON, which matters when a first load writes a
-- million of them; the `history` view below gives every kind as JSON for readers.
-- Indexed by run only (BRIN: rows are appended in run order, the index costs nothing).
CREATE TYPE student_record AS (
    student text, ine text, family_name text, usual_name text, given_name text,
    birth_date date, email text, login text);
CREATE TYPE node_record AS (
    year int, node text, kind text, code text, version text, label text,
    ects double precision, period text);
CREATE TYPE edge_record AS (
    year int, parent text, child text, mandatory boolean, min int, max int, position int);
CREATE TYPE registration_record AS (
    year int, student text, step text, diploma text, status text, regime text,
    main boolean, special_statuses text[]);
CREATE TYPE enrolment_record AS (
    year int, student text, step text, node text, via text, carried_over boolean,
    exempted boolean);
CREATE TYPE result_record AS (
    year int, student text, node text, session text, grade double precision,
    scale double precision, outcome text, ects_earned double precision);

CREATE TABLE student_history (
    run_id     bigint NOT NULL,
    source_id  int NOT NULL,
    op         text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    before     student_record,
    after      student_record,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE node_history (
    run_id     bigint NOT NULL,
    source_id  int NOT NULL,
    op         text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    before     node_record,
    after      node_record,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE edge_history (
    run_id     bigint NOT NULL,
    source_id  int NOT NULL,
    op         text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    before     edge_record,
    after      edge_record,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE registration_history (
    run_id     bigint NOT NULL,
    source_id  int NOT NULL,
    op         text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    before     registration_record,
    after      registration_record,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE enrolment_history (
    run_id     bigint NOT NULL,
    source_id  int NOT NULL,
    op         text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    before     enrolment_record,
    after      enrolment_record,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE result_history (
    run_id     bigint NOT NULL,
    source_id  int NOT NULL,
    op         text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    before     result_record,
    after      result_record,
    at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX student_history_run ON student_history USING brin (run_id);
CREATE INDEX node_history_run ON node_history USING brin (run_id);
CREATE INDEX edge_history_run ON edge_history USING brin (run_id);
CREATE INDEX registration_history_run ON registration_history USING brin (run_id);
CREATE INDEX enrolment_history_run ON enrolment_history USING brin (run_id);
CREATE INDEX result_history_run ON result_history USING brin (run_id);

-- Every change of every kind, as JSON with the export's field names.
CREATE VIEW history AS
SELECT run_id, source_id, 'student' AS kind, op,
       jsonb_build_object('student', (coalesce(after, before)).student) AS key,
       (coalesce(after, before)).student AS student,
       to_jsonb(before) AS before, to_jsonb(after) AS after, at
FROM student_history
UNION ALL
SELECT run_id, source_id, 'node', op,
       jsonb_build_object('year', (coalesce(after, before)).year, 'node', (coalesce(after, before)).node),
       NULL, to_jsonb(before), to_jsonb(after), at
FROM node_history
UNION ALL
SELECT run_id, source_id, 'edge', op,
       jsonb_build_object('year', (coalesce(after, before)).year, 'parent', (coalesce(after, before)).parent,
                          'child', (coalesce(after, before)).child),
       NULL, to_jsonb(before), to_jsonb(after), at
FROM edge_history
UNION ALL
SELECT run_id, source_id, 'registration', op,
       jsonb_build_object('year', (coalesce(after, before)).year, 'student', (coalesce(after, before)).student,
                          'step', (coalesce(after, before)).step),
       (coalesce(after, before)).student, to_jsonb(before), to_jsonb(after), at
FROM registration_history
UNION ALL
SELECT run_id, source_id, 'enrolment', op,
       jsonb_build_object('year', (coalesce(after, before)).year, 'student', (coalesce(after, before)).student,
                          'step', (coalesce(after, before)).step, 'node', (coalesce(after, before)).node),
       (coalesce(after, before)).student, to_jsonb(before), to_jsonb(after), at
FROM enrolment_history
UNION ALL
SELECT run_id, source_id, 'result', op,
       jsonb_build_object('year', (coalesce(after, before)).year, 'student', (coalesce(after, before)).student,
                          'node', (coalesce(after, before)).node, 'session', (coalesce(after, before)).session),
       (coalesce(after, before)).student, to_jsonb(before), to_jsonb(after), at
FROM result_history;
