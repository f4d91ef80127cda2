-- gridedge results in PostgreSQL, schema version 1.
CREATE SCHEMA IF NOT EXISTS gridedge;

-- The highest revision of every window: upserted on the window's key, a
-- lower revision never overwrites a higher one.
CREATE TABLE gridedge.results (
    pipeline       text             NOT NULL,
    device         text             NOT NULL,
    channel        text             NOT NULL,
    quantity       text             NOT NULL DEFAULT '', -- '' for derived series
    window_start   timestamptz      NOT NULL,
    window_end     timestamptz      NOT NULL,
    revision       integer          NOT NULL,
    provisional    boolean          NOT NULL DEFAULT false,
    retracted      boolean          NOT NULL DEFAULT false,
    aggregates     jsonb            NOT NULL,            -- aggregate name -> number
    reading_count  bigint           NOT NULL,
    coverage       double precision NOT NULL,
    worst_quality  text             NOT NULL,
    counter_resets integer          NOT NULL DEFAULT 0,
    result_rows    jsonb,                                -- snapshot and session rows
    updated_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (pipeline, device, channel, quantity, window_start)
);
CREATE INDEX results_by_time ON gridedge.results (pipeline, window_start);

-- Every revision of every window, written only with history on.
CREATE TABLE gridedge.result_history (
    LIKE gridedge.results INCLUDING DEFAULTS,
    PRIMARY KEY (pipeline, device, channel, quantity, window_start, revision)
);

-- The late stream: readings beyond a window's allowed lateness.
CREATE TABLE gridedge.late_readings (
    device       text             NOT NULL,
    reading_time timestamptz      NOT NULL,
    seq_epoch    numeric(20, 0)   NOT NULL,
    seq          numeric(20, 0)   NOT NULL,
    pipeline     text             NOT NULL,
    channel      text             NOT NULL,
    quantity     text             NOT NULL,
    value        double precision NOT NULL,
    time_quality text             NOT NULL,
    windows      jsonb            NOT NULL, -- [{"start", "end"}]
    received_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (device, reading_time, seq_epoch, seq, pipeline)
);
CREATE INDEX late_readings_by_time ON gridedge.late_readings (reading_time);

-- Device counters, as the collector last committed them.
CREATE TABLE gridedge.devices (
    device          text        PRIMARY KEY,
    site            text        NOT NULL,
    first_seen      timestamptz,
    last_seen       timestamptz,
    readings_stored bigint      NOT NULL,
    duplicates      bigint      NOT NULL,
    conflicts       bigint      NOT NULL,
    flagged         bigint      NOT NULL,
    max_event       timestamptz,
    series          jsonb       NOT NULL, -- [{"channel", "quantity"}]
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Each device's latest status message.
CREATE TABLE gridedge.device_status (
    device            text        PRIMARY KEY,
    site              text        NOT NULL,
    received          timestamptz NOT NULL,
    online            boolean     NOT NULL,
    agent_version     text        NOT NULL,
    boot_id           text        NOT NULL,
    wall              timestamptz,
    clock_quality     text        NOT NULL,
    buffered_readings bigint      NOT NULL,
    dropped_readings  bigint      NOT NULL,
    time_zone         text        NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The sink's position in each partition of each collector store's results
-- feed, written in the same transaction as the rows: exactly once.
CREATE TABLE gridedge.sink_positions (
    source         text        NOT NULL,
    feed_partition integer     NOT NULL,
    next_seq       bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, feed_partition)
);
