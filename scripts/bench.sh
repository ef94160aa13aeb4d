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
# wall-clock rates are shown beside them. scripts/bench_report.py turns the raw runs into
# the report.
#
# Usage: scripts/bench.sh [--quick] [--out DIR] [--repeat N] [--workers N]
#                         [--build DIR] [--callgrind] [--handshakes-only] [--scaling]
#                         [--terminators] [-h]
#   --quick        everything in under two minutes (1 s windows, one repetition); a smoke
#                  test that the script works, never a verdict on speed
#   --out DIR      where results.json, results.txt, chart.png and raw/ go
#                  (default: a new folder under BUILD/bench-results/; raw/ is emptied)
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
#   --scaling      only the scaling curve: full handshakes per second and per server
#                  CPU-s of tlsserver and nginx at 1, 2, 4, ... workers up to the CPU
#                  count, each server pinned (taskset) to its first W cores and tlsbench
#                  to the others; scaling.txt, scaling.json and scaling.png in --out
#   --terminators  only the TLS terminators in front of a plain TCP echo backend on
#                  loopback, one worker each: tlsserver --forward (skipped with a note
#                  when the binary has no --forward), stunnel4, HAProxy (mode tcp) and
#                  nginx stream: new connections (handshake + 1 KiB each way) and bulk
#                  bytes per server CPU-s, RSS per idle forwarded pair, each server's
#                  user and kernel CPU per connection, and tlsbench-floor's in-memory
#                  OpenSSL cost of a full handshake (tlskit's settings and OpenSSL's
#                  defaults) for scale; terminators.txt and terminators.json in --out
#   --no-install   accepted and ignored: bench.sh installs nothing
# Needs python3 and the openssl command; nginx, gnuplot, h2load and valgrind (for
# --callgrind) come from `scripts/setup.sh --bench`, and figures needing a missing one
# are skipped.
# Environment: TLSBENCH_DURATION / TLSBENCH_WARMUP override the window lengths (seconds);
#   TLSSERVER=PATH measures another tlsserver binary (same command line) instead of BUILD's
#   (a wrapper script that execs it works too, e.g. to preload an allocator);
#   TLSBENCH_IDLE_CONNS sets the connections of the memory figures (default 5,000,
#   --quick 1,000); TLSBENCH_CHECK_CONNS those of the held-connections check (default
#   19,000; 0 skips it).
# Exit status: 0 when the run completed (whatever the figures say), 1 on an error,
# 2 on a usage error.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
prog=bench.sh
report=$root/scripts/bench_report.py

quick=0 out="" repeat="" workers="" build="" callgrind=0 hs_only=0 scaling=0 terminators=0
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
    --no-install) ;; # kept so that older command lines still work
    --callgrind) callgrind=1 ;;
    --handshakes-only) hs_only=1 ;;
    --scaling) scaling=1 ;;
    --terminators) terminators=1 ;;
    -h | --help) usage; exit 0 ;;
    *) note "unknown argument: $1"; usage >&2; exit 2 ;;
    esac
    shift
done
cpus=$(nproc 2>/dev/null || echo 2)
[[ -z $repeat ]] && repeat=$((quick ? 1 : 3))
[[ -z $workers ]] && workers=$cpus
[[ $repeat =~ ^[1-9][0-9]?$ ]] || usage_error "--repeat: '$repeat' is not 1..99"
[[ $workers =~ ^[1-9][0-9]?$ ]] || usage_error "--workers: '$workers' is not 1..99"
build=${build:-$root/build-bench}

# Windows and sizes. --quick keeps the whole run under two minutes on 2 cores.
if ((quick)); then
    dur=${TLSBENCH_DURATION:-1} warm=${TLSBENCH_WARMUP:-0.3}
    bulk_bytes=128M idle_conns=1000 floor_n=200 floor_mib=64 h2_n=300 after_close_s=10
    term_bulk=64M
else
    dur=${TLSBENCH_DURATION:-5} warm=${TLSBENCH_WARMUP:-1}
    bulk_bytes=1G idle_conns=5000 floor_n=3000 floor_mib=2048 h2_n=1000 after_close_s=10
    term_bulk=512M
