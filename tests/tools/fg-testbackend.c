/*
 * fg-testbackend: the HTTP/1.1 backend the end-to-end tests put behind
 * fleetgate on loopback.
 *
 *   fg-testbackend -l ADDR:PORT [-n NAME] [-d DELAY_MS] [-p PIDFILE] [-v]
 *
 * -l a numeric 127.0.0.1:9001 or [::1]:9001 (port 0 picks a free port); -n
 * the name reported in "x-backend" and in JSON bodies (default "backend");
 * -d a delay added before every response head (/hang aside); -p a file the
 * pid is written to once listening (removed on exit); -v one line per request
 * on stderr.  Once ready it prints "listening on ADDR" (the address actually
 * bound) on stdout.  SIGTERM and SIGINT stop it, freeing everything (clean
 * under LeakSanitizer).  Exit status: 0 after a signal, 1 when it cannot
 * listen, 2 for a bad command line.
 *
 * Every response is HTTP/1.1 and carries "x-backend: NAME" (the interim
 * "100 Continue" and /garbage aside).  HEAD gets the head only.  An HTTP/1.0
 * request gets close-delimited bodies where HTTP/1.1 gets chunked ones.
 * A bad parameter (/bytes/x, /status/99, /sse?n=x) gets 400 on a kept-alive
 * connection.
 *
 * Endpoints (any method; the query string carries parameters):
 *   /echo and every path not below   200 JSON describing the request
 *   /bytes/N         N bytes, Content-Length; byte i is "0123456789abcdef"[i % 16]
 *   /chunked/N       the same bytes, chunked, chunks of at most 16 KiB
 *   /sse?n=5&interval_ms=200   n events "data: {"i":I,"t_ms":MS}\n\n", chunked
 *   /status/CODE     that status (200..599) with {"status":CODE}; 204/304 bare
 *   /slow?ms=N       the /echo answer after N more ms
 *   /trailers        chunked "hello" + trailer "x-checksum: abc123"
 *   /close-mid       Content-Length: 1000, 100 bytes, then close
 *   /garbage         "NOT HTTP AT ALL\r\n\r\n", then close
 *   /hang            never answers; the connection stays open
 *   /stats           {"requests":N,"connections":M,"active":K,"in_flight":F}
 * A malformed request gets 400 (431 for a head over 1 MiB) and the close;
 * stricter than llhttp's loose mode, header names must be tokens and values
 * free of control characters.
 *
 * Counters: "requests" counts every request whose head was parsed, except
 * those for /stats; "connections" every accepted connection (the one carrying
 * this /stats request included); "active" the connections open now (this one
 * included); "in_flight" the requests whose response is not finished yet.
 *
 * Design.  One llhttp parser per connection; requests are served strictly one
 * at a time: on_message_complete pauses the parser, the rest of the input stays
 * in the bufferevent until the response is finished, so pipelined responses
 * come out in order and an "Expect: 100-continue" interim answer can never
 * land inside another response.  Request bodies are hashed as they arrive and
 * dropped.  Large bodies are produced as the socket drains: the output is
 * topped up to OUT_HIGH from the write callback, which fires at OUT_LOW; a busy
 * connection stops reading past IN_HIGH.  So neither a 1 GiB upload nor a
 * 1 GiB download makes this process grow.
 *
 * Bytes >= 0x80 in JSON strings are written as \u00XX (the head read as
 * Latin-1, as Python's http.server does), so the JSON stays valid UTF-8.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/evp.h>
#include <llhttp.h>

#define IN_HIGH   (256 * 1024)  /* a busy connection stops reading here */
#define OUT_HIGH  (256 * 1024)  /* bodies are produced until the output holds this */
#define OUT_LOW   (64 * 1024)   /* ... and topped up again when it drained to this */
#define PIECE     (16 * 1024)   /* one /bytes piece, the largest /chunked chunk */
#define MAX_HEAD  (1024 * 1024) /* request line + headers, and trailers again */
#define MAX_MS    86400000ULL   /* longest /slow wait and /sse interval */
#define MAX_SSE   1000000ULL    /* most /sse events */
#define LINGER_MS 2000          /* how long a closing connection drains input */

static const char pattern_src[] = "0123456789abcdef";
/* PIECE bytes from any offset 0..15 into the pattern */
static char pattern[PIECE + 16];

/* A growable string, always NUL-terminated once it holds something. */
struct buf {
	char *p;
	size_t len, cap;
};

struct field {
	struct buf name, value;
};

/* Header (or trailer) fields in order of first appearance, names lowercased,
 * repeated names joined with ", ". */
struct fields {
	struct field *v;
	size_t n, cap;
};

