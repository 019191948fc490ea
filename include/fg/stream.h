/* A buffered socket, plain or TLS, for both client and backend connections.
 *
 * It plays the part of libevent's bufferevent with the same callback
 * contract (read / write / event with BEV_EVENT_* flags), but spends fewer
 * syscalls per request, which is what a proxy's cost is made of:
 * - reading stays armed (EV_PERSIST) instead of being re-armed after each
 *   read, and reads need no FIONREAD ioctl;
 * - writes are speculative: output queued during a loop turn is written at
 *   the end of that turn with one writev (or one SSL_write of up to a TLS
 *   record), and the write event is armed only when the kernel pushes back.
 * Callbacks may free the stream; the free is deferred until they return. */
#ifndef FG_STREAM_H
#define FG_STREAM_H

#include <stddef.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>     /* BEV_EVENT_* flags */
#include <event2/event.h>
#include <openssl/ssl.h>

struct fg_stream;
struct fg_loop;
struct evbuffer;

/* One per thread and event base (a worker owns one): what its streams
 * share. Freed after the last of its streams. */
struct fg_loop *fg_loop_new(struct event_base *base);
void fg_loop_free(struct fg_loop *loop);

/* The owner runs its event base one batch at a time (event_base_loop with
 * EVLOOP_ONCE) and calls fg_loop_batch_end() after each: streams that
 * coalesce are then written once per batch. Without batching they are
 * written like the others. */
void fg_loop_set_batching(struct fg_loop *loop, int on);
void fg_loop_batch_end(struct fg_loop *loop);


typedef void (*fg_stream_data_cb)(struct fg_stream *s, void *arg);
typedef void (*fg_stream_event_cb)(struct fg_stream *s, short what, void *arg);

/* Wraps connected socket <fd> (made non-blocking here). With <ssl>, the
 * stream owns it and starts a server-side handshake: the event callback
 * gets BEV_EVENT_CONNECTED when it completes. */
struct fg_stream *fg_stream_new(struct fg_loop *loop, evutil_socket_t fd, SSL *ssl);

/* A new stream connecting to <sa>: BEV_EVENT_CONNECTED or BEV_EVENT_ERROR
 * follows, always from the loop, never from inside this call. Output queued
 * before the connect completes is sent once it does. NULL when no socket
 * could be made (errno set). */
struct fg_stream *fg_stream_connect(struct fg_loop *loop, const struct sockaddr *sa,
                                    socklen_t len);

/* Closes the socket and frees everything (deferred when called from one of
 * the stream's own callbacks). Output not yet written is dropped. */
void fg_stream_free(struct fg_stream *s);

void fg_stream_setcb(struct fg_stream *s, fg_stream_data_cb readcb, fg_stream_data_cb writecb,
                     fg_stream_event_cb eventcb, void *arg);

/* The input read and not consumed yet: *<len> bytes at the result, in one
 * contiguous run (NULL and 0 when there is none). Valid until it is
 * drained or the callback returns to the loop. */
const char *fg_stream_input_data(const struct fg_stream *s, size_t *len);
size_t fg_stream_input_length(const struct fg_stream *s);
/* Consumes the first <n> bytes of the input (all of it when <n> is more). */
void fg_stream_input_drain(struct fg_stream *s, size_t n);

/* The output buffer. What it holds is written at the end of the callback
 * that took it (outside callbacks, from the loop): take it with this call
 * in each callback that adds to it, never keep the pointer across them. */
struct evbuffer *fg_stream_output(struct fg_stream *s);
SSL *fg_stream_ssl(const struct fg_stream *s);

/* EV_READ and/or EV_WRITE: reading delivers data to the read callback;
 * writing sends the output (disabling EV_WRITE holds it back). */
void fg_stream_enable(struct fg_stream *s, short what);
void fg_stream_disable(struct fg_stream *s, short what);

/* 0 disables. The read timeout counts time without incoming data while
 * reading is enabled; the write timeout, time without progress while output
 * is pending (and bounds a connect). Expiry: the event callback with
 * BEV_EVENT_TIMEOUT | BEV_EVENT_READING or _WRITING. */
void fg_stream_set_timeouts(struct fg_stream *s, unsigned read_ms, unsigned write_ms);

/* Stop reading from the socket while the input holds <high> bytes or more
 * (0: no limit); reading resumes once the input drops below it. */
void fg_stream_set_read_high(struct fg_stream *s, size_t high);

/* The write callback runs when the output drains to <low> bytes or fewer
 * after a write (default 0: when empty). */
void fg_stream_set_write_low(struct fg_stream *s, size_t low);

/* Runs the read and/or write callback from the loop, soon (not from here). */
void fg_stream_trigger(struct fg_stream *s, short what);

/* Output queued during the loop's batch of events (everything epoll
 * returned at once) is written once at its end rather than after each
 * event: for a connection whose output comes from many events (an HTTP/2
 * client connection, answered by many backends), one writev instead of one
 * per answer. Only where the loop batches (fg_loop_set_batching). */
void fg_stream_set_coalesce(struct fg_stream *s, int on);

#endif