fi
big_body=1048576 small_body=128 hs_conns=32 rr_many=1000 check_conns=19000
idle_conns=${TLSBENCH_IDLE_CONNS:-$idle_conns}
check_conns=${TLSBENCH_CHECK_CONNS:-$check_conns}

# ------------------------------------------------------------------ tools and build

have() { command -v "$1" >/dev/null 2>&1; }
have openssl || die "openssl (the command) is needed"
have python3 || die "python3 is needed for the report (run scripts/setup.sh)"
missing=()
have nginx || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
have gnuplot || missing+=(gnuplot)
have h2load || missing+=(h2load)
((callgrind)) && ! have valgrind && missing+=(valgrind)
((${#missing[@]})) &&
    note "missing ${missing[*]} (run scripts/setup.sh --bench); skipping what needs them"
nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
[[ -x $nginx_bin ]] || nginx_bin=""
have_gnuplot=$(have gnuplot && echo 1 || echo 0)
have_h2load=$(have h2load && echo 1 || echo 0)

[[ -f $build/CMakeCache.txt ]] || note "configuring $build (Release)"
jobs=$cpus build_apps --keep-config "$build" Release tlsserver tlsbench tlsbench-floor
tlsserver=${TLSSERVER:-$build/apps/tlsserver/tlsserver}
tlsbench=$build/apps/tlsbench/tlsbench
floor=$build/apps/tlsbench/tlsbench-floor
for b in "$tlsserver" "$tlsbench" "$floor"; do [[ -x $b ]] || die "not built: $b"; done
# (the help text is read whole first: `grep -q` on a pipe would stop reading early, and
# the SIGPIPE that tlsserver then gets would fail the pipe under pipefail)
srv_help=$("$tlsserver" --help 2>&1 || true)
for flag in --workers --mode --body-size --max-conns; do
    grep -q -- "$flag" <<<"$srv_help" || die "tlsserver has no $flag option"
done

if [[ -z $out ]]; then
    out=$build/bench-results/$(date +%Y%m%d-%H%M%S)
fi
# raw/ is what the report reads: runs left from an earlier use of --out must not count.
rm -rf "$out/raw"
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

# ------------------------------------------------------------------ the servers

# A free loopback port: bound to 0 by the kernel, then released (perl is always there).
free_port() {
    perl -MIO::Socket::INET -e \
        '$s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0,
                                     ReuseAddr => 1) or die "bind: $!\n"; print $s->sockport, "\n"'
}

listening() { # PORT
    if have ss; then
        ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
    else
        perl -MIO::Socket::INET -e 'exit !IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]")' "$1"
    fi
}

# wait_port PORT PID: until something listens on the port (or the process died). For
# nginx and s_server, which do not say their port (tlsserver does: wait_listen).
wait_port() {
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

# 19,000 connections (check_conns) need more descriptors than the usual 1024: this
# machine allows 20,000 per process, enough for one tlsbench and one tlsserver.
with_fds() { ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"; }

srv_extra=() # more tlsserver options for the next start_bench_server

# Each start_* sets SRV_PORT, SRV_PID (the process to stop) and SRV_PIDS (comma list of
# the processes whose CPU and memory count).
start_bench_server() { # NAME WORKERS MODE("": none) [BODY [WRAPPER...]]
    local name=$1 w=$2 mode=$3 body=${4:-0}
    shift 4 2>/dev/null || shift $#
    local args=(--bind 127.0.0.1 --port 0 --cert "$cert" --key "$key" --workers "$w"
                ${mode:+--mode "$mode"} --max-conns $(((check_conns > idle_conns ? check_conns : idle_conns) + 2000)) -q)
    [[ $mode == http ]] && args+=(--body-size "$body")
    args+=("${srv_extra[@]}")
    start_tlsserver "$tmp/$name.out" "$tmp/$name.err" with_fds "$@" "$tlsserver" "${args[@]}"
    SRV_PID=$srv_pid
    pids+=("$SRV_PID")
    wait_listen "$tmp/$name.out" "$SRV_PID" ||
        die "tlsserver did not start: $(cat "$tmp/$name.out" "$tmp/$name.err")"
    SRV_PORT=$srv_port
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
        if wait_port "$SRV_PORT" "$SRV_PID"; then
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
        if wait_port "$SRV_PORT" "$SRV_PID"; then
            SRV_PIDS=$SRV_PID
            return 0
        fi
        stop_pid "$SRV_PID"
    done
    die "openssl s_server did not start: $(cat "$tmp/$name.out")"
}

# ------------------------------------------------------------------ measuring
# Every tlsbench run leaves raw/FIGURE.SERVER.REP.json; bench_report.py knows which of its
# keys each figure takes. What is measured here without tlsbench goes to raw/figures.tsv.

declare -A PORT PIDS
client_wrap=() # a command tlsbench runs under (--scaling: taskset)

bench() { # FIGURE SERVER REP TLSBENCH-ARGS... : one run into raw/
    local fig=$1 srv=$2 rep=$3
    shift 3
    local f=$out/raw/$fig.$srv.$rep
    local t=$(( ${dur%.*} + 60 ))
    [[ $fig == conns10k || $fig == idle || $fig == burst ]] && t=$((t + check_conns / 50 + 120))
    if ! timeout "$t" "${client_wrap[@]}" "$tlsbench" "$@" --json -q -k --server-pid "${PIDS[$srv]}" \
        "127.0.0.1:${PORT[$srv]}" >"$f.json" 2>"$f.err"; then
        note "$fig against $srv: tlsbench failed: $(tail -n 2 "$f.err" | tr '\n' ' ')"
    fi
}

add() { # FIGURE SERVER VALUE (none: nothing was measured)
    [[ -n $3 ]] && printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$out/raw/figures.tsv"
    return 0
}

progress() { printf '%s: [%3ds] %s\n' "$prog" "$SECONDS" "$*" >&2; }

use() { PORT[$1]=$SRV_PORT PIDS[$1]=$SRV_PIDS; } # SERVER: the one just started

# Run one tlsbench load against each server, REPEAT times, interleaved (so slow drift of
# the machine hits every server alike).
measure() { # FIGURE "SERVERS" TLSBENCH-ARGS...
    local fig=$1 servers=$2 rep srv
    shift 2
    for ((rep = 1; rep <= repeat; rep++)); do
        for srv in $servers; do bench "$fig" "$srv" "$rep" "$@"; done
    done
}

start_servers() {
    servers="tlskit"
    start_bench_server tlskit "$workers" http "$small_body"
    use tlskit
    if [[ -n $nginx_bin ]]; then
        start_nginx nginx "$workers"
        use nginx
        servers+=" nginx"
    else
        note "nginx is not installed: no nginx figures"
    fi
    start_sserver s_server
    use s_server
    # One-worker twins for the scaling figure, measured in the same rotation (interleaved
    # in time, so a change in the machine's load cannot pass for scaling).
    w1_servers=""
    if ((workers > 1)); then
        start_bench_server tlskit_w1 1 http "$small_body"
        use tlskit_w1
        w1_servers="tlskit_w1"
        if [[ -n $nginx_bin ]]; then
            start_nginx nginx_w1 1
            use nginx_w1
            w1_servers+=" nginx_w1"
        fi
    fi
}

measure_handshakes() {
    local hs=(-t "$cpus" -c "$hs_conns" -d "$dur" -w "$warm") s
    progress "full handshakes ($workers workers${w1_servers:+, and 1})"
    measure full_hs "$servers s_server $w1_servers" handshake "${hs[@]}"
    for s in $w1_servers; do stop_pid "$(cut -d, -f1 <<<"${PIDS[$s]}")"; done
    progress "resumed handshakes"
    measure resumed_hs "$servers s_server" handshake --resume "${hs[@]}"
}

measure_requests() {
    progress "request/response, 1 connection"
    measure rr1 "$servers" rr --http=/small -t 1 -c 1 -d "$dur" -w "$warm"
    progress "request/response, $rr_many connections"
    measure "rr$rr_many" "$servers" rr --http=/small -t "$cpus" -c "$rr_many" -d "$dur" -w "$warm"
}

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
measure_client_cpu() {
    local url=https://127.0.0.1:${PORT[nginx]}/small rep
    progress "client CPU per handshake: tlsbench and h2load"
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
}

# Bulk: one connection downloading the same 1 MiB body again and again (s_server closes
# after each response; tlsbench reconnects, which costs it a handshake per MiB).
measure_bulk() {
    stop_pid "$(cut -d, -f1 <<<"${PIDS[tlskit]}")"
    start_bench_server tlskit_big "$workers" http "$big_body"
    use tlskit
    progress "bulk download, one connection"
    measure bulk "$servers s_server" bulk --http=/big --bytes "$bulk_bytes" -t 1 -c 1
    stop_pid "${PIDS[tlskit]}"
    stop_pid "${PIDS[s_server]}"
    [[ -n $nginx_bin ]] && stop_pid "$(cut -d, -f1 <<<"${PIDS[nginx]}")"
    return 0
}

# Memory per idle connection: fresh servers, warmed with a few hundred handshakes, then
# $idle_conns keep-alive connections (handshake and one GET each) held; tlsbench reads
# the servers' RSS (nginx: master and workers) before and after. Two ways, each on a
# fresh server: "gradual" (64 handshakes in flight per client thread at a time) and
# "burst" (every client connects at once, as after an outage or a deploy); after the
# burst the clients close, and the RSS $after_close_s s later is set against the RSS
# before the burst (what a burst leaves behind). The burst's handshakes queue on the
# server for many seconds on a busy 2-core machine: both sides get 60 s for them
# (nginx's own limit is 60 s; tlsserver's default of 10 s would cut the queue short).
# Both RSS readings come after tlsserver's workers have gone quiet (200 ms without a new
# connection, handshake or close; --settle 1 leaves time): there tlsserver gives OpenSSL's
# free record-buffer slots back (apps/tlsserver/bufpool.c), empties the worker's glibc
# tcache and trims the heap (heap.c), so the figures are what a burst really leaves.
# TLSSERVER=... with another binary measures whatever that one does.
measure_idle() {
    local rep srv kind
    progress "memory per idle connection ($idle_conns, gradual and burst)"
    for ((rep = 1; rep <= repeat; rep++)); do
        for kind in idle burst; do
            for srv in $servers; do
                if [[ $srv == tlskit ]]; then
                    srv_extra=(--handshake-timeout 60)
                    start_bench_server "tlskit_$kind$rep" "$workers" http "$small_body"
                    srv_extra=()
                else
                    start_nginx "nginx_$kind$rep" "$workers"
                fi
                use "$srv"
                timeout 60 "$tlsbench" handshake -k -q --http=/small -c 16 -n 200 \
                    "127.0.0.1:$SRV_PORT" >/dev/null 2>&1 || true
                if [[ $kind == idle ]]; then
                    bench idle "$srv" "$rep" idle --http=/small -t "$cpus" -c "$idle_conns" -d 1
                else
                    bench burst "$srv" "$rep" idle --http=/small -t "$cpus" -c "$idle_conns" \
                        -d 1 --inflight "$idle_conns" --timeout 60 --settle 1 \
                        --after-close "$after_close_s"
                fi
                stop_pid "$SRV_PID"
            done
        done
    done
}

# 19,000 connections held (as many as 20,000 descriptors per process allow, with room
# for the listening sockets, epoll and logs), then every one answers an echo.
measure_connections() {
    progress "$check_conns connections held and served (tlsserver, echo)"
    start_bench_server tlskit_10k "$workers" echo
    use tlskit
    # (--quick resumes sessions to set them up faster: the check is about holding and serving.)
    local args=(idle --request 16 --verify -t "$cpus" -c "$check_conns" -d 1 --inflight 128)
    ((quick)) && args+=(--resume)
    bench conns10k tlskit 1 "${args[@]}"
    stop_pid "$SRV_PID"
}

measure_floor() {
    local rep
    progress "raw OpenSSL floor (in memory)"
    for ((rep = 1; rep <= repeat; rep++)); do
        "$floor" --cert "$cert" --key "$key" -n "$floor_n" --bytes "$floor_mib" --json \
            >"$out/raw/floor.$rep.json"
    done
}

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
    local srv=$1 pre=$tmp/cg.$1 n=100 kind hs tot j=$tmp/cg.$1.json
    local vg=(valgrind --tool=callgrind --callgrind-out-file="$pre.%p")
    if [[ $srv == tlskit ]]; then start_bench_server cg_tlskit 1 http "$small_body" "${vg[@]}"
    else start_nginx cg_nginx 1 "${vg[@]}"; fi
    use "$srv"
    timeout 120 "$tlsbench" handshake -k -q -c 1 -t 1 -n 10 --timeout 60 "127.0.0.1:$SRV_PORT" >/dev/null 2>&1 || true
    callgrind_control -d warm "$SRV_PID" >/dev/null 2>&1
    for kind in full resumed; do
        local extra=()
        [[ $kind == resumed ]] && extra=(--resume)
        timeout 300 "$tlsbench" handshake -k -q --json -c 1 -t 1 -n "$n" --timeout 60 \
            "${extra[@]}" "127.0.0.1:$SRV_PORT" >"$j" 2>/dev/null || true
        hs=$(json_get handshakes "$j")
        callgrind_control -d "$kind" "$SRV_PID" >/dev/null 2>&1
        sleep 0.5
        tot=$(cg_total "$pre.$SRV_PID" "$kind")
        [[ -n $tot && -n $hs && $hs -gt 0 ]] && add "${kind}_hs_instr" "$srv" "$((tot / hs))"
    done
    stop_pid "$SRV_PID"
}
measure_callgrind() {
    local kind
    progress "instructions per server handshake (callgrind)"
    cg_server tlskit
    [[ -n $nginx_bin ]] && cg_server nginx
    for kind in full resumed; do
        valgrind --tool=callgrind --toggle-collect='server_*' --callgrind-out-file="$tmp/cg.floor.$kind" \
            "$floor" --cert "$cert" --key "$key" -n 100 --only "$kind" >/dev/null 2>&1 &&
            add "${kind}_hs_instr" floor "$(( $(awk '/^totals:/ { print $2; exit }' "$tmp/cg.floor.$kind") / 101 ))"
    done
    return 0
}

# ------------------------------------------------------------------ --scaling

# Pin every thread of the processes in a comma list to a CPU list.
pin() { # PIDS CPULIST
    local p
    for p in ${1//,/ }; do taskset -a -p -c "$2" "$p" >/dev/null 2>&1 || true; done
}

# 1, 2, 4, ... up to the CPU count, and the count itself.
scaling_steps() {
    local w=1
    while ((w < cpus)); do printf '%s ' "$w"; w=$((w * 2)); done
    printf '%s\n' "$cpus"
}

# Full handshakes at W workers: the server on CPUs 0..W-1, tlsbench (one thread per CPU
# it has) on W..cpus-1; with no CPU left (W = cpus) tlsbench shares them all, which the
# report says. Fresh servers per point, rounds interleaved.
measure_scaling() {
    have taskset || die "--scaling needs taskset (util-linux)"
    local rep w srv srvcpus clicpus ct conns
    progress "scaling: $(scaling_steps) workers; $servers"
    for ((rep = 1; rep <= repeat; rep++)); do
        for w in $(scaling_steps); do
            srvcpus=0-$((w - 1))
            if ((w < cpus)); then
                clicpus=$w-$((cpus - 1)) ct=$((cpus - w))
            else
                clicpus=0-$((cpus - 1)) ct=$cpus
            fi
            conns=$((ct * 16 > hs_conns ? ct * 16 : hs_conns))
            printf '%s\t%s\t%s\t%s\n' "$w" "$srvcpus" "$clicpus" "$ct" >"$out/raw/scale_w$w.cpus"
            for srv in $servers; do
                if [[ $srv == tlskit ]]; then
                    start_bench_server "scale_tlskit_$w" "$w" http "$small_body"
                else
                    start_nginx "scale_nginx_$w" "$w"
                fi
                use "$srv"
                pin "$SRV_PIDS" "$srvcpus"
                client_wrap=(taskset -c "$clicpus")
                bench "scale_w$w" "$srv" "$rep" handshake -t "$ct" -c "$conns" -d "$dur" -w "$warm"
                client_wrap=()
                stop_pid "$SRV_PID"
            done
        done
    done
}

# ------------------------------------------------------------------ --terminators
# TLS terminated in front of a plain TCP echo backend (python3 asyncio; its CPU is not
# counted), same certificate, one worker/process each, each with its usual production
# settings and no per-connection log line.

start_echo_backend() {
    cat >"$tmp/echo.py" <<'PY'
import asyncio
class Echo(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t
    def data_received(self, d):
        self.t.write(d)
    def eof_received(self):
        return False
async def main():
    srv = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0, backlog=4096)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()
asyncio.run(main())
PY
    with_fds python3 "$tmp/echo.py" >"$tmp/echo.port" 2>"$tmp/echo.err" &
    ECHO_PID=$!
    pids+=("$ECHO_PID")
    local i
    for ((i = 0; i < 100; i++)); do
        ECHO_PORT=$(head -n 1 "$tmp/echo.port" 2>/dev/null || true)
        [[ -n $ECHO_PORT ]] && return 0
        sleep 0.05
    done
    die "the echo backend did not start: $(cat "$tmp/echo.err")"
}

# One terminator config, on SRV_PORT, forwarding to ECHO_PORT.
terminator_conf() { # NAME
    case $1 in
    stunnel)
        cat <<EOF
foreground = yes
pid =
debug = 4
[tls]
accept = 127.0.0.1:$SRV_PORT
connect = 127.0.0.1:$ECHO_PORT
cert = $cert
key = $key
EOF
        ;;
    haproxy)
        cat <<EOF
global
    nbthread 1
    maxconn 9000
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode tcp
    timeout connect 10s
    timeout client 300s
    timeout server 300s
frontend tls
    bind 127.0.0.1:$SRV_PORT ssl crt $tmp/certs/combined.pem
    default_backend echo
backend echo
    server echo 127.0.0.1:$ECHO_PORT
EOF
        ;;
    nginx_stream)
        cat <<EOF
load_module $stream_mod;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $tmp/nginx/stream.pid;
error_log $tmp/nginx/stream.error.log error;
daemon off;
events { worker_connections 16384; }
stream {
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    server {
        listen 127.0.0.1:$SRV_PORT ssl;
        proxy_pass 127.0.0.1:$ECHO_PORT;
    }
}
EOF
        ;;
    esac
}

# Start a terminator on a free port (again on another one if it was taken meanwhile);
# sets SRV_PORT, SRV_PID and SRV_PIDS (nginx: master and worker).
start_terminator() { # NAME
    local name=$1 conf=$tmp/term.$1 i kids
    if [[ $name == tlskit ]]; then
        srv_extra=(--forward "127.0.0.1:$ECHO_PORT")
        start_bench_server term_tlskit 1 "" # (--forward decides what is done)
        srv_extra=()
        return 0
    fi
    for _ in 1 2 3 4 5; do
        SRV_PORT=$(free_port)
        terminator_conf "$name" >"$conf"
        case $name in
        stunnel) with_fds stunnel4 "$conf" >"$conf.log" 2>&1 & ;;
        haproxy) with_fds haproxy -db -f "$conf" >"$conf.log" 2>&1 & ;;
        nginx_stream)
            "$nginx_bin" -e "$tmp/nginx/stream.error.log" -p "$tmp/nginx" -c "$conf" \
                >"$conf.log" 2>&1 & ;;
        esac
        SRV_PID=$!
        pids+=("$SRV_PID")
        if wait_port "$SRV_PORT" "$SRV_PID"; then
            SRV_PIDS=$SRV_PID
            if [[ $name == nginx_stream ]]; then
                for ((i = 0; i < 50; i++)); do
                    kids=$(pgrep -P "$SRV_PID" | paste -sd, -)
                    [[ -n $kids ]] && { SRV_PIDS+=,$kids; break; }
                    sleep 0.05
                done
            fi
            return 0
        fi
        stop_pid "$SRV_PID"
    done
    die "$name did not start: $(cat "$conf.log" 2>/dev/null)"
}

