/*
 * idler — holds K idle TCP connections open to a server, for the
 * idle-connections benchmark (bench/idle.mjs).
 *
 *   idler --host 127.0.0.1 --port N [--inflight 128] [--max-seconds 1800]
 *
 * Driven by one command per line on stdin, one reply per line on stdout:
 *
 *   set N    hold exactly N connections: open more (at most --inflight
 *            connects in progress at once) or close the newest ones.
 *            Replies `OK <held> <seconds> <connect errors>` once N are
 *            established (connect errors: refused or failed connects so
 *            far, each retried), or
 *            `FAIL <held> <reason>` after --set-timeout seconds (default 60).
 *   status   `STATUS <held> <lost> <bytes>`: lost = held connections the
 *            server closed or reset since start; bytes = bytes the server
 *            sent on them (an idle connection is owed nothing, so both
 *            must stay 0).
 *   quit     (or EOF on stdin) close everything and exit 0.
 *
 * An idle connection never sends. "Established" here means connect(2)
 * completed (SO_ERROR 0): the kernel finishes the handshake before the
 * server calls accept(2), so the caller proves acceptance itself (the
 * server's open fd count) and paces `set` in batches no larger than the
 * server's listen backlog: an overflowing accept queue drops the client's
 * ACK and the ramp stalls on SYN-ACK retransmits.
 *
 * Every socket has SO_LINGER {on, 0}: closing it sends RST, so neither side
 * keeps thousands of TIME_WAIT entries between rounds, and being killed
 * (SIGKILL included) closes every connection the same way. A hard stop
 * (alarm, --max-seconds) guards against a parent that never says quit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 19000 /* below the 20 000-per-process fd limit */
#define STDIN_TAG UINT32_MAX

enum { S_FREE, S_CONNECTING, S_HELD };

struct conn {
    int fd;
    int state;
};

static struct conn g_conns[MAX_CONNS];
static long g_open;       /* slots in use: 0 .. g_open-1 (connecting or held) */
static long g_held;       /* established */
static long g_connecting; /* connect in progress */
static long g_lost;
static long g_connect_errors; /* refused / failed connects, retried */
static unsigned long long g_bytes;
static int g_epfd;
static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static int g_family;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "idler: hard stop (alarm)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(124);
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void conn_drop(long i)
{
    struct conn *c = &g_conns[i];
    if (c->fd >= 0) close(c->fd); /* linger 0: RST; close also leaves epoll */
    if (c->state == S_HELD) g_held--;
    else if (c->state == S_CONNECTING) g_connecting--;
    c->fd = -1;
    c->state = S_FREE;
}

/* Keeps slots 0 .. g_open-1 dense: the last slot moves into the hole. */
static void slot_free(long i)
{
    conn_drop(i);
    long last = --g_open;
    if (i != last) {
        g_conns[i] = g_conns[last];
        struct epoll_event e = {.events = g_conns[i].state == S_CONNECTING ? EPOLLOUT : EPOLLIN,
                                .data.u32 = (uint32_t)i};
        epoll_ctl(g_epfd, EPOLL_CTL_MOD, g_conns[i].fd, &e);
        g_conns[last].fd = -1;
        g_conns[last].state = S_FREE;
    }
}

/* Starts one connect in a new slot; returns 0, or -1 on a local failure
 * (EMFILE, no ephemeral port: retried later by the caller). */
static int conn_start(void)
{
    int fd = socket(g_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int rc = connect(fd, (struct sockaddr *)&g_addr, g_addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    long i = g_open++;
    g_conns[i].fd = fd;
    g_conns[i].state = rc == 0 ? S_HELD : S_CONNECTING;
    if (rc == 0) g_held++;
    else g_connecting++;
    struct epoll_event e = {.events = rc == 0 ? EPOLLIN : EPOLLOUT, .data.u32 = (uint32_t)i};
    epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &e);
    return 0;
}

static void on_conn_event(long i, uint32_t ev)
{
    struct conn *c = &g_conns[i];
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) {
            g_connect_errors++;
            slot_free(i); /* refused or timed out: the set loop opens another */
            return;
        }
        c->state = S_HELD;
        g_connecting--;
        g_held++;
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &e);
        return;
    }
    if (c->state != S_HELD) return;
    (void)ev;
    char buf[4096];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n > 0) {
        g_bytes += (unsigned long long)n;
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    g_lost++; /* the server closed or reset an idle connection */
    slot_free(i);
}

