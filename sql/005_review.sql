-- 005_review.sql -- the review of stored matches: who decided what, when
-- and why, kept for good.
--
-- review_log  One row per decision on a match: the state it left, the state
--             it entered, the reviewer, an optional note, the time.  The
--             states are those of matches.status: pending, confirmed,
--             dismissed.  Taking back a decision (leaving confirmed or
--             dismissed) needs a note: the reason.  The log is append-only:
--             a trigger refuses UPDATE, DELETE and TRUNCATE, and a match
--             with decisions cannot be deleted (the foreign key has no
--             cascade), so no history is ever lost.
--
-- matches.status  The current state, for the queue's queries.  A trigger
--             allows it to change only to the state of the match's latest
--             review_log row: every change of state has its log row, written
--             first, in the same transaction.

CREATE TABLE review_log (
    id           bigserial PRIMARY KEY,
    match_id     bigint NOT NULL REFERENCES matches (id),
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    from_status  text NOT NULL CHECK (from_status IN ('pending', 'confirmed', 'dismissed')),
    to_status    text NOT NULL CHECK (to_status IN ('pending', 'confirmed', 'dismissed')),
    reviewer     text NOT NULL CHECK (length(btrim(reviewer)) > 0),
    note         text,
    decided_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (from_status <> to_status),
    CHECK (from_status = 'pending' OR length(btrim(coalesce(note, ''))) > 0)
);

CREATE INDEX review_log_match ON review_log (match_id, id);
CREATE INDEX review_log_tenant ON review_log (tenant_id, decided_at);

CREATE FUNCTION review_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'review_log is append-only: decisions are never changed or removed'
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'record a new decision instead (earmark review reopen|confirm|dismiss)';
END
$$;

CREATE TRIGGER review_log_no_update BEFORE UPDATE OR DELETE ON review_log
    FOR EACH ROW EXECUTE FUNCTION review_log_append_only();
CREATE TRIGGER review_log_no_truncate BEFORE TRUNCATE ON review_log
    FOR EACH STATEMENT EXECUTE FUNCTION review_log_append_only();

CREATE FUNCTION matches_status_logged() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NEW.status IS DISTINCT FROM
       (SELECT to_status FROM review_log WHERE match_id = NEW.id ORDER BY id DESC LIMIT 1) THEN
        RAISE EXCEPTION 'the review state of match % changes only with a review_log row', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER matches_status_logged BEFORE UPDATE OF status ON matches
    FOR EACH ROW EXECUTE FUNCTION matches_status_logged();

CREATE INDEX matches_score ON matches (score);
