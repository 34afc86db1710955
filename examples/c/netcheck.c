/*
 * netcheck.c - the reference text's netcheck():
 *
 *     recv(fd, buf, buf_size);                     // clear (OOB) data
 *     if (send(fd, (void *)"\0", 1, MSG_OOB) < 0)  // probe
 *         return -1;                               // connection failed
 *
 * run every "every" (config, default 200ms).  A failed send is dead with
 * its errno name (ECONNRESET after a RST, ETIMEDOUT or EPIPE once the
 * kernel has given up retransmitting the probes).  Between probes the
 * socket is polled for POLLIN/POLLRDHUP/POLLERR: data is drained, a 0-byte
 * read is dead "EOF", a read error or pending socket error is dead with its
 * errno name.
 *
 * The probe is a 1-byte urgent segment; the reference text's caveat holds:
 * do not use it on a connection whose protocol itself uses OOB data.  The
 * send is non-blocking; a full send buffer is logged, not judged.
 *
 * Predicted detection: for a silent peer it is the kernel's retransmission
 * give-up, bounded by tcp_retries2, which the program cannot read from the
 * lab (its hello is read elsewhere).  Config "retries2" says what the lab
 * sets; with it the hello declares the range below (retrans_range), without
 * it null ("never"), which a silent peer then contradicts.
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

static int64_t every_ms;

/* Read everything available without blocking.  Returns a dead reason or
 * NULL. */
static const char *drain(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0)
            continue;
        if (r == 0)
            return "EOF";
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return NULL;
        return ho_errno_name(errno);
    }
}

static int full_logged;

/* netcheck: clear, then send one OOB byte.  Returns a dead reason or NULL. */
static const char *netcheck(int fd)
{
    const char *dead = drain(fd);
    if (dead)
        return dead;
    for (;;) {
        if (send(fd, "\0", 1, MSG_OOB | MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
            full_logged = 0;
            return NULL;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!full_logged++)
                ho_log("netcheck: send buffer full, probe skipped");
            return NULL;
        }
        return ho_errno_name(errno);
    }
}

static const char *watch(int fd)
{
    int64_t next = ho_now_ms() + every_ms;
    for (;;) {
        int64_t left = next - ho_now_ms();
        if (left <= 0) {
            const char *dead = netcheck(fd);
            if (dead)
                return dead;
            next += every_ms;
            if (next < ho_now_ms())
                next = ho_now_ms() + every_ms;
            continue;
        }
        struct pollfd pfd = {fd, POLLIN | POLLRDHUP, 0};
        int n = poll(&pfd, 1, (int)left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ho_errno_name(errno);
        }
        if (n == 0)
            continue;
        if (pfd.revents & POLLERR) {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
                return ho_errno_name(err);
        }
        const char *dead = drain(fd);
        if (dead)
            return dead;
        if (pfd.revents & (POLLRDHUP | POLLHUP))
            return "EOF"; /* shut down with nothing left to read */
    }
}

/* The kernel's retransmission give-up for a silent peer (Linux
 * net/ipv4/tcp_timer.c): tcp_model_timeout() with tcp_retries2 = n is
 * (2^(n+1) - 1) x 200 ms (n <= 9; then 204.6 s + (n - 9) x 120 s); it counts
 * from the first RTO retransmission (204 ms after the probe; up to 416 ms
 * after a tail-loss probe) and is checked only when the doubling RTO timer
 * fires, each firing up to 1/8 late on the timer wheel; one firing later is
 * allowed for an RTO that is not exactly 204 ms.  The first unanswered probe
 * goes within `every` of the death. */
static void retrans_range(long n, double every_s, double *lo, double *hi)
{
    double model = n <= 9 ? ((2L << n) - 1) * 0.2 : 1023 * 0.2 + (n - 9) * 120.0;
    double rto = 0.204, iv = rto, sum = 0;
    while (sum * 1.125 < model) { /* the first firing that may reach it */
        iv = iv * 2 < 120 ? iv * 2 : 120;
        sum += iv;
    }
    double next = iv * 2 < 120 ? iv * 2 : 120;
    *lo = rto + sum;
    *hi = every_s + 0.416 + (sum + next) * 1.125 + 0.05;
}

int main(void)
{
    ho_init();
    if (strcmp(ho_env.role, "peer") == 0)
        ho_run_echo_peer("c-netcheck-peer");
    every_ms = ho_config_duration_ms("every", 200);
    if (every_ms <= 0)
        every_ms = 1;
    long retries2 = ho_config_int("retries2", -1);
    if (retries2 >= 1 && retries2 <= 255) {
        double lo, hi;
        retrans_range(retries2, every_ms / 1000.0, &lo, &hi);
        ho_hello("c-netcheck", 1, lo, hi);
    } else {
        ho_hello("c-netcheck", 0, 0, 0);
    }
    ho_log("netcheck: every=%lldms reconnect=%s side=%s", (long long)every_ms,
           ho_env.reconnect ? "true" : "false", ho_env.side);
    ho_run_watcher(watch);
}
