#!/usr/bin/env bash
# docs.alert_rules: the Prometheus alert rules shipped in deploy/prometheus
# load (promtool check rules), pass their unit tests (promtool test rules),
# use only metrics the daemon exports, are quoted verbatim in
# docs/operations.md, and point at runbook sections that exist there.
#
#   tests/docs/alert_rules.sh SOURCE_DIR
#
# Exit 77 (CTest: skipped) when promtool is not installed.
set -euo pipefail

src=${1:?usage: alert_rules.sh SOURCE_DIR}
rules=$src/deploy/prometheus/importwatch-alerts.yml
tests=$src/deploy/prometheus/importwatch-alerts.test.yml
doc=$src/docs/operations.md
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

# 1. Every metric a rule uses is one the daemon exports.
for metric in $(grep -o 'importwatch_[a-z_]*' "$rules" | sort -u); do
  grep -rqF "\"$metric\"" "$src/src" || fail "$rules uses $metric, which nothing in src/ exports"
done

# 2. The doc quotes the rules file verbatim, in the yaml block that follows
#    the marker line.
quoted=$(awk '/^<!-- quoted from deploy\/prometheus\/importwatch-alerts.yml -->$/ { found = 1; next }
              found && /^```yaml$/ { inside = 1; next }
              inside && /^```$/ { exit }
              inside { print }' "$doc")
if [[ -z $quoted ]]; then
  fail "$doc does not quote the rules file (marker line missing)"
elif [[ $quoted != "$(cat "$rules")" ]]; then
  fail "$doc quotes an outdated copy of $rules:"
  diff <(echo "$quoted") "$rules" >&2 || true
fi

# 3. Every runbook link names a heading of docs/operations.md (GitHub anchors).
anchors=$(awk '/^```/ { code = !code; next } !code && /^#+ / { sub(/^#+ /, ""); print }' "$doc" |
          tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9 _-]//g; s/ /-/g')
for anchor in $(grep -oE 'docs/operations\.md#[a-z0-9_-]+' "$rules" | sed 's/.*#//' | sort -u); do
  grep -qxF "$anchor" <<<"$anchors" || fail "runbook anchor #$anchor has no heading in $doc"
done

if ! command -v promtool >/dev/null 2>&1; then
  ((failed)) && exit 1
  echo "SKIPPED: promtool is not installed (scripts/install-deps --with-test-tools installs it)"
  exit 77
fi

# 4. The rules load, and their unit tests pass (they fire, and stay quiet, where they should).
promtool check rules "$rules" || fail "promtool check rules"
(cd "$(dirname "$tests")" && promtool test rules "$(basename "$tests")") || fail "promtool test rules"

((failed)) && exit 1
echo "alert rules: checked, unit-tested, quoted in docs/operations.md, runbook links resolve"