enum route {
	R_ECHO = 0, R_BYTES, R_CHUNKED, R_SSE, R_STATUS, R_SLOW, R_TRAILERS,
	R_CLOSE_MID, R_GARBAGE, R_HANG, R_STATS, R_BAD,
};

struct request {
	struct buf url;
	struct fields headers, trailers;
	struct buf field, value;   /* the header line being parsed */
	int too_large;             /* the head went over MAX_HEAD */
	size_t head_bytes;
	uint64_t body_bytes;
	int chunked, keep_alive;
	int counted;               /* counted in requests and in_flight */
	int head_done;             /* head parsed: header callbacks mean trailers */
	uint8_t method, major, minor;
	enum route route;
	uint64_t n;                /* /bytes, /chunked: size; /sse: events; /status: code */
	uint64_t ms;               /* /sse: interval; /slow: wait */
	const char *bad;           /* R_BAD: why */
	const char *malformed;     /* why a callback refused the request */
};

/* The connection's state machine; changed only through set_state(). */
enum conn_state {
	CS_READ = 0, /* parsing; no response in progress */
	CS_DELAY,    /* request complete; the response head waits for the timer */
	CS_STREAM,   /* body produced as the socket drains, or per SSE tick */
	CS_HANG,     /* /hang: never answers, input discarded */
	CS_FLUSH,    /* last response queued; close once it is written */
	CS_LINGER,   /* write side shut; input discarded until EOF or timeout */
	CS_COUNT
};

static const char *const state_names[CS_COUNT] = {
	"read", "delay", "stream", "hang", "flush", "linger",
};

#define S(x) (1u << (x))
static const unsigned allowed_next[CS_COUNT] = {
	[CS_READ]   = S(CS_READ) | S(CS_DELAY) | S(CS_STREAM) | S(CS_HANG) | S(CS_FLUSH),
	[CS_DELAY]  = S(CS_READ) | S(CS_STREAM) | S(CS_FLUSH),
	[CS_STREAM] = S(CS_READ) | S(CS_FLUSH),
	[CS_HANG]   = 0,
	[CS_FLUSH]  = S(CS_LINGER),
	[CS_LINGER] = 0,
};
#undef S

/* How a response body is delimited. */
enum frame { FR_LENGTH = 0, FR_CHUNKED, FR_CLOSE, FR_NONE };

struct server;

struct conn {
	struct conn *prev, *next;
	struct server *srv;
	struct bufferevent *bev;
	struct event *timer;   /* delay, SSE tick, deferred flush, linger */
	EVP_MD_CTX *sha;
	llhttp_t parser;
	struct request req;
	enum conn_state state;
	int in_process;        /* process() is on the stack */
	int peer_eof;          /* the client shut its write side */
	enum frame frame;      /* of the body being streamed */
	uint64_t sent, total;  /* bytes, or SSE events */
	uint64_t id;
};

struct server {
	struct event_base *base;
	struct evconnlistener *lis;
	struct event *sigterm, *sigint;
	struct conn *conns;
	llhttp_settings_t settings;
	const char *name;
	uint64_t delay_ms;
	int verbose;
	uint64_t requests, connections, active, in_flight;
};

static void process(struct conn *c);

/* ---- small helpers ------------------------------------------------------ */

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL) {
		fprintf(stderr, "fg-testbackend: out of memory\n");
		abort();
	}
	return p;
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_free(struct buf *b)
{
	free(b->p);
	*b = (struct buf){ 0 };
}

static void fields_free(struct fields *f)
{
	for (size_t i = 0; i < f->n; i++) {
		buf_free(&f->v[i].name);
		buf_free(&f->v[i].value);
	}
	free(f->v);
	*f = (struct fields){ 0 };
}

static const struct field *fields_find(const struct fields *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].name.len == strlen(name) && memcmp(f->v[i].name.p, name, f->v[i].name.len) == 0)
			return &f->v[i];
	return NULL;
}

/* Moves <name> and <value> (emptied) into <f>, lowercasing the name and
 * trimming the value's trailing whitespace. */
static void fields_take(struct fields *f, struct buf *name, struct buf *value)
{
	buf_add(name, "", 0);
	buf_add(value, "", 0);
	for (size_t i = 0; i < name->len; i++)
		if (name->p[i] >= 'A' && name->p[i] <= 'Z')
			name->p[i] += 'a' - 'A';
	while (value->len > 0 && (value->p[value->len - 1] == ' ' || value->p[value->len - 1] == '\t'))
		value->p[--value->len] = '\0';

	for (size_t i = 0; i < f->n; i++) {
		struct field *e = &f->v[i];
		if (e->name.len == name->len && memcmp(e->name.p, name->p, name->len) == 0) {
			buf_add(&e->value, ", ", 2);
			buf_add(&e->value, value->p, value->len);
			buf_free(name);
			buf_free(value);
			return;
		}
	}
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->v = xrealloc(f->v, f->cap * sizeof(*f->v));
	}
	f->v[f->n].name = *name;
	f->v[f->n].value = *value;
	f->n++;
	*name = (struct buf){ 0 };
	*value = (struct buf){ 0 };
}

