#!/usr/bin/env python3
"""A foreign detector (protocol v1) that daemonises a helper as soon as it
starts, before its hello, the way a careless library does: it forks, the
child calls setsid and forks again, and the grandchild sleeps for an hour
holding standard output and error. Then it connects as usual and is
read-eof: it blocks in recv() and says dead on EOF or an error.

With pids=DIR in HALFOPEN_CONFIG the grandchild writes "<role>-<pid>" there.
"""
import json
import os
import socket
import sys
import time


def emit(event, **fields):
    line = {"event": event, "t_ns": time.clock_gettime_ns(time.CLOCK_MONOTONIC)}
    line.update(fields)
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


role = os.environ.get("HALFOPEN_ROLE", "watcher")
config = json.loads(os.environ.get("HALFOPEN_CONFIG") or "{}")
first = os.fork()
if first == 0:
    os.setsid()
    if os.fork() == 0:
        where = config.get("pids")
        if where:
            with open(os.path.join(where, "%s-%d" % (role, os.getpid())), "w") as f:
                f.write(str(os.getpid()))
        time.sleep(3600)
    os._exit(0)
os.waitpid(first, 0)

emit("hello", protocol=1, name="escapes", predicted_s=None)
side = os.environ["HALFOPEN_SIDE"]
host, port = os.environ["HALFOPEN_ADDR"].rsplit(":", 1)
if side == "server":
    ln = socket.create_server((host, int(port)))
    emit("ready")
    conn, _ = ln.accept()
else:
    emit("ready")
    deadline = time.monotonic() + 5
    while True:
        try:
            conn = socket.create_connection((host, int(port)), timeout=3)
            conn.settimeout(None)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
emit("connected")
while True:
    try:
        data = conn.recv(65536)
    except OSError as e:
        emit("dead", reason=os.strerror(e.errno))
        break
    if not data:
        emit("dead", reason="EOF")
        break
time.sleep(3600)
