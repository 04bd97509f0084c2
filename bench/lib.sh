# Helpers for bench/run. Sourced, not executed.
# shellcheck shell=bash disable=SC2034,SC2153

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
fpb() { "$PY" "$BENCH_DIR/fpbench.py" "$@"; }

OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json

SERVER_PIDS=()     # every server this run started (killed by cleanup)

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL [SECONDS] [STATUS]: poll until URL answers STATUS (200).
wait_http() {
    local url=$1 secs=${2:-30} want=${3:-200} i=0
    while [ "$i" -lt $((secs * 20)) ]; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null)" = "$want" ] && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL. Only PIDs we started.
stop_pid() {
    local pid=$1 i=0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "bench: pid $pid ignored SIGTERM, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_all() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        stop_pid "$pid"
    done
    SERVER_PIDS=()
}

# ---------------------------------------------------------------- servers
# Each start_* sets <NAME>_PID, <NAME>_URL and appends to SERVER_PIDS.

# dist_config DIR PORT FILE: Distribution's config, as Debian ships it
# (in-memory blob descriptor cache, info logging with access log) minus auth.
dist_config() {
    local dir=$1 port=$2 file=$3 level=info noaccess=false
    if [ "${BENCH_QUIET_LOGS:-0}" = 1 ]; then level=error; noaccess=true; fi
    cat >"$file" <<EOF
version: 0.1
log:
  level: $level
  accesslog:
    disabled: $noaccess
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $dir
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: fogport-bench-not-a-secret
  headers:
    X-Content-Type-Options: [nosniff]
EOF
}

# fogport_argv DIR PORT CONFFILE: prints the argv, one per line.
fogport_argv() {
    local dir=$1 port=$2 conf=$3
    if [ "${BENCH_QUIET_LOGS:-0}" = 1 ]; then
        cat >"$conf" <<EOF
[server]
listen = 127.0.0.1:$port
[storage]
data = $dir
[log]
level = warn
access = false
EOF
        printf '%s\n' "$FOGPORT_BIN" serve --config "$conf"
    else
        printf '%s\n' "$FOGPORT_BIN" serve --listen "127.0.0.1:$port" --data "$dir"
    fi
}

# fogport_conf DIR PORT FILE [EXTRA]: a config file for `fogport serve
# --config` with the same settings as fogport_argv (access log on unless
# --quiet-logs), then EXTRA (more sections, e.g. [auth]) appended.
fogport_conf() {
    local dir=$1 port=$2 conf=$3
    {
        printf '[server]\nlisten = 127.0.0.1:%s\n[storage]\ndata = %s\n' "$port" "$dir"
        if [ "${BENCH_QUIET_LOGS:-0}" = 1 ]; then printf '[log]\nlevel = warn\naccess = false\n'; fi
        printf '%s' "${4:-}"
    } >"$conf"
}

# start_fogport_as NAME PORT CONF STATUS: start one more fogport (the auth
# group's) from CONF; sets FOGPORT_<NAME>_PID and FOGPORT_<NAME>_URL. STATUS
# is what GET /v2/ answers when it is up (401 in token mode).
start_fogport_as() {
    local name=$1 port=$2 conf=$3 want=$4 pid lc
    lc=$(printf '%s' "$name" | tr 'A-Z_' 'a-z-')
    "$FOGPORT_BIN" serve --config "$conf" >"$WORK/logs/fogport-$lc.log" 2>&1 &
    pid=$!
    SERVER_PIDS+=("$pid")
    printf -v "FOGPORT_${name}_PID" '%s' "$pid"
    printf -v "FOGPORT_${name}_URL" 'http://127.0.0.1:%s' "$port"
    wait_http "http://127.0.0.1:$port/v2/" 30 "$want" ||
        { tail -20 "$WORK/logs/fogport-$lc.log" >&2; die "fogport ($lc) did not start"; }
}

start_fogport() {
    local port dir argv
    port=$(free_port)
    dir=$WORK/data/fogport
    mkdir -p "$dir"
    mapfile -t argv < <(fogport_argv "$dir" "$port" "$WORK/fogport.ini")
    "${argv[@]}" >"$WORK/logs/fogport.log" 2>&1 &
    FOGPORT_PID=$!
    SERVER_PIDS+=("$FOGPORT_PID")
    FOGPORT_URL=http://127.0.0.1:$port
    wait_http "$FOGPORT_URL/v2/" || { tail -20 "$WORK/logs/fogport.log" >&2; die "fogport did not start"; }
}

