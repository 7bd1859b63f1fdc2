#!/usr/bin/env bash
# Installs what building and testing cpvm needs on Debian 12. Idempotent; as root
# it uses apt-get, otherwise it only checks and says what is missing.
set -euo pipefail

packages=(build-essential cmake ninja-build pkg-config clang-19 lld-19 libclang-rt-19-dev llvm-19
          libcjson-dev libcmocka-dev libseccomp-dev libzydis-dev python3
          freedoom) # freedoom1.wad for the DOOM host tests (hosts/doom)
# Optional groups, named as arguments: `ci/deps.sh fuzz` for campaigns and triage
# (afl++ pulls in clang-14, so the plain test run does without it), `ci/deps.sh
# docker` for ci/docker-check.sh.
declare -A groups=([fuzz]="afl++ gdb zip gnuplot-nox" [docker]="podman debootstrap zip")
for group in "$@"; do
  if [[ -z ${groups[$group]+set} ]]; then
    echo "ci/deps.sh: unknown group '$group' (known: ${!groups[*]})" >&2
    exit 2
  fi
  read -ra extra <<<"${groups[$group]}"
  packages+=("${extra[@]}")
done

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
