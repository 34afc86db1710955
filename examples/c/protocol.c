/*
 * protocol.c - shared helpers for halfopen external detectors (protocol v1).
 * See protocol.h for the interface and docs/protocol.md for the protocol.
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

struct ho_env ho_env;
volatile sig_atomic_t ho_terminated;

/* ======================================================================= */
/* time                                                                     */
/* ======================================================================= */

int64_t ho_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ho_now_ms(void)
{
    return ho_now_ns() / 1000000;
}

void ho_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ======================================================================= */
/* JSON output                                                              */
/* ======================================================================= */

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_putn(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            _exit(1);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_putn(b, s, strlen(s));
}

static void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof tmp)
        n = sizeof tmp - 1;
    buf_putn(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    else if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0x3f >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Append s as a JSON string literal: quotes, backslashes and control
 * characters escaped, invalid UTF-8 replaced by U+FFFD. */
static void buf_json_string(struct buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    buf_putn(b, "\"", 1);
    while (*p) {
        unsigned c = *p;
        switch (c) {
        case '"':  buf_puts(b, "\\\""); p++; continue;
        case '\\': buf_puts(b, "\\\\"); p++; continue;
        case '\n': buf_puts(b, "\\n"); p++; continue;
        case '\r': buf_puts(b, "\\r"); p++; continue;
        case '\t': buf_puts(b, "\\t"); p++; continue;
        default: break;
        }
        if (c < 0x20 || c == 0x7f) {
            buf_printf(b, "\\u%04x", c);
            p++;
            continue;
        }
        size_t n = utf8_len(p);
        if (n == 0) {
            buf_puts(b, "\\ufffd");
            p++;
            continue;
        }
        buf_putn(b, (const char *)p, n);
        p += n;
    }
    buf_putn(b, "\"", 1);
}

static int hello_done;
#define MAX_PENDING 32
static char *pending_logs[MAX_PENDING];
static int n_pending;

static void line_begin(struct buf *b, const char *event)
{
    int64_t t = ho_now_ns(); /* the instant of the event, before formatting */
    buf_puts(b, "{\"event\":");
    buf_json_string(b, event);
    buf_printf(b, ",\"t_ns\":%lld", (long long)t);
}

static void line_end(struct buf *b)
{
    buf_puts(b, "}\n");
    /* One write per line, flushed at once: the harness reads lines as they
     * come and timestamps matter. */
    if (fputs(b->p, stdout) == EOF || fflush(stdout) == EOF)
        _exit(1); /* stdout gone: the harness is gone, do not linger */
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static void emit_log(const char *msg)
{
    struct buf b = {0};
    line_begin(&b, "log");
    buf_puts(&b, ",\"msg\":");
    buf_json_string(&b, msg);
    line_end(&b);
}

void ho_hello(const char *name, int has_prediction, double lo_s, double hi_s)
{
    struct buf b = {0};
    line_begin(&b, "hello");
    buf_puts(&b, ",\"protocol\":1,\"name\":");
    buf_json_string(&b, name);
    if (has_prediction)
        buf_printf(&b, ",\"predicted_s\":[%.9g,%.9g]", lo_s, hi_s);
    else
        buf_puts(&b, ",\"predicted_s\":null");
    line_end(&b);
    hello_done = 1;
    /* Log lines produced before hello (configuration warnings) follow it. */
    for (int i = 0; i < n_pending; i++) {
        emit_log(pending_logs[i]);
        free(pending_logs[i]);
    }
    n_pending = 0;
}

void ho_event(const char *event)
{
    struct buf b = {0};
    line_begin(&b, event);
    line_end(&b);
}

void ho_dead(const char *reason)
{
    struct buf b = {0};
    line_begin(&b, "dead");
    buf_puts(&b, ",\"reason\":");
    buf_json_string(&b, reason);
    line_end(&b);
}

void ho_log(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (hello_done)
        emit_log(msg);
    else if (n_pending < MAX_PENDING)
        pending_logs[n_pending++] = strdup(msg);
}

/* ======================================================================= */
/* errno names                                                              */
/* ======================================================================= */

#define E(x) {x, #x}
static const struct {
    int num;
    const char *name;
} errno_names[] = {
    E(ETIMEDOUT), E(ECONNRESET), E(EPIPE), E(EHOSTUNREACH), E(ENETUNREACH),
    E(ECONNREFUSED), E(ECONNABORTED), E(ENOTCONN), E(ENETDOWN), E(ENETRESET),
    E(EHOSTDOWN), E(ESHUTDOWN), E(EAGAIN), E(EINTR), E(EINPROGRESS),
    E(EALREADY), E(EISCONN), E(EBADF), E(EINVAL), E(EFAULT), E(ENOTSOCK),
    E(EOPNOTSUPP), E(EPROTO), E(EPROTONOSUPPORT), E(EAFNOSUPPORT),
    E(EADDRINUSE), E(EADDRNOTAVAIL), E(EACCES), E(EPERM), E(ENOBUFS),
    E(ENOMEM), E(EMFILE), E(ENFILE), E(EIO), E(EMSGSIZE), E(ENOPROTOOPT),
    E(ENOENT), E(ENODEV), E(ENXIO), E(EBUSY), E(ERANGE),
#ifdef EWOULDBLOCK
    E(EWOULDBLOCK),
#endif
#ifdef EKEYEXPIRED
    E(EKEYEXPIRED),
#endif
#ifdef EREMOTEIO
    E(EREMOTEIO),
#endif
#ifdef ECOMM
    E(ECOMM),
#endif
};
#undef E

const char *ho_errno_name(int err)
{
    static char other[32];
    for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
        if (errno_names[i].num == err)
            return errno_names[i].name;
    snprintf(other, sizeof other, "ERRNO_%d", err);
    return other;
}

/* ======================================================================= */
/* configuration                                                            */
/* ======================================================================= */

#define MAX_KEYS 64
static struct {
    char *key, *value;
} config[MAX_KEYS];
static int n_config;

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static void utf8_put(struct buf *b, unsigned cp)
{
    char u[4];
    if (cp < 0x80) {
        u[0] = (char)cp;
        buf_putn(b, u, 1);
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        buf_putn(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        buf_putn(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        buf_putn(b, u, 4);
    }
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Parse a JSON string starting at the opening quote.  Returns a malloc'd
 * decoded string and sets *end past the closing quote, or NULL. */
static char *parse_string(const char *p, const char **end)
{
    struct buf b = {0};
    buf_putn(&b, "", 0);
    if (*p != '"')
        goto fail;
    p++;
    while (*p && *p != '"') {
        if (*p != '\\') {
            buf_putn(&b, p, 1);
            p++;
            continue;
        }
        p++;
        switch (*p) {
        case '"': buf_putn(&b, "\"", 1); break;
        case '\\': buf_putn(&b, "\\", 1); break;
        case '/': buf_putn(&b, "/", 1); break;
        case 'b': buf_putn(&b, "\b", 1); break;
        case 'f': buf_putn(&b, "\f", 1); break;
        case 'n': buf_putn(&b, "\n", 1); break;
        case 'r': buf_putn(&b, "\r", 1); break;
        case 't': buf_putn(&b, "\t", 1); break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(p + 1, &cp) < 0)
                goto fail;
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && p[1] == '\\' && p[2] == 'u' &&
                hex4(p + 3, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            } else if (cp >= 0xd800 && cp <= 0xdfff) {
                cp = 0xfffd;
            }
            if (cp == 0)
                cp = 0xfffd; /* no NULs inside C strings */
            utf8_put(&b, cp);
            break;
        }
        default:
            goto fail;
        }
        p++;
    }
    if (*p != '"')
        goto fail;
    *end = p + 1;
    return b.p;
fail:
    free(b.p);
    return NULL;
}

/* Skip a nested object/array starting at p; returns the end or NULL. */
static const char *skip_nested(const char *p)
{
    int depth = 0;
    while (*p) {
        if (*p == '"') {
            const char *e;
            char *s = parse_string(p, &e);
            if (!s)
                return NULL;
            free(s);
            p = e;
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if (*p == '}' || *p == ']') {
            if (--depth == 0)
                return p + 1;
        }
        p++;
    }
    return NULL;
}

static void config_set(char *key, char *value)
{
    for (int i = 0; i < n_config; i++)
        if (strcmp(config[i].key, key) == 0) { /* last one wins */
            free(config[i].value);
            free(key);
            config[i].value = value;
            return;
        }
    if (n_config == MAX_KEYS) {
        free(key);
        free(value);
        return;
    }
    config[n_config].key = key;
    config[n_config].value = value;
    n_config++;
}

int ho_config_parse(const char *json)
{
    const char *p = skip_ws(json);
    if (*p == '\0')
        return 0; /* empty: no parameters */
    if (*p != '{')
        return -1;
    p = skip_ws(p + 1);
    if (*p == '}')
        return 0;
    for (;;) {
        const char *e;
        char *key = parse_string(p, &e);
        if (!key)
            return -1;
        p = skip_ws(e);
        if (*p != ':') {
            free(key);
            return -1;
        }
        p = skip_ws(p + 1);
        char *value = NULL;
        if (*p == '"') {
            value = parse_string(p, &e);
        } else if (*p == '{' || *p == '[') {
            e = skip_nested(p);
            if (e)
                value = strndup(p, (size_t)(e - p));
        } else {
            /* bare scalar: number, true, false, null */
            e = p;
            while (*e && *e != ',' && *e != '}' && !isspace((unsigned char)*e))
                e++;
            if (e > p)
                value = strndup(p, (size_t)(e - p));
        }
        if (!value) {
            free(key);
            return -1;
        }
        if (strcmp(value, "null") == 0 && *p != '"') {
            free(key); /* null: as if absent */
            free(value);
        } else {
            config_set(key, value);
        }
        p = skip_ws(e);
        if (*p == ',') {
            p = skip_ws(p + 1);
            if (*p == '}') /* tolerate a trailing comma */
                return 0;
            continue;
        }
        if (*p == '}')
            return 0;
        return -1;
    }
}

const char *ho_config_get(const char *key)
{
    for (int i = 0; i < n_config; i++)
        if (strcmp(config[i].key, key) == 0)
            return config[i].value;
    return NULL;
}

int ho_parse_duration_ns(const char *s, int64_t *out_ns)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {
        {"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1e3},                         /* U+03BC greek mu */
        {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
    };
    const char *p = skip_ws(s);
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (*p == '\0')
        return -1;
    long double total = 0;
    int components = 0;
    while (*p && !isspace((unsigned char)*p)) {
        long double v = 0, scale = 1;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) {
                scale /= 10;
                v += scale * (*p++ - '0');
                digits++;
            }
        }
        if (digits == 0)
            return -1;
        /* longest unit match */
        double mul = -1;
        size_t best = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t n = strlen(units[i].unit);
            if (n > best && strncmp(p, units[i].unit, n) == 0) {
                best = n;
                mul = units[i].ns;
            }
        }
        if (mul < 0) {
            /* No unit: "0" as in Go, or a bare number of seconds as a
             * tolerance, but only as the whole string. */
            if (components == 0 && (*skip_ws(p) == '\0')) {
                mul = 1e9;
            } else {
                return -1;
            }
        }
        p += best;
        total += v * mul;
        components++;
        if (total > 9.2e18L)
            return -1;
    }
    if (*skip_ws(p) != '\0')
        return -1;
    *out_ns = (int64_t)(neg ? -total : total);
    return 0;
}

int64_t ho_config_duration_ms(const char *key, int64_t def_ms)
{
    const char *v = ho_config_get(key);
    int64_t ns;
    if (!v)
        return def_ms;
    if (ho_parse_duration_ns(v, &ns) < 0 || ns < 0) {
        ho_log("config %s=\"%s\" is not a valid duration; using %lldms", key,
               v, (long long)def_ms);
        return def_ms;
    }
    /* round up so that "1us" is not silently 0 */
    return (ns + 999999) / 1000000;
}

long ho_config_int(const char *key, long def)
{
    const char *v = ho_config_get(key);
    if (!v)
        return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *skip_ws(end) != '\0') {
        ho_log("config %s=\"%s\" is not an integer; using %ld", key, v, def);
        return def;
    }
    return n;
}

int ho_config_bool(const char *key, int def)
{
    const char *v = ho_config_get(key);
    if (!v)
        return def;
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on"))
        return 1;
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
        !strcasecmp(v, "off") || !strcmp(v, ""))
        return 0;
    ho_log("config %s=\"%s\" is not a boolean; using %s", key, v,
           def ? "true" : "false");
    return def;
}