static struct timeval ms_tv(uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	return tv;
}

/* Parses 1..19 decimal digits. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Looks <key> up in the query string <q> (NUL-terminated, may be NULL).
 * Returns 0 and sets *out when found and numeric, 1 when absent (*out keeps
 * the default), -1 when present but not a number. */
static int query_u64(const char *q, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);

	while (q != NULL && *q != '\0') {
		const char *end = strchr(q, '&');
		size_t len = end ? (size_t)(end - q) : strlen(q);
		if (len > klen && strncmp(q, key, klen) == 0 && q[klen] == '=')
			return parse_u64(q + klen + 1, len - klen - 1, out);
		q = end ? end + 1 : NULL;
	}
	return 1;
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 418: return "I'm a teapot";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Status";
	}
}

static void json_str(struct evbuffer *b, const char *s, size_t len)
{
	size_t run = 0;

	evbuffer_add(b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			continue;
		evbuffer_add(b, s + run, i - run);
		run = i + 1;
		if (ch == '"' || ch == '\\')
			evbuffer_add_printf(b, "\\%c", ch);
		else
			evbuffer_add_printf(b, "\\u%04x", ch);
	}
	evbuffer_add(b, s + run, len - run);
	evbuffer_add(b, "\"", 1);
}

static void json_fields(struct evbuffer *b, const struct fields *f)
{
	evbuffer_add(b, "{", 1);
	for (size_t i = 0; i < f->n; i++) {
		if (i > 0)
			evbuffer_add(b, ",", 1);
		json_str(b, f->v[i].name.p, f->v[i].name.len);
		evbuffer_add(b, ":", 1);
		json_str(b, f->v[i].value.p, f->v[i].value.len);
	}
	evbuffer_add(b, "}", 1);
}

/* ---- connection state --------------------------------------------------- */

static void set_state(struct conn *c, enum conn_state to)
{
	if (!(allowed_next[c->state] & (1u << to))) {
		fprintf(stderr, "fg-testbackend: connection %" PRIu64 ": bad state change %s -> %s\n",
			c->id, state_names[c->state], state_names[to]);
		abort();
	}
	c->state = to;
}

/* Forgets the request: frees what it holds and takes it out of in_flight. */
static void request_reset(struct conn *c)
{
	struct request *r = &c->req;

	if (r->counted)
		c->srv->in_flight--;
	buf_free(&r->url);
	buf_free(&r->field);
	buf_free(&r->value);
	fields_free(&r->headers);
	fields_free(&r->trailers);
	*r = (struct request){ 0 };
}

static void conn_free(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	request_reset(c);
	bufferevent_free(c->bev);
	event_free(c->timer);
	EVP_MD_CTX_free(c->sha);
	srv->active--;
	free(c);
}

/* Closes once everything queued is written.  Never frees <c> itself (the
 * caller may be process()): the check runs from the timer or write callback. */
static void close_after_flush(struct conn *c)
{
	struct timeval now = { 0, 0 };

	set_state(c, CS_FLUSH);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	evtimer_add(c->timer, &now);
}

/* CS_FLUSH: once the output is written, shut the write side and drain what the
 * client still sends, so that unread input does not turn the close into a
 * reset that could destroy the response on its way. */
static void flush_check(struct conn *c)
{
	struct timeval linger = ms_tv(LINGER_MS);
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return;
	if (c->peer_eof) {
		conn_free(c);
		return;
	}
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	set_state(c, CS_LINGER);
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	evtimer_add(c->timer, &linger);
}

/* The response in progress has been queued completely. */
static void response_finished(struct conn *c)
{
	int keep_alive = c->req.keep_alive;

	request_reset(c);
	if (!keep_alive) {
		close_after_flush(c);
		return;
	}
	set_state(c, CS_READ);
	if (!c->in_process)
		process(c);
}

/* ---- responses ---------------------------------------------------------- */

static enum frame body_frame(const struct conn *c)
{
	if (c->req.major > 1 || (c->req.major == 1 && c->req.minor >= 1))
		return FR_CHUNKED;
	return FR_CLOSE;
}

static int is_head(const struct conn *c)
{
	return c->req.method == HTTP_HEAD;
}

/* Queues the status line and headers; <extra> is more header lines or NULL.
 * FR_CLOSE makes the connection close after the response. */
