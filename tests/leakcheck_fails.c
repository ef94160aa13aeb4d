/* SPDX-License-Identifier: MIT */
/*
 * Tests that leak on purpose. Every one of them must FAIL: the ctest registered for this
 * binary passes only when Criterion reports all of them as failures (not crashes). This
 * proves that TK_TEST's end-of-test checks turn leaks into test failures.
 */
#include "common.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

TK_SUITE(leaks_must_fail);

#if TK_HAVE_LSAN
/* Allocate in a frame of its own and scrub the stack afterwards, so no stale copy of
 * the pointer keeps the block reachable for LeakSanitizer's conservative scan. */
__attribute__((noinline)) static void leak_one(void)
{
    char *volatile p = malloc(4096);
    p[0] = 1;
}

__attribute__((noinline)) static void scrub_stack(void)
{
    volatile unsigned char buf[8192];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0;
}

TK_TEST(leaks_must_fail, memory)
{
    leak_one();
    scrub_stack();
}
#endif

TK_TEST(leaks_must_fail, file_descriptor)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
}

TK_TEST(leaks_must_fail, child_process)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(0);
}
