/*
 * loadgen — ping-pong load generator for echo servers.
 *
 * Single-threaded, nonblocking, epoll-driven. Every connection repeats:
 * send S bytes, wait until the same S bytes have come back, check them,
 * send the next message. Only messages completed inside the measure window
 * are counted, and the whole result is one JSON line on stdout.
 *
 *   loadgen --host 127.0.0.1 --port N | --unix PATH
 *           --conns C --size S --duration SEC --warmup SEC
 *           [--connect-rate PER_SEC] [--connect-inflight N]
 *           [--connect-timeout SEC] [--server-pid PID] [--verbose]
 *
 * Timeline:
 *  1. Ramp. Connections are opened, paced by --connect-rate and by
 *     --connect-inflight (default 128): the most connections that may be open
 *     but not yet *proven*. A connection is proven by one echo, then parks.
 *     Why: a TCP connect completes in the kernel before the server accepts,
 *     so counting only connects in progress would pile thousands into the
 *     accept queue; once that overflows the kernel drops SYNs and the ramp
 *     stalls on 1 s, 3 s, 7 s retransmits. And parking keeps the server idle
 *     while it accepts: with ping-pong already running on the first few
 *     thousand connections, a 10 000-connection ramp took far longer.
 *     The ramp ends when every connection is proven, or at --connect-timeout
 *     (default 8 s): a server that accepts too slowly is then measured with
 *     the connections it has ("connected" in the result).
 *  2. Load starts on every proven connection at once; `warmup` seconds later
 *  3. the measure window opens and lasts `duration` seconds.
 *  A hard stop at connect-timeout + warmup + duration + 10 s guards against
 *  anything that would otherwise keep us running.
 *
 * Errors (connect failures, resets, early EOF, wrong bytes) are counted over
 * the whole run, warm-up included (a server bug is a bug whenever it shows),
 * and the connection is re-established after a short back-off, so one bad
 * connection never stops the run, and the program never aborts on them.
 * Back-pressure (unix backlog full: EAGAIN; no ephemeral port: EADDRNOTAVAIL)
 * is retried without counting.
 *
 * With --server-pid, the server's CPU time is read from /proc at the exact
 * window edges, so the per-message server cost covers the same interval as
 * the message count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 1024
/* Pattern offsets cycle through a prime count so consecutive messages on a
 * connection never carry the same bytes: a server that replays an old buffer
 * or mixes up two connections is caught by the content check. */
#define PATTERN_SHIFTS 251u
/* Latency histogram: 1 us buckets up to 1 s; slower round trips land in the
 * last bucket. 4 MB of counters is nothing next to 10 000 sockets. */
#define HIST_BUCKETS 1000000u
#define RETRY_BACKOFF_S 0.05
#define HARD_STOP_SLACK_S 10.0

enum conn_state { C_IDLE, C_CONNECTING, C_ACTIVE };

struct conn {
    int fd;
    uint8_t state;
    uint8_t want_out;   /* EPOLLOUT currently registered */
    uint8_t proven;     /* has completed an echo since (re)connecting */
    uint8_t parked;     /* proven during the ramp, waiting for the load start */
    uint32_t id;
    uint32_t seq;       /* message number on this connection */
    uint32_t off;       /* pattern offset of the current message */
    uint32_t sent;
    uint32_t rcvd;
    uint64_t t_send_ns; /* when the current message's first byte went out */
    double retry_at;    /* C_IDLE only: earliest time to (re)connect */
};

/* ---- options ---------------------------------------------------------- */
static const char *opt_host = "127.0.0.1";
static const char *opt_port = NULL;
static const char *opt_unix = NULL;
static long opt_conns = 1;
static long opt_size = 64;
static double opt_duration = 5.0;
static double opt_warmup = 1.0;
static double opt_connect_rate = 0.0;   /* 0: unpaced */
static long opt_connect_inflight = 128;
static double opt_connect_timeout = 8.0;
static long opt_server_pid = 0;
static int opt_verbose = 0;

