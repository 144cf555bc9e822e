-- Window aggregates, one row per (event type, group key, window), holding the
-- window's full totals. Rows only move forward: see store.rs for the rule.
CREATE TABLE aggregates (
    event_type      text             NOT NULL,
    group_key       text             NOT NULL,
    window_start    timestamptz      NOT NULL,
    window_end      timestamptz      NOT NULL,
    count           bigint           NOT NULL CHECK (count >= 0),
    distinct_count  bigint,
    min             double precision,
    max             double precision,
    sum             double precision,
    last            double precision,
    last_event_time timestamptz,
    is_final        boolean          NOT NULL,
    emitted_at      timestamptz      NOT NULL,
    updated_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (event_type, group_key, window_start),
    CHECK (window_end > window_start)
);

-- Queries filter by type and time range, optionally by keys, and page in
-- (window_start, group_key) order.
CREATE INDEX aggregates_by_type_and_window ON aggregates (event_type, window_start, group_key);

-- The next offset to read per consumer group and partition, written in the
-- same transaction as the rows it covers: after a crash the sink resumes
-- exactly after the last committed batch.
CREATE TABLE sink_offsets (
    consumer_group  text        NOT NULL,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    next_offset     bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
