/* failing_open N: N openat calls on a path that does not exist (each returns -ENOENT);
 * prints the mean ns per call.
 *
 * The matching workload for `kerno trace syscall --errors` and its bpftrace equivalent:
 * every call is one event that passes the filters and goes to user space. The script runs
 * it pinned to one CPU (taskset), so the number is one CPU's cost of a call plus whatever
 * is attached to its path. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "workload.h"

int main(int argc, char **argv) {
    long n = count_arg(argc, argv, 1000000L, "CALLS");
    long failed = 0;
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        failed += syscall(SYS_openat, AT_FDCWD, "/nonexistent/kerno-bench", O_RDONLY) < 0;
    double t1 = now_ns();
    if (failed != n) {
        fprintf(stderr, "failing_open: %ld of %ld calls did not fail\n", n - failed, n);
        return 1;
    }
    printf("%.2f\n", (t1 - t0) / (double)n);
    return 0;
}
