#!/usr/bin/env bash
# Start the Debian PostgreSQL cluster and make a throwaway role and database for the hub's
# PostgreSQL tests and benchmark. The DSN goes to a root-only file the tests read
# (tests/hub/test_hub_postgres.py; override with APPLIANCE_TEST_POSTGRES_DSN).
set -euo pipefail
DSN_FILE="${APPLIANCE_TEST_POSTGRES_DSN_FILE:-/var/lib/appliance-ci/postgres.dsn}"
version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
if ! pg_lsclusters -h | grep -q "^${version} main"; then
    pg_createcluster "$version" main
fi
pg_ctlcluster "$version" main start || pg_ctlcluster "$version" main status
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
done
password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q <<SQL
DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'appliance_test') THEN
    CREATE ROLE appliance_test LOGIN;
  END IF;
END\$\$;
ALTER ROLE appliance_test PASSWORD '${password}';
SQL
if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname='appliance_test'" | grep -q 1; then
    runuser -u postgres -- createdb -O appliance_test appliance_test
fi
install -d -m 0700 "$(dirname "$DSN_FILE")"
umask 077
echo "postgresql://appliance_test:${password}@127.0.0.1:5432/appliance_test" > "$DSN_FILE"
echo "PostgreSQL ${version} ready; DSN in ${DSN_FILE}"
