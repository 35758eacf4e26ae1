/* connect_loop N: N TCP connections over loopback, each opened (connect + accept) and
 * closed by both ends; prints the mean ns per connection.
 *
 * Each connection walks the TCP state machine on both sockets (SYN_SENT, SYN_RECV,
 * ESTABLISHED, FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE), so it is a burst of
 * inet_sock_set_state events: the workload for `kerno watch tcp --state-changes` and its
 * bpftrace equivalent (tcplife-style). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workload.h"

int main(int argc, char **argv) {
    long n = count_arg(argc, argv, 20000L, "CONNECTIONS");
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 128) ||
        getsockname(l, (struct sockaddr *)&a, &len)) {
        perror("connect_loop: listen");
        return 1;
    }
    /* The server closes first, so TIME_WAIT lands on the server's side of each connection:
     * the client's ephemeral ports are free again at once, and a long run cannot run out of
     * them (a client-side TIME_WAIT holds its port for 60 s). */
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) {
            perror("connect_loop: connect");
            return 1;
        }
        int s = accept(l, NULL, NULL);
        if (s < 0) {
            perror("connect_loop: accept");
            return 1;
        }
        close(s);
        close(c);
    }
    double t1 = now_ns();
    printf("%.2f\n", (t1 - t0) / (double)n);
    return 0;
}
