#!/usr/bin/env bash
# Prepare a Debian machine for netwrap: the tools it drives (apt) and a virtual
# environment with netwrap and its test tools (.venv). Safe to run again.
# Extra Debian packages may be named as arguments (the tests add openssh-server).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(iproute2 bridge-utils iptables iputils-ping procps util-linux mount coreutils openssh-client docker.io containerd runc podman crun containernetworking-plugins busybox-static gcc libc6-dev "$@")
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "setup: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
        [[ $(id -u) -eq 0 ]] || { echo "setup: $python cannot make a venv; sudo apt-get install python3-venv" >&2; exit 1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        rm -rf .venv
        "$python" -m venv .venv
    fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
