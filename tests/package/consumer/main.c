/* SPDX-License-Identifier: MIT */
/* An outside program using only the installed header and library: proves that the
 * header, the library and its OpenSSL dependency link and run from an install prefix. */
#include <stdio.h>
#include <string.h>
#include <tlskit/tlskit.h>

static int failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "consumer: FAIL: %s\n", what);
        failures++;
    }
}

int main(void)
{
    tlskit_config *cfg = tlskit_config_new();
    const char *version = tlskit_version();

    check(cfg != NULL, "tlskit_config_new");
    check(version != NULL && strncmp(version, "tlskit ", 7) == 0, "tlskit_version");
    printf("%s\n", version != NULL ? version : "(null)");
    printf("header %s\n", TLSKIT_VERSION_STRING);

    check(tlskit_protocol_parse("1.3") == TLSKIT_TLS1_3, "protocol_parse 1.3");
    check(tlskit_protocol_parse("TLSv1.2") == TLSKIT_TLS1_2, "protocol_parse TLSv1.2");
    check(tlskit_protocol_parse("1.0") == -1, "protocol_parse 1.0 refused");
    check(strcmp(tlskit_error_name(TLSKIT_E_TIMEOUT), "TLSKIT_E_TIMEOUT") == 0,
          "error_name");

    /* Goes through OpenSSL: loading fails, and the error names the file. */
    if (cfg != NULL) {
        check(tlskit_config_set_keypair_file(cfg, "/nonexistent/server.crt",
                                             "/nonexistent/server.key") == -1,
              "missing key pair fails");
        check(tlskit_error_code(cfg) == TLSKIT_E_FILE, "missing key pair: TLSKIT_E_FILE");
        check(tlskit_error(cfg) != NULL && strstr(tlskit_error(cfg), "/nonexistent/") != NULL,
              "missing key pair: the message names the file");
        printf("expected error: %s\n", tlskit_error(cfg) ? tlskit_error(cfg) : "(null)");
        check(tlskit_config_ssl_ctx(cfg) != NULL, "config_ssl_ctx");
    }
    tlskit_config_free(cfg);
    tlskit_config_free(NULL);

    printf("consumer: %s\n", failures == 0 ? "ok" : "FAILED");
    return failures == 0 ? 0 : 1;
}
