#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The examples test: run every C example in examples/ and check its output.
# Usage: examples.sh EXAMPLES_BUILD_DIR CERTS_DIR
# Servers are started on port 0; their first line ("listening on ADDR:PORT, ...") gives
# the port, read from a FIFO with a generous bound (no sleeps).
set -u
bin=$1 certs=$2
tmp=$(mktemp -d)
fails=0 pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# expect NAME OUTPUT REGEX...: every extended regex must match some line of OUTPUT.
expect() {
	local name=$1 out=$2 re
	shift 2
	for re in "$@"; do
		if grep -Eq -- "$re" <<<"$out"; then ok "$name: /$re/"; else
			bad "$name: no line matches /$re/; output was:"; sed 's/^/     | /' <<<"$out"
		fi
	done
}
# start NAME ARGS...: run a server in the background, its stdout on fd 3; sets pid, port.
start() {
	local line
	rm -f "$tmp/fifo" && mkfifo "$tmp/fifo"
	"$bin/$1" "${@:2}" >"$tmp/fifo" 2>"$tmp/$1.err" &
	pid=$!
	exec 3<"$tmp/fifo"
	port=
	if read -r -t 30 line <&3 && [[ $line =~ ^listening\ on\ .*:([0-9]+) ]]; then
		port=${BASH_REMATCH[1]}
		ok "$1: $line"
	else
		bad "$1: no listening line (got '${line-}'); stderr:"; cat "$tmp/$1.err"
	fi
}
# stop [SIGNAL]: stop the server; the rest of its stdout in $out, its status in $status.
stop() {
	kill -"${1:-TERM}" "$pid" 2>/dev/null
	wait "$pid"
	status=$?
	pid=
	out=$(cat <&3)
	exec 3<&-
}
# run NAME ARGS...: run a client (bounded by timeout); output in $out, status in $status.
run() {
	out=$(timeout 60 "$bin/$1" "${@:2}" 2>&1)
	status=$?
	[[ $status == 0 ]] || bad "$1 ${*:2}: exit status $status: $out"
}

# 1. tcp_echo_server / tcp_echo_client
start tcp_echo_server 0 "$certs/server.crt" "$certs/server.key"
if [[ -n $port ]]; then
	run tcp_echo_client localhost "$port" "$certs/ca.crt" "echo me"
	expect tcp_echo_client "$out" '^connected to 127\.0\.0\.1:[0-9]+ with TLSv1\.3$' \
		'^received: echo me$'
	out=$(timeout 60 "$bin/tcp_echo_client" localhost "$port" "$certs/otherca.crt" 2>&1)
	[[ $? == 1 ]] && ok "tcp_echo_client with the wrong CA fails" ||
		bad "tcp_echo_client with the wrong CA did not fail"
	expect "tcp_echo_client (wrong CA)" "$out" 'certificate verify failed.*\(TLSKIT_E_VERIFY\)$'
	stop
	expect tcp_echo_server "$out" '^echoed 7 bytes to 127\.0\.0\.1:[0-9]+$'
fi

# 3. event_server: echo on the engine, graceful stop on SIGTERM
start event_server 0 "$certs/server.crt" "$certs/server.key"
if [[ -n $port ]]; then
	run tcp_echo_client 127.0.0.1 "$port" "$certs/ca.crt" "through the engine"
	expect "tcp_echo_client -> event_server" "$out" '^received: through the engine$'
	stop
	[[ $status == 0 ]] && ok "event_server exits 0 on SIGTERM" ||
		bad "event_server exit status $status"
	expect event_server "$out" '^stopped$'
fi

