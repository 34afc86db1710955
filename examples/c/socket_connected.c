/*
 * socket_connected.c - the reference text's SocketConnected():
 *
 *     getsockopt(sock, IPPROTO_TCP, TCP_INFO, &info, &len);
 *     if (info.tcpi_state == TCP_ESTABLISHED) connected; else disconnected;
 *
 * polled every "every" (config, default 100ms).  The peer is declared dead
 * when tcpi_state is no longer TCP_ESTABLISHED; the reason is the state's
 * name ("CLOSE_WAIT" after a FIN), or for CLOSE the pending socket error
 * (SO_ERROR, e.g. "ECONNRESET" after a RST) when there is one.
 *
 * Data from the peer is drained between polls, but reads decide nothing:
 * a 0-byte read (EOF) or a read error only stops the draining; only
 * TCP_INFO decides.  A read error is remembered so that, if it consumed the
 * socket's error, the CLOSE reason can still name it.
 *
 * Predicted detection for a silent peer: never while idle (nothing changes
 * the state of an idle connection whose peer vanished).
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int64_t every_ms;

static const char *state_name(int st)
{
    switch (st) {
    case TCP_ESTABLISHED: return "ESTABLISHED";
    case TCP_SYN_SENT:    return "SYN_SENT";
    case TCP_SYN_RECV:    return "SYN_RECV";
    case TCP_FIN_WAIT1:   return "FIN_WAIT1";
    case TCP_FIN_WAIT2:   return "FIN_WAIT2";
    case TCP_TIME_WAIT:   return "TIME_WAIT";
    case TCP_CLOSE:       return "CLOSE";
    case TCP_CLOSE_WAIT:  return "CLOSE_WAIT";
    case TCP_LAST_ACK:    return "LAST_ACK";
    case TCP_LISTEN:      return "LISTEN";
    case TCP_CLOSING:     return "CLOSING";
    default: {
        static char other[32];
        snprintf(other, sizeof other, "STATE_%d", st);
        return other;
    }
    }
}

/* SocketConnected: 1 if ESTABLISHED, 0 if not (state in *state), -1 if
 * getsockopt itself failed (errno set). */
static int socket_connected(int sock, int *state)
{
    struct tcp_info info;
    socklen_t len = sizeof info;
    memset(&info, 0, sizeof info);
    if (getsockopt(sock, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
        return -1;
    *state = info.tcpi_state;
    return info.tcpi_state == TCP_ESTABLISHED;
}

static const char *watch(int fd)
{
    char buf[4096];
    int reading = 1;  /* stop draining after EOF/error/POLLERR/POLLHUP */
    int read_err = 0; /* errno of a failed read, if any */
    int64_t next = ho_now_ms();
    for (;;) {
        int state;
        int c = socket_connected(fd, &state);
        if (c < 0)
            return ho_errno_name(errno);
        if (c == 0) {
            if (state == TCP_CLOSE) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err)
                    return ho_errno_name(err);
                if (read_err)
                    return ho_errno_name(read_err);
            }
            return state_name(state);
        }

        next += every_ms;
        if (next < ho_now_ms())
            next = ho_now_ms() + every_ms; /* fell behind: do not burst */

        /* Until the next poll: drain whatever the peer sends. */
        for (;;) {
            int64_t left = next - ho_now_ms();
            if (left <= 0)
                break;
            if (!reading) {
                ho_sleep_ms(left);
                break;
            }
            struct pollfd pfd = {fd, POLLIN, 0};
            int n = poll(&pfd, 1, (int)left);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return ho_errno_name(errno);
            }
            if (n == 0)
                break;
            if (pfd.revents & POLLIN) {
                ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (r > 0)
                    continue;
                if (r == 0) {
                    reading = 0; /* EOF: TCP_INFO will say so */
                    continue;
                }
                if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                    continue;
                read_err = errno;
                reading = 0;
                continue;
            }
            /* POLLERR/POLLHUP without data: leave the error for SO_ERROR */
            reading = 0;
        }
    }
}

int main(void)
{
    ho_init();
    if (strcmp(ho_env.role, "peer") == 0)
        ho_run_echo_peer("c-socket-connected-peer");
    every_ms = ho_config_duration_ms("every", 100);
    if (every_ms <= 0)
        every_ms = 1;
    ho_hello("c-socket-connected", 0, 0, 0);
    ho_log("socket-connected: every=%lldms reconnect=%s side=%s",
           (long long)every_ms, ho_env.reconnect ? "true" : "false",
           ho_env.side);
    ho_run_watcher(watch);
}
