/* What the workloads under benches/workloads share: the count argument and a monotonic
 * clock. Each workload takes one count (calls, round trips, connections), runs it, and
 * prints the mean ns per operation. Included as "workload.h": the compiler finds it next
 * to the .c file, so `cc -O2 -Wall -o X X.c` builds each workload as before. */
#ifndef KERNO_WORKLOAD_H
#define KERNO_WORKLOAD_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* CLOCK_MONOTONIC, in ns. */
static inline double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* argv[1] as a count, `fallback` when there is none; exits 2 with a usage line naming
 * `what` (CALLS, ROUND_TRIPS, ...) when it is not positive. */
static inline long count_arg(int argc, char **argv, long fallback, const char *what) {
    long n = argc > 1 ? atol(argv[1]) : fallback;
    if (n <= 0) {
        fprintf(stderr, "usage: %s %s\n", argv[0], what);
        exit(2);
    }
    return n;
}

#endif
