-- One checkpoint row per projection and partition of the published log
-- (STREAM_PARTITIONS): the projector of a partition applies that partition's
-- events and advances only its rows; a projection has reached position N once
-- every one of its rows has. Existing rows become partition 0 (one partition).
ALTER TABLE projection_checkpoints
    ADD COLUMN partition smallint NOT NULL DEFAULT 0 CHECK (partition >= 0);
ALTER TABLE projection_checkpoints DROP CONSTRAINT projection_checkpoints_pkey;
ALTER TABLE projection_checkpoints ADD PRIMARY KEY (projection, partition);
