/* SPDX-License-Identifier: MIT */
/* The engine's resolver: getaddrinfo() on threads of its own, so that a worker never
 * waits on DNS (resolve.h). At most TK_RESOLVE_THREADS threads, started when a lookup
 * finds none idle: one name whose server does not answer holds a thread for up to
 * resolv.conf's timeout x attempts (10 s by default) while the other keeps resolving
 * names that do answer; connections wait within their CONNECT deadline either way, so
 * more threads would mostly add more lookups queued at the same dead server. (curl runs
 * a thread per lookup; nginx and stunnel resolve at start-up.)
 *
 * The threads are detached and, with each lookup, share one reference-counted state
 * under one lock, so that freeing the engine never waits for a lookup: the owner's
 * reference goes at once and the last thread to finish frees the state. A lookup is in
 * exactly one place: the queue, a thread's hands, an inbox, or taken by its owner; the
 * side that moves it last (cancel, or the thread finding it cancelled) frees it. */
#include "resolve.h"

#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TK_RESOLVE_THREADS 2

enum lookup_state { LK_QUEUED, LK_RUNNING, LK_ANSWERED, LK_TAKEN };

struct tlskit__lookup {
    struct tlskit__resolver *r;
    struct tlskit__lookup *next;  /* in the queue, or in the inbox */
    struct tlskit__inbox *in;
    void *owner;
    enum lookup_state state;
    int cancelled;                /* while running: the thread drops the answer */
    int gai, eno;
    struct addrinfo *res;
    char *port;                   /* in the same allocation, after the host */
    char host[];
};

struct tlskit__resolver {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct tlskit__lookup *queue, **tail;
    size_t queued;
    int threads, idle;
    int refs;                     /* the owner (until released) and each thread */
    int released;
};

struct tlskit__resolver *tlskit__resolver_new(void)
{
    struct tlskit__resolver *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return NULL;
    }
    if (pthread_cond_init(&r->cv, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }
    r->tail = &r->queue;
    r->refs = 1;
    return r;
}

static void resolver_destroy(struct tlskit__resolver *r)
{
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Drop a reference (under the lock): 1 when it was the last. */
static int unref_locked(struct tlskit__resolver *r)
{
    return --r->refs == 0;
}

void tlskit__resolver_release(struct tlskit__resolver *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->released = 1;
    pthread_cond_broadcast(&r->cv); /* idle threads exit */
    int last = unref_locked(r);
    pthread_mutex_unlock(&r->mu);
    if (last)
        resolver_destroy(r);
}

/* The lookup tlskit_conn_connect() makes (socket.c). */
static void run_lookup(struct tlskit__lookup *lk)
{
    errno = 0;
    lk->gai = tlskit__lookup_tcp(lk->host, lk->port, &lk->res);
    lk->eno = errno;
}

static void lookup_destroy(struct tlskit__lookup *lk)
{
    if (lk->res)
        freeaddrinfo(lk->res);
    free(lk);
}

static void *resolver_main(void *arg)
{
    struct tlskit__resolver *r = arg;
    (void)pthread_setname_np(pthread_self(), "tlskit-resolve"); /* tests look for it */
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->queue && !r->released) {
            r->idle++;
            pthread_cond_wait(&r->cv, &r->mu);
            r->idle--;
        }
        struct tlskit__lookup *lk = r->queue;
        if (!lk)
            break; /* released, nothing left */
        if (!(r->queue = lk->next))
            r->tail = &r->queue;
        r->queued--;
        lk->next = NULL;
        lk->state = LK_RUNNING;
        pthread_mutex_unlock(&r->mu);
        run_lookup(lk);
        pthread_mutex_lock(&r->mu);
        if (lk->cancelled) {
            lookup_destroy(lk);
            continue;
        }
        lk->state = LK_ANSWERED;
        lk->next = lk->in->head;
        lk->in->head = lk;
        /* Under the lock: the inbox and its eventfd live until the owner cancels or
         * takes the lookup, which also takes the lock. */
        uint64_t one = 1;
        ssize_t w = write(lk->in->wake_fd, &one, sizeof(one));
        (void)w; /* EAGAIN: the counter is full, so the worker is being woken anyway */
    }
    int last = unref_locked(r);
    pthread_mutex_unlock(&r->mu);
    if (last)
        resolver_destroy(r);
    return NULL;
}

