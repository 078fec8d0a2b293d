#!/usr/bin/env bash
# Installs the local stores that test/runtime/fetch-stores.test.ts runs `modelship fetch` against, where a user's
# model lies: moto's S3 server (pinned in requirements.txt) into a virtualenv, .venv-stores at the repo root, and
# fake-gcs-server (Cloud Storage's JSON API) built with `go install` into .ci/bin. The OCI registry is Debian's
# docker-registry, which .ci/run installs with apt. Both ignored by git; each step does nothing when that version is
# already there. Measured here from empty caches: ~30 s for moto, ~2 min for the fake-gcs-server build.
#   PYTHON=python3.11 test/stores/install.sh      # another interpreter (3.9 or newer)
set -euo pipefail
cd "$(dirname "$0")/../.."

source test/pip-venv.sh
pip_venv .venv-stores test/stores/requirements.txt 3.9 moto

# The version is pinned here and checked against the binary's build info, so a bump rebuilds it.
FAKE_GCS_SERVER_VERSION=v1.56.1
bin=.ci/bin/fake-gcs-server
if ! go version -m "$bin" 2>/dev/null | grep -q "mod[[:space:]]*github.com/fsouza/fake-gcs-server[[:space:]]*$FAKE_GCS_SERVER_VERSION"; then
  if command -v go >/dev/null; then
    started=$SECONDS
    GOBIN="$PWD/.ci/bin" GOTOOLCHAIN=auto go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_SERVER_VERSION"
    echo "install.sh: fake-gcs-server $FAKE_GCS_SERVER_VERSION built into .ci/bin in $((SECONDS - started)) s"
  else
    echo "install.sh: no go on PATH, so fake-gcs-server $FAKE_GCS_SERVER_VERSION is not installed" >&2
  fi
fi
