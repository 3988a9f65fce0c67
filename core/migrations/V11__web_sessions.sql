-- Browser sessions (conpere_web::sessions, through tower-sessions). A row is keyed by the
-- SHA-256 of the session id, so the table never holds a cookie's value; the CAS ticket
-- that opened a session is in its data only as a SHA-256 too (`identity.session_index`),
-- for the CAS server's single logout to find it.
CREATE TABLE web_session (
    key        text PRIMARY KEY,
    data       jsonb NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX web_session_expiry ON web_session (expires_at);
CREATE INDEX web_session_cas ON web_session ((data -> 'identity' ->> 'session_index'));