/* ======================================================================= */
/* signals and environment                                                  */
/* ======================================================================= */

static void on_term(int sig)
{
    (void)sig;
    ho_terminated = 1;
    /* Exit at once: no race with a blocking call entered just after a flag
     * check.  Every line already printed was flushed. */
    _exit(0);
}

static void on_noop(int sig)
{
    (void)sig; /* only there to interrupt blocking calls with EINTR */
}

static void catch(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the EINTR path is the point */
    sigaction(sig, &sa, NULL);
}

void ho_init(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    catch(SIGTERM, on_term);
    catch(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);
    static const int storm[] = {SIGUSR1, SIGUSR2, SIGALRM, SIGHUP, SIGWINCH,
                                SIGCHLD, SIGURG, SIGIO, SIGPROF, SIGVTALRM};
    for (size_t i = 0; i < sizeof storm / sizeof storm[0]; i++)
        catch(storm[i], on_noop);
    for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
        catch(s, on_noop);

    const char *proto = getenv("HALFOPEN_PROTOCOL");
    const char *cfg = getenv("HALFOPEN_CONFIG");
    ho_env.role = getenv("HALFOPEN_ROLE");
    ho_env.side = getenv("HALFOPEN_SIDE");
    ho_env.addr = getenv("HALFOPEN_ADDR");
    if (!ho_env.role || !*ho_env.role)
        ho_env.role = "watcher";
    if (!ho_env.side || !*ho_env.side)
        ho_env.side = "server";

    if (proto && strcmp(proto, "1") != 0)
        ho_log("HALFOPEN_PROTOCOL=%s; this program speaks protocol 1", proto);
    if (cfg && ho_config_parse(cfg) < 0)
        ho_log("HALFOPEN_CONFIG is not a flat JSON object; using what parsed "
               "before the error: %s", cfg);

    int peer = strcmp(ho_env.role, "peer") == 0;
    if (!peer && strcmp(ho_env.role, "watcher") != 0)
        ho_log("HALFOPEN_ROLE=%s is unknown; acting as the watcher",
               ho_env.role);
    int server = strcmp(ho_env.side, "server") == 0;
    if (!server && strcmp(ho_env.side, "client") != 0) {
        fprintf(stderr, "HALFOPEN_SIDE must be client or server, not %s\n",
                ho_env.side);
        exit(2);
    }
    /* side names the watcher's end: server = the watcher listens and the
     * peer dials; client = the watcher dials and the peer listens. */
    ho_env.listens = peer ? !server : server;
    /* Reconnect after dead: the config key "reconnect" if given, else
     * HALFOPEN_RECONNECT=1, which the harness sets in disturbance runs
     * (where a watcher that exits after a mistaken dead is an error). */
    const char *env_reconnect = getenv("HALFOPEN_RECONNECT");
    ho_env.reconnect = ho_config_bool(
        "reconnect", env_reconnect && strcmp(env_reconnect, "1") == 0);

    if (!ho_env.addr || !*ho_env.addr) {
        fprintf(stderr, "HALFOPEN_ADDR is not set (want IP:PORT)\n");
        exit(2);
    }
}

