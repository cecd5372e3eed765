#!/usr/bin/env bash
# Installs every Debian package opensrd needs (idempotent, non-interactive) and builds the release
# preset. Usage: scripts/setup.sh [--deps-only]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libsodium-dev libcpp-httplib-dev
  clang-16 libclang-rt-16-dev clang-format
  libisal-dev liburing-dev
  iproute2 nftables iperf3 sockperf jq python3 python3-matplotlib
  tshark tcpdump curl
  qemu-utils libnbd-bin nbdkit fio
  prometheus
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  # tshark asks whether non-root users may capture: answer no, without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" |
    $SUDO debconf-set-selections
  # prometheus is here for promtool (tests/metrics_test.sh): its daemon must not start. Where
  # no policy-rc.d forbids service starts, one does for the length of the install.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ -z "$policy" ] || $SUDO rm -f "$policy"
fi

[ "${1:-}" = "--deps-only" ] && exit 0
cmake --preset release >/dev/null
cmake --build --preset release
