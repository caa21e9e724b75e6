-- 008_match_copies.sql -- the copies of a match's audio in the catalog.
--
-- A catalog holds one recording more than once: the single, the album and
-- the compilation; a label's and its distributor's delivery of one master;
-- two tenants who both hold it.  A clip of it aligns with every copy, on
-- the same query prints, and the service reports them as one match that
-- lists every copy.  Each copy is stored as a match row of its own, so that
-- each holder's claim is reviewed and decided on its own or all of them at
-- once: the rows of one upload with the same rank are copies of one audio,
-- copy_index 0 the one ranked (the strongest alignment), 1.. the others in
-- the order the response lists them.

ALTER TABLE matches ADD COLUMN copy_index int NOT NULL DEFAULT 0 CHECK (copy_index >= 0);

CREATE INDEX matches_upload_rank ON matches (upload_id, rank);
