-- Upserts the window's users and writes one outbox event per new or changed user, in the
-- caller's transaction. The content hash and the payload arrive with each incoming user; an
-- unchanged user (same hash) is left alone: no update, no event.
-- Parameters: %(window_start)s. Returns: inserted, updated, new_events, max_event_id.
WITH merged AS (
    INSERT INTO staging.users AS u
    SELECT user_id, gender, title, first_name, last_name, email, username, phone, cell,
           street_number, street_name, city, state, country, postcode, latitude, longitude,
           timezone_offset, timezone_description, dob, age, registered_at, nat, id_name,
           id_value, picture_large, picture_medium, picture_thumbnail, content_hash,
           %(window_start)s, %(window_start)s, now(), now()
    FROM incoming_users
    ON CONFLICT (user_id) DO UPDATE
        SET gender = EXCLUDED.gender, title = EXCLUDED.title,
            first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
            email = EXCLUDED.email, username = EXCLUDED.username,
            phone = EXCLUDED.phone, cell = EXCLUDED.cell,
            street_number = EXCLUDED.street_number, street_name = EXCLUDED.street_name,
            city = EXCLUDED.city, state = EXCLUDED.state, country = EXCLUDED.country,
            postcode = EXCLUDED.postcode, latitude = EXCLUDED.latitude,
            longitude = EXCLUDED.longitude, timezone_offset = EXCLUDED.timezone_offset,
            timezone_description = EXCLUDED.timezone_description, dob = EXCLUDED.dob,
            age = EXCLUDED.age, registered_at = EXCLUDED.registered_at, nat = EXCLUDED.nat,
            id_name = EXCLUDED.id_name, id_value = EXCLUDED.id_value,
            picture_large = EXCLUDED.picture_large, picture_medium = EXCLUDED.picture_medium,
            picture_thumbnail = EXCLUDED.picture_thumbnail,
            content_hash = EXCLUDED.content_hash,
            last_window_start = EXCLUDED.last_window_start, updated_at = now()
        WHERE u.content_hash IS DISTINCT FROM EXCLUDED.content_hash
    RETURNING u.user_id, (xmax = 0) AS inserted
),
events AS (
    INSERT INTO staging.user_events (user_id, content_hash, payload, window_start)
    SELECT i.user_id, i.content_hash, i.payload::json, %(window_start)s
    FROM merged m JOIN incoming_users i USING (user_id)
    RETURNING id
)
SELECT (SELECT count(*) FROM merged WHERE inserted)     AS inserted,
       (SELECT count(*) FROM merged WHERE NOT inserted) AS updated,
       (SELECT count(*) FROM events)                    AS new_events,
       (SELECT max(id) FROM events)                     AS max_event_id;