static int pump(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(g_epfd, evs, 512, timeout_ms);
    int saw_stdin = 0;
    for (int k = 0; k < n; k++) {
        if (evs[k].data.u32 == STDIN_TAG) saw_stdin = 1;
        else if ((long)evs[k].data.u32 < g_open) on_conn_event((long)evs[k].data.u32, evs[k].events);
    }
    return saw_stdin;
}

/* Brings the held count to `target` within `timeout` seconds. */
static void cmd_set(long target, long inflight, double timeout)
{
    double t0 = now_s();
    if (target > MAX_CONNS) {
        reply("FAIL %ld at most %d connections\n", g_held, MAX_CONNS);
        return;
    }
    /* Shrinking: the newest go first (slots are dense, the tail is newest). */
    while (g_open > target) slot_free(g_open - 1);
    while (g_held < target) {
        if (now_s() - t0 > timeout) {
            reply("FAIL %ld timed out after %.1f s (%ld connecting)\n", g_held, timeout, g_connecting);
            return;
        }
        int starved = 0;
        while (g_open < target && g_connecting < inflight)
            if (conn_start() != 0) {
                starved = 1;
                break;
            }
        pump(starved ? 10 : 5);
    }
    reply("OK %ld %.4f %ld\n", g_held, now_s() - t0, g_connect_errors);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = NULL;
    long inflight = 128;
    double max_seconds = 1800, set_timeout = 60;
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'h'},     {"port", required_argument, 0, 'p'},
        {"inflight", required_argument, 0, 'i'}, {"max-seconds", required_argument, 0, 'm'},
        {"set-timeout", required_argument, 0, 't'}, {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h': host = optarg; break;
        case 'p': port = optarg; break;
        case 'i': inflight = strtol(optarg, NULL, 10); break;
        case 'm': max_seconds = strtod(optarg, NULL); break;
        case 't': set_timeout = strtod(optarg, NULL); break;
        default:
            fprintf(stderr, "usage: idler --port N [--host H] [--inflight N] [--max-seconds S] [--set-timeout S]\n");
            return 2;
        }
    }
    if (!port || inflight < 1 || max_seconds <= 0 || set_timeout <= 0) {
        fprintf(stderr, "usage: idler --port N [--host H] [--inflight N] [--max-seconds S] [--set-timeout S]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)max_seconds);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        fprintf(stderr, "idler: cannot resolve %s:%s: %s\n", host, port, gai_strerror(rc));
        return 2;
    }
    memcpy(&g_addr, res->ai_addr, res->ai_addrlen);
    g_addrlen = res->ai_addrlen;
    g_family = res->ai_family;
    freeaddrinfo(res);
    for (long i = 0; i < MAX_CONNS; i++) g_conns[i].fd = -1;

    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event se = {.events = EPOLLIN, .data.u32 = STDIN_TAG};
    if (g_epfd < 0 || epoll_ctl(g_epfd, EPOLL_CTL_ADD, 0, &se) != 0) {
        perror("idler: epoll");
        return 1;
    }
    reply("READY\n");

    char line[256];
    size_t have = 0;
    for (;;) {
        if (!pump(1000)) continue;
        ssize_t n = read(0, line + have, sizeof line - 1 - have);
        if (n == 0) break; /* parent gone or done */
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            break;
        }
        have += (size_t)n;
        line[have] = 0;
        char *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = 0;
            long k;
            if (sscanf(line, "set %ld", &k) == 1 && k >= 0) cmd_set(k, inflight, set_timeout);
            else if (strcmp(line, "status") == 0) reply("STATUS %ld %ld %llu\n", g_held, g_lost, g_bytes);
            else if (strcmp(line, "quit") == 0) goto out;
            else reply("ERROR unknown command: %s\n", line);
            size_t used = (size_t)(nl - line) + 1;
            memmove(line, nl + 1, have - used + 1);
            have -= used;
        }
        if (have >= sizeof line - 1) have = 0; /* an overlong line: drop it */
    }
out:
    while (g_open > 0) slot_free(g_open - 1);
    close(g_epfd);
    return 0;
}
