# shellcheck shell=bash
# Shared helpers for scripts/run and scripts/test. Source it; do not execute it.
#
# Everything here must work in two situations:
#   * a fresh Debian 12 machine, as root, where nothing was installed by hand: we install
#     what is missing with apt and run PostgreSQL as an unprivileged system user
#     (PostgreSQL refuses to run as root);
#   * a developer's machine as a normal user, with the packages already present: we never
#     need root and run everything as that user.

if [[ -n ${KEEL_COMMON_SH_LOADED:-} ]]; then
  return 0
fi
KEEL_COMMON_SH_LOADED=1

# The checkout, resolved from this file's own location so the scripts work from any cwd.
KEEL_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd -P)

# Debian 12 ships PostgreSQL 15; we call its binaries by full path rather than through
# postgresql-common's wrappers, which would steer us towards the system cluster.
KEEL_PG_BIN=/usr/lib/postgresql/15/bin

# What building and running keeld needs. postgresql-15 also ships pgbench and the contrib
# modules (postgresql-contrib-15 is only a virtual package provided by it on Debian 12), and
# pulls in postgresql-client-15 (psql). curl is for the readiness probe in scripts/run. tzdata
# is the compiled time zones (/usr/share/zoneinfo) that schedules' zones are read from
# (src/sched/tz.c) and that tests/unit/sched/test_tz.c checks against.
# shellcheck disable=SC2034 # used by the scripts that source this file
KEEL_BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libssl-dev libcmocka-dev libpq-dev
  postgresql-15
  ca-certificates curl tzdata
)
# What the examples' integration test needs besides (tests/integration/test_examples.c runs
# the programs of examples/): the bash receiver's socat, openssl and jq (flock, base64 and od
# are in Debian's essential packages), and python3; node comes through keel_ensure_node_runtime.
# python3-yaml is for the check of docs/prometheus-alerts.yml (tests/docs/check_alerts.py).
# shellcheck disable=SC2034 # used by the scripts that source this file
KEEL_EXAMPLE_PACKAGES=(jq socat openssl python3 python3-yaml)
# What the fuzz drivers need besides (fuzz/run, the "fuzz" stage of scripts/test): clang and
# its libFuzzer and sanitizer runtimes (Debian 12 ships clang 14).
# shellcheck disable=SC2034 # used by the scripts that source this file
KEEL_FUZZ_PACKAGES=(clang libclang-rt-14-dev)

keel_say() { printf '==> %s\n' "$*" >&2; }
keel_warn() { printf 'warning: %s\n' "$*" >&2; }
keel_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

keel_is_root() { [[ $(id -u) -eq 0 ]]; }

# apt-get update is slow and needs the network: run it at most once per script, and only
# when something is actually missing.
KEEL_APT_UPDATED=