/* ======================================================================= */
/* connections                                                              */
/* ======================================================================= */

static struct addrinfo *target;
static int listen_fd = -1;

static struct addrinfo *resolve(const char *addr, int passive)
{
    char host[256], port[16];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || strlen(colon + 1) == 0 ||
        strlen(colon + 1) >= sizeof port)
        return NULL;
    size_t hl = (size_t)(colon - addr);
    const char *h = addr;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof host)
        return NULL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    int rc = getaddrinfo(hl ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        ho_log("HALFOPEN_ADDR=%s: %s", addr, gai_strerror(rc));
        return NULL;
    }
    return res;
}

void ho_ready(void)
{
    target = resolve(ho_env.addr, ho_env.listens);
    if (!target) {
        ho_log("HALFOPEN_ADDR=%s is not IP:PORT", ho_env.addr);
        exit(1);
    }
    if (ho_env.listens) {
        int fd = socket(target->ai_family, target->ai_socktype | SOCK_CLOEXEC,
                        target->ai_protocol);
        int one = 1;
        if (fd < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(fd, target->ai_addr, target->ai_addrlen) < 0 ||
            listen(fd, 16) < 0) {
            ho_log("listen on %s: %s", ho_env.addr, ho_errno_name(errno));
            exit(1);
        }
        listen_fd = fd;
    }
    ho_event("ready");
}

