#!/usr/bin/env bash
# Installs what building and testing Wasmgate needs beyond rustup: the wasm rustup targets and
# the Debian packages listed in scripts/c-guest-packages.txt (the C toolchain for the C guest
# example). With --test-services, also the servers the test suite starts (Redis, MariaDB,
# PostgreSQL, Prometheus; scripts/test-service-packages.txt). Installs only what is missing; safe to run
# again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

lists=(scripts/c-guest-packages.txt)
if [[ ${1:-} == --test-services ]]; then
    lists+=(scripts/test-service-packages.txt)
fi

rustup target add wasm32-wasip2 wasm32-wasip1 >/dev/null 2>&1
rustup component add clippy rustfmt >/dev/null 2>&1 || true

mapfile -t packages < <(cat "${lists[@]}" | grep -v '^#' | sed '/^$/d')
missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "Installing Debian packages: ${missing[*]}" >&2
    sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