# keel_install_packages PKG... : install the Debian packages of the list that are missing.
keel_install_packages() {
  local pkg status
  local -a missing=()
  for pkg in "$@"; do
    # db:Status-Status is "installed" only for a fully installed package; a removed one
    # (config-files) or an unknown name does not count.
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$pkg")
  done
  ((${#missing[@]} > 0)) || return 0

  if ! keel_is_root; then
    printf 'error: missing Debian packages: %s\n' "${missing[*]}" >&2
    printf 'install them with:\n  sudo apt-get update && sudo apt-get install -y --no-install-recommends %s\n' \
      "${missing[*]}" >&2
    exit 1
  fi
  keel_say "installing missing packages: ${missing[*]}"
  if [[ -z $KEEL_APT_UPDATED ]]; then
    apt-get update
    KEEL_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# keel_ensure_node_runtime: a node >= 18 on PATH (Debian 12's nodejs is 18). A node that is
# already there (say, from NodeSource) wins: installing Debian's nodejs over it would fight
# with it.
keel_ensure_node_runtime() {
  local major
  if command -v node >/dev/null 2>&1; then
    major=$(node -p 'process.versions.node.split(".")[0]')
    if ((major < 18)); then
      keel_die "node $(node --version) on PATH is older than 18; put node >= 18 first on PATH"
    fi
  else
    keel_install_packages nodejs
  fi
}

# keel_ensure_node: keel_ensure_node_runtime, and npm on PATH.
keel_ensure_node() {
  keel_ensure_node_runtime
  # Debian's nodejs comes without npm; NodeSource's bundles it.
  command -v npm >/dev/null 2>&1 || keel_install_packages npm
}

# keel_build DIR [CMAKE ARGS...]: configure (RelWithDebInfo unless the args say otherwise)
# and build with one job per core: everything, or only KEEL_BUILD_TARGETS if set.
# Configuring every time is cheap and picks up changed options. Chained with && so a failed
# configure fails the call even where errexit does not apply (a caller's `if`).
KEEL_BUILD_TARGETS=()
keel_build() {
  local dir=$1
  shift
  local -a targets=()
  ((${#KEEL_BUILD_TARGETS[@]} == 0)) || targets=(--target "${KEEL_BUILD_TARGETS[@]}")
  cmake -S "$KEEL_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" &&
    cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
}

# ---------------------------------------------------------------------------------------
# A private PostgreSQL 15 cluster, driven with initdb/pg_ctl directly. No system service is
# touched (no pg_ctlcluster, systemctl or service), so it can sit beside a system cluster.

# State of the cluster, set by keel_pg_start. Named KPG_* rather than KEEL_PG_* so that no
# user setting such as KEEL_PG_PORT is overwritten when this file is sourced.
KPG_USER=          # the user postgres runs as when we are root (empty: ourselves)
KPG_DATADIR=       # the data folder actually used (may be a fallback, see below)
KPG_SOCKDIR=       # the socket folder actually used
KPG_PORT=          # the port actually used
KPG_LOG=           # server log (pg_ctl -l)
KPG_OPTS=          # the -o string given to pg_ctl
KPG_TMP_SOCKDIR=   # set when we made a short socket folder under /tmp: removed at stop
KPG_STARTED=       # set once we started the server, so keel_pg_stop knows what to stop
KPG_INITDB_ARGS=() # extra initdb arguments (scripts/test adds --no-sync)

# As root, pick (or create) the unprivileged user that owns the cluster. The postgresql
# package creates `postgres`; if it is absent we make our own system user.
keel_pg_pick_user() {
  [[ -z $KPG_USER ]] || return 0
  keel_is_root || return 0
  if id -u postgres >/dev/null 2>&1; then
    KPG_USER=postgres
  else
    if ! id -u keel-pg >/dev/null 2>&1; then
      keel_say "creating system user keel-pg to run PostgreSQL (it refuses to run as root)"
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin keel-pg
    fi
    KPG_USER=keel-pg
  fi
}

# keel_pg_as CMD...: run CMD as the cluster's user. From / because initdb and pg_ctl resolve
# their own path through the cwd and fail if that user cannot enter it (e.g. under /root).
keel_pg_as() {
  if [[ -n $KPG_USER ]]; then
    (cd / && runuser -u "$KPG_USER" -- "$@")
  else
    "$@"
  fi
}

# keel_pg_reachable DIR: can the cluster's user enter DIR (and so every folder above it)?
keel_pg_reachable() {
  [[ -z $KPG_USER ]] || { keel_pg_as test -x "$1" && keel_pg_as test -w "$1"; }
}

# Give DIR to the cluster's user (no-op when not root). -R only when needed: the data folder
# may have been made by another user in an earlier run.
keel_pg_own() {
  local dir=$1
  [[ -n $KPG_USER ]] || return 0
  if [[ $(stat -c %U "$dir") != "$KPG_USER" ]] ||
    [[ -n $(find "$dir" ! -user "$KPG_USER" -print -quit 2>/dev/null) ]]; then
    chown -R "$KPG_USER:" "$dir"
  fi
}

keel_short_hash() { printf '%s' "$1" | sha256sum | cut -c1-12; }

# keel_pg_start DATADIR PORT SOCKDIR [LISTEN_ADDRESSES [SETTING=VALUE...]]
#   initdb DATADIR if it is empty, then start the server on PORT with its socket in SOCKDIR,
#   listening on TCP LISTEN_ADDRESSES (default: none, socket only), with each extra SETTING
#   passed as -c. Sets KPG_DATADIR/KPG_SOCKDIR/KPG_PORT to what was really used.
keel_pg_start() {
  local datadir=$1 port=$2 sockdir=$3 listen=${4-}
  shift $(($# < 4 ? $# : 4))
  local setting locale fallback out

  [[ -x $KEEL_PG_BIN/pg_ctl ]] || keel_die "$KEEL_PG_BIN/pg_ctl not found (install postgresql-15)"
  keel_pg_pick_user

  mkdir -p "$datadir" "$sockdir"
  datadir=$(cd "$datadir" && pwd -P)
  sockdir=$(cd "$sockdir" && pwd -P)

  # As root, the data folder belongs to the cluster's user; if a folder above it is closed
  # to that user (a checkout under /root, mode 700), keep the data where it can reach it.
  if [[ -n $KPG_USER ]]; then
    keel_pg_own "$datadir"
    if ! keel_pg_reachable "$datadir"; then
      fallback=/var/lib/keel/$(basename "$datadir")-$(keel_short_hash "$datadir")
      keel_say "user $KPG_USER cannot reach $datadir (a parent folder is closed to it)"
      keel_say "the PostgreSQL data lives in $fallback instead"
      rmdir "$datadir" 2>/dev/null || true # only if we just made it empty
      mkdir -p "$fallback"
      chmod 755 /var/lib/keel
      datadir=$fallback
      keel_pg_own "$datadir"
    fi
    keel_pg_own "$sockdir"
  fi

  # Unix socket paths are limited to 107 bytes (sun_path); the server adds /.s.PGSQL.PORT.
  # A socket folder that is too long, or unreachable for the cluster's user, is replaced by
  # a fresh short one under /tmp.
  local why=
  if ((${#sockdir} + ${#port} + 11 > 100)); then
    why="is too long for a Unix socket path"
  elif ! keel_pg_reachable "$sockdir"; then
    why="is closed to user $KPG_USER"
  fi
  if [[ -n $why ]]; then
    KPG_TMP_SOCKDIR=$(mktemp -d /tmp/keel-pg.XXXXXX)
    keel_say "socket folder $sockdir $why; using $KPG_TMP_SOCKDIR"
    rmdir "$sockdir" 2>/dev/null || true # only if we just made it empty
    sockdir=$KPG_TMP_SOCKDIR
    chmod 755 "$sockdir"
    keel_pg_own "$sockdir"
  fi

  KPG_DATADIR=$datadir
  KPG_SOCKDIR=$sockdir
  KPG_PORT=$port
  KPG_LOG=$datadir/keel-postgres.log

  if [[ ! -f $datadir/PG_VERSION ]]; then
    if [[ -n $(ls -A "$datadir") ]]; then
      keel_die "$datadir is neither empty nor a PostgreSQL data folder"
    fi
    # C.UTF-8 sorts bytewise like C but knows UTF-8 character classes; fall back to C where
    # the locale is missing (locale -a says C.utf8 on Debian).
    locale=C
    if locale -a 2>/dev/null | grep -qix 'c\.utf-\?8'; then locale=C.UTF-8; fi
    keel_say "initializing a PostgreSQL 15 cluster in $datadir"
    # initdb's chatter (and its warning about trust auth, which is the point here) is only
    # shown when it fails.
    if ! out=$(keel_pg_as "$KEEL_PG_BIN/initdb" -D "$datadir" --auth=trust --username=keel \
      --encoding=UTF8 --locale="$locale" "${KPG_INITDB_ARGS[@]}" 2>&1); then
      printf '%s\n' "$out" >&2
      keel_die "initdb failed for $datadir"
    fi
  fi

  # Paths are single-quoted inside -o because pg_ctl hands that string to /bin/sh.
  if [[ $datadir == *"'"* || $sockdir == *"'"* ]]; then
    keel_die "paths with a single quote are not supported: $datadir $sockdir"
  fi
  # unix_socket_permissions=0700: with trust auth, only the cluster's user (and root) may
  # connect through the socket.
  KPG_OPTS="-p $port -k '$sockdir' -c listen_addresses='$listen' -c unix_socket_permissions=0700"
  for setting in "$@"; do
    KPG_OPTS+=" -c $setting"
  done

  if keel_pg_as "$KEEL_PG_BIN/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
    # Left running by a run that was killed with SIGKILL: reuse it (and stop it at the end).
    keel_warn "a PostgreSQL server is already running on $datadir; reusing it"
    KPG_STARTED=1
    if [[ -r $datadir/postmaster.pid ]]; then
      # Line 4 of postmaster.pid is the port, line 5 the socket folder in use.
      KPG_PORT=$(sed -n 4p "$datadir/postmaster.pid")
      KPG_SOCKDIR=$(sed -n 5p "$datadir/postmaster.pid")
    fi
    return 0
  fi

  keel_say "starting PostgreSQL on port $port (socket in $sockdir, log $KPG_LOG)"
  # pg_ctl puts the postmaster in its own session, so a Ctrl-C meant for us does not reach
  # it: we stop it ourselves, after keeld.
  if ! keel_pg_as "$KEEL_PG_BIN/pg_ctl" -D "$datadir" -l "$KPG_LOG" -w -t 120 \
    -o "$KPG_OPTS" start >/dev/null; then
    printf 'error: PostgreSQL did not start; the end of %s:\n' "$KPG_LOG" >&2
    tail -n 30 "$KPG_LOG" >&2 || true
    return 1
  fi
  KPG_STARTED=1
}

# keel_pg_stop: stop the cluster keel_pg_start started (fast mode: cancels open sessions),
# and remove a temporary socket folder. Safe to call more than once.
keel_pg_stop() {
  if [[ -n $KPG_STARTED ]]; then
    KPG_STARTED=
    if keel_pg_as "$KEEL_PG_BIN/pg_ctl" -D "$KPG_DATADIR" status >/dev/null 2>&1; then
      keel_say "stopping PostgreSQL ($KPG_DATADIR)"
      keel_pg_as "$KEEL_PG_BIN/pg_ctl" -D "$KPG_DATADIR" -w -t 120 -m fast stop >/dev/null ||
        keel_warn "pg_ctl stop failed for $KPG_DATADIR"
    fi
  fi
  if [[ -n $KPG_TMP_SOCKDIR ]]; then
    rm -rf -- "$KPG_TMP_SOCKDIR"
    KPG_TMP_SOCKDIR=
  fi
}

# keel_psql DB ARGS...: psql as superuser keel through the private cluster's socket.
keel_psql() {
  local db=$1
  shift
  "$KEEL_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$KPG_SOCKDIR" -p "$KPG_PORT" \
    -U keel -d "$db" "$@"
}
