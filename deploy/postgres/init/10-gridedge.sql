-- gridedge's roles and database in a new PostgreSQL cluster. The official
-- postgres image runs it once, on an empty data directory, as its
-- superuser (mount this directory on /docker-entrypoint-initdb.d); by hand:
--   psql -v ON_ERROR_STOP=1 -U postgres -d postgres -f 10-gridedge.sql
-- It creates:
--   gridedge  the collector's PostgreSQL sink (writer): owns database
--             gridedge and its schema gridedge, where the sink's migrations
--             create and upgrade the tables;
--   grafana   Grafana's PostgreSQL data source: SELECT only, on every table
--             gridedge creates there now or later (default privileges),
--             and every session read-only.
-- Their passwords are the first lines of the files
-- postgres-gridedge-password and postgres-grafana-password in the
-- directory GRIDEDGE_POSTGRES_SECRETS_DIR (default /run/secrets).
\set ON_ERROR_STOP on

\set secrets `echo "${GRIDEDGE_POSTGRES_SECRETS_DIR:-/run/secrets}"`
\set gridedge_password `head -n 1 "${GRIDEDGE_POSTGRES_SECRETS_DIR:-/run/secrets}/postgres-gridedge-password"`
\set grafana_password `head -n 1 "${GRIDEDGE_POSTGRES_SECRETS_DIR:-/run/secrets}/postgres-grafana-password"`
SELECT :'gridedge_password' = '' AS gridedge_password_missing, :'grafana_password' = '' AS grafana_password_missing \gset
\if :gridedge_password_missing
  \echo 'gridedge: ' :secrets '/postgres-gridedge-password is missing or empty'
  DO $$ BEGIN RAISE EXCEPTION 'gridedge: the writer role''s password file is missing or empty'; END $$;
\endif
\if :grafana_password_missing
  \echo 'gridedge: ' :secrets '/postgres-grafana-password is missing or empty'
  DO $$ BEGIN RAISE EXCEPTION 'gridedge: the grafana role''s password file is missing or empty'; END $$;
\endif

CREATE ROLE gridedge LOGIN PASSWORD :'gridedge_password' CONNECTION LIMIT 64;
CREATE ROLE grafana LOGIN PASSWORD :'grafana_password' CONNECTION LIMIT 10;
ALTER ROLE grafana SET default_transaction_read_only = on;
ALTER ROLE grafana SET statement_timeout = '30s';

CREATE DATABASE gridedge OWNER gridedge ENCODING 'UTF8';
REVOKE ALL ON DATABASE gridedge FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE gridedge TO gridedge;
GRANT CONNECT ON DATABASE gridedge TO grafana;

\connect gridedge
-- The schema the migrations use, owned by the writer (its CREATE SCHEMA IF
-- NOT EXISTS then finds it). The migrations' bookkeeping table,
-- public.gridedge_schema_migrations, goes in public, which the database
-- owner may create in.
CREATE SCHEMA gridedge AUTHORIZATION gridedge;
REVOKE ALL ON SCHEMA gridedge FROM PUBLIC;
GRANT USAGE ON SCHEMA gridedge TO grafana;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO grafana;
-- Tables, partitions and sequences the writer creates later are readable
-- by grafana, and by nobody else.
ALTER DEFAULT PRIVILEGES FOR ROLE gridedge IN SCHEMA gridedge GRANT SELECT ON TABLES TO grafana;
ALTER DEFAULT PRIVILEGES FOR ROLE gridedge IN SCHEMA gridedge GRANT SELECT ON SEQUENCES TO grafana;
ALTER DEFAULT PRIVILEGES FOR ROLE gridedge IN SCHEMA public GRANT SELECT ON TABLES TO grafana;
