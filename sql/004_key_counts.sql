-- 004_key_counts.sql -- how many postings each segment holds per key.
--
-- print_segments.key_counts  STORE_KEY_SPACE bytes, one per key: 0 when the
--                            segment has no posting of the key, else
--                            1 + floor(16 log2(count)) (saturating at 255):
--                            a count to within 4.4%.  Lookups read these to
--                            know what a key costs before fetching it, and
--                            fetch the rarest keys of a clip first, within a
--                            budget of postings.  NULL on segments written
--                            before this migration: the store computes those
--                            from the segment's rows when it first needs them.

ALTER TABLE print_segments ADD COLUMN key_counts bytea;
