#!/usr/bin/env bash
# Builds the runtime image from runtime/Dockerfile, as a release would, for the image test
# (test/runtime/image.test.ts); prints `image size: <bytes>` on stdout, the build log on stderr.
#   IMAGE_TEST_TAG=NAME      tag to build (default localhost/modelship-runtime:test)
#   IMAGE_TEST_CA=FILE       CA bundle npm must trust inside the build (default /etc/ssl/certs/ca-certificates.crt)
#   IMAGE_TEST_SCRATCH=DIR   scratch directory (default .scratch/image at the repo root)
# Takes ~75-110 s on 2 cores (most of it `npm ci` inside the build), plus the base image the first time (base-image.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
scratch=${IMAGE_TEST_SCRATCH:-$repo/.scratch/image}
image=${IMAGE_TEST_TAG:-localhost/modelship-runtime:test}
ca=${IMAGE_TEST_CA:-/etc/ssl/certs/ca-certificates.crt}
CONTAINERS_CONF=$("$here/podman-env.sh")
export CONTAINERS_CONF

# The Dockerfile starts FROM node:24-bookworm-slim, which no reachable registry serves: provide it locally.
"$here/base-image.sh"

[[ -f "$ca" ]] || { echo "build-image.sh: no CA bundle at $ca (set IMAGE_TEST_CA)" >&2; exit 1; }
# npm inside the build reaches the registry through whatever this machine trusts (on CI, possibly a proxy with its
# own CA), so it gets the host's CA bundle and an npmrc naming it. Both are mounted read-only into RUN steps only:
# neither ends up in a layer of the image.
npmrc=$scratch/npmrc
printf 'cafile=%s\n' "$ca" > "$npmrc"

previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
started=$SECONDS
cd "$repo"
# --pull=never: the base must come from local storage, never a registry. --network host: RUN steps use the host's
# network (npm ci), as a build on a developer machine would.
buildah bud --pull=never --network host \
  -v "$ca:$ca:ro" -v "$npmrc:/root/.npmrc:ro" \
  -f runtime/Dockerfile -t "$image" . >&2
echo "build-image.sh: $image built in $((SECONDS - started)) s" >&2
# Each rebuild would otherwise leave the image it replaced behind, untagged, in container storage.
current=$(podman image inspect --format '{{.Id}}' "$image")
if [[ -n "$previous" && "$previous" != "$current" ]]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi
echo "image size: $(podman image inspect --format '{{.Size}}' "$image")"
