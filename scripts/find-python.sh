#!/usr/bin/env bash
# Print the path of a working Python 3.12 interpreter (DOLFINx's wheel needs >= 3.12).
# Each candidate is *run*, not just found: a pyenv shim on PATH fails while another
# pyenv version is active (see shared STACK.md).
set -u
want="3.12"
cands=()
[ -n "${PYTHON:-}" ] && cands+=("$PYTHON")
cands+=(python3.12)
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for d in "$root"/versions/3.12*; do [ -x "$d/bin/python3.12" ] && cands+=("$d/bin/python3.12"); done
fi
for d in "$HOME"/.pyenv/versions/3.12* /usr/local/bin /usr/bin; do
  [ -x "$d/bin/python3.12" ] && cands+=("$d/bin/python3.12")
  [ -x "$d/python3.12" ] && cands+=("$d/python3.12")
done
cands+=(python3)
for c in "${cands[@]}"; do
  if "$c" -c 'import sys, venv; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
    "$c" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
cat >&2 <<MSG
error: no working Python $want found (tried: ${cands[*]}).
The DOLFINx wheel (dolfinx-solver-real) needs Python 3.12. Install it, for example:
  pyenv install 3.12.1            # with pyenv, or
  apt-get install python3.12 python3.12-venv
or point PYTHON=/path/to/python3.12 at one, then rerun make.
MSG
exit 1