/* ---- global state ----------------------------------------------------- */
static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static int g_family;
static int g_epfd = -1;
static struct conn *g_conns;
static unsigned char *g_pattern;   /* size + PATTERN_SHIFTS bytes */
static unsigned char *g_scratch;   /* receive buffer, size bytes */
static uint32_t *g_hist;

static long n_connecting;   /* connects in progress */
static long n_pending;      /* open but not yet proven (see top of file) */
static long n_active;       /* connected and ping-ponging */
static long n_idle_retry;   /* waiting for a back-off to expire */
static long n_started;      /* initial connects issued (not retries) */
static int load_started;
static int in_window;
static uint64_t w_msgs;
static uint64_t total_msgs; /* warm-up included; for --verbose */
static uint64_t e_connect, e_reset, e_eof, e_mismatch;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The real guard is the deadline check in the main loop; this alarm only
 * fires if that loop is somehow wedged, so it just gets out (async-safe). */
static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "loadgen: hard stop (alarm)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(124);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen (--port N [--host H] | --unix PATH) [--conns C] [--size S]\n"
            "               [--duration SEC] [--warmup SEC] [--connect-rate PER_SEC]\n"
            "               [--connect-inflight N] [--connect-timeout SEC] [--server-pid PID]\n"
            "               [--verbose]   (progress on stderr every 0.5 s)\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},
        {"unix", required_argument, 0, 'u'},
        {"conns", required_argument, 0, 'c'},
        {"size", required_argument, 0, 's'},
        {"duration", required_argument, 0, 'd'},
        {"warmup", required_argument, 0, 'w'},
        {"connect-rate", required_argument, 0, 'r'},
        {"connect-inflight", required_argument, 0, 'i'},
        {"connect-timeout", required_argument, 0, 't'},
        {"server-pid", required_argument, 0, 'P'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, '?'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h': opt_host = optarg; break;
        case 'p': opt_port = optarg; break;
        case 'u': opt_unix = optarg; break;
        case 'c': opt_conns = strtol(optarg, NULL, 10); break;
        case 's': opt_size = strtol(optarg, NULL, 10); break;
        case 'd': opt_duration = strtod(optarg, NULL); break;
        case 'w': opt_warmup = strtod(optarg, NULL); break;
        case 'r': opt_connect_rate = strtod(optarg, NULL); break;
        case 'i': opt_connect_inflight = strtol(optarg, NULL, 10); break;
        case 't': opt_connect_timeout = strtod(optarg, NULL); break;
        case 'P': opt_server_pid = strtol(optarg, NULL, 10); break;
        case 'v': opt_verbose = 1; break;
        default: usage();
        }
    }
    if ((!opt_port && !opt_unix) || (opt_port && opt_unix)) usage();
    if (opt_conns < 1 || opt_conns > 1000000 || opt_size < 1 || opt_size > (64l << 20) ||
        opt_duration <= 0 || opt_warmup < 0 || opt_connect_inflight < 1 ||
        opt_connect_timeout < 0 || opt_connect_rate < 0)
        usage();
}

static void resolve_target(void)
{
    memset(&g_addr, 0, sizeof g_addr);
    if (opt_unix) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&g_addr;
        if (strlen(opt_unix) >= sizeof sun->sun_path) {
            fprintf(stderr, "loadgen: unix path too long\n");
            exit(2);
        }
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, opt_unix);
        g_addrlen = sizeof *sun;
        g_family = AF_UNIX;
        return;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(opt_host, opt_port, &hints, &res);
    if (rc != 0 || !res) {
        fprintf(stderr, "loadgen: cannot resolve %s:%s: %s\n", opt_host, opt_port,
                gai_strerror(rc));
        exit(2);
    }
    memcpy(&g_addr, res->ai_addr, res->ai_addrlen);
    g_addrlen = res->ai_addrlen;
    g_family = res->ai_family;
    freeaddrinfo(res);
}

/* 10 000 connections need 10 000 fds; the soft limit is often 1024 while the
 * hard limit allows far more, and raising soft up to hard needs no privilege. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) perror("loadgen: setrlimit");
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)opt_conns + 16 > rl.rlim_cur)
        fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE %llu is too low for %ld conns\n",
                (unsigned long long)rl.rlim_cur, opt_conns);
}

/* xorshift: any byte sequence without short periods will do, and a fixed seed
 * keeps runs comparable. */
