#!/usr/bin/env bash
# compose/deploy.sh [TAG] — deploys one release of the ticketing system on
# this host with Docker Compose, and rolls back to the previous release when
# the new one does not become healthy.
#
#   1. build the image TAG here (or, with REGISTRY set, pull REGISTRY/ticketing:TAG)
#   2. docker compose up -d with IMAGE_TAG=TAG
#   3. wait until every container reports healthy (HEALTH_TIMEOUT_S, default 180)
#   4. healthy: record TAG in compose/.deployed-tag; exit 0
#      not healthy: print the unhealthy containers' last logs, bring the
#      previous tag back up, wait for it, exit 1 (2 if the rollback failed too)
#
# TAG defaults to the checkout's commit (git rev-parse --short=12 HEAD).
# Needs compose/.env (copy .env.example). Environment: REGISTRY,
# HEALTH_TIMEOUT_S, POLL_S (seconds between health polls, default 5).
set -euo pipefail
cd "$(dirname "$0")"

die() { echo "deploy: $*" >&2; exit 2; }
log() { echo "deploy: $*"; }

tag="${1:-$(git rev-parse --short=12 HEAD 2>/dev/null || true)}"
[ -n "$tag" ] || die "no TAG given and not in a git checkout"
[ -f .env ] || die "compose/.env is missing: cp compose/.env.example compose/.env and set POSTGRES_PASSWORD"
command -v docker >/dev/null 2>&1 || die "docker is not installed"
timeout_s="${HEALTH_TIMEOUT_S:-180}"
poll_s="${POLL_S:-5}"
state=.deployed-tag
previous="$(cat "$state" 2>/dev/null || true)"
if [ -n "${REGISTRY:-}" ]; then
  export TICKETING_IMAGE="$REGISTRY/ticketing"
fi

compose() { docker compose -f docker-compose.yml "$@"; }

# Makes the image TAG available on this host.
fetch() {
  if [ -n "${REGISTRY:-}" ]; then
    IMAGE_TAG="$1" compose pull catalog
  else
    IMAGE_TAG="$1" compose build catalog
  fi
}

up() { IMAGE_TAG="$1" compose up -d --remove-orphans; }

# Containers not (yet) healthy, one "service state health" line each.
unhealthy() {
  compose ps --all --format '{{.Service}} {{.State}} {{.Health}}' | awk '$3 != "healthy"'
}

# Waits, bounded by timeout_s, until every container is healthy.
wait_healthy() {
  local deadline=$((SECONDS + timeout_s)) left
  while :; do
    left="$(unhealthy)"
    if [ -z "$left" ] && [ -n "$(compose ps --format '{{.Service}}')" ]; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "not healthy after ${timeout_s}s:"
      printf '  %s\n' "$left"
      return 1
    fi
    sleep "$poll_s"
  done
}

log "release $tag (previous: ${previous:-none})"
fetch "$tag"
up "$tag"
if wait_healthy; then
  echo "$tag" >"$state"
  log "release $tag is healthy"
  exit 0
fi

for service in $(unhealthy | awk '{print $1}' | sort -u); do
  log "last logs of $service:"
  compose logs --tail 30 "$service" || true
done
if [ -z "$previous" ]; then
  log "no previous release to roll back to; the failed release stays up for inspection"
  exit 1
fi
log "rolling back to $previous"
up "$previous"
if wait_healthy; then
  log "rolled back to $previous; release $tag was NOT deployed"
  exit 1
fi
log "the rollback to $previous is not healthy either"
exit 2
