#!/usr/bin/env bash
# importwatch under real systemd: boots systemd 252 as PID 1 in a podman
# container with the binary, unit and config installed by `cmake --install`,
# and proves with systemctl and journalctl what the unit promises. Prints one
# "ok:" line per thing proved; fails at the first that does not hold.
#   tests/system/systemd.sh          (as root, with podman; scripts/system-test runs it)
# IMPORTWATCH_BUILD_DIR=DIR uses an existing build instead of the release preset.
# Cleans up its container and image on exit; keeps the Debian base image.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
started=$SECONDS
tag=localhost/importwatch-systemd-test:$$
name=importwatch-systemd-test-$$
work=$(mktemp -d /var/tmp/importwatch-systemd.XXXXXX)
runtime=()   # podman's OCI runtime, when the default one does not work here
cleanup() {
  podman "${runtime[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 || true
  podman rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { echo "systemd.sh: $*"; }
ok() { echo "ok: $*"; }
in_c() { pm exec "$name" "$@"; }
journal() { in_c journalctl -u importwatch.service --no-pager -o cat "$@"; }
dump() {
  in_c systemctl status importwatch.service --no-pager -l 2>&1 | sed 's/^/  | /' >&2 || true
  journal -n 40 2>&1 | sed 's/^/  | /' >&2 || true
}
fail() { echo "FAIL: $*" >&2; dump; exit 1; }
# wait_for WHAT SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what=$1 limit=$2 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what (gave up after ${limit}s)"
    sleep 0.3
  done
}
prop() { in_c systemctl show -P "$1" importwatch.service; }
# journal_has TEXT [journalctl options]: a line of the unit's journal holds TEXT.
journal_has() { journal "${@:2}" | grep -qF -- "$1"; }
status_has() { in_c systemctl status importwatch.service --no-pager | grep -qF -- "$1"; }
prop_is() { [[ $(prop "$1") == "$2" ]]; }
is_running() { [[ $(prop ActiveState) == active && $(prop SubState) == running ]]; }
# The `sequence` of the status_changed event of watch $1 whose status is $2.
sequence_of() {
  journal | grep '"type":"importwatch.import.status_changed"' | grep "\"watch\":\"$1\"" \
    | grep "\"msg\":\"$1 status [a-z_]* -> $2 " | grep -o '"sequence":[0-9]*' | cut -d: -f2
}

# --- the image -------------------------------------------------------------
base=docker.io/library/debian:bookworm
"$root/tests/system/base-image.sh" "$base"
# Some hosts (cgroup v1/v2 hybrids) refuse crun: runc works there. RUN steps
# of the build use chroot isolation, which needs no OCI runtime at all.
if ! podman run --rm --network none --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 "$base" true >/dev/null 2>&1; then
  command -v runc >/dev/null || fail "podman cannot run containers here and runc is not installed"
  runtime=(--runtime runc)
fi
pm() { podman "${runtime[@]}" "$@"; }
if [[ -n ${IMPORTWATCH_BUILD_DIR:-} ]]; then
  build=$IMPORTWATCH_BUILD_DIR
else
  say "release build (cmake --preset release)"
  (cd "$root" && cmake --preset release && nice -n 5 cmake --build --preset release --target importwatch) \
    >"$work/release-build.log" 2>&1 || { tail -n 40 "$work/release-build.log" >&2; fail "release build"; }
  build=$root/build/release
fi
stage=$work/context/stage
DESTDIR=$stage cmake --install "$build" --prefix /usr/local >/dev/null
# Debian bookworm has merged /usr: /lib is a symlink that COPY must not replace.
if [[ -d $stage/lib ]]; then
  mkdir -p "$stage/usr"
  cp -a "$stage/lib" "$stage/usr/"
  rm -rf "$stage/lib"
fi
bin=$stage/usr/local/bin/importwatch
[[ -x $bin ]] || fail "cmake --install put no binary at /usr/local/bin/importwatch"
# The runtime libraries: the Debian packages that hold what the binary links.
runtime_packages=$(ldd "$bin" | awk '/=> \//{print $3}' | while read -r lib; do
  dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")"
done | cut -d: -f1 | sort -u | tr '\n' ' ')

