#!/usr/bin/env bash
# install-deps.sh: installs the Debian packages lmnet needs to build, test and demo, only those missing.
# Used by `make demo`, `make test` and .ci/run; safe to run repeatedly.
set -eu
pkgs="gcc make flex bison libopenblas-dev libyaml-dev libmicrohttpd-dev libjansson-dev curl libcunit1-dev graphviz clang libclang-rt-14-dev fortunes valgrind pkg-config gnuplot-nox libopenmpi-dev openmpi-bin"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
