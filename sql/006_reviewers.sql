-- 006_reviewers.sql -- who may review, and for which tenant.
--
-- reviewers  A person who decides on matches (`earmark review`), by the
--            name the review log records.  tenant_id confines the person
--            to one tenant's matches (NULL: every tenant, for the
--            service's own staff).  Once any reviewer is registered,
--            decisions need a registered, enabled reviewer; disabled_at
--            keeps a departed reviewer's name for the history while
--            refusing new decisions.

CREATE TABLE reviewers (
    name         text PRIMARY KEY CHECK (length(btrim(name)) > 0),
    tenant_id    bigint REFERENCES tenants (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);