/* One non-blocking connect attempt, waiting at most timeout_ms (-1: the
 * kernel's own SYN timeout).  Returns the blocking socket, or -1 with errno. */
static int dial_once(int timeout_ms)
{
    int fd = socket(target->ai_family, target->ai_socktype | SOCK_CLOEXEC,
                    target->ai_protocol);
    if (fd < 0)
        return -1;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int err = 0;
    if (connect(fd, target->ai_addr, target->ai_addrlen) < 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            err = errno;
            goto out;
        }
        int64_t deadline = ho_now_ms() + timeout_ms;
        for (;;) {
            int wait = -1;
            if (timeout_ms >= 0) {
                int64_t left = deadline - ho_now_ms();
                wait = left > 0 ? (int)left : 0;
            }
            struct pollfd pfd = {fd, POLLOUT, 0};
            int n = poll(&pfd, 1, wait);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                err = errno;
                goto out;
            }
            if (n == 0) {
                err = ETIMEDOUT;
                goto out;
            }
            break;
        }
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
    }
out:
    if (err) {
        close(fd);
        errno = err;
        return -1;
    }
    fcntl(fd, F_SETFL, fl);
    return fd;
}

static int retryable(int err)
{
    return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH ||
           err == ETIMEDOUT || err == ECONNRESET || err == ECONNABORTED ||
           err == EAGAIN || err == EINTR;
}

