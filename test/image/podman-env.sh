#!/usr/bin/env bash
# Makes podman and buildah usable on a CI VM like this one, for the image test (test/runtime/image.test.ts) and the
# scripts next to this one. Writes a containers.conf into the test's scratch directory and prints its path:
#
#   export CONTAINERS_CONF="$(test/image/podman-env.sh)"
#
# Idempotent: the file is rewritten only when its content would change. Why each setting:
# - runtime runc: the crun in Debian bookworm (1.8) refuses to start containers on a VM with hybrid cgroups (v1
#   controllers plus a v2 hierarchy); runc starts them.
# - default_ulimits: podman asks for a larger open-files limit than this VM's hard limit allows and then fails to
#   start any container; capping it at `ulimit -Hn` (and nproc at 32768) keeps every run under what the VM permits.
# - cgroupfs, file events and k8s-file logs: CI machines usually run without systemd or journald, so podman must not
#   depend on them (and `podman logs` must still work after the container has exited).
# The scratch directory is .scratch/image at the repo root (git-ignored), or $IMAGE_TEST_SCRATCH.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
scratch=${IMAGE_TEST_SCRATCH:-$repo/.scratch/image}
mkdir -p "$scratch"
conf="$scratch/containers.conf"
nofile=$(ulimit -Hn)
# An unlimited hard limit is not a number podman accepts as a ulimit; use a large finite one instead.
[[ "$nofile" == unlimited ]] && nofile=1048576
wanted=$(cat <<CONF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
)
if [[ ! -f "$conf" || "$(cat "$conf")" != "$wanted" ]]; then
  # Written beside and renamed, so a concurrent reader never sees half a file.
  printf '%s\n' "$wanted" > "$conf.$$"
  mv -f "$conf.$$" "$conf"
fi
echo "$conf"
