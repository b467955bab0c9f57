#!/usr/bin/env bash
# Installs the peers kiln's build benchmarks compare against (not needed by CI or the tests),
# after the project's own setup. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# buildah (Debian's package) is the peer of `npm run bench:build` and `bench:cache`. The
# benchmarks run it as root with chroot isolation and the kernel's overlay driver: no OCI
# runtime, no FUSE.
bash scripts/setup.sh buildah
buildah --version
