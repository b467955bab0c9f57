#!/usr/bin/env bash
# Installs what kiln's build, demo and tests need on a Debian 12 machine, then builds kiln.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use as independent peers: the real registry, image tools, runc;
# patchelf, gcc and libc6-dev build the executor image. Arguments name more packages
# (scripts/bench-setup.sh adds the benchmarks' peers).
packages=(docker-registry skopeo umoci runc busybox-static apache2-utils debootstrap openssl curl ca-certificates git patchelf gcc libc6-dev binutils "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
