-- Ingest hop: raw responses, normalised users, quarantined records and the transactional outbox.

-- One row per fetched page; a rerun of the window replaces its pages instead of adding rows.
CREATE TABLE IF NOT EXISTS staging.users_raw (
    id            bigserial PRIMARY KEY,
    seed          text        NOT NULL,
    page          integer     NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    results       integer     NOT NULL,
    response      jsonb       NOT NULL,
    fetched_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (seed, page)
);

CREATE TABLE IF NOT EXISTS staging.users (
    user_id               uuid PRIMARY KEY,
    gender                text,
    title                 text,
    first_name            text,
    last_name             text,
    email                 text,
    username              text,
    phone                 text,
    cell                  text,
    street_number         integer,
    street_name           text,
    city                  text,
    state                 text,
    country               text,
    postcode              text,
    latitude              double precision,
    longitude             double precision,
    timezone_offset       text,
    timezone_description  text,
    dob                   timestamptz,
    age                   integer,
    registered_at         timestamptz,
    nat                   text,
    id_name               text,
    id_value              text,
    picture_large         text,
    picture_medium        text,
    picture_thumbnail     text,
    content_hash          text        NOT NULL,
    first_window_start    timestamptz NOT NULL,
    last_window_start     timestamptz NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Records that could not be normalised, with the reason and the raw payload. The position in
-- the window makes a rerun overwrite instead of duplicating.
CREATE TABLE IF NOT EXISTS staging.rejected_users (
    id            bigserial PRIMARY KEY,
    seed          text        NOT NULL,
    page          integer     NOT NULL,
    position      integer     NOT NULL,
    window_start  timestamptz NOT NULL,
    user_id       text,
    reason        text        NOT NULL,
    payload       jsonb       NOT NULL,
    rejected_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (seed, page, position)
);

-- The transactional outbox: one event per new or changed user, relayed to Kafka in id order.
CREATE TABLE IF NOT EXISTS staging.user_events (
    id            bigserial PRIMARY KEY,
    user_id       uuid        NOT NULL,
    content_hash  text        NOT NULL,
    payload       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    failed_at     timestamptz,
    failure       text
);

CREATE INDEX IF NOT EXISTS user_events_pending
    ON staging.user_events (id) WHERE published_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS user_events_user ON staging.user_events (user_id);
