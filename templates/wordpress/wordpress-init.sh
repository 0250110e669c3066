#!/bin/sh
# First start of a Condo WordPress instance: the database, its user, and the site itself.
set -e
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
/usr/sbin/mariadbd --user=mysql --skip-networking &
db=$!
i=0
until mariadb-admin ping >/dev/null 2>&1; do
	i=$((i + 1))
	[ "$i" -lt 60 ] || { echo "mariadb did not start" >&2; exit 1; }
	sleep 0.5
done
mariadb <<SQL
CREATE DATABASE IF NOT EXISTS \`$db_name\`;
CREATE USER IF NOT EXISTS 'wordpress'@'localhost' IDENTIFIED BY '$db_password';
GRANT ALL PRIVILEGES ON \`$db_name\`.* TO 'wordpress'@'localhost';
SQL
setpriv --reuid=www-data --regid=www-data --init-groups php /etc/condo/wordpress-install.php
mariadb-admin shutdown
wait "$db" || true
