#!/usr/bin/env python3
"""A careless external detector (protocol v1), for halfopen's own tests.

As a watcher it is read-eof: it blocks in recv() and says dead on EOF or an
error. As a peer (peer=self) it echoes. Either way, once connected, it
daemonises a helper the way a careless library does: fork, setsid, fork
again; the helper ignores SIGTERM, SIGHUP and SIGINT, keeps standard output
and error open, and runs sleep with an empty environment (no HALFOPEN_RUN to
find it by). It writes "<role>-<pid>" into the directory given as the pids
key of HALFOPEN_CONFIG, so that a test can look for it afterwards.

With dump=1 it also writes "<role>-env-<pid>.json" there: its uid, gid,
environment and HALFOPEN_CONFIG as it received them.
"""
import json
import os
import signal
import socket
import sys
import time


def emit(event, **fields):
    line = {"event": event, "t_ns": time.clock_gettime_ns(time.CLOCK_MONOTONIC)}
    line.update(fields)
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


role = os.environ.get("HALFOPEN_ROLE", "watcher")
side = os.environ["HALFOPEN_SIDE"]
host, port = os.environ["HALFOPEN_ADDR"].rsplit(":", 1)
config = json.loads(os.environ.get("HALFOPEN_CONFIG") or "{}")
listens = (side == "server") == (role == "watcher")


def daemonize():
    where = config.get("pids")
    if not where:
        return
    first = os.fork()
    if first == 0:
        os.setsid()
        if os.fork() == 0:
            for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                signal.signal(s, signal.SIG_IGN)
            with open(os.path.join(where, "%s-%d" % (role, os.getpid())), "w") as f:
                f.write(str(os.getpid()))
            os.execve("/bin/sleep", ["sleep", "1000"], {})
        os._exit(0)
    os.waitpid(first, 0)


emit("hello", protocol=1, name="careless-daemon", predicted_s=None)
if config.get("dump") == "1" and config.get("pids"):
    dump = os.path.join(config["pids"], "%s-env-%d.json" % (role, os.getpid()))
    with open(dump + ".tmp", "w") as f:
        json.dump({"uid": os.getuid(), "gid": os.getgid(), "env": dict(os.environ), "config": config}, f)
    os.rename(dump + ".tmp", dump)  # whole or not at all, if the sample ends first
listener = None
if listens:
    listener = socket.create_server((host, int(port)))
emit("ready")
if listener is not None:
    conn, _ = listener.accept()
else:
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
daemonize()
while True:
    try:
        data = conn.recv(65536)
    except OSError as e:
        if role == "watcher":
            emit("dead", reason=os.strerror(e.errno))
        break
    if not data:
        if role == "watcher":
            emit("dead", reason="EOF")
        break
    if role == "peer":
        conn.sendall(data)
signal.pause()
