#!/usr/bin/env bash
# The demo: sets everything up, then builds, checks and removes the tutorial's
# network inside a throwaway sandbox. Needs root; the host's network is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/netwrap tutorial "$@"
