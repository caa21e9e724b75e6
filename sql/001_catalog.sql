-- 001_catalog.sql -- the catalog: who owns which recordings, and the runs
-- of the indexer that brought them in.  The prints themselves live in the
-- fingerprint store, which has tables of its own.
--
-- tenants         One row per rights holder (a customer account).  Every
--                 other row belongs to a tenant; tenants never see each
--                 other's data.
--
-- tracks          One catalog recording of a tenant.  sha256 is the digest
--                 of the file's bytes: the same file indexed twice by one
--                 tenant is one track.  external_id is the tenant's own
--                 identifier (an ISRC, a catalog number), not unique: the
--                 tenant's data decides.  params_version and config_id name
--                 the fingerprint parameters of the track's prints
--                 (FP_PARAMS_VERSION and fp_config_id(), an unsigned 32-bit
--                 value, hence bigint); prints made with different config
--                 ids are never compared.  status: 'indexing' while prints
--                 are written, 'indexed' when they are complete, 'failed'
--                 when the file could not be fingerprinted, 'deleted' when
--                 the tenant withdrew it (the row stays for the audit
--                 trail).  updated_at follows every update (trigger below).
--
-- index_runs      One run of the indexer over a set of files for a tenant:
--                 its progress (files_total, files_done, files_failed) and
--                 totals (seconds of audio, prints written), for progress
--                 reports and throughput figures.  status: 'running' until
--                 it ends 'finished' (every file handled, some may have
--                 failed), 'failed' (the run itself stopped on an error) or
--                 'cancelled'.
--
-- index_failures  The files of a run that could not be indexed and why
--                 (the error message, as the fingerprint core wrote it).
--                 Removed with their run.

CREATE TABLE tenants (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tracks (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    external_id     text,
    title           text,
    artist          text,
    duration_s      double precision CHECK (duration_s >= 0),
    sha256          bytea NOT NULL CHECK (octet_length(sha256) = 32),
    params_version  int NOT NULL,
    config_id       bigint NOT NULL CHECK (config_id BETWEEN 0 AND 4294967295),
    status          text NOT NULL DEFAULT 'indexing'
                    CHECK (status IN ('indexing', 'indexed', 'failed', 'deleted')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, sha256)
);

CREATE INDEX tracks_tenant_external_id ON tracks (tenant_id, external_id);

CREATE FUNCTION tracks_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER tracks_touch BEFORE UPDATE ON tracks
    FOR EACH ROW EXECUTE FUNCTION tracks_touch();

CREATE TABLE index_runs (
    id             bigserial PRIMARY KEY,
    tenant_id      bigint NOT NULL REFERENCES tenants (id),
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    status         text NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'finished', 'failed', 'cancelled')),
    files_total    int NOT NULL DEFAULT 0 CHECK (files_total >= 0),
    files_done     int NOT NULL DEFAULT 0 CHECK (files_done >= 0),
    files_failed   int NOT NULL DEFAULT 0 CHECK (files_failed >= 0),
    seconds_audio  double precision NOT NULL DEFAULT 0 CHECK (seconds_audio >= 0),
    prints         bigint NOT NULL DEFAULT 0 CHECK (prints >= 0)
);

CREATE INDEX index_runs_tenant ON index_runs (tenant_id, started_at);

CREATE TABLE index_failures (
    id      bigserial PRIMARY KEY,
    run_id  bigint NOT NULL REFERENCES index_runs (id) ON DELETE CASCADE,
    path    text NOT NULL,
    reason  text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX index_failures_run ON index_failures (run_id);
