/* SPDX-License-Identifier: MIT */
/*
 * The resource checks used by every suite work: LeakSanitizer finds a deliberate leak,
 * the descriptor count sees a new descriptor. (test_leakcheck_fails shows that such
 * leaks fail a TK_TEST.)
 */
#include "common.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TK_SUITE(selfcheck);

#define TK_MASK ((uintptr_t)0x5a5a5a5a5a5a5a5aULL)

/* The block's only pointer is kept XOR-masked, so LeakSanitizer cannot see it. Done in
 * a separate frame (and the stack scrubbed) so no stale copy stays in a register or on
 * the stack, which LSan scans conservatively. */
__attribute__((noinline)) static uintptr_t leak_hidden(void)
{
    unsigned char *p = malloc(1000);
    cr_assert_not_null(p);
    memset(p, 0xab, 1000);
    return (uintptr_t)p ^ TK_MASK;
}

__attribute__((noinline)) static void scrub_stack(void)
{
    volatile unsigned char buf[8192];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0;
}

TK_TEST(selfcheck, leak_check_detects_unreachable_memory)
{
    if (!TK_HAVE_LSAN)
        cr_skip_test("not a sanitizer build (configure with -DTLSKIT_SANITIZE=ON): "
                     "memory leaks are not checked");
    cr_assert_eq(tk_leak_check(), 0, "leak before the deliberate one");
    uintptr_t hidden = leak_hidden();
    scrub_stack();
    int leaked = tk_leak_check();
    free((void *)(hidden ^ TK_MASK));
    cr_assert_neq(leaked, 0, "LeakSanitizer did not report an unreachable block");
    cr_assert_eq(tk_leak_check(), 0, "leak still reported after free");
}

TK_TEST(selfcheck, fd_count_sees_new_descriptor)
{
    int before = tk_fd_count();
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(tk_fd_count(), before + 1);
    close(fd);
    cr_assert_eq(tk_fd_count(), before);
}

TK_TEST(selfcheck, certificates_present)
{
    static const char *const files[] = {
        "ca.crt", "server.crt", "server.key", "client.crt", "client.key",
        "expired.crt", "notyet.crt", "wronghost.crt", "otherca.crt", "other-ca.crt",
        "selfsigned.crt", "client-otherca.crt", "client-expired.crt", "rsa1024.crt",
        "rsa.crt", "rsa.key", "client-rsa.crt", "client-rsa.key",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        cr_assert_not_null(tk_cert(files[i]));
}
