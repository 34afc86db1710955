#!/usr/bin/env python3
"""A protocol v1 watcher that writes requests itself, as a library client.

Watcher (side client): dials, says connected, exchanges one ping/pong (so
that its peer's kernel leaves quick-ACK mode and delays its ACKs, as a
server does), then writes a request and blocks reading its answer, with
TCP_USER_TIMEOUT set from HALFOPEN_CONFIG user_timeout_ms (default 1500).
Its peer (peer=self) answers the ping and then reads without answering;
with HALFOPEN_CONFIG quickack=1 it acknowledges every segment at once
(TCP_QUICKACK before each read), as a server that answers at once would,
so that no delayed ACK leaves the request unacknowledged for long.
"""
import json
import os
import signal
import socket
import sys
import threading
import time

TCP_USER_TIMEOUT = 18


def emit(event, **fields):
    line = {"event": event, "t_ns": time.clock_gettime_ns(time.CLOCK_MONOTONIC)}
    line.update(fields)
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def exit_on_term():
    sigs = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)

    def wait():
        signal.sigwait(sigs)
        os._exit(0)

    threading.Thread(target=wait, daemon=True).start()


def main():
    exit_on_term()
    role = os.environ.get("HALFOPEN_ROLE", "watcher")
    host, port = os.environ["HALFOPEN_ADDR"].rsplit(":", 1)
    config = json.loads(os.environ.get("HALFOPEN_CONFIG") or "{}")
    ut = int(config.get("user_timeout_ms", "1500"))
    if role == "peer":
        emit("hello", protocol=1, name="silent-server", predicted_s=None)
        ln = socket.create_server((host, int(port)))
        emit("ready")
        conn, _ = ln.accept()
        emit("connected")
        f = conn.makefile("rb")
        f.readline()
        conn.sendall(b"pong\n")
        quick = config.get("quickack") == "1"
        while True:
            if quick:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            if not conn.recv(65536):
                break
        while True:
            time.sleep(3600)
    emit("hello", protocol=1, name="request-watcher", predicted_s=[0, ut / 1000 + 0.5])
    emit("ready")
    deadline = time.monotonic() + 5
    while True:
        try:
            conn = socket.create_connection((host, int(port)), timeout=3)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    conn.settimeout(None)
    conn.setsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT, ut)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    emit("connected")
    try:
        conn.sendall(b"ping\n")
        conn.recv(5)
        time.sleep(0.2)
        conn.sendall(b"GET /key\n")
        data = conn.recv(65536)
        reason = "EOF" if not data else "ANSWER"
    except OSError as e:
        reason = {110: "ETIMEDOUT", 104: "ECONNRESET"}.get(e.errno, str(e.errno))
    emit("dead", reason=reason)
    while True:
        time.sleep(3600)


main()
