-- 009_track_copies.sql -- copies known to the catalog: pairs of tracks that
-- are the same recording, or where one contains the other (a radio edit
-- inside the album version, an excerpt on a compilation, the same master
-- delivered by two tenants).
--
-- track_copies     One link between two tracks, found by looking the
--                  prints of one up against the whole store when it was
--                  indexed (or by `earmark catalog copies --scan`).  The
--                  pair is ordered (track_a < track_b) and unique.  Links
--                  cross tenants: every holder of a recording keeps its
--                  own track and its own claim; who sees which link is the
--                  readers' scope (the HTTP service shows a key only the
--                  copies within its tenant).
--                  relation: 'same' (the two cover each other) or
--                  'contains': then `longer` is the track that contains
--                  the other.  offset_s: where the shorter of the two
--                  begins in the longer, in seconds of the longer (about 0
--                  for 'same').  aligned_s: the seconds of the shorter
--                  aligned with the longer; coverage: aligned_s over the
--                  shorter's duration.  speed: the longer's time per the
--                  shorter's (1 for copies at the same speed).  frames:
--                  the aligned frames, the strength of the link.
--                  A link of a deleted track stays, for the audit trail,
--                  but is hidden: readers go through track_copy_links.
--
-- tracks           now: copies_checked_at, when the track was last looked
--                  up for copies (NULL: never, e.g. indexed before this
--                  migration; `earmark catalog copies --scan` does those).
--
-- track_copy_links Each live link seen from both of its tracks: track_id,
--                  other_id, and the relation from track_id's side
--                  ('same', 'contains': track_id contains other_id,
--                  'contained_in': track_id lies within other_id).  Links
--                  with a deleted track are not in it.

CREATE TABLE track_copies (
    track_a     bigint NOT NULL REFERENCES tracks (id),
    track_b     bigint NOT NULL REFERENCES tracks (id),
    relation    text NOT NULL CHECK (relation IN ('same', 'contains')),
    longer      bigint,
    offset_s    double precision NOT NULL,
    aligned_s   double precision NOT NULL CHECK (aligned_s >= 0),
    coverage    double precision NOT NULL CHECK (coverage BETWEEN 0 AND 1),
    speed       double precision NOT NULL DEFAULT 1 CHECK (speed > 0),
    frames      int NOT NULL CHECK (frames >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_a, track_b),
    CHECK (track_a < track_b),
    CHECK ((relation = 'same') = (longer IS NULL)),
    CHECK (longer IS NULL OR longer IN (track_a, track_b))
);

CREATE INDEX track_copies_b ON track_copies (track_b);

ALTER TABLE tracks ADD COLUMN copies_checked_at timestamptz;

CREATE VIEW track_copy_links AS
SELECT c.track_a AS track_id, c.track_b AS other_id,
       CASE WHEN c.relation = 'same' THEN 'same'
            WHEN c.longer = c.track_a THEN 'contains' ELSE 'contained_in' END AS relation,
       c.offset_s, c.aligned_s, c.coverage, c.speed, c.frames, c.created_at
FROM track_copies c
JOIN tracks a ON a.id = c.track_a AND a.status <> 'deleted'
JOIN tracks b ON b.id = c.track_b AND b.status <> 'deleted'
UNION ALL
SELECT c.track_b, c.track_a,
       CASE WHEN c.relation = 'same' THEN 'same'
            WHEN c.longer = c.track_b THEN 'contains' ELSE 'contained_in' END,
       c.offset_s, c.aligned_s, c.coverage, c.speed, c.frames, c.created_at
FROM track_copies c
JOIN tracks a ON a.id = c.track_a AND a.status <> 'deleted'
JOIN tracks b ON b.id = c.track_b AND b.status <> 'deleted';
