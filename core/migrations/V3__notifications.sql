-- conpere contract store, version 3: notifications sent about runs.
--
-- `conpere serve` tells operators when a run fails or is held (and, if asked, when a
-- source recovers), by webhook or e-mail. Each delivery attempt to a channel is kept: the
-- admin API and `/metrics` show whether anyone was told, and "recovered" is sent only
-- after a failure was notified — whichever daemon notified it.

CREATE TABLE notification (
    id          bigserial PRIMARY KEY,
    source      text COLLATE "C" NOT NULL,
    run_id      bigint REFERENCES sync_run (id),   -- none when the run never started
    event       text NOT NULL CHECK (event IN ('failed', 'held', 'recovered')),
    channel     text NOT NULL,                      -- [notifications.<name>]
    sent_at     timestamptz NOT NULL DEFAULT now(),
    delivered   boolean NOT NULL,
    error       text                                -- why the delivery failed
);

CREATE INDEX notification_source ON notification (source, id);
