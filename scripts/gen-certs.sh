#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# gen-certs.sh - generate a local CA and server/client certificates for tlskit
# (and, with --negative, a set of deliberately broken certificates for tests).
# Uses only the openssl CLI (OpenSSL 3.0 or later).
set -euo pipefail

prog=gen-certs.sh
case $0 in
*scripts/gen-certs.sh) prog_name=scripts/gen-certs.sh ;;
*) prog_name=${0##*/} ;; # tlskit-gen-certs, once installed
esac

usage() {
	# (named as it was run: scripts/gen-certs.sh, or tlskit-gen-certs once installed)
	sed "s|@PROG@|$prog_name|" <<'EOF'
Usage: @PROG@ [--out DIR] [--san SAN]... [--rsa [BITS]] [--force]
                            [--negative] [--days N] [-q] [--help]

Generate a local CA plus server and client (mTLS) certificates for tlskit.

  --out DIR     output directory (default: certs/ at the repository root;
                ./certs when installed as tlskit-gen-certs); created if missing
  --san SAN     extra subjectAltName for the server certificate, in addition
                to DNS:localhost, IP:127.0.0.1, IP:::1; SAN is DNS:name,
                IP:addr, or a bare name/address (classified automatically);
                may be repeated
  --rsa [BITS]  use RSA keys of BITS bits (default 2048) instead of ECDSA
                P-256; BITS < 2048 is generated but is refused by OpenSSL at
                security level 2 (the CA itself always gets >= 2048 bits)
  --force       regenerate everything, including an existing CA
  --negative    also generate the negative test set: expired, notyet,
                wronghost, otherca (+ other-ca), selfsigned, client-otherca,
                client-expired, rsa1024, rsa and client-rsa (RSA-2048)
                certificates, and client certificates with one kind of SAN
                each: client-dns (DNS:client.tlskit.test), client-uri (a
                SPIFFE ID) and client-email (client@tlskit.test); client.crt
                has no SAN; and wildcard
                (DNS:*.wild.example, for SNI)
  --days N      validity of leaf certificates in days (default 825; CA: 3650)
  -q            quiet: print nothing but errors
  --help        show this help and exit

Files: ca.crt ca.key server.crt server.key client.crt client.key
An existing ca.crt/ca.key in DIR is reused unless --force is given; leaf
certificates are re-issued on every run.
EOF
}

die() {
	printf '%s: %s\n' "$prog" "$*" >&2
	exit 1
}

warn() {
	printf '%s: warning: %s\n' "$prog" "$*" >&2
}

usage_error() {
	printf '%s: %s\n' "$prog" "$*" >&2
	usage >&2
	exit 2
}

# ---------------------------------------------------------------- arguments

script_dir=$(cd "$(dirname "$0")" && pwd -P)
out="$script_dir/../certs"
# Installed (cmake --install) as tlskit-gen-certs, outside a source tree: ./certs.
[ -f "$script_dir/../lib/include/tlskit/tlskit.h" ] || out=certs
extra_sans=()
key_alg=ec
rsa_bits=2048
force=0
negative=0
days=825
quiet=0

while (($# > 0)); do
	case $1 in
	--out)
		(($# >= 2)) || usage_error "--out: missing argument"
		[[ -n $2 ]] || usage_error "--out: empty argument"
		out=$2
		shift 2
		;;
	--out=*)
		out=${1#--out=}
		[[ -n $out ]] || usage_error "--out: empty argument"
		shift
		;;
	--san)
		(($# >= 2)) || usage_error "--san: missing argument"
		extra_sans+=("$2")
		shift 2
		;;
	--san=*)
		extra_sans+=("${1#--san=}")
		shift
		;;
	--rsa)
		key_alg=rsa
		if (($# >= 2)) && [[ $2 =~ ^[0-9]+$ ]]; then
			rsa_bits=$((10#$2))
			shift
		fi
		shift
		;;
	--rsa=*)
		key_alg=rsa
		rsa_bits=${1#--rsa=}
		[[ $rsa_bits =~ ^[0-9]+$ ]] || usage_error "--rsa: BITS must be a number"
		rsa_bits=$((10#$rsa_bits))
		shift
		;;
	--force)
		force=1
		shift
		;;
	--negative)
		negative=1
		shift
		;;
	--days)
		(($# >= 2)) || usage_error "--days: missing argument"
		days=$2
		shift 2
		;;
	--days=*)
		days=${1#--days=}
		shift
		;;
	-q | --quiet)
		quiet=1
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage_error "unknown option: $1"
		;;
	esac
done

if ! [[ $days =~ ^[0-9]{1,6}$ ]] || ((10#$days == 0)); then
	usage_error "--days: expected a positive integer, got '$days'"
fi
days=$((10#$days))

if [[ $key_alg == rsa ]]; then
	((rsa_bits >= 512 && rsa_bits <= 16384)) ||
		usage_error "--rsa: BITS must be between 512 and 16384, got $rsa_bits"
	if ((rsa_bits < 2048)); then
		warn "RSA-$rsa_bits keys will be refused by OpenSSL at security level 2 (the default on Debian)"
	fi
fi

command -v openssl >/dev/null 2>&1 || die "openssl: command not found"

# Classify a SAN value into DNS:/IP: form; prints the normalised value.
classify_san() {
	local v=$1 type val
	case $v in
	[Dd][Nn][Ss]:*) type=DNS val=${v#*:} ;;
	[Ii][Pp]:*) type=IP val=${v#*:} ;;
	*:*) type=IP val=$v ;; # bare IPv6 address
	*)
		val=$v
		if [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
			type=IP
		else
			type=DNS
		fi
		;;
	esac
	[[ -n $val ]] || return 1
	if [[ $type == DNS ]]; then
		[[ $val =~ ^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$ ]] || return 1
	elif [[ $val == *:* ]]; then
		[[ $val =~ ^[0-9A-Fa-f:.]+$ ]] || return 1
	else
		[[ $val =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
		local o
		for o in "${BASH_REMATCH[@]:1}"; do
			((10#$o <= 255)) || return 1
		done
	fi
	printf '%s:%s\n' "$type" "$val"
}

default_sans=("DNS:localhost" "IP:127.0.0.1" "IP:::1")
server_sans=("${default_sans[@]}")
for s in "${extra_sans[@]}"; do
	norm=$(classify_san "$s") || usage_error "--san: invalid subjectAltName '$s'"
	dup=0
	for have in "${server_sans[@]}"; do
		if [[ ${have,,} == "${norm,,}" ]]; then
			dup=1
			break
		fi
	done
	((dup)) || server_sans+=("$norm")
done

# ---------------------------------------------------------------- output dir

mkdir -p -- "$out" 2>/dev/null || die "$out: cannot create directory"
out=$(cd -- "$out" && pwd -P) || die "$out: cannot access directory"
[[ -w $out ]] || die "$out: directory not writable"

# Serialise concurrent runs on the same output directory (lock the directory
# itself, so no lock file is left behind).
if command -v flock >/dev/null 2>&1; then
	exec 9<"$out"
	flock 9 || die "$out: cannot lock directory"
fi

umask 077
tmp=$(mktemp -d "$out/.gen-certs.XXXXXX") || die "$out: cannot create temporary directory"
cleanup() {
	rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

log=$tmp/openssl.log

# run WHAT CMD...: run an openssl command, show its diagnostics only on error.
run() {
	local what=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		local why
		why=$(grep -v -e '^[[:space:]]*$' -e '^Using configuration from' "$log" |
			head -n 3 | tr '\n' ' ' || true)
		why=${why% }
		die "$what: ${why:-openssl failed}"
	fi
}

# Random serial numbers: one openssl call, sliced into 16-byte chunks.
serial_pool=$(openssl rand -hex 512) || die "openssl rand: failed"
serial_idx=0
serial=
next_serial() { # sets $serial (not run in a subshell, so the index advances)
	# Clear the top bit so the serial is positive and at most 16 bytes.
	local hex=${serial_pool:serial_idx:32}
	serial_idx=$((serial_idx + 32))
	printf -v serial '0x%x%s' $((0x${hex:0:1} & 7)) "${hex:1}"
}

# KEYALG BITS -> the `openssl req -newkey` arguments, in the array $newkey.
newkey=()
set_newkey() {
	if [[ $1 == ec ]]; then
		newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
	else
		newkey=(-newkey "rsa:$2")
	fi
}

# write_cnf FILE KIND KEYALG SAN...   (KIND: ca | server | client)
# One file serves as `openssl req -config` and `openssl x509 -extfile`; the
# system openssl.cnf is never used.
write_cnf() {
	local file=$1 kind=$2 alg=$3
	shift 3
	local ku="critical, digitalSignature" eku=serverAuth san=""
	[[ $alg == rsa ]] && ku="$ku, keyEncipherment"
	[[ $kind == client ]] && eku=clientAuth
	if (($# > 0)); then
		local IFS=,
		san="subjectAltName = $*"
	fi
	{
		printf '%s\n' "[ req ]" "distinguished_name = req_dn" "prompt = no" \
			"[ req_dn ]" "CN = unused" "[ ext ]"
		case $kind in
		ca)
			printf '%s\n' "basicConstraints = critical, CA:TRUE" \
				"keyUsage = critical, keyCertSign, cRLSign" \
				"subjectKeyIdentifier = hash" \
				"authorityKeyIdentifier = keyid:always"
			;;
		server | client)
			printf '%s\n' "basicConstraints = critical, CA:FALSE" \
				"keyUsage = $ku" \
				"extendedKeyUsage = $eku" \
				"subjectKeyIdentifier = hash" \
				"authorityKeyIdentifier = keyid, issuer" \
				"$san"
			;;
		esac
	} >"$file"
}
# Config for `openssl ca` (only used for certificates with explicit dates).
# It runs inside its own directory with relative paths, so odd characters in
# the output path never reach the config parser.
ca_db=$tmp/ca-db
setup_ca_db() {
	[[ -d $ca_db ]] && return 0
	mkdir "$ca_db"
	: >"$ca_db/index.txt"
	echo 01 >"$ca_db/serial"
	printf '%s\n' "[ ca ]" "default_ca = tmpca" "[ tmpca ]" \
		"database = index.txt" "serial = serial" "new_certs_dir = ." \
		"default_md = sha256" "policy = policy_any" "unique_subject = no" \
		"email_in_dn = no" "copy_extensions = none" \
		"[ policy_any ]" "commonName = supplied" >"$ca_db/ca.cnf"
}

# make_ca NAME CN ALG BITS: new self-signed CA in $tmp/NAME.{key,crt}
make_ca() {
	local name=$1 cn=$2 alg=$3 bits=$4
	write_cnf "$tmp/$name.cnf" ca "$alg"
	set_newkey "$alg" "$bits"
	next_serial
	run "$name.crt: generation" \
		openssl req -new -x509 "${newkey[@]}" -noenc -keyout "$tmp/$name.key" \
		-config "$tmp/$name.cnf" -extensions ext -subj "/CN=$cn" -sha256 \
		-days 3650 -set_serial "$serial" -out "$tmp/$name.crt"
}

# make_leaf NAME KIND CN ALG BITS ISSUER DATES -- SAN...
#   ISSUER: path prefix of the CA (DIR/ca -> DIR/ca.crt, DIR/ca.key), or "self"
#   DATES:  "" for --days validity, or "START END" (YYYYMMDDHHMMSSZ)
make_leaf() {
	local name=$1 kind=$2 cn=$3 alg=$4 bits=$5 issuer=$6 dates=$7
	shift 8 # also drops the "--"
	local key=$tmp/$name.key crt=$tmp/$name.crt cnf=$tmp/$name.cnf csr=$tmp/$name.csr
	write_cnf "$cnf" "$kind" "$alg" "$@"
	set_newkey "$alg" "$bits"
	next_serial
	if [[ $issuer == self ]]; then
		run "$name.crt: generation" \
			openssl req -new -x509 "${newkey[@]}" -noenc -keyout "$key" \
			-config "$cnf" -extensions ext -subj "/CN=$cn" -sha256 \
			-days "$days" -set_serial "$serial" -out "$crt"
		return 0
	fi
	run "$name.key: generation" \
		openssl req -new "${newkey[@]}" -noenc -keyout "$key" \
		-config "$cnf" -subj "/CN=$cn" -out "$csr"
	if [[ -z $dates ]]; then
		run "$name.crt: signing" \
			openssl x509 -req -in "$csr" -CA "$issuer.crt" -CAkey "$issuer.key" \
			-set_serial "$serial" -sha256 -days "$days" \
			-extfile "$cnf" -extensions ext -out "$crt"
	else
		# OpenSSL 3.0's `x509 -req` cannot set notBefore/notAfter
		# (-not_before/-not_after only exist since 3.4): use `openssl ca`.
		setup_ca_db
		(
			cd "$ca_db"
			run "$name.crt: signing" \
				openssl ca -batch -notext -config ca.cnf -name tmpca \
				-cert "$issuer.crt" -keyfile "$issuer.key" -in "$csr" -out "$crt" \
				-rand_serial -preserveDN -startdate "${dates% *}" -enddate "${dates#* }" \
				-extfile "$cnf" -extensions ext
		)
	fi
}

# ---------------------------------------------------------------- generate

ca_bits=$rsa_bits
((ca_bits >= 2048)) || ca_bits=2048

# use_or_make_ca NAME CN: reuse $out/NAME.{crt,key} unless --force, else make
# a new CA in $tmp.  Sets reused[NAME]=1 when reused and $ca_prefix to the
# path prefix of the CA's .crt/.key.
declare -A reused=()
use_or_make_ca() {
	local name=$1 cn=$2
	local crt=$out/$name.crt key=$out/$name.key
	if ((!force)) && [[ -e $crt || -e $key ]]; then
		local again="(use --force to regenerate the CA)"
		[[ -f $crt && -r $crt ]] || die "$crt: missing or unreadable $again"
		[[ -f $key && -r $key ]] || die "$key: missing or unreadable $again"
		local cpub kpub
		cpub=$(openssl x509 -in "$crt" -noout -pubkey -checkend 86400 2>/dev/null) || true
		[[ $cpub == *"BEGIN PUBLIC KEY"* ]] || die "$crt: not a valid certificate $again"
		[[ $cpub != *"will expire"* ]] || die "$crt: CA certificate expired or expires within a day $again"
		cpub=${cpub%%$'\n'Certificate will not expire*}
		kpub=$(openssl pkey -in "$key" -pubout 2>/dev/null) ||
			die "$key: not a valid private key $again"
		[[ $cpub == "$kpub" ]] || die "$key: does not match $crt $again"
		reused[$name]=1
		ca_prefix=$out/$name
	else
		make_ca "$name" "$cn" "$key_alg" "$ca_bits"
		ca_prefix=$tmp/$name
	fi
}

ca_prefix=
use_or_make_ca ca "tlskit local CA"
ca=$ca_prefix

files=() # names (without extension) of generated key/cert pairs, in order
[[ -n ${reused[ca]:-} ]] || files+=(ca)

make_leaf server server localhost "$key_alg" "$rsa_bits" "$ca" "" -- "${server_sans[@]}"
make_leaf client client tlskit-client "$key_alg" "$rsa_bits" "$ca" "" --
files+=(server client)

if ((negative)); then
	# notBefore/notAfter for the expired and not-yet-valid certificates
	# (GNU date; one call for all four).
	stamps=$(printf '%s\n' '2 days ago' '1 day ago' '1 day' '30 days' |
		date -u -f - +%Y%m%d%H%M%SZ) || die "date: cannot compute validity dates"
	mapfile -t stamps <<<"$stamps"
	past="${stamps[0]} ${stamps[1]}"
	future="${stamps[2]} ${stamps[3]}"

	use_or_make_ca other-ca "tlskit other CA"
	other=$ca_prefix
	[[ -n ${reused[other-ca]:-} ]] || files+=(other-ca)

	# The negative set always uses ECDSA P-256 keys (fast), except rsa*.
	make_leaf expired server localhost ec 0 "$ca" "$past" -- "${default_sans[@]}"
	make_leaf notyet server localhost ec 0 "$ca" "$future" -- "${default_sans[@]}"
	make_leaf wronghost server wrong.example ec 0 "$ca" "" -- DNS:wrong.example
	make_leaf otherca server localhost ec 0 "$other" "" -- "${default_sans[@]}"
	make_leaf selfsigned server localhost ec 0 self "" -- "${default_sans[@]}"
	make_leaf client-otherca client tlskit-client ec 0 "$other" "" --
	make_leaf client-expired client tlskit-client ec 0 "$ca" "$past" --
	make_leaf rsa1024 server localhost rsa 1024 "$ca" "" -- "${default_sans[@]}"
	make_leaf rsa server localhost rsa 2048 "$ca" "" -- "${default_sans[@]}"
	make_leaf client-rsa client tlskit-client rsa 2048 "$ca" "" --
	# Client identities for allow-lists: the same CN as client.crt, one SAN kind each.
	make_leaf client-dns client tlskit-client ec 0 "$ca" "" -- DNS:client.tlskit.test
	make_leaf client-uri client tlskit-client ec 0 "$ca" "" -- \
		URI:spiffe://tlskit.test/ns/default/sa/client
	make_leaf client-email client tlskit-client ec 0 "$ca" "" -- email:client@tlskit.test
	make_leaf wildcard server '*.wild.example' ec 0 "$ca" "" -- 'DNS:*.wild.example'
	files+=(expired notyet wronghost otherca selfsigned client-otherca client-expired rsa1024 rsa
		client-rsa client-dns client-uri client-email wildcard)
fi

# ---------------------------------------------------------------- install

keys=() crts=()
for n in "${files[@]}"; do
	keys+=("$tmp/$n.key")
	crts+=("$tmp/$n.crt")
done
chmod 0600 -- "${keys[@]}" || die "$tmp: chmod failed"
chmod 0644 -- "${crts[@]}" || die "$tmp: chmod failed"
# Renames within one filesystem, so each file appears atomically.  Keys go
# first so a certificate never appears before its key.
mv -f -- "${keys[@]}" "${crts[@]}" "$out/" || die "$out: cannot move files into place"

report() { # VERB PATH
	local fp=""
	if [[ $2 == *.crt ]]; then
		fp=$(openssl x509 -in "$2" -noout -fingerprint -sha256 2>/dev/null) ||
			die "$2: cannot compute fingerprint"
		fp="  $fp"
	fi
	printf '%-7s %s%s\n' "$1" "$2" "$fp"
}

if ((!quiet)); then
	for name in ca other-ca; do
		if [[ -n ${reused[$name]:-} ]]; then
			report reused "$out/$name.crt"
		fi
	done
	for n in "${files[@]}"; do
		report wrote "$out/$n.key"
		report wrote "$out/$n.crt"
	done
fi
