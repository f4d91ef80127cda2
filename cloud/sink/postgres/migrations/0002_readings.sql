-- Raw readings (written only when the sink is configured to), partitioned
-- by UTC day of reading time: the sink creates a day's partition before its
-- first reading and drops whole partitions past the readings retention.
CREATE TABLE gridedge.readings (
    device        text             NOT NULL,
    channel       text             NOT NULL,
    quantity      text             NOT NULL,
    reading_time  timestamptz      NOT NULL,
    seq_epoch     numeric(20, 0)   NOT NULL,
    seq           numeric(20, 0)   NOT NULL,
    value         double precision NOT NULL,
    time_quality  text             NOT NULL,
    time_error_ns bigint           NOT NULL DEFAULT 0,
    received      timestamptz      NOT NULL,
    flags         text[]           NOT NULL DEFAULT '{}', -- future, implausible: kept out of the windows
    PRIMARY KEY (device, channel, quantity, reading_time, seq_epoch, seq)
) PARTITION BY RANGE (reading_time);