static void fill_pattern(void)
{
    size_t n = (size_t)opt_size + PATTERN_SHIFTS;
    g_pattern = malloc(n);
    g_scratch = malloc((size_t)opt_size);
    g_hist = calloc(HIST_BUCKETS, sizeof *g_hist);
    g_conns = calloc((size_t)opt_conns, sizeof *g_conns);
    if (!g_pattern || !g_scratch || !g_hist || !g_conns) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        g_pattern[i] = (unsigned char)(x >> 24);
    }
}

static void set_events(struct conn *c, uint32_t ev, int op)
{
    struct epoll_event e = {.events = ev, .data.u32 = c->id};
    if (epoll_ctl(g_epfd, op, c->fd, &e) != 0) perror("loadgen: epoll_ctl");
}

static void conn_close(struct conn *c)
{
    c->parked = 0;
    if (c->fd >= 0) {
        close(c->fd); /* close also drops the epoll registration */
        if (!c->proven) n_pending--;
    }
    c->proven = 0;
    if (c->state == C_CONNECTING) n_connecting--;
    else if (c->state == C_ACTIVE) n_active--;
    c->fd = -1;
    c->state = C_IDLE;
    c->want_out = 0;
}

/* Any failure: count it, drop the socket and come back later, so the offered
 * load stays at --conns whenever the server lets it. */
static void conn_fail(struct conn *c, uint64_t *counter, double now)
{
    (*counter)++;
    conn_close(c);
    c->retry_at = now + RETRY_BACKOFF_S;
    n_idle_retry++;
}

static void msg_begin(struct conn *c, double now);

