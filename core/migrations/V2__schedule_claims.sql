-- conpere contract store, version 2: scheduled runs claimed once.
--
-- Several daemons may serve one store (two servers for resilience). Each scheduled run of
-- a source is due at one instant; the daemon whose INSERT of (source, due_at) succeeds
-- runs it, the others see the row and skip it. The row also tells a daemon that starts
-- late which run was the last one due (`catch_up`).

CREATE TABLE schedule_claim (
    source      text COLLATE "C" NOT NULL,
    due_at      timestamptz NOT NULL,
    claimed_by  text NOT NULL,          -- host:pid of the daemon
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    run_id      bigint REFERENCES sync_run (id),
    PRIMARY KEY (source, due_at)
);
