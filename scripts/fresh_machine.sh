#!/usr/bin/env bash
# Proves the README's two commands on a fresh Debian 12 machine: a fresh root made with
# `debootstrap --variant=minbase bookworm` from this machine's own apt source, with what counts as
# "part of the machine" brought in from the host:
#   - the apt sources (read at run time from /etc/apt/sources.list{,.d}; no mirror names in this file),
#     /etc/resolv.conf and /etc/hosts;
#   - the CA setup: /etc/ssl/certs/ca-certificates.crt and /usr/local/share/ca-certificates/ (the latter so
#     that installing the ca-certificates package inside the root, which rebuilds the bundle, keeps the
#     host's local CAs);
#   - the pip configuration: /etc/pip.conf (and any cert file it or PIP_CERT names);
#   - the CUDA toolkit with cuDNN: /usr/local/cuda, bind-mounted read-only (same symlink layout as here);
#   - proc, sys (read-only), dev, dev/pts and a fresh dev/shm.
# The repository is cloned (committed state only: HEAD of REPO, or --ref) into DIR/root/kiln, and then, in
# `chroot` as root with a clean environment (`env -i`), it runs
#   tests: bash .ci/run
#   main:  bash scripts/setup.sh && bash scripts/build.sh && bash scripts/packnet.sh
# The clean environment is HOME=/root, LANG=C.UTF-8, Debian's root PATH (no /usr/local/cuda/bin), plus only
# the host's pip/proxy variables that make pip reach the package index as it does here: PIP_CERT,
# PIP_DEFAULT_TIMEOUT, PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, PIP_FIND_LINKS (only if that
# directory exists; it is then bind-mounted read-only at the same path), http(s)_proxy/no_proxy, each only
# when set on the host. Everything else (CUDA_HOME, LIBRARY_PATH, pyenv, ...) is left behind.
#
# All mounts live in a private mount namespace (unshare), are unmounted by an EXIT trap, and vanish with
# the namespace even if the script is killed; DIR is deleted only after checking nothing is mounted in it.
#
# Usage: bash scripts/fresh_machine.sh [--keep] [--tests-only|--main-only] [--repo PATH] [--ref REF]
#                                      [--timeout SECONDS] [DIR]
#   DIR        the fresh root (default /tmp/kiln-fresh; replaced if it exists). Logs go to DIR.logs/.
#   --keep     keep DIR afterwards (default: delete it)
#   --repo     repository to clone (default: the one this script is in); --ref: commit/branch (default HEAD)
#   --timeout  limit per phase (default 10800 s)
# Exits non-zero on the first failure and prints the tail of that phase's log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=/tmp/kiln-fresh KEEP=0 RUN_TESTS=1 RUN_MAIN=1 REPO=$here REF=HEAD PHASE_TIMEOUT=10800
args=("$@")
while [ $# -gt 0 ]; do
  case $1 in
    --keep) KEEP=1 ;;
    --tests-only) RUN_MAIN=0 ;;
    --main-only) RUN_TESTS=0 ;;
    --repo) REPO=$2; shift ;;
    --ref) REF=$2; shift ;;
    --timeout) PHASE_TIMEOUT=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fresh_machine: unknown option $1" >&2; exit 2 ;;
    *) DIR=$1 ;;
  esac
  shift