static void conn_established(struct conn *c, double now)
{
    if (c->state == C_CONNECTING) n_connecting--;
    c->state = C_ACTIVE;
    n_active++;
    if (g_family != AF_UNIX) {
        /* Without it, a server's echo written in two pieces can stall on
         * Nagle + delayed ACK for 40 ms and the benchmark measures timers. */
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->want_out = 0;
    set_events(c, EPOLLIN, EPOLL_CTL_MOD);
    msg_begin(c, now);
}

static void conn_start(struct conn *c, double now)
{
    int fd = socket(g_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        /* EMFILE/ENOBUFS are local resource limits; treat as connect failure
         * and retry, rather than dying mid-run. */
        conn_fail(c, &e_connect, now);
        return;
    }
    c->fd = fd;
    c->state = C_CONNECTING;
    n_connecting++;
    n_pending++;
    int rc = connect(fd, (struct sockaddr *)&g_addr, g_addrlen);
    if (rc == 0) {
        /* Possible for unix sockets (and loopback TCP on some kernels). */
        set_events(c, EPOLLIN, EPOLL_CTL_ADD);
        conn_established(c, now);
        return;
    }
    if (errno == EINPROGRESS) {
        c->want_out = 1;
        set_events(c, EPOLLOUT, EPOLL_CTL_ADD);
        return;
    }
    if (errno == EAGAIN || errno == EADDRNOTAVAIL) {
        /* Unix socket: the listen backlog is full. TCP: out of ephemeral
         * ports for now. Both are back-pressure, not server faults: retry
         * quietly. */
        conn_close(c);
        c->retry_at = now + RETRY_BACKOFF_S;
        n_idle_retry++;
        return;
    }
    conn_fail(c, &e_connect, now);
}

static void msg_send(struct conn *c, double now)
{
    while (c->sent < (uint32_t)opt_size) {
        ssize_t n = send(c->fd, g_pattern + c->off + c->sent, (size_t)opt_size - c->sent,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (uint32_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                c->want_out = 1;
                set_events(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
            }
            return;
        }
        conn_fail(c, &e_reset, now);
        return;
    }
    /* Whole message is out: stop asking for writability, or level-triggered
     * EPOLLOUT would wake us on every loop. */
    if (c->want_out) {
        c->want_out = 0;
        set_events(c, EPOLLIN, EPOLL_CTL_MOD);
    }
}

static void msg_begin(struct conn *c, double now)
{
    c->off = (c->id * 7u + c->seq) % PATTERN_SHIFTS;
    c->sent = 0;
    c->rcvd = 0;
    c->t_send_ns = now_ns();
    msg_send(c, now);
}

static void on_readable(struct conn *c, double now)
{
    if (c->parked) {
        /* Nothing is owed to a parked connection: any byte is a server bug. */
        ssize_t n = recv(c->fd, g_scratch, 1, 0);
        if (n > 0) conn_fail(c, &e_mismatch, now);
        else if (n == 0) conn_fail(c, &e_eof, now);
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_fail(c, &e_reset, now);
        return;
    }
    /* Never read past the current message: the server has no business sending
     * more, and reading only what we expect keeps the check simple. */
    size_t want = (size_t)opt_size - c->rcvd;
    ssize_t n = recv(c->fd, g_scratch, want, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        conn_fail(c, &e_reset, now);
        return;
    }
    if (n == 0) {
        conn_fail(c, &e_eof, now);
        return;
    }
    /* An echo cannot return bytes we have not sent yet. */
    if (c->rcvd + (uint32_t)n > c->sent ||
        memcmp(g_scratch, g_pattern + c->off + c->rcvd, (size_t)n) != 0) {
        conn_fail(c, &e_mismatch, now);
        return;
    }
    c->rcvd += (uint32_t)n;
    if (c->rcvd < (uint32_t)opt_size) return;

    if (!c->proven) {
        c->proven = 1;
        n_pending--;
    }
    total_msgs++;
    c->seq++;
    if (!load_started) {
        c->parked = 1;
        return;
    }
    if (in_window) {
        uint64_t us = (now_ns() - c->t_send_ns) / 1000u;
        g_hist[us < HIST_BUCKETS ? us : HIST_BUCKETS - 1]++;
        w_msgs++;
    }
    msg_begin(c, now);
}

static void on_event(struct conn *c, uint32_t ev, double now)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) {
            conn_fail(c, &e_connect, now);
            return;
        }
        if (ev & (EPOLLOUT | EPOLLIN)) conn_established(c, now);
        return;
    }
    if (c->state != C_ACTIVE) return;
    if ((ev & EPOLLOUT) && c->sent < (uint32_t)opt_size) {
        msg_send(c, now);
        if (c->state != C_ACTIVE) return;
    }
    /* ERR/HUP go through recv so the real cause (reset or EOF) is counted. */
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, now);
}

/* CPU seconds of another process (all threads), from /proc/PID/stat fields
 * 14 (utime) and 15 (stime). The comm field may contain spaces and
 * parentheses, so parse from the last ')'. Returns 0 on success. */
static int proc_cpu_seconds(long pid, double *user, double *sys)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    p += 2; /* now at field 3 (state) */
    unsigned long long ut = 0, st = 0;
    if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    double tck = (double)sysconf(_SC_CLK_TCK);
    *user = (double)ut / tck;
    *sys = (double)st / tck;
    return 0;
}

/* Whole-machine CPU ticks from the first line of /proc/stat. On loopback the
 * kernel's receive path runs in softirq context: ticks landing there count in
 * the host's softirq bucket *and* in the stime of whichever process was
 * running (or of ksoftirqd). So hostBusy x cores - client - server is what
 * other processes (and ksoftirqd) used: a disturbance gauge. */
struct host_cpu {
    unsigned long long total, idle, softirq;
};

static int host_cpu(struct host_cpu *h)
{
    char buf[512];
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    unsigned long long v[8] = {0};
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) < 7)
        return -1;
    h->total = 0;
    for (int i = 0; i < 8; i++) h->total += v[i];
    h->idle = v[3] + v[4]; /* idle + iowait */
    h->softirq = v[6];
    return 0;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6; }