static void send_head(struct conn *c, int status, const char *ctype, enum frame fr,
		      uint64_t len, const char *extra)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct request *r = &c->req;

	if (c->srv->verbose && r->head_done)
		fprintf(stderr, "%s: #%" PRIu64 " %s %s HTTP/%u.%u -> %d (body %" PRIu64 " bytes)\n",
			c->srv->name, c->id, llhttp_method_name((llhttp_method_t)r->method),
			r->url.p ? r->url.p : "-", r->major, r->minor, status, r->body_bytes);

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nx-backend: %s\r\n", status, reason_phrase(status),
			    c->srv->name);
	if (ctype)
		evbuffer_add_printf(out, "content-type: %s\r\n", ctype);
	switch (fr) {
	case FR_LENGTH:
		evbuffer_add_printf(out, "content-length: %" PRIu64 "\r\n", len);
		break;
	case FR_CHUNKED:
		evbuffer_add_printf(out, "transfer-encoding: chunked\r\n");
		break;
	case FR_CLOSE:
		r->keep_alive = 0;
		break;
	case FR_NONE:
		break;
	}
	if (extra)
		evbuffer_add(out, extra, strlen(extra));
	if (!r->keep_alive)
		evbuffer_add_printf(out, "connection: close\r\n");
	else if (r->major == 1 && r->minor == 0)
		evbuffer_add_printf(out, "connection: keep-alive\r\n");
	evbuffer_add(out, "\r\n", 2);
}

/* A whole response whose body is <body> (drained). */
static void send_simple(struct conn *c, int status, const char *ctype, struct evbuffer *body)
{
	send_head(c, status, ctype, FR_LENGTH, evbuffer_get_length(body), NULL);
	if (is_head(c))
		evbuffer_drain(body, evbuffer_get_length(body));
	else
		evbuffer_add_buffer(bufferevent_get_output(c->bev), body);
}

static void send_echo(struct conn *c)
{
	struct request *r = &c->req;
	struct evbuffer *b = evbuffer_new();
	const char *method = llhttp_method_name((llhttp_method_t)r->method);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_DigestFinal_ex(c->sha, md, &mdlen);
	evbuffer_add_printf(b, "{\"backend\":");
	json_str(b, c->srv->name, strlen(c->srv->name));
	evbuffer_add_printf(b, ",\"method\":");
	json_str(b, method, strlen(method));
	evbuffer_add_printf(b, ",\"path\":");
	json_str(b, r->url.p ? r->url.p : "", r->url.len);
	evbuffer_add_printf(b, ",\"http_version\":\"%u.%u\",\"headers\":", r->major, r->minor);
	json_fields(b, &r->headers);
	evbuffer_add_printf(b, ",\"body_bytes\":%" PRIu64 ",\"body_sha256\":\"", r->body_bytes);
	for (unsigned int i = 0; i < mdlen; i++)
		evbuffer_add_printf(b, "%02x", md[i]);
	evbuffer_add_printf(b, "\",\"chunked\":%s,\"trailers\":", r->chunked ? "true" : "false");
	json_fields(b, &r->trailers);
	evbuffer_add_printf(b, "}\n");
	send_simple(c, 200, "application/json", b);
	evbuffer_free(b);
}

static void send_json(struct conn *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void send_json(struct conn *c, int status, const char *fmt, ...)
{
	struct evbuffer *b = evbuffer_new();
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(b, fmt, ap);
	va_end(ap);
	send_simple(c, status, "application/json", b);
	evbuffer_free(b);
}

/* CS_STREAM for /bytes and /chunked: tops the output up to OUT_HIGH. */
static void fill(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	while (c->sent < c->total && evbuffer_get_length(out) < OUT_HIGH) {
		uint64_t left = c->total - c->sent;
		size_t len = left < PIECE ? (size_t)left : PIECE;
		const char *p = pattern + c->sent % 16;

		if (c->frame == FR_CHUNKED)
			evbuffer_add_printf(out, "%zx\r\n", len);
		/* the pattern is static: referenced, never copied */
		evbuffer_add_reference(out, p, len, NULL, NULL);
		if (c->frame == FR_CHUNKED)
			evbuffer_add(out, "\r\n", 2);
		c->sent += len;
	}
	if (c->sent == c->total) {
		if (c->frame == FR_CHUNKED)
			evbuffer_add(out, "0\r\n\r\n", 5);
		response_finished(c);
	}
}

static void add_chunk(struct conn *c, const char *data, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->frame == FR_CHUNKED)
		evbuffer_add_printf(out, "%zx\r\n", len);
	evbuffer_add(out, data, len);
	if (c->frame == FR_CHUNKED)
		evbuffer_add(out, "\r\n", 2);
}