# 9. mtls_server / mtls_client: client certificates and the peer's identity
start mtls_server 0 "$certs/server.crt" "$certs/server.key" "$certs/ca.crt"
if [[ -n $port ]]; then
	run mtls_client localhost "$port" "$certs/ca.crt" "$certs/client-dns.crt" "$certs/client-dns.key"
	expect mtls_client "$out" '^server subject: CN=localhost$' \
		'^server SANs: DNS:localhost, IP:127\.0\.0\.1, IP:::1$' \
		'^server fingerprint: SHA256:([0-9A-F]{2}:){31}[0-9A-F]{2}$' \
		'^server says: hello, CN=tlskit-client$'
	out=$(timeout 60 "$bin/mtls_client" localhost "$port" "$certs/ca.crt" 2>&1)
	[[ $? == 1 ]] && ok "mtls_client without a certificate fails" ||
		bad "mtls_client without a certificate did not fail"
	expect "mtls_client (no certificate)" "$out" \
		'requires a client certificate.*\(TLSKIT_E_VERIFY\)$'
	out=$(timeout 60 "$bin/mtls_client" localhost "$port" "$certs/ca.crt" \
		"$certs/client-otherca.crt" "$certs/client-otherca.key" 2>&1)
	[[ $? == 1 ]] && ok "mtls_client with another CA's certificate fails" ||
		bad "mtls_client with another CA's certificate did not fail"
	expect "mtls_client (other CA)" "$out" 'rejected our certificate.*\(TLSKIT_E_VERIFY\)$'
	stop
	expect mtls_server "$out" '^client subject: CN=tlskit-client$' \
		'^client issuer: CN=tlskit local CA$' '^client SANs: DNS:client\.tlskit\.test$' \
		'^rejected: .*the client sent no certificate \(TLSKIT_E_VERIFY\)$' \
		'^rejected: .*issuer "CN=tlskit other CA" is not in the trust store.*\(TLSKIT_E_VERIFY\)$'
fi

# 7. wrap_socket: TLS over sockets the program made, which stay the program's
run wrap_socket "$certs/server.crt" "$certs/server.key" "$certs/ca.crt"
expect wrap_socket "$out" '^server side received: ping \(TLSv1\.3\)$' \
	'^client side received: pong \(server CN=localhost verified\)$' \
	'^after tlskit_conn_free: client socket still open, server socket still open$'
out=$(timeout 60 "$bin/wrap_socket" "$certs/wronghost.crt" "$certs/wronghost.key" "$certs/ca.crt" 2>&1)
[[ $? == 1 ]] && ok "wrap_socket with the wrong host's certificate fails" ||
	bad "wrap_socket with the wrong host's certificate did not fail"
expect "wrap_socket (wrong host)" "$out" 'hostname mismatch: expected "localhost".*\(TLSKIT_E_VERIFY\)$'

# 8. nonblocking_poll and 6. socket_options against tcp_echo_server (the number of waits depends on timing)
start tcp_echo_server 0 "$certs/server.crt" "$certs/server.key"
if [[ -n $port ]]; then
	run nonblocking_poll localhost "$port" "$certs/ca.crt" "polled and echoed"
	expect nonblocking_poll "$out" '^handshake done \(TLSv1\.3\) after [0-9]+ waits$' \
		'^sent 17 bytes after [0-9]+ waits$' '^read 17 bytes after [0-9]+ waits$' \
		'^received: polled and echoed$'
	run socket_options localhost "$port" "$certs/ca.crt"
	expect socket_options "$out" '^SO_RCVBUF: 131072 \(asked for 65536\)$' \
		'^SO_SNDBUF: 131072 \(asked for 65536\)$' '^TCP_NODELAY: 1 \(the default\)$' \
		'^SO_KEEPALIVE: 1$' '^TCP_KEEPIDLE: 30 s$' '^TCP_KEEPINTVL: 10 s$' '^TCP_KEEPCNT: 4$'
	out=$(timeout 60 "$bin/nonblocking_poll" localhost "$port" "$certs/otherca.crt" x 2>&1)
	[[ $? == 1 ]] && ok "nonblocking_poll with the wrong CA fails" ||
		bad "nonblocking_poll with the wrong CA did not fail"
	expect "nonblocking_poll (wrong CA)" "$out" 'certificate verify failed.*\(TLSKIT_E_VERIFY\)$'
	stop
	expect tcp_echo_server "$out" '^echoed 17 bytes to 127\.0\.0\.1:[0-9]+$'
