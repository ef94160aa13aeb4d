/* SPDX-License-Identifier: MIT */
/* Error classes: names, descriptions, WANT helpers, and the generic tlskit_error(). */
#include "common.h"

#include <limits.h>
#include <poll.h>
#include <string.h>

TK_SUITE(error);

struct code_case {
    int code;
    const char *name;
    const char *desc;
};

static const struct code_case codes[] = {
#define XX(name, val, desc) {val, "TLSKIT_E_" #name, desc},
    TLSKIT_ERROR_MAP(XX)
#undef XX
};
#define NCODES (sizeof codes / sizeof codes[0])

TK_TEST(error, names_and_descriptions_match_the_map)
{
    cr_assert_geq(NCODES, 14);
    for (size_t i = 0; i < NCODES; i++) {
        const struct code_case *c = &codes[i];
        cr_expect_str_eq(tk_str(tlskit_error_name(c->code)), c->name, "name of %d", c->code);
        cr_expect_str_eq(tk_str(tlskit_error_description(c->code)), c->desc,
                         "description of %s", c->name);
    }
}

TK_TEST(error, values_are_stable)
{
    /* Callers may store or transmit these numbers: they must never change. */
    cr_expect_eq(TLSKIT_E_NONE, 0);
    cr_expect_eq(TLSKIT_E_INVALID, 1);
    cr_expect_eq(TLSKIT_E_FILE, 3);
    cr_expect_eq(TLSKIT_E_TIMEOUT, 8);
    cr_expect_eq(TLSKIT_E_VERIFY, 9);
    cr_expect_eq(TLSKIT_E_PROTOCOL, 10);
    cr_expect_eq(TLSKIT_E_TRUNCATED, 11);
    cr_expect_eq(TLSKIT_E_IO, 13);
    /* Dense from 0, so a table indexed by code (and "unknown" above it) is safe. */
    for (size_t i = 0; i < NCODES; i++)
        cr_expect_eq(codes[i].code, (int)i, "%s", codes[i].name);
    /* The count is derived from the map, and sizes the tables indexed by class. */
    cr_expect_eq(TLSKIT_E__COUNT, (int)NCODES);
    struct tlskit_engine_stats st;
    cr_expect_eq(sizeof(st.handshake_errors) / sizeof(st.handshake_errors[0]), NCODES);
    cr_expect_str_eq(tlskit_error_name(TLSKIT_E__COUNT), "TLSKIT_E_UNKNOWN");
}

TK_TEST(error, unknown_codes)
{
    const int unknown[] = {-1, -2, (int)NCODES, (int)NCODES + 1, 1000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        cr_expect_str_eq(tk_str(tlskit_error_name(unknown[i])), "TLSKIT_E_UNKNOWN",
                         "name of %d", unknown[i]);
        const char *d = tlskit_error_description(unknown[i]);
        cr_expect(d != NULL && *d != '\0', "description of unknown code %d", unknown[i]);
    }
}

TK_TEST(error, want_values_and_events)
{
    cr_assert_lt(TLSKIT_WANT_READ, 0);
    cr_assert_lt(TLSKIT_WANT_WRITE, 0);
    cr_assert_neq(TLSKIT_WANT_READ, -1);
    cr_assert_neq(TLSKIT_WANT_WRITE, -1);
    cr_assert_neq(TLSKIT_WANT_READ, TLSKIT_WANT_WRITE);
    cr_expect_eq(tlskit_want_events(TLSKIT_WANT_READ), POLLIN);
    cr_expect_eq(tlskit_want_events(TLSKIT_WANT_WRITE), POLLOUT);
    static const ssize_t other[] = {0, 1, -1, 4096, -4, SSIZE_MAX};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        cr_expect_eq(tlskit_want_events(other[i]), 0, "tlskit_want_events(%zd)", other[i]);
}