done
[ "$RUN_TESTS$RUN_MAIN" != 00 ] || { echo "fresh_machine: --tests-only and --main-only exclude each other" >&2; exit 2; }
DIR=$(realpath -m "$DIR")
case $DIR in /|/tmp|/root|/home|/usr|/usr/*|/etc|/etc/*|/var|/bin|/sbin|/lib*|/boot|/dev*|/proc*|/sys*|/work)
  echo "fresh_machine: refusing DIR=$DIR" >&2; exit 2 ;;
esac
LOGS=$DIR.logs
[ "$(id -u)" = 0 ] || { echo "fresh_machine: must run as root" >&2; exit 2; }

t0=$(date +%s)
say() { echo "[$(date -u +%H:%M:%S) +$(( $(date +%s) - t0 ))s] $*"; }
die() { say "FAILED: $*" >&2; exit 1; }

# Mount points under DIR, as seen from the current mount namespace.
mounts_under() { findmnt -rn -o TARGET | awk -v d="$1" 'index($0, d "/") == 1 || $0 == d'; }

# rm -rf DIR, but never while anything is mounted below it.
remove_root() {
  [ -e "$1" ] || return 0
  local m; m=$(mounts_under "$1")
  [ -z "$m" ] || die "not removing $1: still mounted below it:
$m"
  rm -rf --one-file-system -- "$1"
}

if [ -z "${KILN_FRESH_INNER:-}" ]; then
  # ---- outer part, in the host's mount namespace ----
  exec 9>"$DIR.lock"
  flock -n 9 || die "another fresh_machine run holds $DIR.lock"
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  remove_root "$DIR"
  rm -rf -- "$LOGS"; mkdir -p "$LOGS"
  # Everything else runs in a private mount namespace: no mount can leak to the host or outlive the run.
  KILN_FRESH_INNER=1 exec unshare --mount --propagation private -- bash "$0" "${args[@]}"
fi

# ---- inner part, in a private mount namespace ----
MOUNTED=()
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" 2>/dev/null ||
      echo "fresh_machine: could not unmount ${MOUNTED[i]}" >&2
  done
  local left; left=$(mounts_under "$DIR")
  if [ -n "$left" ]; then
    echo "fresh_machine: still mounted (namespace only; gone when it exits):" >&2; echo "$left" >&2
  elif [ "$KEEP" = 0 ] && [ -d "$DIR" ]; then
    rm -rf --one-file-system -- "$DIR"
  fi
  [ "$rc" = 0 ] || echo "fresh_machine: exit status $rc" >&2
  [ "$KEEP" = 1 ] && echo "fresh_machine: root kept at $DIR (enter: chroot $DIR; mounts are gone)"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "fresh_machine: line $LINENO failed: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

mnt() {  # mnt TARGET ARGS...: mount and remember for the trap
  local target=$1; shift
  mkdir -p "$target"
  mount "$@" "$target"
  MOUNTED+=("$target")
}

# The host's apt sources: the first deb URI whose suites include bookworm (deb822 or one-line format).
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      { t = ""; s = ""; u = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) t = $i; if ($i ~ /^Suites:/) s = $i; if ($i ~ /^URIs:/) u = $i }
        if (t ~ /[ \t]deb([ \t]|$)/ && s ~ /[ \t]bookworm([ \t]|$)/) { sub(/^URIs:[ \t]*/, "", u); split(u, a, /[ \t]+/); print a[1]; exit } }' "$f"
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { if ($(i + 1) == "bookworm") print $i; break } }'
  return 0
}
MIRROR=$(host_mirror | head -n 1) || true
[ -n "$MIRROR" ] || die "no bookworm deb source found in /etc/apt/sources.list{,.d}"

phase_times=()
run_phase() {  # run_phase NAME COMMAND: runs COMMAND (host side) with its output in $LOGS/NAME.log
  local name=$1 cmd=$2 start rc=0
  start=$(date +%s)
  say "$name: start (log: $LOGS/$name.log)"
  timeout --kill-after=60 "$PHASE_TIMEOUT" bash -c "$cmd" >"$LOGS/$name.log" 2>&1 || rc=$?
  local took=$(( $(date +%s) - start ))
  phase_times+=("$(printf '%-14s %6d s  %s' "$name" "$took" "$([ $rc = 0 ] && echo ok || echo "FAILED rc=$rc")")")
  if [ $rc != 0 ]; then
    echo "----- last 60 lines of $LOGS/$name.log -----" >&2
    tail -n 60 "$LOGS/$name.log" >&2
    echo "----- end of $LOGS/$name.log -----" >&2
    printf '%s\n' "${phase_times[@]}" >&2
    die "$name (rc=$rc, ${took}s)"
  fi
  say "$name: ok (${took}s)"
}

# ---- 1. the root ----
mkdir -p "$DIR"
run_phase debootstrap "debootstrap --variant=minbase bookworm '$DIR' '$MIRROR'"

say "configuring the root from the host (mirror $MIRROR)"
rm -f "$DIR/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  cp "$f" "$DIR$f"
  # keyrings named by Signed-By that the fresh root lacks
  for k in $(grep -ohE '(Signed-By:[[:space:]]*|signed-by=)/[^] ]+' "$f" | sed -E 's/^(Signed-By:[[:space:]]*|signed-by=)//'); do
    [ -e "$DIR$k" ] || { mkdir -p "$(dirname "$DIR$k")"; cp "$k" "$DIR$k"; }
  done
