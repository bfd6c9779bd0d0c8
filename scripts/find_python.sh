#!/usr/bin/env bash
# Print the path of a Python interpreter of the given minor version (e.g. 3.10), or explain how to get one.
set -euo pipefail
want="$1"
for candidate in "python$want" "$HOME/.pyenv/versions/$want"*/bin/python"$want" /usr/bin/python"$want" /usr/local/bin/python"$want"; do
  if path=$(command -v "$candidate" 2>/dev/null) && [ -n "$path" ] && "$path" -c "import sys; assert sys.version.startswith('$want')" 2>/dev/null; then
    echo "$path"; exit 0
  fi
done
if command -v pyenv >/dev/null 2>&1; then
  if path=$(PYENV_VERSION=$(pyenv versions --bare | grep "^$want" | tail -1) pyenv which "python$want" 2>/dev/null); then echo "$path"; exit 0; fi
fi
echo "Python $want not found. Install it (e.g. 'pyenv install $want' or 'apt-get install python$want python$want-venv') and retry." >&2
exit 1
