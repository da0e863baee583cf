#!/bin/bash
# First start: a cluster with password authentication over TCP and the databases named in POSTGRES_DATABASES.
set -euo pipefail
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb -D "$PGDATA" -U postgres --encoding=UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 --pwfile=<(printf '%s' "$POSTGRES_PASSWORD")
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    for database in ${POSTGRES_DATABASES:-}; do
        psql -v ON_ERROR_STOP=1 -U postgres -c "CREATE DATABASE \"$database\""
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
