#!/usr/bin/env python3
"""A foreign detector (protocol v1) that misbehaves on purpose, for
halfopen's own tests. HALFOPEN_CONFIG chooses how (how=) and when (when=):

  how=daemon   fork, setsid, fork again: the grandchild ignores SIGTERM,
               SIGHUP and SIGINT, keeps standard output and error open,
               and sleeps for an hour
  how=hide     the same, but the grandchild closes every file descriptor,
               changes its name and joins a new process group; the
               program itself then closes its standard output and sleeps
               (it never says dead)
  how=bomb     fork children that sleep for an hour, until the kernel has
               refused 100 forks (at most 10 000 tries), counting both;
               at start, the program then sleeps and never says hello

  when=start   before the hello (so inside the probe that reads it)
  when=connected   once the connection is up (inside the sample's lab)

Otherwise it is read-eof: it blocks in recv() and says dead on EOF or an
error. Each helper writes "<role>-<pid>" into the directory given as pids=;
the bomb writes "bomb-<when>-<pid>" holding "forked N refused M".
"""
import ctypes
import json
import os
import signal
import socket
import sys
import time

config = json.loads(os.environ.get("HALFOPEN_CONFIG") or "{}")
role = os.environ.get("HALFOPEN_ROLE", "watcher")
where = config.get("pids", "")
how, when = config.get("how", "daemon"), config.get("when", "connected")


def emit(event, **fields):
    line = {"event": event, "t_ns": time.clock_gettime_ns(time.CLOCK_MONOTONIC)}
    line.update(fields)
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def note(name, text):
    if where:
        with open(os.path.join(where, name), "w") as f:
            f.write(text)


def daemonise(hide):
    first = os.fork()
    if first == 0:
        os.setsid()
        if os.fork() == 0:
            for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                signal.signal(s, signal.SIG_IGN)
            note("%s-%d" % (role, os.getpid()), str(os.getpid()))
            if hide:
                os.setpgid(0, 0)
                os.closerange(0, 1024)
                ctypes.CDLL(None).prctl(15, b"kworker/0:1", 0, 0, 0)  # PR_SET_NAME
            time.sleep(3600)
            os._exit(0)
        os._exit(0)
    os.waitpid(first, 0)


def bomb():
    forked = refused = 0
    for _ in range(10000):
        try:
            pid = os.fork()
        except OSError:
            refused += 1
            if refused == 1:
                # The limit is reached: say so at once, in case the run
                # ends the program before its tries are over.
                note("bomb-%s-%d" % (when, os.getpid()), "forked %d refused %d" % (forked, refused))
            if refused == 100:
                break
            continue
        if pid == 0:
            # No exec: a forked copy that sleeps costs the kernel less than
            # a new program, so the limit is reached soon on a busy machine.
            time.sleep(3600)
            os._exit(0)
        forked += 1
    note("bomb-%s-%d" % (when, os.getpid()), "forked %d refused %d" % (forked, refused))


def misbehave():
    if how == "bomb":
        bomb()
        if when == "start":
            time.sleep(3600)
    else:
        daemonise(how == "hide")
    if how == "hide" and when == "connected":
        os.close(1)
        time.sleep(3600)


if when == "start":
    misbehave()
emit("hello", protocol=1, name="misbehaves", predicted_s=None)
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
if when == "connected":
    misbehave()
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
