#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench.sh - measure tlskit against nginx and openssl s_server, side by side, in one run.
#
# On loopback, with the same ECDSA P-256 certificate and the same number of workers,
# starts tlsserver (the tlskit engine), nginx (Debian package, config generated in a
# temp dir; never the system service) and `openssl s_server`, drives each with the same
# tlsbench load, and adds the raw-OpenSSL floor (tlsbench-floor: in-memory handshakes and
# record encryption, no sockets). Server CPU is read from the kernel (the server
# processes' CPU clocks) over each measured window, because on a small machine client
# and server share the cores: "per server CPU-second" figures are the fair comparison;
# wall-clock rates are shown beside them.
#
# Usage: scripts/bench.sh [--quick] [--out DIR] [--repeat N] [--workers N]
#                         [--build DIR] [--callgrind] [--handshakes-only] [--no-install] [-h]
#   --quick        everything in under two minutes (1 s windows, one repetition); a smoke
#                  test that the script works, never a verdict on speed
#   --out DIR      where results.json, results.txt, chart.png and raw/ go
#                  (default: a new folder under BUILD/bench-results/)
#   --repeat N     measurements per figure (default 3; --quick: 1): median and spread
#   --workers N    server workers for tlsserver and nginx (default: online CPUs)
#   --build DIR    build directory (default: build-bench/ at the repository root; it is
#                  configured as Release and built when needed)
#   --callgrind    also count the user-space instructions per server handshake (full and
#                  resumed) of tlsserver, nginx and the floor under valgrind: slow (about
#                  two minutes) but deterministic, so it still says something on a busy
#                  machine where CPU-time figures are noisy
#   --handshakes-only  only the full and resumed handshake figures (with --repeat 10:
#                  many interleaved rounds, for a ratio that holds on a busy machine)
#   --no-install   do not apt-get missing packages (nginx-light, gnuplot-nox,
#                  nghttp2-client, valgrind); figures needing them are skipped
# Environment: TLSBENCH_DURATION / TLSBENCH_WARMUP override the window lengths (seconds);
#   TLSSERVER=PATH measures another tlsserver binary (same command line) instead of BUILD's.
# Exit status: 0 when the run completed (whatever the figures say), 1 on an error,
# 2 on a usage error.
set -euo pipefail

prog=bench.sh
root=$(cd "$(dirname "$0")/.." && pwd -P)

die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$prog" "$*" >&2; }
usage() { sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

quick=0 out="" repeat="" workers="" build="" install=1 callgrind=0 hs_only=0
check_ok=0 check_open="" check_verified=""
while (($#)); do
    case $1 in
    --quick) quick=1 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --out=*) out=${1#*=} ;;
    --repeat) repeat=${2:?--repeat needs a number}; shift ;;
    --repeat=*) repeat=${1#*=} ;;
    --workers) workers=${2:?--workers needs a number}; shift ;;
    --workers=*) workers=${1#*=} ;;
    --build) build=${2:?--build needs a directory}; shift ;;
    --build=*) build=${1#*=} ;;
    --no-install) install=0 ;;
    --callgrind) callgrind=1 ;;
    --handshakes-only) hs_only=1 ;;
    -h | --help) usage; exit 0 ;;
    *) printf '%s: unknown argument: %s\n' "$prog" "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
cpus=$(nproc 2>/dev/null || echo 2)
[[ -z $repeat ]] && repeat=$((quick ? 1 : 3))
[[ -z $workers ]] && workers=$cpus
[[ $repeat =~ ^[1-9][0-9]?$ ]] || { note "--repeat: '$repeat' is not 1..99"; exit 2; }
[[ $workers =~ ^[1-9][0-9]?$ ]] || { note "--workers: '$workers' is not 1..99"; exit 2; }
build=${build:-$root/build-bench}

# Windows and sizes. --quick keeps the whole run under two minutes on 2 cores.
if ((quick)); then
    dur=${TLSBENCH_DURATION:-1} warm=${TLSBENCH_WARMUP:-0.3}
    bulk_bytes=128M idle_conns=1000 floor_n=200 floor_mib=64 h2_n=300
else
    dur=${TLSBENCH_DURATION:-5} warm=${TLSBENCH_WARMUP:-1}
    bulk_bytes=1G idle_conns=5000 floor_n=3000 floor_mib=2048 h2_n=1000
fi
big_body=1048576 small_body=128 hs_conns=32 rr_many=1000 check_conns=10000

# ------------------------------------------------------------------ tools and build