measure_terminators() {
    local rep srv t_servers="" term_conns=$((quick ? 200 : 1000)) term_floor_n=$((quick ? 200 : 1000))
    local tlskit_suites=TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
    stream_mod=/usr/lib/nginx/modules/ngx_stream_module.so
    cat "$cert" "$key" >"$tmp/certs/combined.pem"
    start_echo_backend
    if grep -q -- '--forward' <<<"$srv_help"; then
        t_servers=tlskit
    else
        note "terminators: this tlsserver has no --forward option (yet): no tlsserver column"
        printf 'tlskit\tthis tlsserver has no --forward option\n' >>"$out/raw/term_skipped.tsv"
    fi
    for srv in stunnel haproxy nginx_stream; do
        case $srv in
        stunnel) have stunnel4 ;;
        haproxy) have haproxy ;;
        nginx_stream) [[ -n $nginx_bin && -f $stream_mod ]] ;;
        esac && { t_servers+=" $srv"; continue; }
        note "terminators: $srv is not installed (scripts/setup.sh --bench): skipped"
        printf '%s\tnot installed\n' "$srv" >>"$out/raw/term_skipped.tsv"
    done
    progress "terminators in front of a TCP echo backend:$t_servers"
    for ((rep = 1; rep <= repeat; rep++)); do
        for srv in $t_servers; do
            start_terminator "$srv"
            use "$srv"
            bench term_conn "$srv" "$rep" handshake --request 1024 -t "$cpus" -c "$hs_conns" \
                -d "$dur" -w "$warm"
            bench term_bulk "$srv" "$rep" bulk --bytes "$term_bulk" -t 1 -c 1
            stop_pid "$SRV_PID"
            # Memory per idle forwarded pair, on a fresh one warmed as in the idle figures.
            start_terminator "$srv"
            use "$srv"
            timeout 60 "$tlsbench" handshake -k -q --request 16 -c 16 -n 200 \
                "127.0.0.1:$SRV_PORT" >/dev/null 2>&1 || true
            bench term_idle "$srv" "$rep" idle --request 16 -t "$cpus" -c "$term_conns" -d 1 \
                --settle 1
            stop_pid "$SRV_PID"
        done
        # What OpenSSL alone costs the server per full handshake, in memory (no sockets,
        # no kernel): with tlskit's settings and with OpenSSL's defaults (the others').
        "$floor" --cert "$cert" --key "$key" -n "$term_floor_n" --only full --json \
            --tickets 1 --suites "$tlskit_suites" >"$out/raw/term_floor.tlskit.$rep.json" ||
            note "tlsbench-floor failed (tlskit settings)"
        "$floor" --cert "$cert" --key "$key" -n "$term_floor_n" --only full --json \
            >"$out/raw/term_floor.openssl.$rep.json" || note "tlsbench-floor failed"
    done
}