fi

# 5. timeouts: each deadline expires and is reported as TLSKIT_E_TIMEOUT naming the step
run timeouts "$certs/server.crt" "$certs/server.key" "$certs/ca.crt"
expect timeouts "$out" \
	'^connect: TLSKIT_E_TIMEOUT: connect to 127\.0\.0\.1 port [0-9]+: timed out after 0\.300 s' \
	'^handshake: TLSKIT_E_TIMEOUT: handshake with 127\.0\.0\.1:[0-9]+: timed out after 0\.300 s$' \
	'^read: TLSKIT_E_TIMEOUT: read from 127\.0\.0\.1:[0-9]+: timed out'

# 2. threaded_server: while one client sits in its handshake (a bare TCP connection that
# sends nothing), another is served. A server serving one client at a time would keep the
# second waiting past its 5 s deadline (the first one's handshake deadline is 10 s).
start threaded_server 0 "$certs/server.crt" "$certs/server.key"
if [[ -n $port ]]; then
	if exec 5<>"/dev/tcp/127.0.0.1/$port"; then
		run tcp_echo_client localhost "$port" "$certs/ca.crt" "while another waits"
		expect "tcp_echo_client -> threaded_server" "$out" '^received: while another waits$'
		exec 5<&-
	else
		bad "threaded_server: cannot open the idle connection"
	fi
	stop
	expect threaded_server "$out" \
		'^echoed 19 bytes to 127\.0\.0\.1:[0-9]+ \(2 clients connected\)$'
fi

# 4. reuseaddr: the port in use, reported; TIME_WAIT blocks a plain bind, not tlskit
run reuseaddr "$certs/server.crt" "$certs/server.key"
expect reuseaddr "$out" '^first listener: 127\.0\.0\.1:[0-9]+$' \
	'^second listener: TLSKIT_E_LISTEN: listen on 127\.0\.0\.1:[0-9]+: Address already in use$' \
	'^plain bind\(\) without SO_REUSEADDR: Address already in use$' \
	'^restarted listener \(SO_REUSEADDR\): 127\.0\.0\.1:[0-9]+$'

# 10. datagram: plain UDP next to DTLS on the engine
run datagram "$certs/server.crt" "$certs/server.key" "$certs/ca.crt"
expect datagram "$out" '^UDP: received "hello" in one datagram of 5 bytes, in clear text$' \
	'^DTLS: DTLSv1\.2 with [A-Z0-9-]+, server CN=localhost, at most [0-9]+ bytes per datagram$' \
	'^DTLS: received "first" in one datagram of 5 bytes, encrypted$' \
	'^DTLS: received "second message" in one datagram of 14 bytes, encrypted$' \
	'^DTLS: received "third" in one datagram of 5 bytes, encrypted$' \
	'^DTLS: a write of [0-9]+ bytes: TLSKIT_E_LIMIT: .*do not fit in one datagram'

# Every example says what it shows (a comment block naming it first) and is in the
# README's table, and the table names no example that does not exist.
src=$(cd "$(dirname "$0")/.." && pwd)
for f in "$src"/examples/*.c; do
	name=$(basename "$f")
	[[ $(sed -n 2p "$f") == "/* ${name%.c}: "* ]] && ok "$name: comment block" ||
		bad "$name: line 2 does not start the comment block '/* ${name%.c}: ...'"
	grep -q "^| .*\`$name\`.* |$" "$src/README.md" && ok "$name: in the README table" ||
		bad "$name: not in the README's examples table"
	[[ -x $bin/${name%.c} ]] || bad "$name: not built"
done
for name in $(sed -n '/^### Examples: the socket tutorial/,/^## /p' "$src/README.md" |
	grep -o '`[a-z_]*\.c`' | tr -d '`'); do
	[[ -f $src/examples/$name ]] || bad "README's examples table names $name, which does not exist"
done

if ((fails)); then echo "$fails check(s) failed"; exit 1; fi
echo "all examples passed"
