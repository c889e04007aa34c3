#!/bin/sh
# Starts Superset for MIM (docker-compose.yml runs this in apache/superset):
# migrates Superset's own metadata, creates the admin, and imports the MIM
# warehouse connection, the datasets in ./datasets (marts, and views over the
# ledger and ctl.mart_count), the charts in ./charts and the dashboard in
# ./dashboards (drift per site over time, feed volumes, course performance,
# data-quality findings). The connection URI comes from MIM_SUPERSET_DB_URI, so no
# password is kept in this repository; the bundle is built in a temporary
# directory inside the container.
set -eu

superset db upgrade
superset fab create-admin --username "${SUPERSET_ADMIN_USER:-admin}" --password "${SUPERSET_ADMIN_PASSWORD:?set SUPERSET_ADMIN_PASSWORD}" \
	--firstname MIM --lastname Admin --email admin@example.invalid >/dev/null 2>&1 || true
superset init

work=$(mktemp -d)
bundle="$work/mim"
mkdir -p "$bundle/databases" "$bundle/datasets/mim_warehouse"
cat >"$bundle/metadata.yaml" <<META
version: 1.0.0
type: SqlaTable
timestamp: '2025-01-01T00:00:00+00:00'
META
# The uuid is the database_uuid every dataset file names.
cat >"$bundle/databases/mim_warehouse.yaml" <<DB
database_name: MIM warehouse
sqlalchemy_uri: ${MIM_SUPERSET_DB_URI:?set MIM_SUPERSET_DB_URI}
cache_timeout: null
expose_in_sqllab: true
allow_run_async: false
allow_ctas: false
allow_cvas: false
allow_dml: false
allow_file_upload: false
extra:
  allows_virtual_table_explore: true
uuid: 21cf9b0c-7e7b-5db3-bd84-d140081e14a5
version: 1.0.0
DB
cp "$(dirname "$0")"/datasets/*.yaml "$bundle/datasets/mim_warehouse/"
(cd "$work" && python -m zipfile -c mim.zip mim/)
superset import-datasources -p "$work/mim.zip"

# The dashboard: the same database and datasets, with the charts and the
# dashboard that places them (an import of type Dashboard brings what its
# charts use).
mkdir -p "$bundle/charts" "$bundle/dashboards"
cp "$(dirname "$0")"/charts/*.yaml "$bundle/charts/"
cp "$(dirname "$0")"/dashboards/*.yaml "$bundle/dashboards/"
cat >"$bundle/metadata.yaml" <<META
version: 1.0.0
type: Dashboard
timestamp: '2025-01-01T00:00:00+00:00'
META
rm -f "$work/mim.zip"
(cd "$work" && python -m zipfile -c mim.zip mim/)
superset import-dashboards -p "$work/mim.zip" -u "${SUPERSET_ADMIN_USER:-admin}"
rm -rf "$work"

exec /usr/bin/run-server.sh
