#!/usr/bin/env bash
# Runs the tests of the packages with arm64 code (the NEON kernels and the
# model on top of them) on this machine under QEMU user-mode emulation:
# cross-compiles each package's test binary with GOARCH=arm64 and runs it
# with qemu-aarch64 in the package's directory. This checks correctness only;
# speed under emulation means nothing.
#
# Needs Debian's qemu-user (or qemu-user-static). Under CI=true it installs
# it with apt-get when missing (as root) and fails if it cannot.
#
#   scripts/test-arm64.sh [packages...] [-- test flags...]
#   default packages: ./kernels ./model
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do pkgs+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./kernels ./model)

qemu=""
for q in qemu-aarch64 qemu-aarch64-static; do
  if command -v "$q" >/dev/null; then qemu=$q; break; fi
done
if [ -z "$qemu" ] && [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing qemu-user (apt-get)"
  apt-get install -y qemu-user >/dev/null
  qemu=qemu-aarch64
fi
if [ -z "$qemu" ]; then
  echo "test-arm64: qemu-aarch64 not found; install Debian's qemu-user (apt-get install -y qemu-user)" >&2
  exit 1
fi

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
status=0
for p in "${pkgs[@]}"; do
  name=$(echo "$p" | tr '/.' '__')
  echo "== $p (GOARCH=arm64 under $qemu)"
  CGO_ENABLED=0 GOARCH=arm64 go test -c -o "$bin/$name.test" "$p"
  dir=$(go list -f '{{.Dir}}' "$p")
  # TestLoadPeakMemory starts the test binary again, which a cross-compiled
  # binary cannot do under user-mode emulation without binfmt_misc.
  if ! (cd "$dir" && "$qemu" "$bin/$name.test" -test.count=1 -test.skip '^TestLoadPeakMemory$' "$@"); then
    status=1
  fi
done
exit $status
