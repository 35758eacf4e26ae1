/* The guest's known workload for scripts/vmtest.sh, built static (gcc -static).
 *
 * Waits for SIGUSR1 (sent once the doctor's probes are attached), then makes exactly
 * FAILING failing openat calls (ENOENT), SUCCEEDING openat+close pairs, and opens LEAKED
 * descriptors on /dev/null that it never closes, the workloads of the root tests in
 * kerno-core/tests/root_signals.rs. Then it writes "done" to stdout and waits to be killed.
 * The host compares the doctor's JSON with these numbers and with /proc/<pid>/fd.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#define FAILING 211
#define SUCCEEDING 100
#define LEAKED 57

int main(void)
{
    sigset_t set;
    int sig, i;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    printf("ready failing=%d succeeding=%d leaked=%d\n", FAILING, SUCCEEDING, LEAKED);
    fflush(stdout);
    if (sigwait(&set, &sig) != 0)
        return 1;
    for (i = 0; i < FAILING; i++)
        openat(AT_FDCWD, "/nonexistent/kerno-ground-truth", O_RDONLY);
    for (i = 0; i < SUCCEEDING; i++) {
        int fd = openat(AT_FDCWD, "/etc/hostname", O_RDONLY);
        if (fd >= 0)
            close(fd);
    }
    for (i = 0; i < LEAKED; i++)
        openat(AT_FDCWD, "/dev/null", O_RDONLY);
    printf("done\n");
    fflush(stdout);
    for (;;)
        pause();
}
