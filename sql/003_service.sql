-- 003_service.sql -- the HTTP matching service: API keys, uploads and the
-- matches found in them, with their evidence, for review.
--
-- api_keys   A key is shown once, when made; only its SHA-256 is kept.
--            prefix is its first characters, to tell keys apart in lists.
--            A key belongs to a tenant and has a role: 'client' (match
--            clips, read its tenant's results and tracks) or 'admin' (the
--            same, plus the service's operational routes).  Revoked keys
--            stay, with revoked_at, for the audit trail.
--
-- uploads    One clip sent to POST /v1/matches: who sent it, the caller's
--            own reference (client_ref), what it was, how long it took and
--            the upload's flag (the strongest of its matches').  public_id
--            is what the API shows: not guessable, unlike id.  result is
--            the response as it was sent, which GET /v1/matches/{id}
--            returns again.
--
-- matches    One catalog recording found in an upload, with the figures the
--            API returns and evidence: the aligned segments (query and
--            reference times, aligned prints) and the aligned points
--            themselves, for review.  tenant_id is the uploader's.
--            status is the review state (pending, confirmed, dismissed),
--            kept in step with the review log of the review tools.

CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    name        text NOT NULL,
    prefix      text NOT NULL,
    digest      bytea NOT NULL UNIQUE CHECK (octet_length(digest) = 32),
    role        text NOT NULL CHECK (role IN ('client', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE uploads (
    id             bigserial PRIMARY KEY,
    public_id      uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    tenant_id      bigint NOT NULL REFERENCES tenants (id),
    key_id         bigint REFERENCES api_keys (id),
    client_ref     text,
    content_type   text,
    bytes          bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    duration_s     double precision NOT NULL DEFAULT 0 CHECK (duration_s >= 0),
    prints         int NOT NULL DEFAULT 0 CHECK (prints >= 0),
    processing_ms  double precision NOT NULL DEFAULT 0,
    flag           text NOT NULL DEFAULT 'none'
                   CHECK (flag IN ('likely_infringement', 'possible_reuse', 'none')),
    result         jsonb,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX uploads_tenant_created ON uploads (tenant_id, created_at);

CREATE TABLE matches (
    id               bigserial PRIMARY KEY,
    upload_id        bigint NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    tenant_id        bigint NOT NULL REFERENCES tenants (id),
    track_id         bigint NOT NULL REFERENCES tracks (id),
    rank             int NOT NULL CHECK (rank >= 1),
    score            int NOT NULL CHECK (score >= 0),
    prints           int NOT NULL CHECK (prints >= 0),
    confidence       double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    query_start      double precision NOT NULL,
    query_end        double precision NOT NULL,
    ref_start        double precision NOT NULL,
    ref_end          double precision NOT NULL,
    matched_seconds  double precision NOT NULL,
    coverage         double precision NOT NULL CHECK (coverage BETWEEN 0 AND 1),
    speed            double precision,
    tempo            double precision,
    pitch_semitones  double precision,
    change           text,
    flag             text NOT NULL
                     CHECK (flag IN ('likely_infringement', 'possible_reuse', 'none')),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'confirmed', 'dismissed')),
    evidence         jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX matches_upload ON matches (upload_id);
CREATE INDEX matches_tenant_created ON matches (tenant_id, created_at);
CREATE INDEX matches_track ON matches (track_id);
CREATE INDEX matches_status ON matches (status, created_at);
