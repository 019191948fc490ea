#ifndef FG_CONN_H
#define FG_CONN_H

#include <event2/listener.h>

/* evconnlistener callback; <arg> is the struct fg_worker_listener. */
void fg_conn_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                    int socklen, void *arg);

#endif