/* CS_STREAM for /sse: one event now, the next one from the timer. */
static void sse_tick(struct conn *c)
{
	struct timeval now, iv = ms_tv(c->req.ms);
	char ev[128];
	int n;

	if (c->sent < c->total) {
		gettimeofday(&now, NULL);
		n = snprintf(ev, sizeof(ev), "data: {\"i\":%" PRIu64 ",\"t_ms\":%" PRIu64 "}\n\n", c->sent,
			     (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_usec / 1000);
		add_chunk(c, ev, (size_t)n);
		c->sent++;
	}
	if (c->sent < c->total) {
		evtimer_add(c->timer, &iv);
		return;
	}
	if (c->frame == FR_CHUNKED)
		evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
	response_finished(c);
}

/* The request is complete and its delay is over: answer it. */
static void start_response(struct conn *c)
{
	struct request *r = &c->req;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct server *srv = c->srv;

	switch (r->route) {
	case R_ECHO:
	case R_SLOW:
		send_echo(c);
		break;
	case R_BYTES:
	case R_CHUNKED:
		c->frame = r->route == R_BYTES ? FR_LENGTH : body_frame(c);
		send_head(c, 200, "application/octet-stream", c->frame, r->n, NULL);
		if (is_head(c))
			break;
		c->sent = 0;
		c->total = r->n;
		set_state(c, CS_STREAM);
		fill(c);
		return;
	case R_SSE:
		c->frame = body_frame(c);
		send_head(c, 200, "text/event-stream", c->frame, 0, "cache-control: no-cache\r\n");
		if (is_head(c))
			break;
		c->sent = 0;
		c->total = r->n;
		set_state(c, CS_STREAM);
		sse_tick(c);
		return;
	case R_STATUS:
		if (r->n == 204 || r->n == 304)
			send_head(c, (int)r->n, NULL, FR_NONE, 0, NULL);
		else
			send_json(c, (int)r->n, "{\"status\":%d}\n", (int)r->n);
		break;
	case R_TRAILERS:
		c->frame = body_frame(c);
		send_head(c, 200, "text/plain", c->frame, 0,
			  c->frame == FR_CHUNKED ? "trailer: x-checksum\r\n" : NULL);
		if (is_head(c))
			break;
		if (c->frame == FR_CHUNKED)
			evbuffer_add_printf(out, "5\r\nhello\r\n0\r\nx-checksum: abc123\r\n\r\n");
		else
			evbuffer_add_printf(out, "hello");
		break;
	case R_CLOSE_MID:
		/* no "connection: close": this plays a backend dying mid-body */
		send_head(c, 200, "application/octet-stream", FR_LENGTH, 1000, NULL);
		evbuffer_add_reference(out, pattern, 100, NULL, NULL);
		r->keep_alive = 0;
		break;
	case R_GARBAGE:
		if (srv->verbose)
			fprintf(stderr, "%s: #%" PRIu64 " %s %s HTTP/%u.%u -> garbage\n", srv->name, c->id,
				llhttp_method_name((llhttp_method_t)r->method), r->url.p, r->major, r->minor);
		evbuffer_add_printf(out, "NOT HTTP AT ALL\r\n\r\n");
		r->keep_alive = 0;
		break;
	case R_STATS:
		send_json(c, 200,
			  "{\"requests\":%" PRIu64 ",\"connections\":%" PRIu64 ",\"active\":%" PRIu64
			  ",\"in_flight\":%" PRIu64 "}\n",
			  srv->requests, srv->connections, srv->active, srv->in_flight);
		break;
	case R_BAD:
		send_json(c, 400, "{\"error\":\"bad_request\",\"reason\":\"%s\"}\n", r->bad);
		break;
	case R_HANG:
		abort(); /* dispatch() never starts one */
	}
	response_finished(c);
}

/* A whole request has been read (the parser is paused after it). */
static void dispatch(struct conn *c)
{
	struct request *r = &c->req;
	uint64_t delay = c->srv->delay_ms;

	if (r->route == R_HANG) {
		if (c->srv->verbose)
			fprintf(stderr, "%s: #%" PRIu64 " %s %s -> (hang)\n", c->srv->name, c->id,
				llhttp_method_name((llhttp_method_t)r->method), r->url.p);
		set_state(c, CS_HANG);
		return;
	}
	if (r->route == R_SLOW)
		delay += r->ms;
	if (delay > 0) {
		struct timeval tv = ms_tv(delay);
		set_state(c, CS_DELAY);
		evtimer_add(c->timer, &tv);
		return;
	}
	start_response(c);
}

/* The parser failed: answer 400 (431 for an oversized head) and close. */
static void bad_request(struct conn *c, llhttp_errno_t err)
{
	const char *why = c->req.malformed ? c->req.malformed : llhttp_get_error_reason(&c->parser);
	int status = c->req.too_large ? 431 : 400;
	struct evbuffer *b;

	if (c->srv->verbose)
		fprintf(stderr, "%s: #%" PRIu64 " malformed request: %s: %s -> %d\n", c->srv->name, c->id,
			llhttp_errno_name(err), why ? why : "?", status);
	c->req.keep_alive = 0;
	c->req.head_done = 0; /* logged above: send_head() stays quiet */
	b = evbuffer_new();
	evbuffer_add_printf(b, "{\"error\":\"%s\",\"code\":\"%s\",\"reason\":",
			    status == 431 ? "headers_too_large" : "bad_request", llhttp_errno_name(err));
	json_str(b, why ? why : "", why ? strlen(why) : 0);
	evbuffer_add_printf(b, "}\n");
	send_simple(c, status, "application/json", b);
	evbuffer_free(b);
	request_reset(c);
	close_after_flush(c);
}

/* ---- request parsing ---------------------------------------------------- */

static int head_add(llhttp_t *p, struct buf *b, const char *at, size_t len)
{
	struct conn *c = p->data;

	c->req.head_bytes += len;
	if (c->req.head_bytes > MAX_HEAD) {
		c->req.too_large = 1;
		llhttp_set_error_reason(p, "request head too large");
		return HPE_USER;
	}
	buf_add(b, at, len);
	return 0;
}

static int on_message_begin(llhttp_t *p)
{
	struct conn *c = p->data;

	request_reset(c);
	EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL);
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	return head_add(p, &((struct conn *)p->data)->req.url, at, len);
}

