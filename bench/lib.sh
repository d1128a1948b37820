# Shared by bench/compare, bench/events, bench/idle and bench/scale (sourced,
# not run): the helper programs, a throw-away CA, nginx, importwatch configs
# and readings from /proc. Everything lives in one temporary directory that
# is removed on exit, and only processes started here are stopped.

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$bench_dir/.." && pwd)
importwatch=${IMPORTWATCH:-$repo_dir/build/ci/src/importwatch}
tools_dir=${BENCH_TOOLS_DIR:-$repo_dir/build/bench-tools}
python=/usr/bin/python3        # Debian's, with python3-aiohttp and python3-requests
clk_tck=$(getconf CLK_TCK)
page_size=$(getconf PAGESIZE)
bench_token=bench-token-0123456789
api_version=20240415

work=$(mktemp -d "${TMPDIR:-/tmp}/importwatch-bench.XXXXXX")
started_pids=()

cleanup() {
  local pid
  for pid in "${started_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${started_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -z "${BENCH_KEEP:-}" ]]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "${0##*/}: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

# Remembers a background process so cleanup stops it (by its id only).
track() { started_pids+=("$1"); }

# Stops one process we started and waits for it.
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# A free TCP port on 127.0.0.1 (the kernel picks it; a race is unlikely).
free_port() {
  "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

need_importwatch() {
  [[ -x "$importwatch" ]] || die "no importwatch binary at $importwatch (build it, or set IMPORTWATCH=PATH)"
  # "importwatch 0.1.0 (git …)": the User-Agent it sends is importwatch/0.1.0.
  user_agent=$("$importwatch" --version | awk '{print "importwatch/" $2; exit}')
}

# Builds the helper programs into $tools_dir when their sources are newer.
build_tools() {
  mkdir -p "$tools_dir"
  local src=$bench_dir/clients
  if [[ "$src/floor_client.c" -nt "$tools_dir/floor_client" ]]; then
    cc -O2 -Wall -Wextra -o "$tools_dir/floor_client" "$src/floor_client.c" -lssl -lcrypto || die "cannot build floor_client"
  fi
  local go
  for go in go_client webhook_receiver flip_server; do
    if [[ "$src/$go.go" -nt "$tools_dir/$go" ]]; then
      # Standard library only: GOPROXY=off makes any module download an error.
      (cd "$tools_dir" && GOPROXY=off GOFLAGS= GO111MODULE=off go build -o "$tools_dir/$go" "$src/$go.go") ||
        die "cannot build $go"
    fi
  done
}

# A CA and a server certificate for 127.0.0.1 (and localhost) made with
# openssl for this run: $work/tls/{ca.pem,server.pem,server.key}.
make_tls() {
  local d=$work/tls
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=importwatch bench CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$d/ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/ext" -out "$d/server.pem" 2>/dev/null
  ca_file=$d/ca.pem
}

# An Import body as LaunchDarkly's "Get big segment import" returns it, with
# the given status.
import_body() {
  local status=$1
  printf '{"id":"1234a567-bcd8-9123-4567-abcd1234567f","segmentKey":"vip-users","creationTime":1764355040123,"mode":"replace","status":"%s","files":[{"filename":"vip-users-2026-11-28.csv","status":"%s"}],"_links":{"self":{"href":"/api/v2/segments/default/production/vip-users/imports/1234a567-bcd8-9123-4567-abcd1234567f","type":"application/json"}}}' \
    "$status" "$status"
}

# nginx (nginx-light) on 127.0.0.1:$nginx_port over TLS: one worker,
# keep-alive without a request limit, TLS 1.3 with one cipher suite for every
# client, the fixed Import body (status $1, default in_progress) for every
# import path. Sets nginx_port, nginx_master, nginx_worker, access_log.
# Access log fields: msec connection connection_requests status request_length
# bytes_sent protocol cipher auth_ok "user agent" "ld-api-version" "accept" "request".
start_nginx() {
  local status=${1:-in_progress}
  local d=$work/nginx
  mkdir -p "$d/logs" "$d/tmp"
  command -v nginx >/dev/null || die "nginx not installed (scripts/install-deps --with-bench-tools)"
  nginx_port=$(free_port)
  access_log=$d/logs/access.log
  local body
  body=$(import_body "$status")
  cat >"$d/nginx.conf" <<EOF
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 1024; }
http {
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  map \$http_authorization \$auth_ok { "$bench_token" ok; default bad; }
  log_format bench '\$msec \$connection \$connection_requests \$status \$request_length \$bytes_sent '
                   '\$ssl_protocol \$ssl_cipher \$auth_ok "\$http_user_agent" "\$http_ld_api_version" '
                   '"\$http_accept" "\$request"';
  access_log $access_log bench;
  keepalive_timeout 600s;
  keepalive_requests 1000000000;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $work/tls/server.pem;
    ssl_certificate_key $work/tls/server.key;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    location /api/v2/segments/ {
      default_type application/json;
      return 200 '$body';
    }
  }
}
EOF
  nginx -p "$d" -c "$d/nginx.conf" -g 'daemon off;' 2>>"$d/logs/error.log" &
  nginx_master=$!
  track "$nginx_master"
  local i
  for ((i = 0; i < 100; ++i)); do
    nginx_worker=$(cat "/proc/$nginx_master/task/$nginx_master/children" 2>/dev/null | awk '{print $1}')
    [[ -n "$nginx_worker" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null && return 0
    sleep 0.05
  done
  cat "$d/logs/error.log" >&2
  die "nginx did not start"
}

# User + system CPU of a process (all its threads, living and exited), in
# clock ticks.
cpu_ticks() {
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }
  # After "pid (comm) ": state is field 1, utime field 12, stime field 13.
  awk '{print $12 + $13}' <<<"$stat"
}

ticks_to_us() { awk -v t="$1" -v hz="$clk_tck" 'BEGIN {printf "%.0f", t * 1e6 / hz}'; }

# Resident and peak resident set size of a process, in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# Context switches of every thread of a process: "voluntary involuntary".
ctx_switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2} END {print v + 0, n + 0}'
}

