/*
 * echo_epoll — the "practical ceiling" peer: a minimal single-threaded echo
 * server on level-triggered epoll. Anything written on top of an event loop
 * in a higher-level language should be measured against this.
 *
 *   echo_epoll [--host 127.0.0.1] [--port N]     (port 0: kernel picks)
 *
 * Prints "LISTENING <port>" on stdout once accepting, and exits 0 on
 * SIGTERM/SIGINT.
 *
 * Design choices, all aimed at doing as little per message as possible:
 *  - one shared read buffer; a connection owns memory only while the peer is
 *    not reading what we echo (a partial write), so 10 000 idle connections
 *    cost a few bytes each;
 *  - while output is pending the connection stops reading (EPOLLOUT only):
 *    that is the back-pressure, and it bounds pending data to one read;
 *  - at most a few reads per readiness event, so one busy connection cannot
 *    starve the others under level-triggered epoll.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF (64 * 1024)
#define MAX_EVENTS 1024
#define READS_PER_EVENT 4
#define LISTEN_TAG UINT64_MAX

struct conn {
    char *pending;     /* unsent tail of the last echo, or NULL */
    uint32_t plen;
    uint32_t poff;
};

static struct conn *g_conns;   /* indexed by fd */
static size_t g_nconns;
static int g_epfd;
static int g_spare_fd = -1;
static volatile sig_atomic_t g_stop;
static char g_buf[READ_BUF];

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void set_events(int fd, uint32_t ev, int op)
{
    struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)fd};
    if (epoll_ctl(g_epfd, op, fd, &e) != 0) perror("echo_epoll: epoll_ctl");
}

static void conn_close(int fd)
{
    struct conn *c = &g_conns[fd];
    free(c->pending);
    c->pending = NULL;
    c->plen = c->poff = 0;
    close(fd); /* also removes fd from the epoll set: it has no duplicates */
}

/* Returns 0 when everything went out, 1 when some is left (now pending),
 * -1 when the connection is dead. */
static int write_all(int fd, const char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, p + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return -1;
    }
    if (off == len) return 0;
    struct conn *c = &g_conns[fd];
    c->pending = malloc(len - off);
    if (!c->pending) return -1;
    memcpy(c->pending, p + off, len - off);
    c->plen = (uint32_t)(len - off);
    c->poff = 0;
    /* Switch to writability only: no reading until the peer catches up. */
    set_events(fd, EPOLLOUT, EPOLL_CTL_MOD);
    return 1;
}

static void on_readable(int fd)
{
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = recv(fd, g_buf, sizeof g_buf, 0);
        if (n == 0) {
            conn_close(fd);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            conn_close(fd); /* reset by peer etc.: nothing to report */
            return;
        }
        int w = write_all(fd, g_buf, (size_t)n);
        if (w < 0) {
            conn_close(fd);
            return;
        }
        if (w > 0) return;
        /* A short read means the socket is drained: skip the EAGAIN call. */
        if ((size_t)n < sizeof g_buf) return;
    }
}

static void on_writable(int fd)
{
    struct conn *c = &g_conns[fd];
    while (c->poff < c->plen) {
        ssize_t n = send(fd, c->pending + c->poff, c->plen - c->poff, MSG_NOSIGNAL);
        if (n > 0) {
            c->poff += (uint32_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        conn_close(fd);
        return;
    }
    free(c->pending);
    c->pending = NULL;
    c->plen = c->poff = 0;
    set_events(fd, EPOLLIN, EPOLL_CTL_MOD);
}

static void on_acceptable(int lfd)
{
    /* Drain the accept queue in bursts: during a 10 000-connection ramp the
     * backlog is the bottleneck, and one accept per wakeup would let it fill. */
    for (int i = 0; i < 256; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of fds: level-triggered epoll would spin on the listener
                 * forever. Free the spare fd, accept and drop the connection,
                 * then take the spare back, so the client sees a clean close. */
                if (g_spare_fd >= 0) {
                    close(g_spare_fd);
                    int tmp = accept(lfd, NULL, NULL);
                    if (tmp >= 0) close(tmp);
                    g_spare_fd = dup(0);
                }
                return;
            }
            /* EAGAIN: queue empty. ECONNABORTED etc.: try the next one. */
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            perror("echo_epoll: accept4");
            return;
        }
        if ((size_t)fd >= g_nconns) {
            close(fd);
            continue;
        }
        /* Echoes may be split across reads; Nagle would then hold the second
         * piece back until the client's delayed ACK (40 ms). */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        set_events(fd, EPOLLIN, EPOLL_CTL_ADD);
    }
}

static int open_listener(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "echo_epoll: %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* somaxconn caps it anyway; ask for the most so connection ramps of
         * thousands are not throttled by SYN retransmits. */
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 65535) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) perror("echo_epoll: bind/listen");
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "0";
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'h') host = optarg;
        else if (ch == 'p') port = optarg;
        else {
            fprintf(stderr, "usage: echo_epoll [--host H] [--port N]\n");
            return 2;
        }
    }

    signal(SIGPIPE, SIG_IGN);
    /* No SA_RESTART: the signal must interrupt epoll_wait so we notice it. */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        g_nconns = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : (size_t)rl.rlim_cur;
    } else {
        g_nconns = 1024;
    }
    g_conns = calloc(g_nconns, sizeof *g_conns);
    if (!g_conns) {
        fprintf(stderr, "echo_epoll: out of memory\n");
        return 1;
    }

    int lfd = open_listener(host, port);
    if (lfd < 0) return 1;
    g_spare_fd = dup(0);
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event le = {.events = EPOLLIN, .data.u64 = LISTEN_TAG};
    epoll_ctl(g_epfd, EPOLL_CTL_ADD, lfd, &le);

    printf("LISTENING %d\n", bound_port(lfd));
    fflush(stdout);

    struct epoll_event evs[MAX_EVENTS];
    while (!g_stop) {
        int n = epoll_wait(g_epfd, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("echo_epoll: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == LISTEN_TAG) {
                on_acceptable(lfd);
                continue;
            }
            int fd = (int)evs[i].data.u64;
            uint32_t ev = evs[i].events;
            /* A pending echo means we only asked for EPOLLOUT; ERR/HUP then
             * surface as a failed send. Otherwise recv reports them. */
            if (g_conns[fd].pending) {
                if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(fd);
            } else if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                on_readable(fd);
            }
        }
    }
    /* Exiting closes every socket; nothing else needs tidying. */
    return 0;
}
