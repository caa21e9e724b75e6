-- 007_evidence_json.sql -- a match's evidence kept as json, not jsonb.
--
-- The evidence (segments, up to 500 aligned points, the query's peaks) is
-- written once, with its match, and only ever read back whole by the
-- review CLI (evidence::text).  As jsonb every number of it became a
-- numeric: ~8 kB of text took ~21 kB and 1.3-1.5 ms of the database's
-- time to convert, most of the cost of storing a match.  json keeps the
-- text as written, checked for syntax, in a fifth of that time.
--
-- Where the server has it (PostgreSQL built with lz4, as Debian's is), the
-- long values of the evidence and the upload's result are compressed with
-- lz4 rather than pglz: faster to write, about as small for this text.

ALTER TABLE matches ALTER COLUMN evidence TYPE json USING evidence::json;

DO $$
BEGIN
    ALTER TABLE matches ALTER COLUMN evidence SET COMPRESSION lz4;
    ALTER TABLE uploads ALTER COLUMN result SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL; -- a server without lz4 keeps pglz
END
$$;
