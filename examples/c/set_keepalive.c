/*
 * set_keepalive.c - the reference text's set_keepalive():
 *
 *     set_keepalive(fd, 1, keep_idle, keep_interval, keep_count)
 *
 * sets SO_KEEPALIVE and the per-socket TCP_KEEPIDLE / TCP_KEEPINTVL /
 * TCP_KEEPCNT (config "idle", "intvl", durations rounded up to whole
 * seconds, at least 1; "cnt", an integer; defaults 1s, 1s, 3 as in the
 * reference text's comments), then blocks in recv():
 *   recv() == 0 -> dead "EOF";  recv() < 0 and not EINTR -> dead with the
 *   errno name (ETIMEDOUT when the keepalive probes go unanswered).
 *
 * Predicted detection for a silent peer: [intvl*cnt, idle + intvl*cnt]
 * seconds, depending on how long the connection had been idle.
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int keep_idle, keep_interval, keep_count;

/* As in the reference text (SOL_TCP == IPPROTO_TCP on Linux); failures are
 * reported as log lines instead of stderr. */
static void set_keepalive(int fd, int keep_alive, int idle, int interval,
                          int count)
{
    if (!keep_alive)
        return;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keep_alive,
                   sizeof keep_alive) == -1)
        ho_log("setsockopt SOL_SOCKET::SO_KEEPALIVE failed, %s",
               ho_errno_name(errno));
    if (setsockopt(fd, SOL_TCP, TCP_KEEPIDLE, &idle, sizeof idle) == -1)
        ho_log("setsockopt SOL_TCP::TCP_KEEPIDLE failed, %s",
               ho_errno_name(errno));
    if (setsockopt(fd, SOL_TCP, TCP_KEEPINTVL, &interval, sizeof interval) ==
        -1)
        ho_log("setsockopt SOL_TCP::TCP_KEEPINTVL failed, %s",
               ho_errno_name(errno));
    if (setsockopt(fd, SOL_TCP, TCP_KEEPCNT, &count, sizeof count) == -1)
        ho_log("setsockopt SOL_TCP::TCP_KEEPCNT failed, %s",
               ho_errno_name(errno));
}

static const char *watch(int fd)
{
    char buf[4096];
    set_keepalive(fd, 1, keep_idle, keep_interval, keep_count);
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r > 0)
            continue; /* data from the peer: consumed */
        if (r == 0)
            return "EOF";
        if (errno == EINTR)
            continue;
        return ho_errno_name(errno);
    }
}

/* Duration key -> whole seconds, rounded up, at least 1. */
static int seconds(const char *key, int64_t def_ms)
{
    int64_t ms = ho_config_duration_ms(key, def_ms);
    int64_t s = (ms + 999) / 1000;
    if (s < 1)
        s = 1;
    if (s > 32767) /* the kernel's MAX_TCP_KEEPIDLE / MAX_TCP_KEEPINTVL */
        s = 32767;
    if (s * 1000 != ms)
        ho_log("keepalive %s=%lldms rounded to %llds", key, (long long)ms,
               (long long)s);
    return (int)s;
}

int main(void)
{
    ho_init();
    if (strcmp(ho_env.role, "peer") == 0)
        ho_run_echo_peer("c-set-keepalive-peer");
    keep_idle = seconds("idle", 1000);
    keep_interval = seconds("intvl", 1000);
    long cnt = ho_config_int("cnt", 3);
    if (cnt < 1 || cnt > 127) { /* the kernel's MAX_TCP_KEEPCNT */
        ho_log("keepalive cnt=%ld out of range 1..127; using 3", cnt);
        cnt = 3;
    }
    keep_count = (int)cnt;
    double lo = (double)keep_interval * keep_count;
    /* [cnt·intvl, idle + cnt·intvl] by phase; the keepalive timer is a
       timer-wheel timer, late by up to 1/8 of its length. */
    ho_hello("c-set-keepalive", 1, lo, (keep_idle + lo) * 1.125);
    ho_log("set-keepalive: idle=%ds intvl=%ds cnt=%d reconnect=%s side=%s",
           keep_idle, keep_interval, keep_count,
           ho_env.reconnect ? "true" : "false", ho_env.side);
    ho_run_watcher(watch);
}
