#!/usr/bin/env bash
# Installs what building and testing cpvm needs on Debian 12. Idempotent; as root
# it uses apt-get, otherwise it only checks and says what is missing.
set -euo pipefail

packages=(build-essential cmake ninja-build pkg-config clang-19 lld-19 libclang-rt-19-dev llvm-19
          libcjson-dev libcmocka-dev libseccomp-dev python3)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "ci/deps.sh: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