test_files=$work/context/test
mkdir -p "$test_files/etc/importwatch-test" "$test_files/etc/systemd/system/importwatch.service.d"
# The simulated LaunchDarkly API, as a second unit started before importwatch.
# Times count from the simulator's start, that is from boot.
scenario() {   # late's status, in a scenario otherwise the same
  cat <<EOF
token: sim-token
imports:
  - project: default
    environment: production
    segment: vip-users
    import_id: imp-done
    steps:
      - { status: preparing, for: 2s }
      - { status: in_progress, for: 2s }
      - { status: complete }
  - { project: default, environment: production, segment: vip-users, import_id: imp-forever,
      steps: [{ status: in_progress }] }
  - { project: default, environment: production, segment: vip-users, import_id: imp-late,
      steps: [{ status: $1 }] }
  - { project: default, environment: production, segment: vip-users, import_id: imp-added,
      steps: [{ status: ready }] }
EOF
}
scenario pending_approval >"$test_files/etc/importwatch-test/scenario.yaml"
# After importwatch's restart the simulator restarts with late complete: an
# event that must continue late's sequence from the state store.
scenario complete >"$work/scenario-late-complete.yaml"
cat >"$test_files/etc/systemd/system/importwatch-sim.service" <<'EOF'
[Unit]
Description=importwatch system test: the simulated LaunchDarkly API
Before=importwatch.service

[Service]
ExecStart=/usr/local/bin/importwatch simulate --listen 127.0.0.1:8080 --scenario /etc/importwatch-test/scenario.yaml

[Install]
WantedBy=multi-user.target
EOF
echo sim-token >"$test_files/etc/importwatch-test/ld-token"
chmod 0644 "$test_files/etc/importwatch-test/ld-token"
# LoadCredential= cannot set up /run/credentials in this container, so the
# test hands the directory over itself; the watchdog and restarts are faster.
cat >"$test_files/etc/systemd/system/importwatch.service.d/test.conf" <<'EOF'
[Service]
LoadCredential=
Environment=CREDENTIALS_DIRECTORY=/etc/importwatch-test
WatchdogSec=3s
RestartSec=1s
EOF
watch() { echo "  - { name: $1, project: default, environment: production, segment: vip-users, import_id: $2 }"; }
config() {
  cat <<EOF
launchdarkly:
  base_url: http://127.0.0.1:8080
  token_file: \${CREDENTIALS_DIRECTORY}/ld-token
  max_requests_per_second: 0
polling:
  interval: 500ms
  jitter: 0
  backoff: { initial: 200ms, max: 2s }
events:
  log: { format: json, level: info }
shutdown_grace: 5s
watches:
$(watch done imp-done)
$(watch forever imp-forever)
$(watch late imp-late)
$(watch gone imp-gone)
$*
EOF
}
mkdir -p "$work/configs"
config >"$work/configs/base.yaml"
config "$(watch added imp-added)" >"$work/configs/added.yaml"
echo "watches: [" >"$work/configs/broken.yaml"
mkdir -p "$test_files/etc/importwatch"
cp "$work/configs/base.yaml" "$test_files/etc/importwatch/config.yaml"