int ho_establish(int64_t retry_ms)
{
    int fd;
    if (ho_env.listens) {
        for (;;) {
            fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                break;
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
                errno == EAGAIN)
                continue;
            ho_log("accept: %s", ho_errno_name(errno));
            return -1;
        }
    } else {
        int64_t deadline = ho_now_ms() + retry_ms;
        int logged = 0;
        for (;;) {
            int64_t left = deadline - ho_now_ms();
            int timeout = retry_ms < 0 ? -1 : (left > 100 ? (int)left : 100);
            fd = dial_once(timeout);
            if (fd >= 0)
                break;
            int err = errno;
            if (!retryable(err) || (retry_ms >= 0 && ho_now_ms() >= deadline)) {
                ho_log("connect to %s: %s", ho_env.addr, ho_errno_name(err));
                return -1;
            }
            if (!logged++)
                ho_log("connect to %s: %s; retrying", ho_env.addr,
                       ho_errno_name(err));
            ho_sleep_ms(100);
        }
    }
    ho_event("connected");
    return fd;
}

void ho_run_watcher(ho_watch_fn watch)
{
    ho_ready();
    int64_t retry_ms = 5000; /* the first connection: 5 s, as documented */
    for (;;) {
        int fd = ho_establish(retry_ms);
        if (fd < 0)
            exit(1); /* never connected (or could not reconnect) */
        const char *reason = watch(fd);
        ho_dead(reason);
        close(fd);
        if (!ho_env.reconnect)
            exit(0);
        retry_ms = -1; /* reconnecting: until it works or SIGTERM */
    }
}

void ho_run_echo_peer(const char *name)
{
    ho_hello(name, 0, 0, 0);
    ho_ready();
    char buf[4096];
    for (int first = 1;; first = 0) {
        int fd = ho_establish(5000);
        if (fd < 0)
            exit(first ? 1 : 0);
        /* Take urgent (MSG_OOB) bytes, such as netcheck's probes, inline so
         * that they are echoed like every other byte; left unread out of
         * band, they would turn this peer's close into a RST. */
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one);
        const char *why = "EOF";
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n == 0)
                break;
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                why = ho_errno_name(errno);
                break;
            }
            for (ssize_t off = 0; off < n;) {
                ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w < 0) {
                    why = ho_errno_name(errno);
                    goto closed;
                }
                off += w;
            }
        }
    closed:
        ho_log("peer: connection ended: %s", why);
        close(fd);
    }
}
