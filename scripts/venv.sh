# Sourced by scripts/run and scripts/test: creates .venv (python3.11, else python3) when missing and
# installs the project with the pinned versions, skipping the install while pyproject.toml and
# constraints.txt are unchanged.
ensure_venv() {
  if [[ ! -x .venv/bin/python ]]; then
    local py
    py="$(command -v python3.11 || command -v python3 || true)"
    if [[ -z "$py" ]]; then
      echo "scripts: python3.11 (or python3) not found" >&2
      exit 1
    fi
    echo "scripts: creating .venv with $py" >&2
    "$py" -m venv .venv
  fi
  local stamp
  stamp="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
  if [[ "$(cat .venv/.installed 2>/dev/null || true)" != "$stamp" ]]; then
    echo "scripts: installing dependencies into .venv (pip install -e '.[dev]' -c constraints.txt)" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' -c constraints.txt
    echo "$stamp" > .venv/.installed
  fi
}