/* RFC 9110 tchar */
static int is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* The two checks below reject what llhttp's loose mode lets through: a field
 * name that is not a token, control characters in a value. */
static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (!is_tchar((unsigned char)at[i])) {
			llhttp_set_error_reason(p, "invalid character in a header name");
			return HPE_USER;
		}
	}
	return head_add(p, &((struct conn *)p->data)->req.field, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)at[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			llhttp_set_error_reason(p, "control character in a header value");
			return HPE_USER;
		}
	}
	return head_add(p, &((struct conn *)p->data)->req.value, at, len);
}

static int on_header_value_complete(llhttp_t *p)
{
	struct request *r = &((struct conn *)p->data)->req;

	if (r->field.len == 0) { /* loose llhttp takes ": value" */
		r->malformed = "empty header name";
		return -1;
	}
	fields_take(r->head_done ? &r->trailers : &r->headers, &r->field, &r->value);
	return 0;
}

/* Picks the endpoint from the request target (origin or absolute form). */
static void route(struct request *r)
{
	const char *path = r->url.p ? r->url.p : "/";
	const char *query;
	size_t len;
	uint64_t v;

	if (strncasecmp(path, "http://", 7) == 0 || strncasecmp(path, "https://", 8) == 0) {
		const char *slash = strchr(strstr(path, "://") + 3, '/');
		path = slash ? slash : "/";
	}
	query = strchr(path, '?');
	len = query ? (size_t)(query - path) : strlen(path);
	if (query)
		query++;

#define IS(s) (len == sizeof(s) - 1 && memcmp(path, s, len) == 0)
#define HAS(s) (len >= sizeof(s) - 1 && memcmp(path, s, sizeof(s) - 1) == 0)
#define NUM(s) (parse_u64(path + sizeof(s) - 1, len - (sizeof(s) - 1), &v) == 0)
	r->route = R_ECHO;
	if (HAS("/bytes/") || HAS("/chunked/")) {
		r->route = HAS("/bytes/") ? R_BYTES : R_CHUNKED;
		if (r->route == R_BYTES ? NUM("/bytes/") : NUM("/chunked/"))
			r->n = v;
		else
			r->route = R_BAD, r->bad = "size is not a number";
	} else if (HAS("/status/")) {
		if (NUM("/status/") && v >= 200 && v <= 599)
			r->route = R_STATUS, r->n = v;
		else
			r->route = R_BAD, r->bad = "status must be 200..599";
	} else if (IS("/sse")) {
		r->route = R_SSE;
		r->n = 5;
		r->ms = 200;
		if (query_u64(query, "n", &r->n) < 0 || query_u64(query, "interval_ms", &r->ms) < 0 ||
		    r->n > MAX_SSE || r->ms > MAX_MS)
			r->route = R_BAD, r->bad = "bad n or interval_ms";
	} else if (IS("/slow")) {
		r->route = R_SLOW;
		if (query_u64(query, "ms", &r->ms) < 0 || r->ms > MAX_MS)
			r->route = R_BAD, r->bad = "bad ms";
	} else if (IS("/trailers")) {
		r->route = R_TRAILERS;
	} else if (IS("/close-mid")) {
		r->route = R_CLOSE_MID;
	} else if (IS("/garbage")) {
		r->route = R_GARBAGE;
	} else if (IS("/hang")) {
		r->route = R_HANG;
	} else if (IS("/stats")) {
		r->route = R_STATS;
	}
#undef IS
#undef HAS
#undef NUM
}

