/*
 * select_recv.c - the reference text's select() + recv() watcher.
 *
 * "When select() says the socket is readable and recv() returns 0, the
 * connection is gone.  recv() <= 0 means disconnected, but check errno for
 * EINTR: then recv() returned because of a signal and the connection is
 * still fine - do not close it."
 *
 * The watcher is passive: it never sends.  Bytes the peer sends (at
 * irregular times) are read and discarded.  select()'s timeout (config
 * "timeout", default 1s) only bounds each wait; a timeout is not death.
 * After EINTR the remaining time is recomputed, not restarted.
 *
 * Predicted detection for a silent peer: never (only FIN or RST end it).
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <errno.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>

static int64_t timeout_ms;

static const char *watch(int fd)
{
    char buf[4096];
    for (;;) {
        int64_t deadline = ho_now_ms() + timeout_ms;
        for (;;) {
            int64_t left = deadline - ho_now_ms();
            if (left < 0)
                left = 0;
            struct timeval tv = {(time_t)(left / 1000),
                                 (suseconds_t)(left % 1000) * 1000};
            fd_set rfds;
            FD_ZERO(&rfds);
            FD_SET(fd, &rfds);
            int n = select(fd + 1, &rfds, NULL, NULL, &tv);
            if (n < 0) {
                if (errno == EINTR)
                    continue; /* a signal, not the peer: wait the rest */
                return ho_errno_name(errno);
            }
            if (n == 0)
                break; /* timeout: idle is not dead; wait again */
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r > 0)
                continue; /* data from the peer: consumed */
            if (r == 0)
                return "EOF"; /* readable and 0 bytes: the peer closed */
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue; /* the reference text's point: still connected */
            return ho_errno_name(errno);
        }
    }
}

int main(void)
{
    ho_init();
    if (strcmp(ho_env.role, "peer") == 0)
        ho_run_echo_peer("c-select-recv-peer");
    timeout_ms = ho_config_duration_ms("timeout", 1000);
    if (timeout_ms <= 0)
        timeout_ms = 1;
    ho_hello("c-select-recv", 0, 0, 0);
    ho_log("select-recv: timeout=%lldms reconnect=%s side=%s",
           (long long)timeout_ms, ho_env.reconnect ? "true" : "false",
           ho_env.side);
    ho_run_watcher(watch);
}
