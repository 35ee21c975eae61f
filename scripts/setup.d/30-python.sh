# Creates tests/python/.venv and installs the pinned packages of
# tests/python/requirements.txt (the Python spoke's `websockets`), again only
# when the requirements change.
venv=tests/python/.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -f "$venv/.installed" ] || [ tests/python/requirements.txt -nt "$venv/.installed" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  touch "$venv/.installed"
fi
