/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the tlskit fuzz targets (tests/fuzz/fuzz_*.c).
 *
 * Every target is one LLVMFuzzerTestOneInput(); the same source is linked either into a
 * libFuzzer binary (clang, -DTLSKIT_FUZZ=ON, scripts/fuzz.sh) or into a replay driver
 * (replay_main.c, any compiler) that ctest runs over the committed corpus.
 *
 * A broken invariant aborts through FZ_CHECK, which both drivers report as a failure.
 */
#ifndef TLSKIT_FUZZ_COMMON_H
#define TLSKIT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <tlskit/tlskit.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#if defined(__GNUC__) || defined(__clang__)
#define FZ_NORETURN __attribute__((noreturn))
#define FZ_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define FZ_NORETURN
#define FZ_PRINTF(f, a)
#endif

/* Print "fuzz invariant failed at FILE:LINE: COND: MESSAGE" on stderr and abort(). */
FZ_NORETURN void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    FZ_PRINTF(4, 5);
#define FZ_CHECK(cond, ...)                                                  \
    do {                                                                     \
        if (!(cond))                                                         \
            fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                 \
    } while (0)

/* Replace OpenSSL's random generator, process-wide, by a constant stream (every request
 * of n bytes gets 01 02 03 ...), as OpenSSL's own fuzzers do. Handshakes become
 * reproducible, so a recorded peer transcript (the seed corpus, tests/fuzz/gen_seeds.c)
 * replays to a completed handshake and the fuzzer can mutate what follows it. Call before
 * anything else touches OpenSSL. Never use outside tests. */
void fz_deterministic_rand(void);

/* The fuzz keypair: a P-256 key and a self-signed certificate for CN=localhost with
 * SANs DNS:localhost and IP:127.0.0.1, valid 2024-01-01 to 9999-12-31 (no expiry to break
 * the corpus). Made in memory on first use; with fz_deterministic_rand() it is the same
 * bytes in every process. PEM, NUL-terminated, owned by this module. */
void fz_keypair(const char **cert, size_t *cert_len, const char **key, size_t *key_len);

/* Handshake targets: the first input byte selects the configuration.
 * Server flags: bits 0-1 client verification (0 none, 1 optional, 2 required, 3 none);
 *   FZ_TLS12 / FZ_TLS13 only one version (both: the default range);
 *   FZ_SRV_P256 key-exchange groups P-256 only (a client's X25519 key share then gets a
 *   HelloRetryRequest).
 * Client flags: FZ_CLI_INSECURE no verification, no server name (else the fuzz
 *   certificate is the only CA and "localhost" is checked); FZ_CLI_IPNAME check
 *   127.0.0.1 instead (no SNI); FZ_CLI_CERT offer the fuzz keypair as a client cert.
 * Both: FZ_PEER_CLOSE the peer closes its socket after sending (our writes then fail with
 *   EPIPE) instead of shutting down its write side; FZ_BLOCKING a blocking connection
 *   with deadlines instead of a non-blocking one. */
enum {
    FZ_VERIFY_MASK = 0x03,
    FZ_CLI_INSECURE = 0x01,
    FZ_CLI_IPNAME = 0x02,
    FZ_TLS12 = 0x04,
    FZ_TLS13 = 0x08,
    FZ_SRV_P256 = 0x10,
    FZ_CLI_CERT = 0x10,
    FZ_PEER_CLOSE = 0x20,
    FZ_BLOCKING = 0x40,
};

/* A fresh configuration for a handshake target (fz_keypair() material); aborts on any
 * failure, which would be a bug in the target, not a finding. */
tlskit_config *fz_server_config(unsigned flags);
tlskit_config *fz_client_config(unsigned flags);

/* Is code one of the classes TLSKIT_ERROR_MAP defines (TLSKIT_E_NONE excluded)? */
int fz_known_error(int code);

/* Descriptor accounting within one input: the lowest free descriptor number, remembered
 * by fz_fd_mark() and compared by fz_fd_check() (a leaked descriptor takes it). */
void fz_fd_mark(void);
void fz_fd_check(const char *where);

/* OpenSSL's error queue of this thread must be empty after every library call: errors
 * left there would be blamed on the caller's next, unrelated OpenSSL call. */
void fz_check_err_queue(const char *after);

/* Is id in TLSKIT_FUZZ_KNOWN (comma-separated)? It lists reported, not yet fixed
 * findings that a fuzzing run should get past (tests/fuzz/README.md); ctest never sets
 * it, so the replay keeps failing on them until they are fixed. */
int fz_known(const char *id);

/* Reading little-endian integers from the front of the input. */
struct fz_input {
    const uint8_t *p;
    size_t n;
};
uint8_t fz_take_u8(struct fz_input *in);
uint16_t fz_take_u16(struct fz_input *in);

/* ---- text parsers checked against a reference (fuzz_pin, fuzz_identity) ---- */

/* The input as a NUL-terminated string (stops at an inner NUL); free() it. */
char *fz_text(const uint8_t *data, size_t size);
/* Reference for one public-key pin: "sha256//" and the canonical base64 of 32 bytes
 * (43 characters, the last with its 2 low bits zero, then '='), len bytes at s. */
int fz_ref_pin(const char *s, size_t len);
/* A config setter's verdict (rc, called on cfg with text) against the reference's (want:
 * 1 accepts): they agree, and a refusal is TLSKIT_E_INVALID with needle in the message.
 * A refusal for want of memory is let through. Aborts on a broken invariant. */
void fz_check_verdict(const tlskit_config *cfg, int rc, int want, const char *text,
                      const char *needle);

#endif
