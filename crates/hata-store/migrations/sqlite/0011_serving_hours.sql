-- Serving hours (issue 26, reports). Telemetry, not configuration: each server adds its own
-- deltas about once a minute (`hata_store::serving_hours`), outside the one write path, so the
-- daily report reads the same numbers on every replica and after restarts.

-- Requests answered per hour, replica and route class. `hour` is the hour's start as RFC 3339
-- UTC (`2026-11-23T14:00:00Z`), as in `evaluation_counts`. `instance` names one run of one
-- server (host and a random part, new at every start). `route_class` is `evaluation`,
-- `stream`, `admin`, `health` or `other`.
-- `ok` counts 1xx-3xx answers, `client_errors` 4xx, `server_errors` 5xx (the failures).
-- `le_*` are the request-duration histogram's buckets (not cumulative), with the bounds of
-- `http_request_duration_seconds` (seconds: 0.005 … 2.5, then +Inf); `duration_micros` their
-- sum. `minutes` has bit m set when the replica was up in minute m of the hour;
-- `bad_minutes` when more than 5 % of that minute's requests on the replica failed.
CREATE TABLE serving_hours (
    hour            TEXT NOT NULL,
    instance        TEXT NOT NULL,
    route_class     TEXT NOT NULL,
    requests        BIGINT NOT NULL,
    ok              BIGINT NOT NULL,
    client_errors   BIGINT NOT NULL,
    server_errors   BIGINT NOT NULL,
    le_0_005        BIGINT NOT NULL,
    le_0_01         BIGINT NOT NULL,
    le_0_025        BIGINT NOT NULL,
    le_0_05         BIGINT NOT NULL,
    le_0_1          BIGINT NOT NULL,
    le_0_2          BIGINT NOT NULL,
    le_0_25         BIGINT NOT NULL,
    le_0_5          BIGINT NOT NULL,
    le_1            BIGINT NOT NULL,
    le_2_5          BIGINT NOT NULL,
    le_inf          BIGINT NOT NULL,
    duration_micros BIGINT NOT NULL,
    minutes         BIGINT NOT NULL,
    bad_minutes     BIGINT NOT NULL,
    PRIMARY KEY (hour, instance, route_class)
);
