/* SPDX-License-Identifier: MIT */
/*
 * Replay driver: runs a fuzz target's LLVMFuzzerTestOneInput() over corpus files, with
 * any compiler, so ctest checks every committed input on every run (under ASan+UBSan in
 * sanitizer builds). libFuzzer binaries are only built with clang (scripts/fuzz.sh).
 *
 * Usage: fuzz_replay_NAME [--no-fork] FILE|DIR...
 * Each file runs in a forked child (a crash or a broken invariant fails that file only,
 * and the report names it); in sanitizer builds the child also runs LeakSanitizer.
 * Prints one line per failure and a closing "N passed, M failed"; exit status 1 when
 * anything failed or nothing was found to replay.
 */
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define FZ_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_HAVE_LSAN 1
#endif
#endif
#ifdef FZ_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* Optional in a target: weak, so targets without it link. */
#pragma weak LLVMFuzzerInitialize

#define FZ_TIMEOUT_S 60 /* per input; libFuzzer's default is 1200 */

struct files {
    char **v;
    size_t n, cap;
};

static void add_file(struct files *f, const char *path)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->v = realloc(f->v, f->cap * sizeof(*f->v));
        if (!f->v)
            abort();
    }
    if (!(f->v[f->n++] = strdup(path)))
        abort();
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files of dir, sorted, skipping dot files (editors, .gitkeep). */
static int add_dir(struct files *f, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    size_t first = f->n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            add_file(f, path);
    }
    closedir(d);
    qsort(f->v + first, f->n - first, sizeof(*f->v), by_name);
    return 0;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, fp);
        n += k;
        if (n < cap)
            break;
        unsigned char *nb = realloc(buf, cap *= 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
    }
    if (buf && ferror(fp)) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    *len = n;
    return buf;
}

/* Run one input in this process: 0 when it passed (a broken invariant aborts). */
static int run_one(const unsigned char *data, size_t len)
{
    /* A copy of exactly len bytes, as libFuzzer gives, so ASan sees reads past the end. */
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
#ifdef FZ_HAVE_LSAN
    if (__lsan_do_recoverable_leak_check() != 0) {
        fprintf(stderr, "memory leaked (LeakSanitizer report above)\n");
        return 1;
    }
#endif
    return 0;
}

static int run_forked(const unsigned char *data, size_t len, char *why, size_t whylen)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        alarm(FZ_TIMEOUT_S);
        int rc = run_one(data, len);
        fflush(NULL);
        _exit(rc);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(why, whylen, "waitpid: %s", strerror(errno));
            return 1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        snprintf(why, whylen, "killed by signal %d%s", WTERMSIG(status),
                 WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    else
        snprintf(why, whylen, "exit status %d", WEXITSTATUS(status));
    return 1;
}

int main(int argc, char **argv)
{
    struct files files = {0};
    int fork_each = 1;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (strcmp(argv[i], "--no-fork") == 0) {
            fork_each = 0;
        } else if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: %s: %s\n", argv[0], argv[i], strerror(errno));
            return 1;
        } else if (S_ISDIR(st.st_mode)) {
            if (add_dir(&files, argv[i]) != 0) {
                fprintf(stderr, "%s: %s: %s\n", argv[0], argv[i], strerror(errno));
                return 1;
            }
        } else {
            add_file(&files, argv[i]);
        }
    }
    if (files.n == 0) {
        fprintf(stderr, "usage: %s [--no-fork] FILE|DIR... (no input files found)\n", argv[0]);
        return 1;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);

    size_t passed = 0, failed = 0;
    for (size_t i = 0; i < files.n; i++) {
        size_t len;
        char why[128] = "";
        unsigned char *data = read_all(files.v[i], &len);
        int bad;
        if (!data) {
            snprintf(why, sizeof(why), "cannot read: %s", strerror(errno));
            bad = 1;
        } else if (fork_each) {
            bad = run_forked(data, len, why, sizeof(why));
        } else {
            bad = run_one(data, len);
            snprintf(why, sizeof(why), "leak");
        }
        if (bad) {
            failed++;
            printf("FAIL %s: %s\n", files.v[i], why);
            fflush(stdout);
        } else {
            passed++;
        }
        free(data);
        free(files.v[i]);
    }
    free(files.v);
    printf("%zu passed, %zu failed\n", passed, failed);
    return failed ? 1 : 0;
}
