/* pipe_pingpong N: two processes pass one byte back and forth over two pipes N times;
 * prints the mean ns per context switch (round trip / 2).
 *
 * Run pinned to a single CPU (taskset -c K), so every hand-over is a wakeup plus a context
 * switch on that CPU: one round trip is two switches, four syscalls (a write and a read on
 * each side) and two wakeups. Probes on sched_wakeup/sched_switch and on every syscall all
 * fire on this path, which is what "cost per context switch" means in docs/performance.md. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

static void xfer(int rfd, int wfd, long n, int first_write) {
    char c = 'x';
    for (long i = 0; i < n; i++) {
        if (first_write && write(wfd, &c, 1) != 1) exit(1);
        if (read(rfd, &c, 1) != 1) exit(1);
        if (!first_write && write(wfd, &c, 1) != 1) exit(1);
    }
}

int main(int argc, char **argv) {
    long n = count_arg(argc, argv, 500000L, "ROUND_TRIPS");
    int to_child[2], to_parent[2];
    if (pipe(to_child) || pipe(to_parent)) {
        perror("pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        close(to_child[1]);
        close(to_parent[0]);
        xfer(to_child[0], to_parent[1], n, 0);
        _exit(0);
    }
    close(to_child[0]);
    close(to_parent[1]);
    /* A short warm-up, so the child is running and both sides' pages are touched. */
    xfer(to_parent[0], to_child[1], n < 1000 ? n : 1000, 1);
    long rest = n - (n < 1000 ? n : 1000);
    double t0 = now_ns();
    xfer(to_parent[0], to_child[1], rest, 1);
    double t1 = now_ns();
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || rest == 0) {
        fprintf(stderr, "pipe_pingpong: child failed or too few round trips\n");
        return 1;
    }
    printf("%.2f\n", (t1 - t0) / (double)rest / 2.0);
    return 0;
}