SECONDS=0
load=$(cut -d' ' -f1 /proc/loadavg)
progress "results in $out; $workers workers, $repeat repetition(s), ${dur}s windows; load average $load"
awk -v l="$load" -v c="$cpus" 'BEGIN { exit !(l > c / 2) }' &&
    note "warning: the machine is busy (load $load on $cpus CPUs): figures will be noisy"

if ((scaling)); then
    servers=tlskit
    [[ -n $nginx_bin ]] && servers+=" nginx"
    measure_scaling
elif ((terminators)); then
    measure_terminators
else
    start_servers
    measure_handshakes
fi
if ((!hs_only && !scaling && !terminators)); then
    measure_requests
    [[ -n $nginx_bin ]] && measure_client_cpu
    measure_bulk
    measure_idle
    ((check_conns > 0)) && measure_connections
    measure_floor
    ((callgrind)) && have valgrind && measure_callgrind
fi

# ------------------------------------------------------------------ report

report_args=(--out "$out" --repeat "$repeat" --workers "$workers" --cpus "$cpus"
             --load "$load" --check-conns "$check_conns" --rr-many "$rr_many"
             --nginx-version "$( [[ -n $nginx_bin ]] && "$nginx_bin" -v 2>&1 | sed 's/.*\///' || true)")
((quick)) && report_args+=(--quick)
((hs_only)) && report_args+=(--hs-only)
((scaling)) && report_args+=(--scaling)
((terminators)) && report_args+=(--terminators)
((have_gnuplot)) && report_args+=(--gnuplot)
python3 "$report" "${report_args[@]}" || die "bench_report.py failed"
if ((scaling)); then
    progress "done: $out/scaling.json, $out/scaling.txt$( ((have_gnuplot)) && echo ", $out/scaling.png" || true)"
elif ((terminators)); then
    progress "done: $out/terminators.json, $out/terminators.txt"
else
    progress "done: $out/results.json, $out/results.txt$( ((have_gnuplot)) && echo ", $out/chart.png" || true)"
fi