start_distribution() {
    local port dir
    port=$(free_port)
    dir=$WORK/data/distribution
    mkdir -p "$dir"
    dist_config "$dir" "$port" "$WORK/distribution.yml"
    "$DIST_BIN" serve "$WORK/distribution.yml" >"$WORK/logs/distribution.log" 2>&1 &
    DIST_PID=$!
    SERVER_PIDS+=("$DIST_PID")
    DIST_URL=http://127.0.0.1:$port
    wait_http "$DIST_URL/v2/" || { tail -20 "$WORK/logs/distribution.log" >&2; die "Distribution did not start"; }
}

# start_nginx ROOT: serves ROOT/<file> at /<file>, sendfile on, one worker.
start_nginx() {
    local root=$1 port p=$WORK/nginx
    port=$(free_port)
    mkdir -p "$p/tmp"
    cat >"$p/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $p/nginx.pid;
error_log $p/error.log warn;
events { worker_connections 1024; }
http {
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000;
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path $p/tmp/body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $root;
        location / { }
    }
}
EOF
    "$NGINX_BIN" -p "$p" -c "$p/nginx.conf" -g 'daemon off;' >"$WORK/logs/nginx.log" 2>&1 &
    NGINX_PID=$!
    SERVER_PIDS+=("$NGINX_PID")
    NGINX_URL=http://127.0.0.1:$port
    wait_http "$NGINX_URL/$2" || { cat "$p/error.log" "$WORK/logs/nginx.log" >&2; die "nginx did not start"; }
}

# ---------------------------------------------------------------- results
# record KEY SERVER VALUE
record() {
    printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$WORK/results.tsv"
}

# jget JSON FIELD
jget() {
    $PY -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(v)' "$1" "$2"
}

# kv LINE KEY: value of key=value in a line
kv() {
    local k
    for k in $1; do
        case $k in "$2="*) printf '%s\n' "${k#*=}"; return 0 ;; esac
    done
    return 1
}

# cpu_busy_pct [SECONDS]: share of all CPUs not idle over the interval
cpu_busy_pct() {
    $PY - "${1:-1}" <<'EOF2'
import sys, time
def snap():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f), f[3] + f[4]
t0, i0 = snap(); time.sleep(float(sys.argv[1])); t1, i1 = snap()
print("%.0f" % (100.0 * (1 - (i1 - i0) / max(1, t1 - t0))))
EOF2
}

# median X...: the median of the numbers given
median() { $PY -c 'import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }

# calc EXPR: floating-point arithmetic
calc() { $PY -c "print($1)"; }

# run_wrk LABEL THREADS CONNS SECONDS URL [wrk args...]
# prints the WRK_RESULT line.
run_wrk() {
    local label=$1 t=$2 c=$3 d=$4 url=$5 line
    shift 5
    line=$(wrk -t"$t" -c"$c" -d"${d}s" --timeout 10s --latency -s "$BENCH_DIR/wrk.lua" "$@" "$url" \
        2>&1 | tee -a "$WORK/logs/wrk.log" | grep '^WRK_RESULT') || die "wrk failed for $label (see logs)"
    printf '%s\n' "$line"
}

# run_ab LABEL SECONDS URL [ab args...]: HEAD with keep-alive, 64 connections.
# prints "rps=X p99_ms=Y errors=Z keepalive=K complete=N"
run_ab() {
    local label=$1 d=$2 url=$3 outf
    outf=$WORK/logs/ab-$label.log
    shift 3
    # -t before -n: -t alone caps the run at 50000 requests
    ab -k -i -c "$CONNS" -t "$d" -n 2000000 -r "$@" "$url" >"$outf" 2>&1 || {
        tail -5 "$outf" >&2
        die "ab failed for $label"
    }
    $PY - "$outf" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
def num(pat, default=0.0):
    m = re.search(pat, t, re.M)
    return float(m.group(1)) if m else default
rps = num(r"^Requests per second:\s+([\d.]+)")
p99 = num(r"^\s+99%\s+(\d+)", -1)
p50 = num(r"^\s+50%\s+(\d+)", -1)
err = num(r"^Failed requests:\s+(\d+)") + num(r"^Non-2xx responses:\s+(\d+)")
ka = num(r"^Keep-Alive requests:\s+(\d+)")
n = num(r"^Complete requests:\s+(\d+)")
print("rps=%.1f p50_ms=%d p99_ms=%d errors=%d keepalive=%d complete=%d" % (rps, p50, p99, err, ka, n))
EOF
}