need_pkgs=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_pkgs+=(nginx-light)
command -v gnuplot >/dev/null 2>&1 || need_pkgs+=(gnuplot-nox)
command -v h2load >/dev/null 2>&1 || need_pkgs+=(nghttp2-client)
((callgrind)) && ! command -v valgrind >/dev/null 2>&1 && need_pkgs+=(valgrind)
if ((${#need_pkgs[@]})) && ((install)); then
    if ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
        note "installing ${need_pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get -qq update </dev/null >/dev/null || note "apt-get update failed"
        # policy-rc.d: a freshly installed nginx package must not start the system service.
        prc=/usr/sbin/policy-rc.d made_prc=0
        if [[ ! -e $prc ]]; then printf '#!/bin/sh\nexit 101\n' >"$prc"; chmod 755 "$prc"; made_prc=1; fi
        apt-get -qq install -y --no-install-recommends "${need_pkgs[@]}" </dev/null >/dev/null ||
            note "could not install ${need_pkgs[*]}; figures that need them are skipped"
        ((made_prc)) && rm -f "$prc"
    else
        note "missing ${need_pkgs[*]} (run as root with apt-get to install); skipping what needs them"
    fi
fi
nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
[[ -x $nginx_bin ]] || nginx_bin=""
have_gnuplot=$(command -v gnuplot >/dev/null 2>&1 && echo 1 || echo 0)
have_h2load=$(command -v h2load >/dev/null 2>&1 && echo 1 || echo 0)
command -v openssl >/dev/null 2>&1 || die "openssl (the command) is needed"

if [[ ! -f $build/CMakeCache.txt ]]; then
    note "configuring $build (Release)"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTLSKIT_BUILD_TESTS=OFF \
        >/dev/null || die "cmake configure failed"
fi
cmake --build "$build" -j "$cpus" --target tlsserver tlsbench tlsbench-floor >/dev/null ||
    die "build failed (cmake --build $build)"
tlsserver=${TLSSERVER:-$build/apps/tlsserver/tlsserver}
tlsbench=$build/apps/tlsbench/tlsbench
floor=$build/apps/tlsbench/tlsbench-floor
for b in "$tlsserver" "$tlsbench" "$floor"; do [[ -x $b ]] || die "not built: $b"; done
for flag in --workers --mode --body-size --max-conns; do
    "$tlsserver" --help 2>&1 | grep -q -- "$flag" || die "tlsserver has no $flag option"
done

if [[ -z $out ]]; then
    out=$build/bench-results/$(date +%Y%m%d-%H%M%S)
fi
mkdir -p "$out/raw" || die "cannot create $out"
out=$(cd "$out" && pwd -P)

# ------------------------------------------------------------------ scratch and cleanup

tmp=$(mktemp -d /tmp/tlskit-bench.XXXXXX)
chmod 755 "$tmp" # nginx workers run as an unprivileged user and must read www/
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$root/scripts/gen-certs.sh" --out "$tmp/certs" -q || die "gen-certs.sh failed"
cert=$tmp/certs/server.crt key=$tmp/certs/server.key
chmod 644 "$cert" "$key" "$tmp/certs"/*.crt
chmod 755 "$tmp/certs"
mkdir -p "$tmp/www" "$tmp/nginx"
head -c "$big_body" /dev/zero | tr '\0' 'x' >"$tmp/www/big"
small=$(head -c "$small_body" /dev/zero | tr '\0' 'x')
printf '%s' "$small" >"$tmp/www/small"
chmod -R a+rX "$tmp/www"

# A free loopback port: bound to 0 by the kernel, then released (perl is always there).
free_port() {
    perl -MIO::Socket::INET -e \
        '$s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0,
                                     ReuseAddr => 1) or die "bind: $!\n"; print $s->sockport, "\n"'
}

listening() { # PORT
    if command -v ss >/dev/null 2>&1; then
        ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
    else
        perl -MIO::Socket::INET -e 'exit !IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]")' "$1"
    fi
}

wait_listen() { # PORT PID: until something listens on the port (or the process died)
    local i
    for ((i = 0; i < 100; i++)); do
        listening "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

stop_pid() {
    local p=$1 i
    kill -TERM "$p" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

# Each start_* sets SRV_PORT, SRV_PID (the process to stop) and SRV_PIDS (comma list of
# the processes whose CPU and memory count).
start_tlsserver() { # NAME WORKERS MODE [BODY [WRAPPER...]]
    local name=$1 w=$2 mode=$3 body=${4:-0} log=$tmp/$1.out line i
    shift 4 2>/dev/null || shift $#
    local args=(--bind 127.0.0.1 --port 0 --cert "$cert" --key "$key" --workers "$w"
                --mode "$mode" --max-conns $((check_conns + 2000)) -q)
    [[ $mode == http ]] && args+=(--body-size "$body")
    (ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@" "$tlsserver" "${args[@]}") \
        >"$log" 2>"$tmp/$name.err" &
    SRV_PID=$!
    pids+=("$SRV_PID")
    for ((i = 0; i < 400; i++)); do
        line=$(head -n 1 "$log" 2>/dev/null || true)
        [[ $line == *"listening on"* ]] && break
        kill -0 "$SRV_PID" 2>/dev/null || die "tlsserver did not start: $(cat "$tmp/$name.err")"
        sleep 0.05
    done
    [[ $line == *"listening on"* ]] || die "tlsserver printed no address"
    line=${line#*listening on }
    line=${line%%,*}
    SRV_PORT=${line##*:}
    SRV_PIDS=$SRV_PID
}

nginx_conf() { # WORKERS PORT [EXTRA MAIN DIRECTIVE]
    cat <<EOF
worker_processes $1;
${3:-}
worker_rlimit_nofile 20000;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log error;
daemon off;
events { worker_connections 16384; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=64;
    default_type application/octet-stream;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    server {
        listen 127.0.0.1:$2 ssl;
        root $tmp/www;
        location = /small { return 200 "$small"; }
        location / { }
    }
}
EOF
}

start_nginx() { # NAME WORKERS [WRAPPER...] (with a wrapper: one process, no master)
    local name=$1 w=$2 kids
    shift 2
    for _ in 1 2 3 4 5; do
        SRV_PORT=$(free_port)
        nginx_conf "$w" "$SRV_PORT" "$( (($#)) && echo 'master_process off;')" >"$tmp/nginx/$name.conf"
        : >"$tmp/nginx/error.log"
        "$@" "$nginx_bin" -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$tmp/nginx/$name.conf" \
            >"$tmp/$name.out" 2>&1 &
        SRV_PID=$!
        pids+=("$SRV_PID")
        if wait_listen "$SRV_PORT" "$SRV_PID"; then
            (($#)) && { SRV_PIDS=$SRV_PID; return 0; }
            for _ in $(seq 1 50); do # the workers
                kids=$(pgrep -P "$SRV_PID" | paste -sd, -)
                [[ $(tr ',' '\n' <<<"$kids" | grep -c .) -ge $w ]] && break
                sleep 0.05
            done
            SRV_PIDS=$SRV_PID${kids:+,$kids}
            return 0
        fi
        stop_pid "$SRV_PID"
    done
    die "nginx did not start: $(cat "$tmp/nginx/error.log" "$tmp/$name.out")"
}

start_sserver() { # NAME (cwd www/, so -WWW serves /big from there)
    local name=$1
    for _ in 1 2 3 4 5; do
        SRV_PORT=$(free_port)
        (cd "$tmp/www" && exec openssl s_server -accept "127.0.0.1:$SRV_PORT" -cert "$cert" \
            -key "$key" -WWW -quiet </dev/null) >"$tmp/$name.out" 2>&1 &
        SRV_PID=$!
        pids+=("$SRV_PID")
        if wait_listen "$SRV_PORT" "$SRV_PID"; then
            SRV_PIDS=$SRV_PID
            return 0
        fi
        stop_pid "$SRV_PID"
    done
    die "openssl s_server did not start: $(cat "$tmp/$name.out")"
}

# ------------------------------------------------------------------ measuring

declare -A VAL      # "figure|server" -> space-separated values
declare -A PORT PIDS

bench() { # FIGURE SERVER REP TLSBENCH-ARGS... : run, keep the JSON, print it
    local fig=$1 srv=$2 rep=$3
    shift 3
    local f=$out/raw/$fig.$srv.$rep.json
    local t=$(( ${dur%.*} + 60 ))
    [[ $fig == conns10k || $fig == idle ]] && t=$((t + check_conns / 50))
    if ! timeout "$t" "$tlsbench" "$@" --json -q -k --server-pid "${PIDS[$srv]}" \
        "127.0.0.1:${PORT[$srv]}" >"$f" 2>"$out/raw/$fig.$srv.$rep.err"; then
        note "$fig against $srv: tlsbench failed: $(tail -n 2 "$out/raw/$fig.$srv.$rep.err" | tr '\n' ' ')"
    fi
    cat "$f"
}

jget() { # KEY < JSON: the first number for "KEY": (the keys tlsbench prints are unique)
    grep -o "\"$1\":[-0-9.eE+]*" | head -n 1 | cut -d: -f2
}

add() { # FIGURE SERVER VALUE
    [[ -n $3 ]] && VAL["$1|$2"]="${VAL["$1|$2"]:-} $3"
    return 0
}

stats() { # VALUES... -> "median min max" (empty when none)
    (($#)) || return 0
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1}
        END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
              printf "%.6g %.6g %.6g\n", m, v[1], v[NR] }'
}

median() { # FIGURE SERVER
    local s
    # shellcheck disable=SC2086
    s=$(stats ${VAL["$1|$2"]:-})
    echo "${s%% *}"
}

progress() { printf '%s: [%3ds] %s\n' "$prog" "$SECONDS" "$*" >&2; }

# Run one tlsbench load against each server, REPEAT times, interleaved (so slow drift of
# the machine hits every server alike). Stores: FIG per server CPU-second, FIG_wall rate.
measure_hs() { # FIGURE "SERVERS" TLSBENCH-ARGS...
    local fig=$1 servers=$2 rep srv j
    shift 2
    for ((rep = 1; rep <= repeat; rep++)); do
        for srv in $servers; do
            j=$(bench "$fig" "$srv" "$rep" "$@")
            add "$fig" "$srv" "$(jget per_server_cpu_s <<<"$j")"
            add "${fig}_wall" "$srv" "$(jget rate <<<"$j")"
        done
    done
}

SECONDS=0
load=$(cut -d' ' -f1 /proc/loadavg)
progress "results in $out; $workers workers, $repeat repetition(s), ${dur}s windows; load average $load"
awk -v l="$load" -v c="$cpus" 'BEGIN { exit !(l > c / 2) }' &&
    note "warning: the machine is busy (load $load on $cpus CPUs): figures will be noisy"

servers="tlskit"
start_tlsserver tlskit "$workers" http "$small_body"
PORT[tlskit]=$SRV_PORT PIDS[tlskit]=$SRV_PIDS
if [[ -n $nginx_bin ]]; then
    start_nginx nginx "$workers"
    PORT[nginx]=$SRV_PORT PIDS[nginx]=$SRV_PIDS
    servers+=" nginx"
else
    note "nginx is not installed: no nginx figures"
fi
start_sserver s_server
PORT[s_server]=$SRV_PORT PIDS[s_server]=$SRV_PIDS
# One-worker twins for the scaling figure, measured in the same rotation (interleaved in
# time, so a change in the machine's load cannot pass for scaling).
w1_servers=""
if ((workers > 1)); then
    start_tlsserver tlskit_w1 1 http "$small_body"
    PORT[tlskit_w1]=$SRV_PORT PIDS[tlskit_w1]=$SRV_PIDS
    w1_servers="tlskit_w1"
    if [[ -n $nginx_bin ]]; then
        start_nginx nginx_w1 1
        PORT[nginx_w1]=$SRV_PORT PIDS[nginx_w1]=$SRV_PIDS
        w1_servers+=" nginx_w1"
    fi
fi

hs=(-t "$cpus" -c "$hs_conns" -d "$dur" -w "$warm")
progress "full handshakes ($workers workers${w1_servers:+, and 1})"
measure_hs full_hs "$servers s_server $w1_servers" handshake "${hs[@]}"
for s in $w1_servers; do
    VAL["full_hs_w1|${s%_w1}"]=${VAL["full_hs|$s"]:-}
    VAL["full_hs_w1_wall|${s%_w1}"]=${VAL["full_hs_wall|$s"]:-}
    stop_pid "$(cut -d, -f1 <<<"${PIDS[$s]}")"
done
progress "resumed handshakes"
measure_hs resumed_hs "$servers s_server" handshake --resume "${hs[@]}"

if ((!hs_only)); then
progress "request/response, 1 connection"
for ((rep = 1; rep <= repeat; rep++)); do
    for srv in $servers; do
        j=$(bench rr1 "$srv" "$rep" rr --http=/small -t 1 -c 1 -d "$dur" -w "$warm")
        add rr1_p99_ms "$srv" "$(jget p99 <<<"$j")"
        add rr1_rate "$srv" "$(jget rate <<<"$j")"
        add rr1_per_cpu "$srv" "$(jget per_server_cpu_s <<<"$j")"
    done
done
progress "request/response, $rr_many connections"
for ((rep = 1; rep <= repeat; rep++)); do
    for srv in $servers; do
        j=$(bench rr$rr_many "$srv" "$rep" rr --http=/small -t "$cpus" -c "$rr_many" -d "$dur" -w "$warm")
        add rrN_p99_ms "$srv" "$(jget p99 <<<"$j")"
        add rrN_rate "$srv" "$(jget rate <<<"$j")"
        add rrN_per_cpu "$srv" "$(jget per_server_cpu_s <<<"$j")"
    done
done

# Client cost: tlsbench against h2load, the same load on nginx (a new connection per GET;
# h2load resumes when it reconnects, so full handshakes use one h2load client per
# connection). Both measured the same way: the CPU time of the finished process, taken
# at N and 2N handshakes so that start-up costs cancel out.
cpu_of() { # COMMAND... -> CPU seconds (user+sys) of the command
    local t
    t=$( { TIMEFORMAT='%U %S'; time "$@" >/dev/null 2>&1; } 2>&1 | tail -n 1)
    awk '{ printf "%.6f\n", $1 + $2 }' <<<"$t"
}
marginal_us() { # N COMMAND-FOR-N... ; COMMAND-FOR-2N is the same with every @N@ doubled
    local n=$1 a b
    shift
    a=$(cpu_of "${@//@N@/$n}")
    b=$(cpu_of "${@//@N@/$((2 * n))}")
    awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN { if (b > a) printf "%.1f", (b - a) * 1e6 / n }'
}
if [[ -n $nginx_bin ]]; then
    progress "client CPU per handshake: tlsbench and h2load"
    url=https://127.0.0.1:${PORT[nginx]}/small
    for ((rep = 1; rep <= repeat; rep++)); do
        add client_full_us tlsbench "$(marginal_us "$h2_n" "$tlsbench" handshake -k -q \
            --http=/small -t "$cpus" -c 16 -n @N@ "127.0.0.1:${PORT[nginx]}")"
        # Resumed: both ask nginx to close after the response (h2load needs that to
        # reconnect), so both do the same close sequence.
        add client_resumed_us tlsbench "$(marginal_us "$h2_n" "$tlsbench" handshake -k -q \
            --resume --server-closes --http=/small -t "$cpus" -c 16 -n @N@ \
            "127.0.0.1:${PORT[nginx]}")"
        if ((have_h2load)); then
            add client_full_us h2load "$(marginal_us "$h2_n" h2load --h1 -n @N@ -c @N@ -r 500 \
                -t "$cpus" "$url")"
            add client_resumed_us h2load "$(marginal_us "$h2_n" h2load --h1 -n @N@ -c 16 \
                -t "$cpus" -H 'Connection: close' "$url")"
        fi
    done
fi

# Bulk: one connection downloading the same 1 MiB body again and again (s_server closes
# after each response; tlsbench reconnects, which costs it a handshake per MiB).
stop_pid "$(cut -d, -f1 <<<"${PIDS[tlskit]}")"
start_tlsserver tlskit_big "$workers" http "$big_body"
PORT[tlskit]=$SRV_PORT PIDS[tlskit]=$SRV_PIDS
progress "bulk download, one connection"
for ((rep = 1; rep <= repeat; rep++)); do
    for srv in $servers s_server; do
        j=$(bench bulk "$srv" "$rep" bulk --http=/big --bytes "$bulk_bytes" -t 1 -c 1)
        add bulk_bytes_per_cpu "$srv" "$(jget per_server_cpu_s <<<"$j")"
        add bulk_mb_s "$srv" "$(jget mb_per_s <<<"$j")"
    done
done
stop_pid "${PIDS[tlskit]}"
stop_pid "${PIDS[s_server]}"
[[ -n $nginx_bin ]] && stop_pid "$(cut -d, -f1 <<<"${PIDS[nginx]}")"

# Memory per idle connection: fresh servers, warmed with a few connections, then
# $idle_conns keep-alive connections (handshake and one GET each) held; tlsbench reads
# the servers' RSS (nginx: master and workers) before and after.
progress "memory per idle connection ($idle_conns)"
for ((rep = 1; rep <= repeat; rep++)); do
    for srv in $servers; do
        if [[ $srv == tlskit ]]; then
            start_tlsserver "tlskit_idle$rep" "$workers" http "$small_body"
        else
            start_nginx "nginx_idle$rep" "$workers"
        fi
        PORT[$srv]=$SRV_PORT PIDS[$srv]=$SRV_PIDS
        timeout 60 "$tlsbench" handshake -k -q --http=/small -c 16 -n 200 \
            "127.0.0.1:$SRV_PORT" >/dev/null 2>&1 || true
        j=$(bench idle "$srv" "$rep" idle --http=/small -t "$cpus" -c "$idle_conns" -d 1)
        add idle_rss_bytes "$srv" "$(jget server_rss_per_conn_bytes <<<"$j")"
        stop_pid "$SRV_PID"
    done
done

# 10,000 connections held, then every one answers an echo.
progress "$check_conns connections held and served (tlsserver, echo)"
start_tlsserver tlskit_10k "$workers" echo
PORT[tlskit]=$SRV_PORT PIDS[tlskit]=$SRV_PIDS
# (--quick resumes sessions to set them up faster: the check is about holding and serving.)
check_args=(idle --request 16 --verify -t "$cpus" -c "$check_conns" -d 1 --inflight 128)
((quick)) && check_args+=(--resume)
j=$(bench conns10k tlskit 1 "${check_args[@]}")
check_open=$(jget open <<<"$j") check_verified=$(jget verified <<<"$j")
check_ok=0
[[ ${check_open:-0} == "$check_conns" && ${check_verified:-0} == "$check_conns" ]] && check_ok=1
stop_pid "$SRV_PID"

progress "raw OpenSSL floor (in memory)"
for ((rep = 1; rep <= repeat; rep++)); do
    j=$("$floor" --cert "$cert" --key "$key" -n "$floor_n" --bytes "$floor_mib" --json |
        tee "$out/raw/floor.$rep.json")
    add full_hs floor "$(jget full_handshakes_per_cpu_s <<<"$j")"
    add resumed_hs floor "$(jget resumed_handshakes_per_cpu_s <<<"$j")"
    add bulk_bytes_per_cpu floor "$(jget encrypt_bytes_per_cpu_s <<<"$j")"
done

# Instructions per server handshake, user space only (valgrind's callgrind): the servers
# (one worker, one process) between two dumps taken around a known number of handshakes,
# and the floor's server-side functions. Immune to a busy machine, blind to the kernel.
cg_total() { # FILE-PREFIX TRIGGER -> instructions in the dump with that trigger
    local f
    for f in "$1".*; do
        grep -q "^desc: Trigger: dump $2\$" "$f" 2>/dev/null && { awk '/^totals:/ { print $2; exit }' "$f"; return; }
    done
}
cg_server() { # NAME (tlskit|nginx)
    local srv=$1 pre=$tmp/cg.$1 n=100 kind j hs
    local vg=(valgrind --tool=callgrind --callgrind-out-file="$pre.%p")
    if [[ $srv == tlskit ]]; then start_tlsserver cg_tlskit 1 http "$small_body" "${vg[@]}"
    else start_nginx cg_nginx 1 "${vg[@]}"; fi
    PORT[$srv]=$SRV_PORT PIDS[$srv]=$SRV_PIDS
    timeout 120 "$tlsbench" handshake -k -q -c 1 -t 1 -n 10 --timeout 60 "127.0.0.1:$SRV_PORT" >/dev/null 2>&1 || true
    callgrind_control -d warm "$SRV_PID" >/dev/null 2>&1
    for kind in full resumed; do
        local extra=()
        [[ $kind == resumed ]] && extra=(--resume)
        j=$(timeout 300 "$tlsbench" handshake -k -q --json -c 1 -t 1 -n "$n" --timeout 60 \
            "${extra[@]}" "127.0.0.1:$SRV_PORT" 2>/dev/null || true)
        hs=$(jget handshakes <<<"$j")
        callgrind_control -d "$kind" "$SRV_PID" >/dev/null 2>&1
        sleep 0.5
        local tot
        tot=$(cg_total "$pre.$SRV_PID" "$kind")
        [[ -n $tot && -n $hs && $hs -gt 0 ]] && add "${kind}_hs_instr" "$srv" "$((tot / hs))"
    done
    stop_pid "$SRV_PID"
}
if ((callgrind)) && command -v valgrind >/dev/null 2>&1; then
    progress "instructions per server handshake (callgrind)"
    cg_server tlskit
    [[ -n $nginx_bin ]] && cg_server nginx
    for kind in full resumed; do
        valgrind --tool=callgrind --toggle-collect='server_*' --callgrind-out-file="$tmp/cg.floor.$kind" \
            "$floor" --cert "$cert" --key "$key" -n 100 --only "$kind" >/dev/null 2>&1 &&
            add "${kind}_hs_instr" floor "$(( $(awk '/^totals:/ { print $2; exit }' "$tmp/cg.floor.$kind") / 101 ))"
    done
fi

fi # !hs_only

# ------------------------------------------------------------------ report

# Figures: key|label|unit|better|goal ratio (tlskit/nginx; "" none)|goal text
figures=(
    "full_hs|full handshakes per server CPU-s|handshakes/CPU-s|higher|1.25|>= 1.25x nginx"
    "resumed_hs|resumed handshakes per server CPU-s|handshakes/CPU-s|higher|1.25|>= 1.25x nginx"
    "bulk_bytes_per_cpu|bulk download bytes per server CPU-s|bytes/CPU-s|higher|1.5|>= 1.5x nginx"
    "idle_rss_bytes|server RSS per idle TLS connection|bytes|lower|0.5|<= 0.5x nginx"
    "rr1_p99_ms|p99 latency, 1 connection|ms|lower|1|<= nginx"
    "rrN_p99_ms|p99 latency, $rr_many connections|ms|lower|1|<= nginx"
    "full_hs_wall|full handshakes per second (wall)|handshakes/s|higher||"
    "resumed_hs_wall|resumed handshakes per second (wall)|handshakes/s|higher||"
    "bulk_mb_s|bulk download MB/s (wall)|MB/s|higher||"
    "rr1_rate|requests per second, 1 connection|requests/s|higher||"
    "rrN_rate|requests per second, $rr_many connections|requests/s|higher||"
    "rr1_per_cpu|requests per server CPU-s, 1 connection|requests/CPU-s|higher||"
    "rrN_per_cpu|requests per server CPU-s, $rr_many connections|requests/CPU-s|higher||"
    "full_hs_w1|full handshakes per server CPU-s, 1 worker|handshakes/CPU-s|higher||"
    "full_hs_w1_wall|full handshakes per second, 1 worker (wall)|handshakes/s|higher||"
    "full_hs_instr|user-space instructions per full handshake|instructions|lower||"
    "resumed_hs_instr|user-space instructions per resumed handshake|instructions|lower||"
)
srv_cols=(tlskit nginx s_server floor)
declare -A json_name=([tlskit]=tlskit [nginx]=nginx [s_server]=openssl_s_server [floor]=raw_openssl_floor)

has_data() { # FIGURE: any value for any server
    local s
    for s in "${srv_cols[@]}"; do [[ -n ${VAL["$1|$s"]:-} ]] && return 0; done
    return 1
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.3f", a / b }'; }
verdict() { # RATIO GOAL BETTER
    [[ -z $1 || -z $2 ]] && { echo ""; return; }
    awk -v r="$1" -v g="$2" -v b="$3" 'BEGIN { ok = b == "higher" ? r >= g : r <= g; print ok ? "met" : "missed" }'
}

json_num() { [[ -n $1 ]] && printf '%s' "$1" || printf 'null'; }

{
    printf '{"tool":"scripts/bench.sh","date":"%s","quick":%s,"repeat":%d,"workers":%d,' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$( ((quick)) && echo true || echo false)" "$repeat" "$workers"
    printf '"machine":{"cpus":%d,"kernel":"%s","load_at_start":%s,"openssl":"%s","nginx":"%s"},' \
        "$cpus" "$(uname -r)" "$load" "$(openssl version | tr -d '"')" \
        "$( [[ -n $nginx_bin ]] && "$nginx_bin" -v 2>&1 | sed 's/.*\///' || true)"
    printf '"method":"loopback, ECDSA P-256, TLS 1.3 (X25519, AES-256-GCM); server CPU from the servers'"'"' process CPU clocks over each measured window; median of %d","figures":[' "$repeat"
    first=1
    for f in "${figures[@]}"; do
        IFS='|' read -r k label unit better goal goaltext <<<"$f"
        has_data "$k" || continue
        ((first)) || printf ','
        first=0
        printf '{"name":"%s","label":"%s","unit":"%s","better":"%s",' "$k" "$label" "$unit" "$better"
        for s in "${srv_cols[@]}"; do
            # shellcheck disable=SC2086
            st=$(stats ${VAL["$k|$s"]:-})
            [[ -z $st ]] && continue
            read -r med mn mx <<<"$st"
            printf '"%s":{"median":%s,"min":%s,"max":%s,"values":[%s]},' "${json_name[$s]}" "$med" "$mn" "$mx" \
                "$(tr -s ' ' '\n' <<<"${VAL["$k|$s"]}" | grep . | paste -sd, -)"
        done
        r=$(ratio "$(median "$k" tlskit)" "$(median "$k" nginx)")
        printf '"ratio_vs_nginx":%s' "$(json_num "$r")"
        rf=$(ratio "$(median "$k" tlskit)" "$(median "$k" floor)")
        [[ -n $rf ]] && printf ',"ratio_vs_floor":%s' "$rf"
        if [[ -n $goal ]]; then
            printf ',"goal":"%s","met":%s' "$goaltext" \
                "$( [[ $(verdict "$r" "$goal" "$better") == met ]] && echo true || echo false)"
        fi
        printf '}'
    done
    # Scaling: wall-clock and per-CPU, N workers over 1 worker.
    printf '],"scaling":{'
    first=1
    for s in tlskit nginx; do
        w=$(ratio "$(median full_hs_wall "$s")" "$(median full_hs_w1_wall "$s")")
        c=$(ratio "$(median full_hs "$s")" "$(median full_hs_w1 "$s")")
        [[ -z $w ]] && continue
        ((first)) || printf ','
        first=0
        printf '"%s":{"workers":%d,"wall_rate_ratio":%s,"per_cpu_ratio":%s}' "$s" "$workers" "$w" "$(json_num "$c")"
    done
    printf '},"client_cpu_us_per_handshake":{"full":{"tlsbench":%s,"h2load":%s},"resumed":{"tlsbench":%s,"h2load":%s}},' \
        "$(json_num "$(median client_full_us tlsbench)")" "$(json_num "$(median client_full_us h2load)")" \
        "$(json_num "$(median client_resumed_us tlsbench)")" "$(json_num "$(median client_resumed_us h2load)")"
    printf '"connections_check":{"wanted":%d,"open":%s,"verified":%s,"ok":%s}}\n' "$check_conns" \
        "$(json_num "$check_open")" "$(json_num "$check_verified")" "$( ((check_ok)) && echo true || echo false)"
} >"$out/results.json"

fmt() { # VALUE -> short human number
    [[ -z $1 ]] && { printf -- '-'; return; }
    awk -v v="$1" 'BEGIN { a = v < 0 ? -v : v;
        if (a >= 1e9) printf "%.2fG", v / 1e9; else if (a >= 1e6) printf "%.2fM", v / 1e6;
        else if (a >= 1e4) printf "%.1fk", v / 1e3; else if (a >= 100) printf "%.0f", v;
        else printf "%.3g", v }'
}
spread() { # FIGURE SERVER -> "±N%" ((max-min)/2 over the median)
    local st
    # shellcheck disable=SC2086
    st=$(stats ${VAL["$1|$2"]:-})
    [[ -z $st ]] && return 0
    awk -v s="$st" 'BEGIN { split(s, a, " "); if (a[1] != 0) printf "±%.0f%%", 50 * (a[3] - a[2]) / a[1] }'
}

{
    printf 'tlskit vs nginx %s and openssl s_server, loopback, %d CPUs, %d workers, median of %d%s\n' \
        "$( [[ -n $nginx_bin ]] && "$nginx_bin" -v 2>&1 | sed 's/.*\///' || echo '-')" "$cpus" "$workers" "$repeat" \
        "$( ((quick)) && echo ' (--quick: a smoke test, not a verdict)' || true)"
    printf '%-44s %14s %14s %14s %14s %8s  %s\n' figure tlskit nginx s_server raw-floor "tk/nginx" goal
    for f in "${figures[@]}"; do
        IFS='|' read -r k label unit better goal goaltext <<<"$f"
        has_data "$k" || continue
        r=$(ratio "$(median "$k" tlskit)" "$(median "$k" nginx)")
        cells=()
        for s in "${srv_cols[@]}"; do
            m=$(median "$k" "$s")
            cells+=("$(fmt "$m")$( [[ -n $m && $repeat -gt 1 ]] && printf ' %s' "$(spread "$k" "$s")" || true)")
        done
        v=$(verdict "$r" "$goal" "$better")
        printf '%-44s %14s %14s %14s %14s %8s  %s\n' "$label" "${cells[@]}" \
            "$( [[ -n $r ]] && printf '%.2fx' "$r" || echo -)" "${goaltext:+$goaltext: $v}"
    done
    for s in tlskit nginx; do
        w=$(ratio "$(median full_hs_wall "$s")" "$(median full_hs_w1_wall "$s")")
        c=$(ratio "$(median full_hs "$s")" "$(median full_hs_w1 "$s")")
        [[ -n $w ]] && printf 'scaling 1 -> %d workers, %-7s full handshakes/s x%s (per server CPU-s x%s)\n' \
            "$workers" "$s:" "$w" "${c:--}"
    done
    if ((!hs_only)); then
    rf=$(ratio "$(median full_hs tlskit)" "$(median full_hs floor)")
    printf 'full handshakes per server CPU-s, tlskit / raw floor: %s (goal >= 0.90: %s)\n' "${rf:--}" \
        "$(verdict "$rf" 0.9 higher)"
    printf 'client CPU per handshake + GET against nginx: full: tlsbench %s us, h2load %s us; resumed: tlsbench %s us, h2load %s us\n' \
        "$(fmt "$(median client_full_us tlsbench)")" "$(fmt "$(median client_full_us h2load)")" \
        "$(fmt "$(median client_resumed_us tlsbench)")" "$(fmt "$(median client_resumed_us h2load)")"
    suites=""
    for s in tlskit nginx s_server; do
        c=$(grep -o '"cipher":"[A-Z0-9_]*"' "$out/raw/bulk.$s.1.json" 2>/dev/null | head -n 1 |
            cut -d'"' -f4)
        suites+="${suites:+, }$s ${c:-?}"
    done
    printf 'suite each server chose (bulk; each its default): %s; the floor: OpenSSL default\n' \
        "$suites"
    printf '%d connections held and all answering (tlsserver echo): %s (open %s, verified %s)\n' \
        "$check_conns" "$( ((check_ok)) && echo yes || echo NO)" "${check_open:--}" "${check_verified:--}"
    fi
} | tee "$out/results.txt"

# Chart: every figure with a reference, relative to nginx (1.0), oriented so that above 1
# means better than nginx.
if ((have_gnuplot)); then
    {
        for f in "${figures[@]}"; do
            IFS='|' read -r k label unit better goal goaltext <<<"$f"
            n=$(median "$k" nginx)
            [[ -z $n ]] && continue
            printf '"%s"' "$label"
            for s in tlskit s_server floor; do
                m=$(median "$k" "$s")
                if [[ -z $m ]]; then printf ' -'; continue; fi
                if [[ $better == higher ]]; then ratio "$m" "$n"; else ratio "$n" "$m"; fi | sed 's/^/ /;s/^ $/ -/' | tr -d '\n'
            done
            printf '\n'
        done
    } >"$out/chart.dat"
    gnuplot >"$out/raw/gnuplot.log" 2>&1 <<EOF || note "gnuplot failed: see $out/raw/gnuplot.log"
set terminal pngcairo size 1400,800 noenhanced font ",10"
set output "$out/chart.png"
set title "tlskit and references relative to nginx (1.0 = nginx; above 1 = better than nginx; latency and memory inverted)"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top right
set xtics rotate by 30 right scale 0
set ylabel "relative to nginx (log scale)"
set logscale y 2
set yrange [0.125:8]
set grid ytics
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2 lc rgb "black"
set bmargin 14
set lmargin 22
plot "$out/chart.dat" using 2:xtic(1) title "tlskit" lc rgb "#1f77b4", \
     "" using 3 title "openssl s_server" lc rgb "#aaaaaa", \
     "" using 4 title "raw OpenSSL floor (in memory)" lc rgb "#2ca02c"
EOF
fi
progress "done: $out/results.json, $out/results.txt$( ((have_gnuplot)) && echo ", $out/chart.png" || true)"
