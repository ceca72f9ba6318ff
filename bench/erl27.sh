#!/usr/bin/env bash
# The erl of the Debian 13 root (OTP 27) that test/interop/otp27 builds in
# _build/trixie ($EWP_TRIXIE_ROOT), for BENCH_TLS_ERL: an OTP 27 TLS client
# node in the bench. It runs in a mount namespace of its own (gone with it)
# with this tree bound at its own path inside the root and /proc mounted,
# so the bench's paths (ebin, certificates) are the same there.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
root=${EWP_TRIXIE_ROOT:-$top/_build/trixie}
[ -x "$root/usr/bin/erl" ] || { echo "erl27: no $root/usr/bin/erl (make interop-otp27 builds it)" >&2; exit 1; }
# shellcheck disable=SC2016  # expanded by the inner bash
exec unshare -m --propagation private bash -c '
  set -e
  root=$1 top=$2; shift 2
  mkdir -p "$root$top"
  mount --bind "$top" "$root$top"
  mount -t proc proc "$root/proc"
  exec chroot "$root" /usr/bin/erl "$@"' erl27 "$root" "$top" "$@"
