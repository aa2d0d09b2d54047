#!/usr/bin/env bash
# Installs the Debian packages slimlm builds with (only those missing). Run as root or with sudo.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config python3 python3-pip
      libgtest-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev libpcre2-dev libeigen3-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
