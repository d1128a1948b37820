#!/usr/bin/env bash
# Builds the importwatch container image from the Dockerfile and proves, with
# podman, what docs/operations.md promises about it. Prints one "ok" line per
# thing proved and exits non-zero at the first that does not hold. Removes
# every container, volume and image it made (the build cache stays, so the
# next run is quick).
#
#   tests/system/container.sh                 build, then test
#   IMPORTWATCH_IMAGE=name tests/system/container.sh   test an existing image
#
# Needs root, podman, openssl, python3 and nsenter. The simulator, the daemon
# and a webhook receiver share one network namespace that has only a
# loopback interface (a pod without a pod), so nothing here touches the
# host's ports.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
started=$SECONDS

ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*" >&2; exit 1; }
step() { printf -- '--   %s\n' "$*"; }

for tool in podman openssl python3 nsenter; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

tmp=$(mktemp -d /tmp/importwatch-container.XXXXXX)
podman_global=()
run_opts=()
pm() { podman "${podman_global[@]}" "$@"; }
run_id=iw-test-$$
image=${IMPORTWATCH_IMAGE:-}
built_image=""
receiver_pid=""
containers=()
volume=$run_id-state

cleanup() {
  local rc=$?
  set +e
  [[ -n $receiver_pid ]] && kill "$receiver_pid" 2>/dev/null && wait "$receiver_pid" 2>/dev/null
  # Newest first: the daemons share the simulator's network namespace.
  for ((i = ${#containers[@]} - 1; i >= 0; i--)); do pm rm -f -v -t 0 "${containers[i]}" >/dev/null 2>&1; done
  pm volume rm -f "$volume" >/dev/null 2>&1
  [[ -n $built_image ]] && pm rmi -f "$built_image" >/dev/null 2>&1
  if ((rc != 0)); then
    echo "container.sh: failed; logs of the last daemon follow" >&2
    [[ -f $tmp/daemon.log ]] && tail -n 30 "$tmp/daemon.log" >&2
    [[ -f $tmp/podman.err ]] && tail -n 10 "$tmp/podman.err" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

base=docker.io/library/debian:bookworm
tests/system/base-image.sh "$base"

# Some hosts (cgroup v1/v2 hybrids, no CAP_SYS_RESOURCE) refuse crun and
# podman's default rlimits; runc with rlimits the host allows works there.
if ! podman run --rm --network none "$base" true >/dev/null 2>&1; then
  command -v runc >/dev/null || fail "podman cannot run containers here and runc is not installed"
  podman_global=(--runtime runc)
  run_opts=(--ulimit "nofile=1024:1024" --ulimit "nproc=1024:1024")
  podman "${podman_global[@]}" run --rm --network none "${run_opts[@]}" "$base" true ||
    fail "podman cannot run containers here"
  step "this host needs podman --runtime runc and explicit --ulimit values"
fi
prun() { pm run "${run_opts[@]}" "$@"; }

# --- the image -------------------------------------------------------------
if [[ -z $image ]]; then
  image=localhost/importwatch:$run_id
  version=$(sed -n 's/^project(importwatch VERSION \([^ )]*\).*/\1/p' CMakeLists.txt)
  revision=$(git rev-parse HEAD 2>/dev/null || true)
  source=$(git remote get-url origin 2>/dev/null || true)
  step "building $image (version $version)"
  build_start=$SECONDS
  # chroot isolation: RUN steps need no OCI runtime (see above).
  nice -n 5 podman build --isolation=chroot --format docker --quiet \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg SOURCE="$source" \
    -t "$image" . >"$tmp/build.log" 2>&1 || { tail -n 40 "$tmp/build.log" >&2; fail "podman build"; }
  built_image=$image
  ok "podman build --format docker succeeded in $((SECONDS - build_start)) s"
fi

inspect() { pm image inspect --format "$1" "$image"; }
size=$(inspect '{{.Size}}')
size_mb=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1000000 }')
((size < 40000000)) || fail "image is $size_mb MB, over 40 MB"
ok "image size $size_mb MB ($size bytes), under 40 MB"

[[ $(inspect '{{.Config.User}}') == 65532:65532 ]] || fail "USER is $(inspect '{{.Config.User}}')"
[[ $(inspect '{{json .Config.Entrypoint}}') == '["/usr/bin/importwatch"]' ]] || fail "ENTRYPOINT is $(inspect '{{json .Config.Entrypoint}}')"
[[ $(inspect '{{json .Config.Cmd}}') == '["run","--config","/etc/importwatch/config.yaml","--log-format","json"]' ]] ||
  fail "CMD is $(inspect '{{json .Config.Cmd}}')"
[[ $(inspect '{{.Config.StopSignal}}') =~ ^(SIGTERM|15)$ ]] || fail "STOPSIGNAL is $(inspect '{{.Config.StopSignal}}')"
[[ $(inspect '{{json .Config.Healthcheck.Test}}') == '["CMD","/usr/bin/importwatch","healthcheck"]' ]] ||
  fail "HEALTHCHECK is $(inspect '{{json .Config.Healthcheck}}')"
[[ $(inspect '{{json .Config.Volumes}}') == *'"/var/lib/importwatch"'* ]] || fail "no VOLUME /var/lib/importwatch"
[[ $(inspect '{{json .Config.ExposedPorts}}') == *'9464/tcp'* ]] || fail "no EXPOSE 9464"
ok "USER 65532:65532, exec-form ENTRYPOINT and CMD, STOPSIGNAL SIGTERM, exec-form HEALTHCHECK, VOLUME, EXPOSE 9464"
for label in title description version source licenses; do
  value=$(inspect "{{index .Labels \"org.opencontainers.image.$label\"}}")
  [[ $label == source || -n $value ]] || fail "label org.opencontainers.image.$label is empty"
done
[[ $(inspect '{{index .Labels "org.opencontainers.image.licenses"}}') == Apache-2.0 ]] || fail "licence label"
ok "OCI labels: version $(inspect '{{index .Labels "org.opencontainers.image.version"}}'), licenses Apache-2.0, title, description, source"

# What the image holds: the binary, its libraries, certificates; no shell,
# no libsystemd.
c=$(pm create "$image" 2>>"$tmp/podman.err"); containers+=("$c")
pm export "$c" | tar -t >"$tmp/files"
pm rm -v "$c" >/dev/null 2>>"$tmp/podman.err"
grep -qx 'usr/bin/importwatch' "$tmp/files" || fail "no /usr/bin/importwatch in the image"
grep -qx 'etc/ssl/certs/ca-certificates.crt' "$tmp/files" || fail "no CA certificates in the image"
grep -qx 'etc/importwatch/config.yaml' "$tmp/files" || fail "no default config in the image"
! grep -Eq '(^|/)(sh|bash|dash)$' "$tmp/files" || fail "the image has a shell: $(grep -E '(^|/)(sh|bash|dash)$' "$tmp/files")"
! grep -q 'libsystemd' "$tmp/files" || fail "the image holds libsystemd"
ok "the image holds $(grep -c '\.so' "$tmp/files") shared objects, CA certificates and the default config; no shell, no libsystemd"

# --- one-shot commands, read-only root ---------------------------------------
prun --rm --read-only --network none --no-healthcheck "$image" check --config /etc/importwatch/config.yaml >"$tmp/check.out" 2>&1 ||
  { cat "$tmp/check.out" >&2; fail "check of the image's default config"; }
ok "the image's default config passes importwatch check"

# The Kubernetes example's config (the block under "config.yaml: |").
awk '/^  config.yaml: \|$/ { on = 1; next } on && /^    / { print substr($0, 5); next } on && !/^$/ { exit }' \
  deploy/kubernetes/configmap.yaml >"$tmp/k8s-config.yaml"
grep -q '^watches:' "$tmp/k8s-config.yaml" || fail "no config.yaml found in deploy/kubernetes/configmap.yaml"
chmod 0644 "$tmp/k8s-config.yaml"
# IMPORTWATCH_ADMIN_HASH comes from the Secret importwatch-admin in the pod.
prun --rm --read-only --network none --no-healthcheck -v "$tmp/k8s-config.yaml:/etc/importwatch/config.yaml:ro" \
  -e 'IMPORTWATCH_ADMIN_HASH=$2b$10$O9ygQGHBAf3dSs2cBFziRO2oNZ/2IOzKq.3.2W6bmUq9eAzi/oUKS' "$image" \
  check --config /etc/importwatch/config.yaml >"$tmp/check.out" 2>&1 ||
  { cat "$tmp/check.out" >&2; fail "check of deploy/kubernetes/configmap.yaml's config"; }
ok "the Kubernetes example's ConfigMap config passes importwatch check in the image"

demo_start=$SECONDS
prun --rm --read-only --network none --no-healthcheck "$image" demo --speed 4 >"$tmp/demo.out" 2>&1 ||
  { tail -n 20 "$tmp/demo.out" >&2; fail "importwatch demo inside the container"; }
grep -q 'complete' "$tmp/demo.out" || fail "demo printed no complete event"
ok "importwatch demo --speed 4 exits 0 as a non-root user with a read-only root ($((SECONDS - demo_start)) s)"

# --- the daemon against a simulator over TLS ---------------------------------
# A CA made here; the daemon trusts it as its system trust store (mounted over
# the image's bundle), which proves the image's OpenSSL finds that bundle.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=importwatch-test-ca \
  -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$tmp/sim.key" -out "$tmp/sim.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tmp/san.ext"
openssl x509 -req -in "$tmp/sim.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -days 1 \
  -extfile "$tmp/san.ext" -out "$tmp/sim.pem" 2>/dev/null
printf 'test-token\n' >"$tmp/token"
# The containers run as 65532; these are throwaway test files.
chmod 0644 "$tmp"/sim.key "$tmp"/sim.pem "$tmp"/ca.pem "$tmp"/token

# "fast" completes at once; "slow" completes 14 s after the simulator starts,
# after the daemon's restart below.
cat >"$tmp/scenario.yaml" <<'EOF'
token: test-token
imports:
  - { project: default, environment: production, segment: fast, import_id: imp-fast,
      steps: [ { status: preparing, for: 1s }, { status: in_progress, for: 1s }, { status: complete } ] }
  - { project: default, environment: production, segment: slow, import_id: imp-slow,
      steps: [ { status: preparing, for: 2s }, { status: in_progress, for: 12s }, { status: complete } ] }
EOF
cat >"$tmp/config.yaml" <<'EOF'
launchdarkly:
  base_url: https://localhost:8443
  token_file: /run/secrets/ld-token
  max_requests_per_second: 20
polling:
  interval: 250ms
  jitter: 0
watches:
  - { name: fast, project: default, environment: production, segment: fast, import_id: imp-fast }
  - { name: slow, project: default, environment: production, segment: slow, import_id: imp-slow }
events:
  webhooks:
    - { name: receiver, url: "http://127.0.0.1:8080/hook" }
state:
  dir: /var/lib/importwatch
admin:
  listen: 0.0.0.0:9464
shutdown_grace: 5s
EOF
chmod 0644 "$tmp/scenario.yaml" "$tmp/config.yaml"

sim=$run_id-sim
containers+=("$sim")
prun -d --name "$sim" --read-only --network none --no-healthcheck \
  -v "$tmp/scenario.yaml:/scenario.yaml:ro" -v "$tmp/sim.pem:/tls/sim.pem:ro" -v "$tmp/sim.key:/tls/sim.key:ro" \
  "$image" simulate --listen 127.0.0.1:8443 --scenario /scenario.yaml --tls-cert /tls/sim.pem --tls-key /tls/sim.key \
  >/dev/null 2>>"$tmp/podman.err"
sim_pid=$(pm inspect --format '{{.State.Pid}}' "$sim")
((sim_pid > 0)) || fail "the simulator container is not running"

# The webhook receiver: a few lines of python in the simulator's network
# namespace, recording every delivery.
cat >"$tmp/receiver.py" <<'EOF'
import http.server, json, sys
out = open(sys.argv[1], "a")
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        out.write(json.dumps({"id": self.headers["webhook-id"], "event": body}) + "\n"); out.flush()
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args): pass
server = http.server.HTTPServer(("127.0.0.1", 8080), Hook)
open(sys.argv[2], "w").close()
server.serve_forever()
EOF
: >"$tmp/received.jsonl"
nsenter -t "$sim_pid" -n python3 "$tmp/receiver.py" "$tmp/received.jsonl" "$tmp/receiver.ready" &
receiver_pid=$!
wait_for 10 test -e "$tmp/receiver.ready" || fail "the webhook receiver did not start"

pm volume create "$volume" >/dev/null
start_daemon() {
  prun -d --name "$1" --read-only --network "container:$sim" \
    -v "$volume:/var/lib/importwatch" \
    -v "$tmp/config.yaml:/etc/importwatch/config.yaml:ro" \
    -v "$tmp/token:/run/secrets/ld-token:ro" \
    -v "$tmp/ca.pem:/etc/ssl/certs/ca-certificates.crt:ro" \
    "$image" >/dev/null 2>>"$tmp/podman.err"
}
# JSON log lines of a container: stderr only (stdout must stay empty).
daemon_logs() {
  pm logs "$1" 2>"$tmp/daemon.log" >"$tmp/daemon.stdout"
  [[ ! -s $tmp/daemon.stdout ]] || fail "the daemon wrote to stdout: $(head -n 3 "$tmp/daemon.stdout")"
}
# Prints "watch status sequence" for each event the container logged.
daemon_events() {
  daemon_logs "$1"
  python3 - "$tmp/daemon.log" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    record = json.loads(line)          # every line must be JSON
    assert {"ts", "level", "msg"} <= record.keys(), line
    if "event" in record:
        d = record["event"]["data"]
        print(d["watch"], d["status"], d["sequence"])
EOF
}
saw() { daemon_events "$1" | grep -q "^$2 $3 "; }

d1=$run_id-daemon-1
containers+=("$d1")
start_daemon "$d1"
step "daemon started; waiting for fast to reach complete"
wait_for 30 saw "$d1" fast complete || fail "the daemon did not report fast complete"
ok "the daemon polls the simulator over TLS (system trust store) and logs fast reaching complete, as JSON on stderr"

pid=$(pm inspect --format '{{.State.Pid}}' "$d1")
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
[[ $uid == 65532 ]] || fail "the daemon runs as uid $uid"
[[ $(pm inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$d1") == true ]] || fail "the root is not read-only"
ok "the daemon runs as uid 65532 with a read-only root filesystem"

health() { pm inspect --format '{{.State.Health.Status}}' "$1" 2>/dev/null || pm inspect --format '{{.State.Healthcheck.Status}}' "$1"; }
pm healthcheck run "$d1" >/dev/null || fail "podman healthcheck run reports unhealthy"
[[ $(health "$d1") == healthy ]] || fail "health status is $(health "$d1")"
ok "the HEALTHCHECK (importwatch healthcheck, no shell) turns the container healthy"

stop_start=$SECONDS
pm stop -t 10 "$d1" >/dev/null 2>>"$tmp/podman.err"
stop_took=$((SECONDS - stop_start))
code=$(pm inspect --format '{{.State.ExitCode}}' "$d1")
[[ $code == 0 ]] || fail "the daemon exited $code after podman stop"
((stop_took < 10)) || fail "podman stop took $stop_took s, the whole grace time"
saw "$d1" slow complete && fail "slow completed before the restart; the restart proves nothing"
daemon_logs "$d1"
first_events=$(wc -l <"$tmp/received.jsonl")
ok "podman stop: SIGTERM, exit code 0 after ${stop_took} s (grace 10 s); $first_events webhooks delivered"

state_dir=$(pm volume inspect --format '{{.Mountpoint}}' "$volume")
[[ $(stat -c '%u %a' "$state_dir") == "65532 700" ]] || fail "state volume is $(stat -c '%u %a' "$state_dir")"
ls "$state_dir" | grep -q . || fail "the state volume is empty"

d2=$run_id-daemon-2
containers+=("$d2")
start_daemon "$d2"
step "a new container on the same state volume; waiting for slow to reach complete"
wait_for 40 saw "$d2" slow complete || fail "the second daemon did not report slow complete"
saw "$d2" fast complete && fail "the second daemon re-emitted fast complete"
pm stop -t 10 "$d2" >/dev/null 2>>"$tmp/podman.err"
[[ $(pm inspect --format '{{.State.ExitCode}}' "$d2") == 0 ]] || fail "the second daemon did not exit 0"
kill "$receiver_pid"; wait "$receiver_pid" 2>/dev/null || true; receiver_pid=""
python3 - "$tmp/received.jsonl" "$first_events" <<'EOF' || fail "webhook deliveries across the restart"
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ids = [r["id"] for r in rows]
dups = [i for i, n in collections.Counter(ids).items() if n > 1]
assert not dups, f"webhook-ids delivered twice: {dups}"
seqs = collections.defaultdict(list)
for r in rows:
    d = r["event"]["data"]
    seqs[d["watch"]].append(d["sequence"])
for watch, s in seqs.items():
    assert s == list(range(1, len(s) + 1)), f"{watch}: sequences {s}"
last = {r["event"]["data"]["watch"]: r["event"]["data"]["status"] for r in rows}
assert last == {"fast": "complete", "slow": "complete"}, last
assert len(rows) > int(sys.argv[2]), "nothing delivered after the restart"
print(f"{len(rows)} deliveries, {int(sys.argv[2])} before the restart; sequences " +
      ", ".join(f"{w} 1..{len(s)}" for w, s in sorted(seqs.items())))
EOF
ok "the state volume (uid 65532, mode 0700) survives a new container: no webhook-id delivered twice, sequences continue without gaps"

ok "container.sh passed in $((SECONDS - started)) s (image $size_mb MB)"
