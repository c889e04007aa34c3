#!/bin/sh
# Runs once, when the compose PostgreSQL starts with an empty volume: the demo
# database, and a read-only role for Grafana and Superset (pg_read_all_data
# covers the schemas the migrations create later).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE DATABASE mim_demo OWNER $POSTGRES_USER;
CREATE ROLE mim_reader LOGIN PASSWORD '${MIM_READER_PASSWORD:?set MIM_READER_PASSWORD}';
GRANT pg_read_all_data TO mim_reader;
SQL