TK_TEST(error, version_string)
{
    const char *v = tlskit_version();
    cr_assert_not_null(v);
    cr_expect(tk_contains(v, "tlskit " TLSKIT_VERSION_STRING), "version: %s", v);
    cr_expect(tk_contains(v, "OpenSSL"), "version names OpenSSL: %s", v);
    cr_expect_eq(TLSKIT_VERSION_MAJOR, 0);
    cr_expect_eq(TLSKIT_VERSION_MINOR, 1);
}

TK_TEST(error, new_objects_have_no_error)
{
    tlskit_config *cfg = tlskit_config_new();
    cr_assert_not_null(cfg);
    tlskit_conn *conn = tlskit_conn_new(cfg);
    tlskit_listener *l = tlskit_listener_new(cfg);
    cr_assert(conn != NULL && l != NULL);
    cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_NONE);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_NONE);
    cr_expect_eq(tlskit_listener_error_code(l), TLSKIT_E_NONE);
    tlskit_listener_free(l);
    tlskit_conn_free(conn);
    tlskit_config_free(cfg);
    /* _free(NULL) is a no-op. */
    tlskit_listener_free(NULL);
    tlskit_conn_free(NULL);
    tlskit_config_free(NULL);
}

TK_TEST(error, generic_macro_config)
{
    tlskit_config *cfg = tlskit_config_new();
    cr_assert_not_null(cfg);
    cr_assert_eq(tlskit_config_add_ca_file(cfg, "/nonexistent/tlskit-ca.crt"), -1);
    const tlskit_config *ccfg = cfg;
    cr_expect_eq(tlskit_error_code(cfg), TLSKIT_E_FILE);
    cr_expect_eq(tlskit_error_code(ccfg), TLSKIT_E_FILE);
    cr_expect_eq(tlskit_error(cfg), tlskit_config_error(cfg));
    cr_expect_eq(tlskit_error(ccfg), tlskit_config_error(cfg));
    cr_expect(tk_contains(tlskit_error(cfg), "/nonexistent/tlskit-ca.crt"), "%s",
              tk_str(tlskit_error(cfg)));
    /* The next call clears the error. */
    cr_assert_eq(tlskit_config_set_protocols(cfg, TLSKIT_TLS1_2, TLSKIT_TLS1_3), 0);
    cr_expect_eq(tlskit_error_code(cfg), TLSKIT_E_NONE, "error not cleared: %s",
                 tk_str(tlskit_error(cfg)));
    tlskit_config_free(cfg);
}

TK_TEST(error, generic_macro_conn)
{
    tlskit_config *cfg = tlskit_config_new();
    tlskit_conn *conn = tlskit_conn_new(cfg);
    cr_assert_not_null(conn);
    cr_assert_eq(tlskit_conn_connect(conn, "nonexistent.invalid", "443"), -1);
    const tlskit_conn *cconn = conn;
    cr_expect_eq(tlskit_error_code(conn), TLSKIT_E_RESOLVE, "%s",
                 tlskit_error_name(tlskit_error_code(conn)));
    cr_expect_eq(tlskit_error_code(cconn), tlskit_conn_error_code(conn));
    cr_expect_eq(tlskit_error(conn), tlskit_conn_error(conn));
    cr_expect_eq(tlskit_error(cconn), tlskit_conn_error(conn));
    cr_expect(tk_contains(tlskit_error(conn), "nonexistent.invalid"), "%s",
              tk_str(tlskit_error(conn)));
    tlskit_conn_free(conn);
    tlskit_config_free(cfg);
}

TK_TEST(error, generic_macro_listener)
{
    tlskit_config *cfg = tlskit_config_new();
    tlskit_listener *l = tlskit_listener_new(cfg);
    cr_assert_not_null(l);
    cr_assert_eq(tlskit_listener_accept(l, &(tlskit_conn *){NULL}, 0), -1,
                 "accept on a listener that is not listening");
    const tlskit_listener *cl = l;
    cr_expect_neq(tlskit_error_code(l), TLSKIT_E_NONE);
    cr_expect_eq(tlskit_error_code(cl), tlskit_listener_error_code(l));
    cr_expect_eq(tlskit_error(l), tlskit_listener_error(l));
    cr_expect_eq(tlskit_error(cl), tlskit_listener_error(l));
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
}
