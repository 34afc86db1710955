/*
 * protocol.h - shared helpers for halfopen external detectors (protocol v1).
 *
 * Everything the four example watchers have in common lives here and in
 * protocol.c: JSON-line output with CLOCK_MONOTONIC timestamps, errno names,
 * the HALFOPEN_CONFIG parser, Go-syntax durations, signal handling, and the
 * listen/accept/dial helpers.  See docs/protocol.md for the protocol itself.
 */
#ifndef HALFOPEN_PROTOCOL_H
#define HALFOPEN_PROTOCOL_H

#include <signal.h>
#include <stdint.h>

/* ---- time ------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds: the harness's clock, the same in every
 * network namespace. */
int64_t ho_now_ns(void);
int64_t ho_now_ms(void);
/* Sleep for ms milliseconds, resuming after signals. */
void ho_sleep_ms(int64_t ms);

/* ---- output: one JSON object per line on stdout, flushed -------------- */

/* {"event":"hello","t_ns":...,"protocol":1,"name":NAME,"predicted_s":[lo,hi]}
 * or predicted_s null when has_prediction is 0. */
void ho_hello(const char *name, int has_prediction, double lo_s, double hi_s);
/* {"event":EVENT,"t_ns":...} - for "ready" and "connected". */
void ho_event(const char *event);
/* {"event":"dead","t_ns":...,"reason":REASON} */
void ho_dead(const char *reason);
/* {"event":"log","t_ns":...,"msg":...}, printf-style. */
void ho_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- errno ------------------------------------------------------------ */

/* "ETIMEDOUT", "ECONNRESET", ...; "ERRNO_<n>" for numbers not in the table.
 * Returns a static string. */
const char *ho_errno_name(int err);

/* ---- configuration (HALFOPEN_CONFIG) ----------------------------------- */

/* Parse a flat JSON object, e.g. {"idle":"1s","cnt":"3"}.  Tolerant: values
 * may also be bare numbers/true/false/null; nested values are kept as raw
 * text; malformed input keeps whatever was parsed before the error.
 * Returns 0 on success, -1 on a syntax error (an error message is logged by
 * ho_init). */
int ho_config_parse(const char *json);
/* The value of KEY, or NULL. */
const char *ho_config_get(const char *key);
/* Duration value of KEY in milliseconds (Go syntax, "200ms", "1.5s", "1m30s";
 * a bare number means seconds), or def_ms if absent or invalid (logged). */
int64_t ho_config_duration_ms(const char *key, int64_t def_ms);
/* Integer value of KEY, or def if absent or invalid (logged). */
long ho_config_int(const char *key, long def);
/* Boolean value of KEY ("true"/"1"/"yes"/"on" are true), or def. */
int ho_config_bool(const char *key, int def);

/* Parse a Go duration ("300ms", "-1.5h", "1h2m3.5s", "0", units ns us µs ms
 * s m h) into nanoseconds.  A bare number without a unit is taken as
 * seconds.  Returns 0 on success, -1 if malformed or overflowing. */
int ho_parse_duration_ns(const char *s, int64_t *out_ns);

/* ---- process setup ------------------------------------------------------ */

/* Environment as given by the harness. */
struct ho_env {
    const char *role;  /* "watcher" (default) or "peer" */
    const char *side;  /* "server": the watcher listens, the peer dials;
                          "client": the watcher dials, the peer listens */
    const char *addr;  /* "IP:PORT" or "[IPv6]:PORT" */
    int listens;       /* 1 if THIS process listens (from role and side) */
    int reconnect;     /* config "reconnect", else HALFOPEN_RECONNECT=1 */
};
extern struct ho_env ho_env;

/* Set when SIGTERM/SIGINT arrived (the handler also _exit(0)s at once). */
extern volatile sig_atomic_t ho_terminated;

/* Line-buffer stdout, install signal handlers (SIGTERM/SIGINT: exit 0 at
 * once; SIGPIPE ignored; the usual storm signals - SIGUSR1/2, SIGALRM,
 * SIGHUP, SIGWINCH, SIGCHLD, SIGURG, SIGIO, SIGPROF, SIGVTALRM, real-time
 * signals - caught by a handler that does nothing, WITHOUT SA_RESTART, so
 * blocking calls return EINTR as the reference text warns), read the
 * environment and HALFOPEN_CONFIG.  Exits with status 2 on a missing or bad
 * HALFOPEN_ADDR. */
void ho_init(void);

/* ---- connections ------------------------------------------------------- */

/* If this process listens: create the listening socket on HALFOPEN_ADDR.
 * Prints "ready" either way (listening, or about to dial).  Exits 1 on
 * failure, after a log line. */
void ho_ready(void);

/* Establish one connection: accept one (listening side) or dial, retrying
 * a refused dial for up to retry_ms (forever if retry_ms < 0).  Prints
 * "connected" and returns the blocking socket, or returns -1 after a log
 * line if it could not. */
int ho_establish(int64_t retry_ms);

/* The usual watcher main loop: ready, then establish, run watch(fd) which
 * returns the dead reason, print dead, close; again if reconnecting (see
 * ho_env.reconnect), else exit 0.  Never returns. */
typedef const char *(*ho_watch_fn)(int fd);
void ho_run_watcher(ho_watch_fn watch) __attribute__((noreturn));

/* HALFOPEN_ROLE=peer (spec peer=self): a plain echo peer.  Prints hello,
 * ready and connected, echoes every byte, establishes again when the
 * connection ends.  Never returns. */
void ho_run_echo_peer(const char *name) __attribute__((noreturn));

#endif
