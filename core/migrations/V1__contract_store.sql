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

-- One row per insert / update / delete of a record. `before` and `after` are whole
-- records with the export's field names. No primary key: rows are only ever appended and
-- read by run (BRIN, nearly free to maintain) or by student.
CREATE TABLE history (
    run_id     bigint NOT NULL,
    source_id  int NOT NULL,
    kind       text NOT NULL,
    op         text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    key        jsonb NOT NULL,
    student    text COLLATE "C",
    before     jsonb,
    after      jsonb,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX history_run ON history USING brin (run_id);
CREATE INDEX history_student ON history (source_id, student) WHERE student IS NOT NULL;

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
