#!/bin/sh
# condo-init: the first process of a template instance. Runs the template's first-start steps
# once, then starts every service under /etc/condo/services, restarts them by their policy, and
# stops them all cleanly on SIGTERM or SIGINT. Plain POSIX sh: works with busybox ash and dash.

C=/etc/condo
log() { echo "condo-init: $*" >&2; }

if [ -f "$C/params.env" ]; then
	set -a
	. "$C/params.env"
	set +a
fi

# Runs "$@" as the user named in $1 (empty: stay root).
as_user() {
	u=$1
	shift
	if [ -z "$u" ] || [ "$u" = root ] || [ "$u" = 0 ]; then
		exec "$@"
	elif command -v setpriv >/dev/null 2>&1; then
		exec setpriv --reuid="$u" --regid="$u" --init-groups "$@"
	else
		exec su -s /bin/sh "$u" -c '"$0" "$@"' "$@"
	fi
}

if [ ! -e /var/lib/condo/first-start.done ] && [ -d "$C/first-start" ]; then
	for f in "$C"/first-start/*.sh; do
		[ -f "$f" ] || continue
		log "first start: ${f##*/}"
		if ! /bin/sh -e "$f"; then
			log "first start step ${f##*/} failed"
			exit 1
		fi
	done
	mkdir -p /var/lib/condo && : >/var/lib/condo/first-start.done
fi

# supervise NAME FILE: runs one service in its own session and restarts it by its policy.
supervise() {
	name=$1
	restart=always
	user=
	workdir=/
	command=
	. "$2"
	stop=0
	child=
	trap 'stop=1; [ -n "$child" ] && kill -TERM -- "-$child" 2>/dev/null; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
	while :; do
		(cd "$workdir" && as_user "$user" setsid /bin/sh -c "$command") &
		child=$!
		wait "$child"
		code=$?
		while kill -0 "$child" 2>/dev/null; do
			wait "$child"
			code=$?
		done
		child=
		[ "$stop" = 1 ] && exit 0
		log "service $name exited with status $code"
		case $restart in
		never) exit "$code" ;;
		on-failure) [ "$code" = 0 ] && exit 0 ;;
		esac
		sleep 1
		[ "$stop" = 1 ] && exit 0
	done
}

pids=
for f in "$C"/services/*.svc; do
	[ -f "$f" ] || continue
	n=${f##*/}
	n=${n%.svc}
	log "starting service $n"
	supervise "$n" "$f" &
	pids="$pids $!"
done

stopping=0
trap 'stopping=1; for p in $pids; do kill -TERM "$p" 2>/dev/null; done' TERM INT
if [ -z "$pids" ]; then
	# Nothing to supervise: stay up until told to stop.
	while [ "$stopping" = 0 ]; do
		sleep 3600 &
		wait $!
	done
	exit 0
fi
for p in $pids; do
	while kill -0 "$p" 2>/dev/null; do
		wait "$p"
	done
done
log "all services stopped"
exit 0