/* One more thread (under the lock): 0, or an errno. Detached, with every signal
 * blocked (process signals are the application's), holding a reference. */
static int start_thread(struct tlskit__resolver *r)
{
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (err)
        return err;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    err = pthread_create(&t, &attr, resolver_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err == 0) {
        r->threads++;
        r->refs++;
    }
    return err;
}

struct tlskit__lookup *tlskit__lookup_start(struct tlskit__resolver *r, const char *host,
                                            const char *port, struct tlskit__inbox *in,
                                            void *owner)
{
    size_t hl = strlen(host) + 1, pl = strlen(port) + 1;
    struct tlskit__lookup *lk = calloc(1, sizeof(*lk) + hl + pl);
    if (!lk)
        return NULL; /* errno ENOMEM */
    memcpy(lk->host, host, hl);
    lk->port = lk->host + hl;
    memcpy(lk->port, port, pl);
    lk->r = r;
    lk->in = in;
    lk->owner = owner;
    lk->state = LK_QUEUED;
    pthread_mutex_lock(&r->mu);
    if ((size_t)r->idle <= r->queued && r->threads < TK_RESOLVE_THREADS) {
        int err = start_thread(r);
        if (err && r->threads == 0) { /* a busy thread would get to it; none would not */
            pthread_mutex_unlock(&r->mu);
            free(lk);
            errno = err;
            return NULL;
        }
    }
    *r->tail = lk;
    r->tail = &lk->next;
    r->queued++;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return lk;
}

/* Unlink lk from a singly linked list (under the lock). */
static void unlink_from(struct tlskit__lookup **head, struct tlskit__lookup *lk,
                        struct tlskit__lookup ***tail)
{
    struct tlskit__lookup **p = head;
    while (*p && *p != lk)
        p = &(*p)->next;
    if (!*p)
        return;
    *p = lk->next;
    if (tail && !*p)
        *tail = p;
}

void tlskit__lookup_cancel(struct tlskit__lookup *lk)
{
    if (!lk)
        return;
    struct tlskit__resolver *r = lk->r;
    pthread_mutex_lock(&r->mu);
    switch (lk->state) {
    case LK_RUNNING:
        lk->cancelled = 1; /* its thread frees it */
        lk = NULL;
        break;
    case LK_QUEUED:
        unlink_from(&r->queue, lk, &r->tail);
        r->queued--;
        break;
    case LK_ANSWERED:
        unlink_from(&lk->in->head, lk, NULL);
        break;
    case LK_TAKEN:
        break;
    }
    pthread_mutex_unlock(&r->mu);
    if (lk)
        lookup_destroy(lk);
}

struct tlskit__lookup *tlskit__inbox_pop(struct tlskit__resolver *r, struct tlskit__inbox *in)
{
    pthread_mutex_lock(&r->mu);
    struct tlskit__lookup *lk = in->head;
    if (lk) {
        in->head = lk->next;
        lk->next = NULL;
        lk->state = LK_TAKEN;
    }
    pthread_mutex_unlock(&r->mu);
    return lk;
}

void *tlskit__lookup_owner(const struct tlskit__lookup *lk)
{
    return lk->owner;
}

int tlskit__lookup_answer(struct tlskit__lookup *lk, struct addrinfo **res, int *eno)
{
    *res = lk->res;
    *eno = lk->eno;
    lk->res = NULL;
    return lk->gai;
}

void tlskit__lookup_free(struct tlskit__lookup *lk)
{
    if (lk)
        lookup_destroy(lk);
}
