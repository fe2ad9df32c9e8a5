#!/usr/bin/env bash
# The test command: sets everything up, then ruff, mypy --strict and pytest.
# Run as root to include the real-kernel tests (each in its own throwaway sandbox);
# without root they are skipped with the reason. Extra arguments go to pytest.
# The SSH tests start their own sshd inside a sandbox, so openssh-server is
# installed too (on a host with systemd, installing it also starts its sshd).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh openssh-server
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
