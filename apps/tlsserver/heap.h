/* SPDX-License-Identifier: MIT */
/* Memory back to the system at the engine's quiet moments (heap.c). */
#ifndef TLSSERVER_HEAP_H
#define TLSSERVER_HEAP_H

/* Give the heap's free memory back to the system. With glibc's malloc (and
 * TLSKIT_APP_MALLOC_LIBC): empty the calling thread's tcache into its arena, then
 * malloc_trim(0); with any other malloc, nothing. Call it on the thread that did the
 * work (the engine's on_quiet hook runs on the worker that went quiet); safe on several
 * threads at once. */
void heap_release(void);

#endif
