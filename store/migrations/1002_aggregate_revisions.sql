-- How many times late events corrected a window's final row: an event
-- within the retention (--max-event-time-skew) for a closed window makes the
-- processor emit a corrected final aggregate with the next revision.
ALTER TABLE aggregates ADD COLUMN revision integer NOT NULL DEFAULT 0 CHECK (revision >= 0);
