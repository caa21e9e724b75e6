-- 002_store.sql -- the fingerprint store (store/em_store.h has the layout,
-- docs/architecture.md the reasons).
--
-- print_segments  One row per segment of the store.  A segment's postings
--                 are in its own table postings_<id> (start int4 primary
--                 key, data bytea), made by the store code when it writes
--                 the segment and dropped when a merge replaces it, so a
--                 merge leaves no dead rows behind.  shard and
--                 [key_lo, key_hi) say which part of the key space the
--                 segment covers: one shard (0, the whole space) on a single
--                 server; a store spread over several servers gives each its
--                 shards.  level counts the merges behind the segment.
--
-- store_meta      One row: generation, bumped by every change that a
--                 reader's cache of segments and deleted tracks must see.
--
-- tracks          now: prints (how many the track has in the store), the
--                 segment that brought them in, source (the path it was
--                 indexed from, as given), purged_at (set when a merge
--                 over the whole store has dropped a deleted track's
--                 postings).  A deleted file may be indexed again: the
--                 uniqueness of (tenant, sha256) holds among tracks not
--                 deleted.  Track ids must fit the store's 32 bits.

CREATE TABLE store_meta (
    id          int PRIMARY KEY CHECK (id = 1),
    generation  bigint NOT NULL DEFAULT 0
);
INSERT INTO store_meta (id) VALUES (1);

CREATE TABLE print_segments (
    id          bigserial PRIMARY KEY,
    shard       int NOT NULL DEFAULT 0 CHECK (shard >= 0),
    key_lo      int NOT NULL CHECK (key_lo >= 0),
    key_hi      int NOT NULL CHECK (key_hi > key_lo),
    level       int NOT NULL DEFAULT 0 CHECK (level >= 0),
    prints      bigint NOT NULL CHECK (prints >= 0),
    rows        bigint NOT NULL DEFAULT 0 CHECK (rows >= 0),
    tracks      int NOT NULL DEFAULT 0 CHECK (tracks >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION store_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE store_meta SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER print_segments_bump AFTER INSERT OR DELETE ON print_segments
    FOR EACH STATEMENT EXECUTE FUNCTION store_bump();

ALTER TABLE tracks
    ADD COLUMN prints      int CHECK (prints >= 0),
    ADD COLUMN segment_id  bigint,
    ADD COLUMN purged_at   timestamptz,
    ADD COLUMN source      text,
    ADD CONSTRAINT tracks_id_fits CHECK (id < 4294967296);

ALTER TABLE tracks DROP CONSTRAINT tracks_tenant_id_sha256_key;
CREATE UNIQUE INDEX tracks_tenant_sha256_live ON tracks (tenant_id, sha256)
    WHERE status <> 'deleted';
CREATE INDEX tracks_deleted ON tracks (id) WHERE status = 'deleted' AND purged_at IS NULL;
CREATE INDEX tracks_tenant_source ON tracks (tenant_id, source) WHERE status <> 'deleted';

CREATE TRIGGER tracks_bump AFTER UPDATE OF status ON tracks
    FOR EACH STATEMENT EXECUTE FUNCTION store_bump();

-- index runs: where the files came from, and how the run was stopped
ALTER TABLE index_runs
    ADD COLUMN source   text,
    ADD COLUMN threads  int CHECK (threads > 0),
    ADD COLUMN message  text;