cat >"$work/context/Containerfile" <<EOF
FROM docker.io/library/debian:bookworm
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      systemd systemd-sysv procps $runtime_packages >/dev/null && rm -rf /var/lib/apt/lists/*
COPY stage/ /
COPY test/ /
RUN systemctl enable importwatch.service importwatch-sim.service
EOF
say "building the image (systemd, procps, $runtime_packages)"
nice -n 5 podman build --isolation=chroot -q -t "$tag" "$work/context" >"$work/build.log" 2>&1 \
  || { tail -n 30 "$work/build.log" >&2; fail "podman build"; }
say "image built ($((SECONDS - started))s so far)"

# --- boot --------------------------------------------------------------------
pm run -d --name "$name" --privileged --systemd=always --network none \
  --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 "$tag" /sbin/init >/dev/null
wait_for "systemd boots" 60 in_c systemctl is-system-running --wait
put_config() { pm cp "$work/configs/$1.yaml" "$name:/etc/importwatch/config.yaml"; }

out=$(in_c systemd-analyze verify /lib/systemd/system/importwatch.service 2>&1) || fail "systemd-analyze verify: $out"
[[ -z $out ]] || fail "systemd-analyze verify is not silent: $out"
ok "systemd-analyze verify of the installed unit is silent (in the container, systemd $(in_c systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p'))"
score=$(in_c systemd-analyze security --offline=true /lib/systemd/system/importwatch.service 2>&1 \
  | sed -n 's/.*Overall exposure level for importwatch.service: \([0-9.]*\).*/\1/p')
awk -v s="${score:-99}" 'BEGIN { exit !(s <= 1.5) }' || fail "systemd-analyze security: exposure ${score:-?} > 1.5"
ok "systemd-analyze security --offline=true: exposure $score"

