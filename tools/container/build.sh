#!/usr/bin/env bash
# Builds and checks the container image here, with podman/buildah from
# Debian's packages and no registry but Debian's:
#   1. the base image the Dockerfile's runtime stage names
#      (debian:bookworm-slim) is made locally with debootstrap (minbase) and
#      imported under that name, when no such image exists yet;
#   2. the release binary is built once on the host (tools/pgo/build.sh: the
#      profile-guided release build, as the Dockerfile's build stage makes;
#      the host is Debian bookworm, as the image, so glibc matches) and
#      copied in: the Dockerfile's build stage (rust:1.95-bookworm) cannot be
#      pulled here, and compiling inside a container would mean vendoring
#      every crate and a second full release build on a shared 2-core machine;
#   3. the image is built from the Dockerfile's own runtime stage (taken from
#      the Dockerfile, only its COPY --from=build line pointed at that binary);
#   4. it is started non-root with a read-only root filesystem, on loopback
#      only, and must pass /readyz and answer a patient-view hook.
#
#   tools/container/build.sh   # needs: apt-get install podman buildah debootstrap runc
#   IMAGE=cramp-cds:test tools/container/build.sh
#   REBUILD_BASE=1 tools/container/build.sh   # make the base again
#
# On this machine (itself a container: cgroup v1 with a cgroup2 mount beside
# it, and rlimits it may not raise) Debian's default runtime, crun, fails:
#   podman run ... -> crun: setrlimit `RLIMIT_NOFILE`: Operation not permitted
#   with --ulimit below the hard limits -> crun: cgroups in hybrid mode not
#   supported, drop all controllers from cgroupv2
# so containers run under runc, with file and process limits below ours.
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${IMAGE:-localhost/cramp-cds:latest}
BASE=debian:bookworm-slim
MIRROR=${MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /tmp/cramp-cds-container.XXXXXX)
container=""
cleanup() {
    [ -n "$container" ] && podman rm -f "$container" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

RUNTIME=${RUNTIME:-runc}
for tool in podman buildah debootstrap "$RUNTIME"; do
    command -v $tool >/dev/null || { echo "$tool is not installed (apt-get install podman buildah debootstrap runc)" >&2; exit 1; }
done
limits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
podman() { command podman --runtime "$RUNTIME" "$@"; }

echo "== base image $BASE"
if [ -z "${REBUILD_BASE:-}" ] && podman image exists "$BASE"; then
    echo "present: $(podman image inspect --format '{{.Id}}' "$BASE" | cut -c1-12)"
else
    # minbase: essential packages and apt only, as Debian's slim images.
    debootstrap --variant=minbase bookworm "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    # What the slim images leave out: apt lists, caches, the downloaded
    # .debs, docs; and their apt/dpkg settings, so that an `apt-get install`
    # in a later layer keeps neither caches (80 MB of pkgcache.bin and
    # srcpkgcache.bin) nor docs.
    rm -rf "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/var/cache/apt/*.bin \
        "$work/rootfs"/var/cache/apt/archives/*.deb \
        "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/locale/*
    cat >"$work/rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    cat >"$work/rootfs/etc/dpkg/dpkg.cfg.d/docker-nodoc" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
    tar -C "$work/rootfs" -c . | podman import --change 'CMD ["bash"]' - "$BASE" >/dev/null
    echo "imported $BASE from debootstrap (minbase, bookworm)"
fi

echo "== release binary (on the host)"
# As the Dockerfile builds it: profile-guided where it can be (PGO=off: plain).
{ read -r binary; read -r _; read -r build; } < <(tools/pgo/build.sh --service-only)
echo "build: $build"
mkdir -p "$work/context"
cp "$binary" "$work/context/cramp-cds"

echo "== image $IMAGE"
# The Dockerfile's runtime stage, as written, with the binary from the host.
awk '/^FROM debian:bookworm-slim/ {on = 1} on' Dockerfile \
    | sed 's#^COPY --from=build /src/cramp-cds #COPY cramp-cds #' >"$work/context/Containerfile"
grep -q '^COPY cramp-cds /usr/local/bin/cramp-cds' "$work/context/Containerfile" \
    || { echo "the Dockerfile's runtime stage no longer copies the binary as expected" >&2; exit 1; }
# The runtime stage installs ca-certificates from Debian: host networking for
# that one RUN (the only network the build needs).
buildah bud --runtime "$RUNTIME" "${limits[@]}" --network host --layers=false -f "$work/context/Containerfile" -t "$IMAGE" "$work/context"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image size: $size bytes ($((size / 1024 / 1024)) MiB); base: $(podman image inspect --format '{{.Size}}' "$BASE") bytes"
echo "user: $(podman image inspect --format '{{.Config.User}}' "$IMAGE")"

echo "== run: non-root, read-only root filesystem, loopback"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Host networking keeps all traffic on this machine's loopback; the store is
# SQLite on a tmpfs chowned to the service's user (U; the root fs is
# read-only).
container=$(podman run -d "${limits[@]}" --read-only --network host --cap-drop ALL --security-opt no-new-privileges \
    --tmpfs /var/lib/cramp-cds:rw,size=64m,mode=0700,U \
    -e CRAMP_CDS_HOST=127.0.0.1 -e CRAMP_CDS_PORT="$port" -e CRAMP_CDS_PUBLIC_BASE_URL="http://127.0.0.1:$port" \
    "$IMAGE")
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { podman logs "$container" >&2; exit 1; }
echo "/readyz: ready"
uid=$(podman exec "$container" id -u 2>/dev/null || podman top "$container" user | tail -n 1)
echo "process user: $uid"
podman exec "$container" sh -c 'touch /probe' 2>/dev/null && { echo "the root filesystem is writable" >&2; exit 1; }
echo "root filesystem: read-only (touch /probe refused)"
python3 tools/load/requests.py "$work" >/dev/null
code=$(curl -s -o "$work/answer.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "@$work/patient-view-4k.json" "http://127.0.0.1:$port/cds-services/leg-cramps-patient-view")
cards=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["cards"]))' "$work/answer.json")
echo "patient-view hook: HTTP $code, $cards card(s)"
[ "$code" = 200 ] && [ "$cards" -gt 0 ] || { podman logs "$container" >&2; exit 1; }
echo "container OK"
