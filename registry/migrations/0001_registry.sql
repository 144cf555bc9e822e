-- The registry's state. Schemas are immutable and never deleted, so a global
-- id always resolves and re-registering a hard-deleted schema gets its old id.
CREATE TABLE registry_schemas (
    id          INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- sha256 of type, canonical text and references: one id per distinct schema,
    -- enforced here so concurrent registrations on several instances agree.
    fingerprint TEXT    NOT NULL UNIQUE,
    schema_type TEXT    NOT NULL,
    schema_text TEXT    NOT NULL,
    refs        JSONB   NOT NULL DEFAULT '[]'
);

-- A subject's versions; soft deletion only marks the row.
CREATE TABLE registry_subject_versions (
    subject   TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    schema_id INTEGER NOT NULL REFERENCES registry_schemas (id),
    deleted   BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (subject, version)
);
CREATE INDEX registry_subject_versions_schema_id ON registry_subject_versions (schema_id);

-- Compatibility level and mode, per subject; the empty subject is the global row.
CREATE TABLE registry_config (
    subject       TEXT PRIMARY KEY,
    compatibility TEXT,
    mode          TEXT
);