# --- start: READY=1 and STATUS= ----------------------------------------------
wait_for "importwatch.service active (running)" 30 is_running
[[ $(prop Type) == notify ]] || fail "Type is $(prop Type)"
ok "importwatch.service is active (running): Type=notify, so systemd had READY=1"
wait_for "done reaches complete" 30 journal_has 'done status in_progress -> complete'
ok "an import reached complete; the event is in the journal: $(journal | grep -o '"msg":"done status in_progress -> complete[^"]*"')"
[[ $(sequence_of done complete) == 3 ]] || fail "done's complete event has sequence '$(sequence_of done complete)', want 3"
status_line() { in_c systemctl status importwatch.service --no-pager | sed -n 's/^ *Status: "\(.*\)"$/\1/p'; }
wait_for "STATUS= shows the complete and the failed watch" 20 \
  status_has 'Status: "4 watches: 2 polling, 1 complete, 1 failed"'
ok "systemctl status shows the STATUS= line: \"$(status_line)\""

# --- state across a restart ------------------------------------------------
in_c systemctl restart importwatch.service || fail "systemctl restart failed"
wait_for "running again after a restart" 20 is_running
restarted_at=$(journal | wc -l)
# Now late completes: its event must continue its sequence from the state store.
pm cp "$work/scenario-late-complete.yaml" "$name:/etc/importwatch-test/scenario.yaml"
in_c systemctl restart importwatch-sim.service
wait_for "late reaches complete" 30 journal_has 'late status pending_approval -> complete'
late_line=$(journal | grep -n 'late status pending_approval -> complete' | cut -d: -f1)
((late_line > restarted_at)) || fail "late completed before the restart"
[[ $(sequence_of late complete) == 2 ]] || fail "late's complete event has sequence '$(sequence_of late complete)', want 2"
n=$(journal | grep -c '"msg":"done status in_progress -> complete')
[[ $n == 1 ]] || fail "done's complete event was logged $n times"
n=$(journal | grep -c '"msg":"forever status ')
[[ $n == 1 ]] || fail "forever's first observation was logged $n times"
ok "state survives systemctl restart (PID $(prop MainPID) now): no event logged twice, late's sequence continued (1 before, 2 after)"

# --- journal priorities ------------------------------------------------------
errors=$(journal -p err)
# gone's 404 is a warning (watch failed), not an error; nothing so far is.
[[ -z $errors ]] || fail "error-priority lines before any error: $errors"
journal -p warning..warning | grep -q '"msg":"gone ' || fail "gone's watch.failed is not at priority warning"
journal -p info..info | grep -q '"msg":"done status in_progress -> complete' || fail "the complete event is not at priority info"
! journal | grep -q '^<[0-7]>' || fail "a <N> prefix reached the journal as text"
ok "journal priorities: events at info, gone's failure at warning, nothing at err yet (no <N> left in messages)"

# --- reload ------------------------------------------------------------------
pid=$(prop MainPID)
put_config added
in_c systemctl reload importwatch.service || fail "systemctl reload (good config) failed"
wait_for "the added watch is polled" 15 journal_has '"msg":"added status '
[[ $(prop MainPID) == "$pid" ]] || fail "reload changed the main PID"
wait_for "STATUS= counts 5 watches" 20 status_has 'Status: "5 watches: 2 polling, 2 complete, 1 failed"'
ok "systemctl reload applied a good config: watch 'added' appeared (same PID $pid), \"$(status_line)\""

put_config broken
in_c systemctl reload importwatch.service || fail "systemctl reload (broken config) failed"
wait_for "the rejected reload is logged at err" 15 journal_has 'reload rejected' -p err
is_running || fail "not running after a rejected reload"
[[ $(prop MainPID) == "$pid" ]] || fail "a rejected reload changed the main PID"
ok "systemctl reload with a broken config kept the old one: still active (running), same PID; journalctl -p err: $(journal -p err | grep -o '"msg":"reload rejected[^:]*')"
journal -p err | grep -q '"level":"info"' && fail "an info line is at priority err"
ok "journalctl -p err finds the error line and no info line"

# A config error at start is not restarted (RestartPreventExitStatus=2).
restarts=$(prop NRestarts)
in_c systemctl restart importwatch.service 2>/dev/null && fail "systemctl restart with a broken config succeeded"
wait_for "importwatch.service failed" 10 prop_is ActiveState failed
sleep 3   # RestartSec=1s in the test: a restart would have come by now
[[ $(prop ActiveState) == failed && $(prop NRestarts) == "$restarts" ]] \
  || fail "a config error was restarted (state $(prop ActiveState), restarts $(prop NRestarts), before $restarts)"
wait_for "the journal records exit 2 of importwatch run" 10 journal_has 'Main process exited, code=exited, status=2/'
ok "a config error at start (run exits 2) leaves the unit failed, not restarting (NRestarts $restarts)"
put_config added
in_c systemctl start importwatch.service || fail "start after fixing the config"
wait_for "running again" 20 is_running

# --- the state directory ----------------------------------------------------
pid=$(prop MainPID)
uid=$(in_c awk '/^Uid:/ {print $2}' "/proc/$pid/status")
read -r owner mode < <(in_c stat -c '%u %a' /var/lib/private/importwatch)
[[ $uid != 0 && $owner == "$uid" && $mode == 700 ]] \
  || fail "state dir owner $owner mode $mode; the service runs as uid $uid"
[[ $(in_c readlink /var/lib/importwatch) == private/importwatch ]] || fail "/var/lib/importwatch is not the DynamicUser link"
ok "state dir /var/lib/importwatch -> private/importwatch: owned by the dynamic user (uid $uid), mode 0700"

# --- the watchdog -------------------------------------------------------------
restarts=$(prop NRestarts)
in_c kill -STOP "$pid"
restarted() { (($(prop NRestarts) > restarts)) && is_running; }
wait_for "the watchdog restarts a stopped event loop" 30 restarted
journal | grep -q 'Watchdog timeout' || in_c journalctl --no-pager -o cat | grep -q 'importwatch.service: Watchdog timeout' \
  || fail "no watchdog timeout in the journal"
ok "kill -STOP $pid: the watchdog (WatchdogSec=3s) killed it and systemd restarted it as PID $(prop MainPID)"

# --- stop ---------------------------------------------------------------------
# Timed inside the container: podman exec's own start-up on a busy host is
# not the daemon's shutdown.
ms=$(in_c sh -c 't0=$(date +%s%N); systemctl stop importwatch.service || exit 1; echo $((($(date +%s%N) - t0) / 1000000))') ||
  fail "systemctl stop failed"
[[ $(prop ExecMainStatus) == 0 && $(prop Result) == success ]] \
  || fail "stop: exit status $(prop ExecMainStatus), result $(prop Result)"
((ms < 5000)) || fail "systemctl stop took ${ms}ms, more than shutdown_grace (5s)"
ok "systemctl stop: exit 0 in ${ms}ms (shutdown_grace 5s)"

say "passed in $((SECONDS - started))s"
