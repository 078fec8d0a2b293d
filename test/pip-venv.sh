# Sourced by the install scripts under test/: pip_venv VENV REQUIREMENTS MIN_PYTHON LABEL makes a virtualenv holding
# exactly the pinned requirements, and does nothing when it already does (a stamp of the requirements' sha256 says so).
pip_venv() {
  local venv=$1 requirements=$2 min_python=$3 label=$4
  local python=${PYTHON:-python3} stamp="$1/requirements.sha256" wanted
  wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    return 0
  fi
  rm -rf "$venv"
  if ! "$python" -m venv "$venv"; then
    echo "install.sh: '$python -m venv' failed; use a Python $min_python+ with venv and pip (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
  local started=$SECONDS
  # Wheels only: a package that would need compiling here fails at once instead of taking minutes.
  "$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check --only-binary=:all: -r "$requirements"
  echo "$wanted" > "$stamp"
  echo "install.sh: $label installed into $venv in $((SECONDS - started)) s"
}