static double hist_percentile(uint64_t total, double q)
{
    if (total == 0) return 0;
    uint64_t target = (uint64_t)((double)total * q);
    if (target >= total) target = total - 1;
    uint64_t acc = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        acc += g_hist[i];
        if (acc > target) return (double)i;
    }
    return (double)(HIST_BUCKETS - 1);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    resolve_target();
    fill_pattern();

    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g_epfd < 0) {
        perror("loadgen: epoll_create1");
        return 1;
    }
    for (long i = 0; i < opt_conns; i++) {
        g_conns[i].fd = -1;
        g_conns[i].id = (uint32_t)i;
        g_conns[i].state = C_IDLE;
    }

    const double t0 = now_s();
    const double hard_stop =
        t0 + opt_connect_timeout + opt_warmup + opt_duration + HARD_STOP_SLACK_S;
    signal(SIGALRM, on_alarm);
    alarm((unsigned)(hard_stop - t0) + 3);

    double t_settled = -1;      /* every connection open and proven */
    double t_load = -1;         /* ping-pong started on every connection */
    double w_start = -1, w_end = -1;
    struct rusage ru0, ru1;
    double su0 = 0, ss0 = 0, su1 = 0, ss1 = 0;
    int srv_ok0 = -1, srv_ok1 = -1;
    struct host_cpu h0 = {0}, h1 = {0};
    int host_ok0 = -1, host_ok1 = -1;
    long connected_at_start = 0;
    int timed_out = 0;
    struct epoll_event evs[MAX_EVENTS];
    double last_retry_scan = 0;
    double last_report = t0;

    for (;;) {
        double now = now_s();
        if (now >= hard_stop) {
            timed_out = 1;
            break;
        }

        /* Open new connections: bounded in flight so a slow accept loop sees
         * a steady trickle instead of a SYN flood, optionally rate-paced. */
        if (n_started < opt_conns) {
            long allowed = opt_conns - n_started;
            if (opt_connect_rate > 0) {
                long by_rate = (long)((now - t0) * opt_connect_rate) + 1 - n_started;
                if (by_rate < allowed) allowed = by_rate;
            }
            long room = opt_connect_inflight - n_pending;
            if (room < allowed) allowed = room;
            for (long k = 0; k < allowed; k++) conn_start(&g_conns[n_started++], now);
        }
        /* Retries: a linear scan, but only while some are pending and at most
         * every 10 ms, so 10 000 healthy connections cost nothing here. */
        if (n_idle_retry > 0 && now - last_retry_scan >= 0.01) {
            last_retry_scan = now;
            for (long i = 0; i < n_started && n_pending < opt_connect_inflight; i++) {
                struct conn *c = &g_conns[i];
                if (c->state == C_IDLE && c->retry_at <= now) {
                    n_idle_retry--;
                    conn_start(c, now);
                }
            }
        }

        if (opt_verbose && now - last_report >= 0.5) {
            last_report = now;
            fprintf(stderr,
                    "loadgen: t=%.1f started=%ld connecting=%ld unproven=%ld active=%ld "
                    "retrying=%ld msgs=%llu errors=%llu\n",
                    now - t0, n_started, n_connecting, n_pending, n_active, n_idle_retry,
                    (unsigned long long)total_msgs,
                    (unsigned long long)(e_connect + e_reset + e_eof + e_mismatch));
        }
        if (t_settled < 0 && n_started == opt_conns && n_pending == 0 && n_idle_retry == 0)
            t_settled = now;

        if (!load_started) {
            if (t_settled >= 0 || now >= t0 + opt_connect_timeout) {
                load_started = 1;
                t_load = now;
                for (long i = 0; i < n_started; i++) {
                    struct conn *c = &g_conns[i];
                    if (c->parked) {
                        c->parked = 0;
                        msg_begin(c, now);
                    }
                }
            }
        } else if (w_start < 0) {
            if (now >= t_load + opt_warmup) {
                w_start = now_s();
                getrusage(RUSAGE_SELF, &ru0);
                if (opt_server_pid > 0) srv_ok0 = proc_cpu_seconds(opt_server_pid, &su0, &ss0);
                host_ok0 = host_cpu(&h0);
                /* Report proven connections: a merely connected one may
                 * still sit in the server's accept queue. */
                for (long i = 0; i < opt_conns; i++)
                    connected_at_start += g_conns[i].state == C_ACTIVE && g_conns[i].proven;
                w_msgs = 0;
                in_window = 1;
            }
        } else if (now >= w_start + opt_duration) {
            w_end = now_s();
            getrusage(RUSAGE_SELF, &ru1);
            if (opt_server_pid > 0) srv_ok1 = proc_cpu_seconds(opt_server_pid, &su1, &ss1);
            host_ok1 = host_cpu(&h1);
            in_window = 0;
            break;
        }

        /* Short timeouts while connects or retries are pending; otherwise the
         * loop only needs to notice the window edges. */
        int timeout_ms = (n_started < opt_conns || n_idle_retry > 0) ? 5 : 20;
        int n = epoll_wait(g_epfd, evs, MAX_EVENTS, timeout_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("loadgen: epoll_wait");
            break;
        }
        now = now_s();
        for (int i = 0; i < n; i++) on_event(&g_conns[evs[i].data.u32], evs[i].events, now);
    }

    if (w_start < 0 || w_end < 0) {
        /* Timed out before or inside the window: report what we have. */
        if (w_start < 0) {
            w_start = now_s();
            getrusage(RUSAGE_SELF, &ru0);
        }
        w_end = now_s();
        getrusage(RUSAGE_SELF, &ru1);
        if (opt_server_pid > 0) srv_ok1 = proc_cpu_seconds(opt_server_pid, &su1, &ss1);
        host_ok1 = host_cpu(&h1);
    }

    for (long i = 0; i < opt_conns; i++)
        if (g_conns[i].fd >= 0) close(g_conns[i].fd);
    close(g_epfd);

    double secs = w_end - w_start;
    double cu = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
    double cs = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
    uint64_t errors = e_connect + e_reset + e_eof + e_mismatch;
    double mps = secs > 0 ? (double)w_msgs / secs : 0;

    printf("{\"conns\":%ld,\"size\":%ld,\"msgs\":%llu,\"seconds\":%.4f,\"msgsPerSec\":%.1f,"
           "\"errors\":%llu,\"clientCpuUser\":%.3f,\"clientCpuSys\":%.3f,"
           "\"clientCpuShare\":%.4f",
           opt_conns, opt_size, (unsigned long long)w_msgs, secs, mps,
           (unsigned long long)errors, cu, cs, secs > 0 ? (cu + cs) / secs : 0);
    printf(",\"connected\":%ld,\"connectSeconds\":%.4f,\"connectErrors\":%llu,"
           "\"resetErrors\":%llu,\"eofErrors\":%llu,\"mismatchErrors\":%llu",
           connected_at_start, t_settled >= 0 ? t_settled - t0 : -1.0,
           (unsigned long long)e_connect, (unsigned long long)e_reset,
           (unsigned long long)e_eof, (unsigned long long)e_mismatch);
    printf(",\"rttP50Us\":%.0f,\"rttP99Us\":%.0f,\"rttP999Us\":%.0f",
           hist_percentile(w_msgs, 0.50), hist_percentile(w_msgs, 0.99),
           hist_percentile(w_msgs, 0.999));
    if (srv_ok0 == 0 && srv_ok1 == 0) {
        double sc = (su1 + ss1) - (su0 + ss0);
        printf(",\"serverCpu\":%.3f,\"serverCpuUser\":%.3f,\"serverCpuSys\":%.3f,"
               "\"serverCpuShare\":%.4f,\"serverCpuPerMsgUs\":%.3f",
               sc, su1 - su0, ss1 - ss0, secs > 0 ? sc / secs : 0,
               w_msgs ? sc * 1e6 / (double)w_msgs : 0);
    }
    if (host_ok0 == 0 && host_ok1 == 0 && h1.total > h0.total) {
        /* Shares of the whole machine (all cores together = 1). */
        double t = (double)(h1.total - h0.total);
        printf(",\"hostBusyShare\":%.4f,\"hostSoftirqShare\":%.4f",
               1.0 - (double)(h1.idle - h0.idle) / t, (double)(h1.softirq - h0.softirq) / t);
    }
    printf(",\"timedOut\":%s}\n", timed_out ? "true" : "false");
    fflush(stdout);
    return 0;
}
