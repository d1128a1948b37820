#!/usr/bin/env bash
# The systemd unit as `cmake --install` installs it: the files land where
# they should, `systemd-analyze verify` has nothing to say, the sandbox scores
# 1.5 or lower on `systemd-analyze security --offline=true`, and the default
# config passes `importwatch check` with the credential the unit loads.
#   tests/packaging/systemd_unit.sh BUILD_DIR      (CTest: packaging.systemd_unit)
set -euo pipefail
build=$1
if ! command -v systemd-analyze >/dev/null; then
  echo "skipped: no systemd-analyze" >&2
  exit 77
fi
max_exposure=1.5
stage=$(mktemp -d /tmp/importwatch-install.XXXXXX)
trap 'rm -rf "$stage"' EXIT

DESTDIR=$stage cmake --install "$build" >"$stage.log" 2>&1 || { cat "$stage.log"; rm -f "$stage.log"; exit 1; }
rm -f "$stage.log"
unit=$(find "$stage" -path '*/systemd/system/importwatch.service' -type f)
[[ -n $unit ]] || { echo "FAIL: no importwatch.service installed under $stage" >&2; exit 1; }
bin=$(sed -n 's|^ExecStart=\([^ ]*\) run .*|\1|p' "$unit")
config=$(sed -n 's|^ExecStart=[^ ]* run --config \([^ ]*\)$|\1|p' "$unit")
for f in "$bin" "$config"; do
  [[ -f $stage$f ]] || { echo "FAIL: the unit names $f, which was not installed" >&2; exit 1; }
done
[[ -x $stage$bin ]] || { echo "FAIL: $bin is not executable" >&2; exit 1; }
docs=$(find "$stage" -path '*/doc/importwatch' -type d)
for f in README.md LICENSE docs/operations.md config/reference.yaml; do
  [[ -f $docs/$f ]] || { echo "FAIL: $f not installed in the doc dir" >&2; exit 1; }
done
version=$("$stage$bin" --version)
version_form='^importwatch [0-9]+\.[0-9]+\.[0-9]+( \(git [^)]+\))?$'
[[ $version =~ $version_form ]] \
  || { echo "FAIL: importwatch --version says '$version'" >&2; exit 1; }
source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
if [[ $(git -C "$source_dir" rev-parse --show-toplevel 2>/dev/null) == "$(realpath "$source_dir")" ]]; then
  [[ $version == *"(git "* ]] || { echo "FAIL: built from a checkout, but --version names no revision: $version" >&2; exit 1; }
fi
echo "ok: installed $bin ($version), $(basename "$unit") into ${unit#"$stage"}, $config, the documents"

# verify checks that the commands exist: point them at the staged binary.
check_unit=$stage/verify/importwatch.service
mkdir -p "$(dirname "$check_unit")"
sed "s|$bin |$stage$bin |" "$unit" >"$check_unit"
out=$(cd "$stage" && systemd-analyze verify "$check_unit" 2>&1) || { echo "FAIL: systemd-analyze verify:" >&2; echo "$out" >&2; exit 1; }
[[ -z $out ]] || { echo "FAIL: systemd-analyze verify is not silent:" >&2; echo "$out" >&2; exit 1; }
echo "ok: systemd-analyze verify is silent"

report=$(cd "$stage" && systemd-analyze security --offline=true "$unit" 2>&1) || true
score=$(sed -n 's/.*Overall exposure level for importwatch.service: \([0-9.]*\).*/\1/p' <<<"$report")
[[ -n $score ]] || { echo "FAIL: no exposure level in:" >&2; echo "$report" >&2; exit 1; }
if ! awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }'; then
  echo "$report" >&2
  echo "FAIL: systemd-analyze security: exposure $score, more than $max_exposure" >&2
  exit 1
fi
echo "ok: systemd-analyze security --offline=true: exposure $score (at most $max_exposure)"

# The default config, read as the service reads it: the token from the credential.
creds=$stage/credentials
mkdir -p "$creds"
echo api-0123456789abcdef >"$creds/ld-token"
out=$(CREDENTIALS_DIRECTORY=$creds "$stage$bin" check --config "$stage$config" 2>&1) \
  || { echo "FAIL: importwatch check of the installed config:" >&2; echo "$out" >&2; exit 1; }
echo "ok: the installed config passes importwatch check with \$CREDENTIALS_DIRECTORY/ld-token"
