/* getppid_storm N: N getppid syscalls in a tight loop; prints the mean ns per call.
 *
 * getppid does almost nothing in the kernel, so the time per call is the syscall entry and
 * exit path plus whatever is attached to raw_syscalls:sys_enter/sys_exit. The script runs
 * it pinned to one CPU (taskset) so the number is one CPU's cost. */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>

#include "workload.h"

int main(int argc, char **argv) {
    long n = count_arg(argc, argv, 10000000L, "CALLS");
    /* syscall() rather than getppid(): libc must not cache or short-cut the call. */
    long sink = 0;
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        sink += syscall(SYS_getppid);
    double t1 = now_ns();
    if (sink == -1)
        fputs("unreachable\n", stderr);
    printf("%.2f\n", (t1 - t0) / (double)n);
    return 0;
}
