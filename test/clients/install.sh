#!/usr/bin/env bash
# Installs the official OIP v2 Python clients pinned in requirements.txt into a virtualenv (.venv-clients at the repo
# root, git-ignored) for test/runtime/official-clients.test.ts. Does nothing when the venv already holds exactly these
# pins. Measured here: ~45 s from an empty pip cache, ~500 MB.
#   PYTHON=python3.11 test/clients/install.sh      # another interpreter (3.11 or newer: numpy 2.4 needs it)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-clients
requirements=test/clients/requirements.txt
python=${PYTHON:-python3}
stamp="$venv/requirements.sha256"
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  exit 0
fi
rm -rf "$venv"
if ! "$python" -m venv "$venv"; then
  echo "install.sh: '$python -m venv' failed; use a Python 3.11+ with venv and pip (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
started=$SECONDS
# Wheels only: a package that would need compiling here fails at once instead of taking minutes.
"$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check --only-binary=:all: -r "$requirements"
echo "$wanted" > "$stamp"
echo "install.sh: official clients installed into $venv in $((SECONDS - started)) s"