static int on_headers_complete(llhttp_t *p)
{
	struct conn *c = p->data;
	struct request *r = &c->req;
	const struct field *expect;

	buf_add(&r->url, "", 0);
	r->method = llhttp_get_method(p);
	r->major = llhttp_get_http_major(p);
	r->minor = llhttp_get_http_minor(p);
	r->chunked = (p->flags & F_CHUNKED) != 0;
	r->head_done = 1;
	r->head_bytes = 0; /* trailers get a MAX_HEAD of their own */
	route(r);
	if (r->route != R_STATS) {
		c->srv->requests++;
		c->srv->in_flight++;
		r->counted = 1;
	}
	/* Safe to answer now: no other response is in progress (see process()). */
	expect = fields_find(&r->headers, "expect");
	if (expect && strcasecmp(expect->value.p, "100-continue") == 0 && (r->major > 1 || (r->major == 1 && r->minor >= 1)) &&
	    (r->chunked || p->content_length > 0))
		evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	EVP_DigestUpdate(c->sha, at, len);
	c->req.body_bytes += len;
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct conn *c = p->data;

	c->req.keep_alive = llhttp_should_keep_alive(p) && !llhttp_get_upgrade(p);
	/* serve this request before parsing the next one */
	return HPE_PAUSED;
}

/* CS_READ: parses buffered input until a request is complete, then serves
 * it; goes on while responses finish at once.  Stops while the output holds
 * OUT_HIGH or more (the write callback comes back).  Never frees <c>. */
static void process(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);

	c->in_process = 1;
	while (c->state == CS_READ && evbuffer_get_length(out) < OUT_HIGH) {
		struct evbuffer_iovec v;
		llhttp_errno_t err;
		size_t used;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		err = llhttp_execute(&c->parser, v.iov_base, v.iov_len);
		if (err == HPE_OK) {
			evbuffer_drain(in, v.iov_len);
		} else if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
			used = (size_t)(llhttp_get_error_pos(&c->parser) - (const char *)v.iov_base);
			if (err == HPE_PAUSED)
				llhttp_resume(&c->parser);
			else
				llhttp_resume_after_upgrade(&c->parser);
			evbuffer_drain(in, used);
			if (err == HPE_PAUSED)
				dispatch(c);
		} else {
			bad_request(c, err);
		}
	}
	if (c->state == CS_READ && c->peer_eof && evbuffer_get_length(in) == 0)
		close_after_flush(c);
	c->in_process = 0;
}

/* ---- libevent callbacks ------------------------------------------------- */

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	switch (c->state) {
	case CS_READ:
		process(c);
		break;
	case CS_HANG:
	case CS_LINGER:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	default:
		/* busy: the input waits, bounded by IN_HIGH */
		break;
	}
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	switch (c->state) {
	case CS_READ:
		process(c);
		break;
	case CS_STREAM:
		if (c->req.route != R_SSE)
			fill(c);
		break;
	case CS_FLUSH:
		flush_check(c);
		break;
	default:
		break;
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_ERROR) {
		conn_free(c);
		return;
	}
	if (!(what & BEV_EVENT_EOF))
		return;
	c->peer_eof = 1;
	switch (c->state) {
	case CS_READ:
		/* answer what was pipelined before the EOF, then close */
		process(c);
		break;
	case CS_HANG:
	case CS_LINGER:
		conn_free(c);
		break;
	default:
		/* the response in progress goes on; closed after it */
		break;
	}
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case CS_DELAY:
		start_response(c);
		break;
	case CS_STREAM:
		sse_tick(c);
		break;
	case CS_FLUSH:
		flush_check(c);
		break;
	case CS_LINGER:
		conn_free(c);
		break;
	default:
		break;
	}
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int socklen,
		      void *arg)
{
	struct server *srv = arg;
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	(void)lis;
	(void)sa;
	(void)socklen;
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = srv;
	c->id = ++srv->connections;
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(srv->base, timer_cb, c);
	c->sha = EVP_MD_CTX_new();
	if (c->bev == NULL || c->timer == NULL || c->sha == NULL) {
		fprintf(stderr, "fg-testbackend: out of memory\n");
		abort();
	}
	llhttp_init(&c->parser, HTTP_REQUEST, &srv->settings);
	c->parser.data = c;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->active++;

	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, IN_HIGH);
	bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
	bufferevent_set_max_single_read(c->bev, IN_HIGH);
	bufferevent_set_max_single_write(c->bev, OUT_HIGH);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)sig;
	(void)what;
	event_base_loopbreak(srv->base);
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: fg-testbackend -l ADDR:PORT [-n NAME] [-d DELAY_MS] [-p PIDFILE] [-v]\n");
}