done
cp /etc/resolv.conf "$DIR/etc/resolv.conf"
cp /etc/hosts "$DIR/etc/hosts"
mkdir -p "$DIR/etc/ssl/certs" "$DIR/usr/local/share/ca-certificates"
cp /etc/ssl/certs/ca-certificates.crt "$DIR/etc/ssl/certs/ca-certificates.crt"
if [ -d /usr/local/share/ca-certificates ]; then
  cp -a /usr/local/share/ca-certificates/. "$DIR/usr/local/share/ca-certificates/"
fi
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$DIR/etc/pip.conf"
for c in $(sed -nE 's/^[[:space:]]*cert[[:space:]]*=[[:space:]]*//p' /etc/pip.conf 2>/dev/null) ${PIP_CERT:-}; do
  [ -f "$c" ] && [ ! -e "$DIR$c" ] && { mkdir -p "$(dirname "$DIR$c")"; cp "$c" "$DIR$c"; }
done

# The clean environment for the chroot (see the header).
CHROOT_ENV=(HOME=/root LANG=C.UTF-8 TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
for v in PIP_CERT PIP_DEFAULT_TIMEOUT PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST \
         http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -n "${!v:-}" ] && CHROOT_ENV+=("$v=${!v}")
done
if [ -n "${PIP_FIND_LINKS:-}" ]; then
  if [ -d "$PIP_FIND_LINKS" ]; then
    mnt "$DIR$PIP_FIND_LINKS" --bind "$PIP_FIND_LINKS"
    mount -o remount,bind,ro "$DIR$PIP_FIND_LINKS"
    CHROOT_ENV+=("PIP_FIND_LINKS=$PIP_FIND_LINKS")
  else
    say "note: PIP_FIND_LINKS=$PIP_FIND_LINKS does not exist on the host; not passed"
  fi
fi

# ---- 2. mounts ----
mnt "$DIR/proc" -t proc proc
mnt "$DIR/sys" -t sysfs -o ro sysfs
mnt "$DIR/dev" --bind /dev
mnt "$DIR/dev/pts" --bind /dev/pts
mnt "$DIR/dev/shm" -t tmpfs -o mode=1777 tmpfs
if [ -e /usr/local/cuda ]; then
  cuda_real=$(realpath /usr/local/cuda)
  if [ -L /usr/local/cuda ]; then  # same layout as the host: /usr/local/cuda -> cuda-13.0
    ln -sfn "$(readlink /usr/local/cuda)" "$DIR/usr/local/cuda"
  fi
  mnt "$DIR$cuda_real" --bind "$cuda_real"
  mount -o remount,bind,ro "$DIR$cuda_real"
  say "CUDA toolkit: $cuda_real bind-mounted read-only"
else
  say "note: no /usr/local/cuda on the host; the CUDA backend will not be built"
fi

# ---- 3. the repository ----
run_phase clone "git clone -q --no-local '$REPO' '$DIR/root/kiln' && git -C '$DIR/root/kiln' checkout -q --detach '$REF'"
COMMIT=$(git -C "$DIR/root/kiln" rev-parse HEAD)
say "testing commit $COMMIT ($(git -C "$DIR/root/kiln" log -1 --format=%s | cut -c1-80))"
[ -z "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ] ||
  say "note: $REPO has uncommitted changes; they are not part of this run"

# ---- 4. the README's two commands, in the chroot, clean environment ----
in_root() { printf 'chroot %q /usr/bin/env -i' "$DIR"; printf ' %q' "${CHROOT_ENV[@]}"; printf ' /bin/bash -c %q' "cd /root/kiln && $1"; }
say "chroot environment: ${CHROOT_ENV[*]}"
if [ "$RUN_TESTS" = 1 ]; then
  run_phase tests "$(in_root 'bash .ci/run')"
  grep -E '^[0-9]+% tests passed|[0-9]+ (passed|failed).* in [0-9.]+s' "$LOGS/tests.log" | sed 's/^/  tests: /' || true
fi
if [ -d "$DIR/root/kiln/build" ]; then
  say "CUDA backend built: $([ -x "$DIR/root/kiln/build/kiln_gpu_tests" ] && echo yes || echo no)"
fi
if [ "$RUN_MAIN" = 1 ]; then
  run_phase main "$(in_root 'bash scripts/setup.sh && bash scripts/build.sh && bash scripts/packnet.sh')"
  grep -E 'rel L2|main job: done' "$LOGS/main.log" | sed 's/^/  main: /' || true
fi

say "all phases passed for commit $COMMIT; logs in $LOGS"
printf '  %s\n' "${phase_times[@]}"
