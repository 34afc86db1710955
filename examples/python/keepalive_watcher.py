#!/usr/bin/env python3
"""A halfopen external detector (protocol v1) in Python, standard library only.

The watcher sets SO_KEEPALIVE with TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT
(the reference text's set_keepalive, from Python) and blocks in recv():
0 bytes is "EOF", an OSError is its errno name (ETIMEDOUT when the keepalive
probes go unanswered).  Python retries EINTR itself (PEP 475); the storm
signals are caught so that they do not kill it.

Config (HALFOPEN_CONFIG): idle, intvl (Go durations, rounded up to whole
seconds), cnt; reconnect (default: HALFOPEN_RECONNECT=1).  Predicted for a
silent peer: [intvl*cnt, idle + intvl*cnt] seconds.

With HALFOPEN_ROLE=peer (peer=self) it is an echo peer that reads urgent bytes
in band (SO_OOBINLINE).
"""
import errno
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time


def emit(event, **fields):
    line = {"event": event, "t_ns": time.clock_gettime_ns(time.CLOCK_MONOTONIC)}
    line.update(fields)
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text):
    """Seconds in a Go duration such as 1s, 1.5s, 200ms, 1m30s."""
    if text == "0":
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a Go duration")
    return sum(float(n) * UNITS[u] for n, u in parts)


def whole_seconds(config, key, default):
    return max(1, math.ceil(go_duration(config.get(key, default)) - 1e-9))


def exit_on_term():
    """End the process when SIGTERM or SIGINT comes, whatever it is doing.

    Both are blocked in every thread and taken by sigwait() in a thread of
    their own: a Python-level handler runs only between bytecodes, so one
    that arrives just before a blocking call (pause, recv) would be noticed
    too late, or never.
    """
    sigs = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)

    def wait():
        signal.sigwait(sigs)
        os._exit(0)

    threading.Thread(target=wait, daemon=True).start()


def main():
    exit_on_term()
    for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGWINCH):
        signal.signal(s, lambda *_: None)  # survive a signal storm

    role = os.environ.get("HALFOPEN_ROLE", "watcher")
    side = os.environ["HALFOPEN_SIDE"]
    host, port = os.environ["HALFOPEN_ADDR"].rsplit(":", 1)
    config = json.loads(os.environ.get("HALFOPEN_CONFIG") or "{}")
    listens = (side == "server") == (role == "watcher")
    reconnect = config.get("reconnect", "true" if os.environ.get("HALFOPEN_RECONNECT") == "1" else "false") == "true"

    if role == "peer":
        emit("hello", protocol=1, name="python-echo-peer", predicted_s=None)
    else:
        idle = whole_seconds(config, "idle", "1s")
        intvl = whole_seconds(config, "intvl", "1s")
        cnt = int(config.get("cnt", "3"))
        # [cnt·intvl, idle + cnt·intvl] by phase (tcp_keepalive_timer()); the
        # keepalive timer is a timer-wheel timer, late by up to 1/8 of its
        # length, so the upper bound is stretched by 12.5 %.
        emit("hello", protocol=1, name="python-keepalive", predicted_s=[intvl * cnt, (idle + intvl * cnt) * 1.125])
        emit("log", msg=f"python keepalive: idle={idle}s intvl={intvl}s cnt={cnt} side={side}")

    listener = None
    if listens:
        listener = socket.create_server((host.strip("[]"), int(port)))
    emit("ready")

    def establish():
        if listener is not None:
            conn, _ = listener.accept()
        else:
            deadline = time.monotonic() + 5
            while True:
                try:
                    conn = socket.create_connection((host.strip("[]"), int(port)), timeout=3)
                    conn.settimeout(None)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        emit("connected")
        return conn

    while True:
        conn = establish()
        if role == "peer":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                conn.sendall(data)
            conn.close()
            continue
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, intvl)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, cnt)
        while True:
            try:
                data = conn.recv(65536)
            except OSError as e:
                emit("dead", reason=errno.errorcode.get(e.errno, str(e.errno)))
                break
            if not data:
                emit("dead", reason="EOF")
                break
        conn.close()
        if not reconnect:
            threading.Event().wait()  # until SIGTERM ends the process


if __name__ == "__main__":
    main()
