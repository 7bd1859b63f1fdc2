#!/usr/bin/env bash
# Installs the pinned external PVMs (package.json + package-lock.json:
# @fluffylabs/anan-as 1.2.0, @typeberry/lib 0.5.11) into the git-ignored
# fuzz/external/node_modules. Needs Node >= 18 and npm.
#
# Not `npm ci`: @typeberry/lib names an optional darwin-arm64 native package at
# a version the registry does not have, so no lock file can list it and npm 11's
# `ci` refuses the lock. `npm install` from the lock installs exactly the locked
# tree; the script fails if npm rewrote the lock or installed other versions.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "install.sh: node not found (Node >= 18 needed)" >&2; exit 1; }
command -v npm >/dev/null || { echo "install.sh: npm not found" >&2; exit 1; }
stamp=node_modules/.cpvm-lock
if [[ -f $stamp ]] && cmp -s package-lock.json "$stamp"; then
  exit 0 # already installed from this lock file
fi
cp package-lock.json /tmp/cpvm-lock.$$
trap 'rm -f /tmp/cpvm-lock.$$' EXIT
npm install --no-audit --no-fund --loglevel=error
cmp -s package-lock.json /tmp/cpvm-lock.$$ || { cp /tmp/cpvm-lock.$$ package-lock.json; echo "install.sh: npm changed package-lock.json" >&2; exit 1; }
check() { node -e "const v=require('./node_modules/$1/package.json').version; if (v!=='$2') { console.error('install.sh: $1 ' + v + ', expected $2'); process.exit(1) }"; }
check @fluffylabs/anan-as 1.2.0
check @typeberry/lib 0.5.11
cp package-lock.json "$stamp"
