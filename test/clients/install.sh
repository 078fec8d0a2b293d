#!/usr/bin/env bash
# Installs the official OIP v2 Python clients pinned in requirements.txt into a virtualenv (.venv-clients at the repo
# root, git-ignored) for test/runtime/official-clients.test.ts. Does nothing when the venv already holds exactly these
# pins. Measured here: ~45 s from an empty pip cache, ~500 MB.
#   PYTHON=python3.11 test/clients/install.sh      # another interpreter (3.11 or newer: numpy 2.4 needs it)
set -euo pipefail
cd "$(dirname "$0")/../.."
source test/pip-venv.sh
pip_venv .venv-clients test/clients/requirements.txt 3.11 'official clients'
