#!/usr/bin/env bash
# Installs the peers kiln's build benchmarks compare against (not needed by CI or the tests),
# after the project's own setup. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# buildah (Debian's package) is the peer of `npm run bench:build`. The benchmark runs it as
# root with chroot isolation and the kernel's overlay driver: no OCI runtime, no FUSE.
packages=(buildah)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "bench-setup: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
buildah --version