# Times a process's threads were scheduled onto a CPU (schedstat's third
# field, summed over threads): every wake-up counts once.
schedstat_runs() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{n += $3} END {print n + 0}'; }

line_count() { if [[ -f "$1" ]]; then wc -l <"$1"; else echo 0; fi; }

now_ns() { date +%s%N; }

# The HTTP status of GET http://127.0.0.1:PORT/PATH (bash /dev/tcp: no
# process per probe), or 000 when nothing answers.
http_status() {
  local port=$1 path=$2 line
  if ! { exec 9<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then echo 000; return; fi
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&9
  IFS=' ' read -r -t 5 _ line _ <&9 || line=000
  exec 9<&-
  echo "${line:-000}"
}

# Sum of a Prometheus metric's samples whose line starts with $2 (name and
# optional label prefix), from importwatch's /metrics on port $1.
metric_sum() {
  curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v p="$2" 'index($0, p) == 1 {s += $NF} END {printf "%.0f\n", s}'
}

# Waits until "$@" succeeds, at most $timeout seconds (default 60), trying
# every $wait_step seconds (default 0.05).
wait_until() {
  local deadline=$((SECONDS + ${timeout:-60}))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep "${wait_step:-0.05}"
  done
}

# Writes an importwatch config: $1 file, $2 base_url, $3 watch count,
# $4 interval, $5 admin port, $6 state dir, then extra YAML appended as is.
# Watches are written in block style, as in the reference config (or one
# flow mapping per line with yaml_style=flow), with UUID-shaped import ids; the token comes from BENCH_LD_TOKEN in the
# environment.
write_importwatch_config() {
  local file=$1 base_url=$2 watches=$3 interval=$4 admin_port=$5 state_dir=$6 extra=${7:-}
  # watch_layout=files (bench/scale): the watches go to watch files of
  # $per_file each beside the config (a file may hold at most 4 MiB),
  # otherwise inline in the config.
  local per_file=10000 dir
  dir=$(dirname "$file")
  {
    printf 'launchdarkly:\n  base_url: %s\n  token_env: BENCH_LD_TOKEN\n' "$base_url"
    [[ "$base_url" == https://* ]] && printf '  ca_file: %s\n' "$ca_file"
    printf '  max_connections: %s\n  max_requests_per_second: 0\n' "${connections:-2}"
    printf 'polling:\n  interval: %s\n' "$interval"
    printf 'state:\n  dir: %s\nadmin:\n  listen: 127.0.0.1:%s\n' "$state_dir" "$admin_port"
    printf '%s' "$extra"
    if [[ "${watch_layout:-inline}" == files ]]; then
      printf 'watch_files:\n  - watches.d/*.yaml\n'
    else
      printf 'watches:\n'
    fi
  } >"$file"
  local out=$file
  if [[ "${watch_layout:-inline}" == files ]]; then
    rm -rf "$dir/watches.d"
    mkdir -p "$dir/watches.d"
    out=$dir/watches.d/
  fi
  awk -v n="$watches" -v style="${yaml_style:-block}" -v out="$out" -v per="$per_file" 'BEGIN {
    if (style == "flow")
      f = "  - { name: w%06d, project: default, environment: env-%d, segment: segment-%05d, import_id: %08x-bcd8-4123-8567-abcd%08x }\n"
    else
      f = "  - name: w%06d\n    project: default\n    environment: env-%d\n    segment: segment-%05d\n    import_id: %08x-bcd8-4123-8567-abcd%08x\n"
    dir = out ~ /\/$/
    for (i = 0; i < n; ++i) {
      if (dir && i % per == 0) {
        if (target) close(target)
        target = sprintf("%s%04d.yaml", out, i / per)
        printf "watches:\n" > target
      } else if (!dir) {
        target = out
      }
      printf f, i, i % 3, i % 20000, i, i >> target
    }
  }'
}

# Starts `importwatch run --config $1` with its log in $2; sets iw_pid.
start_importwatch() {
  BENCH_LD_TOKEN=$bench_token "$importwatch" run --config "$1" 2>"$2" &
  iw_pid=$!
  track "$iw_pid"
}

# How many watches have had their first observation (none left at "none").
watches_unobserved() { metric_sum "$1" 'importwatch_watches{status="none"}'; }

# Counts a process's system calls for $2 seconds with `strace -c -f` into
# file $3. Prints the line counts of $4 (a log file) when strace reported
# itself attached and after it detached: the polls it saw.
strace_window() {
  local pid=$1 seconds=$2 out=$3 counted=$4 strace_pid l0 l1
  strace -c -f -p "$pid" -o "$out" 2>"$out.err" &
  strace_pid=$!
  timeout=5 wait_step=0.01 wait_until grep -q attached "$out.err" || true
  l0=$(line_count "$counted")
  sleep "$seconds"
  kill -INT "$strace_pid" 2>/dev/null || true
  wait "$strace_pid" 2>/dev/null || true
  l1=$(line_count "$counted")
  echo "$l0 $l1"
}
