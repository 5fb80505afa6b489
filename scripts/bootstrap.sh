#!/usr/bin/env bash
# Installs everything the workbench needs on a fresh machine, idempotently.
# Each step says what it does and is skipped when already done; a second run installs nothing.
# Overrides for machines that already have the binaries:
#   WORKBENCH_PG_BIN          directory holding initdb and pg_ctl
#   WORKBENCH_REDIS_SERVER    path of redis-server
#   WORKBENCH_TOXIPROXY       path of toxiproxy-server (2.12.0)
#   WORKBENCH_PYTHON          interpreter used to create .venv (default: python3)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
TOXIPROXY_VERSION=2.12.0
installed_any=0

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 3; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run '$*': run this script as root or install sudo"
  fi
}

# --- 1. Debian packages: PostgreSQL, Redis, libfaketime (clock faults) ---------------------
pg_bin_dir() {
  if [ -n "${WORKBENCH_PG_BIN:-}" ]; then echo "$WORKBENCH_PG_BIN"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  echo "$d"
}

missing_pkgs=()
pgdir=$(pg_bin_dir)
if [ -z "$pgdir" ] || [ ! -x "$pgdir/initdb" ] || [ ! -x "$pgdir/pg_ctl" ]; then
  [ -n "${WORKBENCH_PG_BIN:-}" ] && die "WORKBENCH_PG_BIN=$WORKBENCH_PG_BIN has no initdb/pg_ctl"
  missing_pkgs+=(postgresql)
fi
if [ -z "${WORKBENCH_REDIS_SERVER:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  missing_pkgs+=(redis-server)
fi
if [ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] && ! command -v faketime >/dev/null 2>&1; then
  missing_pkgs+=(faketime)
fi
if [ "${WORKBENCH_NO_BROWSER:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then
  missing_pkgs+=(chromium)   # report tests open report.html in a real browser
fi
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing_pkgs[*]} and no apt-get: install them, or set WORKBENCH_PG_BIN / WORKBENCH_REDIS_SERVER"
  say "installing Debian packages: ${missing_pkgs[*]}"
  as_root apt-get update -qq || die "apt-get update failed: check the machine reaches Debian's package mirror"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing_pkgs[@]}" >/dev/null \
    || die "apt-get install ${missing_pkgs[*]} failed"
  installed_any=1
else
  say "Debian packages present (postgresql, redis-server, faketime, chromium): skipped"
fi
# Debian's postgresql package starts a cluster as a system service; the workbench starts its own
# throwaway instances and does not use it, so it is left as the package set it up.

# --- 2. Toxiproxy 2.12.0 built from source ------------------------------------------------------
mkdir -p .tools/bin
tp="${WORKBENCH_TOXIPROXY:-$root/.tools/bin/toxiproxy-server}"
if [ -x "$tp" ] && "$tp" -version 2>/dev/null | grep -q "$TOXIPROXY_VERSION"; then
  say "toxiproxy $TOXIPROXY_VERSION present at $tp: skipped"
else
  [ -n "${WORKBENCH_TOXIPROXY:-}" ] && die "WORKBENCH_TOXIPROXY=$WORKBENCH_TOXIPROXY is not toxiproxy-server $TOXIPROXY_VERSION"
  command -v go >/dev/null 2>&1 || die "toxiproxy needs the Go toolchain (>= 1.23): install Go, or set WORKBENCH_TOXIPROXY"
  say "building toxiproxy $TOXIPROXY_VERSION with $(go version | cut -d' ' -f3)"
  gobin=$(mktemp -d)
  GOBIN="$gobin" GOFLAGS=-mod=mod go install \
    -ldflags "-X github.com/Shopify/toxiproxy/v2.Version=$TOXIPROXY_VERSION" \
    "github.com/Shopify/toxiproxy/v2/cmd/server@v$TOXIPROXY_VERSION" \
    "github.com/Shopify/toxiproxy/v2/cmd/cli@v$TOXIPROXY_VERSION" \
    || die "go install of toxiproxy failed: check the Go module proxy is reachable"
  mv "$gobin/server" .tools/bin/toxiproxy-server
  mv "$gobin/cli" .tools/bin/toxiproxy-cli
  rm -rf "$gobin"
  .tools/bin/toxiproxy-server -version | grep -q "$TOXIPROXY_VERSION" || die "built toxiproxy does not report $TOXIPROXY_VERSION"
  installed_any=1
fi

# --- 3. Python virtual environment with the package and its dev extras --------------------------
py="${WORKBENCH_PYTHON:-python3}"
stamp=.venv/.bootstrap-stamp
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say ".venv up to date with pyproject.toml: skipped"
else
  command -v "$py" >/dev/null 2>&1 || die "no $py: install Python >= 3.11 or set WORKBENCH_PYTHON"
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$py is older than 3.11"
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $("$py" --version)"
    "$py" -m venv .venv || die "python -m venv failed: install the venv module (Debian: python3-venv)"
  fi
  say "installing the workbench and its dev extras into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null || die "pip upgrade failed: check PyPI is reachable"
  .venv/bin/python -m pip install -q -e '.[dev]' || die "pip install -e '.[dev]' failed: see pip's message above"
  echo "$want" > "$stamp"
  installed_any=1
fi

if [ "$installed_any" = 0 ]; then
  say "everything already installed: nothing to do"
fi
