#!/bin/sh
# First start of a Condo postgres instance: the role and database named by the parameters.
set -e
mkdir -p /run/postgresql && chown postgres:postgres /run/postgresql
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
as_pg /usr/lib/postgresql/current/bin/pg_ctl -D /var/lib/postgresql/current/main \
	-o "-c config_file=/etc/postgresql/current/main/postgresql.conf -c listen_addresses=''" -w start
as_pg psql -v ON_ERROR_STOP=1 -q <<'SQL'
\getenv u db_user
\getenv p db_password
\getenv d db_name
CREATE ROLE :"u" LOGIN PASSWORD :'p';
CREATE DATABASE :"d" OWNER :"u";
SQL
as_pg /usr/lib/postgresql/current/bin/pg_ctl -D /var/lib/postgresql/current/main -w stop