/* Parses "a.b.c.d:port" or "[v6]:port" (port 0..65535; libevent's parser
 * refuses 0, which picks a free port). */
static int parse_listen(const char *s, struct sockaddr_storage *ss, int *len)
{
	char host[INET6_ADDRSTRLEN];
	const char *colon;
	uint64_t port;
	size_t hl;
	int v6 = s[0] == '[';

	memset(ss, 0, sizeof(*ss));
	if (v6) {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		hl = (size_t)(close - s - 1);
		colon = close + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host) || parse_u64(colon + 1, strlen(colon + 1), &port) < 0 || port > 65535)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : -1;
	}
}

/* Writes the bound address of <fd> as "a.b.c.d:port" or "[v6]:port". */
static int format_addr(evutil_socket_t fd, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		evutil_inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		evutil_inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, ntohs(s4->sin_port));
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct server srv = { .name = "backend" };
	const char *listen_addr = NULL, *pidfile = NULL;
	struct sockaddr_storage ss;
	int sl = 0, opt, rc = 1;
	char bound[INET6_ADDRSTRLEN + 16];
	uint64_t v;

	while ((opt = getopt(argc, argv, "l:n:d:p:vh")) != -1) {
		switch (opt) {
		case 'l':
			listen_addr = optarg;
			break;
		case 'n':
			srv.name = optarg;
			break;
		case 'd':
			if (parse_u64(optarg, strlen(optarg), &v) < 0 || v > MAX_MS) {
				fprintf(stderr, "fg-testbackend: -d: not a delay in ms: %s\n", optarg);
				return 2;
			}
			srv.delay_ms = v;
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 'v':
			srv.verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (listen_addr == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	for (const char *s = srv.name; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			fprintf(stderr, "fg-testbackend: -n: the name must not hold control characters\n");
			return 2;
		}
	}
	if (parse_listen(listen_addr, &ss, &sl) < 0) {
		fprintf(stderr, "fg-testbackend: -l: not an ADDR:PORT: %s\n", listen_addr);
		return 2;
	}

	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = pattern_src[i % 16];
	signal(SIGPIPE, SIG_IGN);

	llhttp_settings_init(&srv.settings);
	srv.settings.on_message_begin = on_message_begin;
	srv.settings.on_url = on_url;
	srv.settings.on_header_field = on_header_field;
	srv.settings.on_header_value = on_header_value;
	srv.settings.on_header_value_complete = on_header_value_complete;
	srv.settings.on_headers_complete = on_headers_complete;
	srv.settings.on_body = on_body;
	srv.settings.on_message_complete = on_message_complete;

	srv.base = event_base_new();
	if (srv.base == NULL) {
		fprintf(stderr, "fg-testbackend: cannot create the event base\n");
		return 1;
	}
	srv.lis = evconnlistener_new_bind(srv.base, accept_cb, &srv,
					  LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
					  511, (struct sockaddr *)&ss, sl);
	if (srv.lis == NULL) {
		fprintf(stderr, "fg-testbackend: cannot listen on %s: %s\n", listen_addr, strerror(errno));
		goto out;
	}
	srv.sigterm = evsignal_new(srv.base, SIGTERM, signal_cb, &srv);
	srv.sigint = evsignal_new(srv.base, SIGINT, signal_cb, &srv);
	if (srv.sigterm == NULL || srv.sigint == NULL || evsignal_add(srv.sigterm, NULL) < 0 ||
	    evsignal_add(srv.sigint, NULL) < 0) {
		fprintf(stderr, "fg-testbackend: cannot catch signals\n");
		goto out;
	}
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");
		if (f == NULL || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
			fprintf(stderr, "fg-testbackend: cannot write %s: %s\n", pidfile, strerror(errno));
			pidfile = NULL;
			goto out;
		}
	}
	if (format_addr(evconnlistener_get_fd(srv.lis), bound, sizeof(bound)) < 0)
		snprintf(bound, sizeof(bound), "%s", listen_addr);
	printf("listening on %s\n", bound);
	fflush(stdout);

	event_base_dispatch(srv.base);
	rc = 0;
out:
	while (srv.conns)
		conn_free(srv.conns);
	if (srv.sigterm)
		event_free(srv.sigterm);
	if (srv.sigint)
		event_free(srv.sigint);
	if (srv.lis)
		evconnlistener_free(srv.lis);
	event_base_free(srv.base);
	libevent_global_shutdown();
	if (pidfile)
		unlink(pidfile);
	return rc;
}
