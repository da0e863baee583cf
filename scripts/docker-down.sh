#!/usr/bin/env bash
# Undo scripts/docker-up.sh on this machine: stop the dockerd it started and put back the iptables rules it saved
# (dockerd leaves its chains and a FORWARD policy of DROP behind). Images stay in /var/lib/docker for the next start.
# Stop the stack itself first: docker compose down -v
set -euo pipefail
STATE_DIR=${VIBRASENSE_DOCKER_STATE:-/tmp/vibrasense-docker}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -f "$STATE_DIR/dockerd.pid" ]; then
    pid=$(cat "$STATE_DIR/dockerd.pid")
    if kill -0 "$pid" 2>/dev/null; then
        as_root kill -TERM "$pid"
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    fi
    rm -f "$STATE_DIR/dockerd.pid"
fi

# Flush what dockerd added, then restore the rules as they were before it started.
restore() {
    local save=$1 restore=$2 rules=$3 table
    [ -f "$rules" ] || return 0
    for table in filter nat; do
        as_root "${save%-save}" -t "$table" -F
        as_root "${save%-save}" -t "$table" -X
    done
    as_root "${save%-save}" -P FORWARD ACCEPT
    as_root "$restore" < "$rules"
    rm -f "$rules"
}
restore iptables-save iptables-restore "$STATE_DIR/iptables.rules"
if command -v ip6tables-save >/dev/null 2>&1; then
    restore ip6tables-save ip6tables-restore "$STATE_DIR/ip6tables.rules"
fi
echo "docker-down: dockerd stopped, iptables restored" >&2
