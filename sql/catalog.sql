-- The trigger registry: one row per registered trigger, login_trigger's counterpart of
-- pg_event_trigger. Rows are written through the functions in sql/api.sql's companion Rust API;
-- the triggers created in sql/api.sql check every row, whoever writes it.
CREATE TABLE login_trigger.event_trigger (
    name       text COLLATE "C" PRIMARY KEY,
    event      text NOT NULL,
    -- schema.function, resolved in that schema only: kept by name, as pg_dump and pg_upgrade
    -- carry it (function OIDs change), and followed through RENAME and SET SCHEMA.
    function   text NOT NULL,
    enabled    "char" NOT NULL DEFAULT 'O',
    tags       text[],
    owner      regrole NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT event_trigger_name_length CHECK (pg_catalog.octet_length(name) BETWEEN 1 AND 63),
    CONSTRAINT event_trigger_event_known CHECK (event IN ('login', 'logout', 'ddl_command_start',
                                                          'ddl_command_end', 'sql_drop', 'table_rewrite')),
    CONSTRAINT event_trigger_enabled_known CHECK (enabled IN ('O', 'D', 'R', 'A'))
);
COMMENT ON TABLE login_trigger.event_trigger IS
    'Triggers registered with login_trigger; change it through login_trigger.create_trigger() and friends';

-- Carrier of the registrations' dependencies on their functions: each registration owns a trigger
-- of the same name on this always-empty table, and that trigger depends on the registered
-- function, so DROP FUNCTION refuses to drop a registered function unless CASCADE is given.
-- Login and logout registrations have carrier tables of their own: whether such a table has
-- triggers (pg_class.relhastriggers, one syscache lookup) tells a starting or ending session
-- whether it needs to read the registry at all.
CREATE TABLE login_trigger.registered_function ();
COMMENT ON TABLE login_trigger.registered_function IS
    'Always empty; its triggers carry the dependencies of DDL trigger registrations on their functions';
CREATE TABLE login_trigger.registered_login_function ();
COMMENT ON TABLE login_trigger.registered_login_function IS
    'Always empty; its triggers carry the dependencies of login trigger registrations on their functions';
CREATE TABLE login_trigger.registered_logout_function ();
COMMENT ON TABLE login_trigger.registered_logout_function IS
    'Always empty; its triggers carry the dependencies of logout trigger registrations on their functions';
