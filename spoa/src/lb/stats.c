#include "lb/stats.h"

#include "lb/table.h"
#include "util/addr.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define STATS_COMMAND "show stat -1 4 -1\n"

struct lb_stats {
	struct event_base *base;
	struct sockaddr_storage ss;
	socklen_t sslen;
	unsigned timeout_ms;
	lb_stats_fn fn;
	void *arg;
	struct bufferevent *bev; /* the poll in flight, NULL when idle */
};

static int unix_addr(const char *path, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;

	if (!path[0] || strlen(path) >= sizeof(un->sun_path))
		return -1;
	memset(ss, 0, sizeof(*ss));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, strlen(path) + 1);
	*len = (socklen_t)sizeof(*un);
	return 0;
}

struct lb_stats *lb_stats_new(struct event_base *base, const char *addr, unsigned timeout_ms,
			      lb_stats_fn fn, void *arg, char *err, size_t errlen)
{
	struct lb_stats *s = xcalloc(1, sizeof(*s));
	int rc;

	if (strncmp(addr, "unix@", 5) == 0)
		rc = unix_addr(addr + 5, &s->ss, &s->sslen);
	else if (addr[0] == '/')
		rc = unix_addr(addr, &s->ss, &s->sslen);
	else
		rc = addr_resolve(addr, SOCK_STREAM, &s->ss, &s->sslen);
	if (rc < 0) {
		snprintf(err, errlen, "haproxy_stats_socket: cannot use '%s' (a unix socket path or host:port)", addr);
		free(s);
		return NULL;
	}
	s->base = base;
	s->timeout_ms = timeout_ms;
	s->fn = fn;
	s->arg = arg;
	return s;
}

static void finish(struct lb_stats *s, const char *err)
{
	struct bufferevent *bev = s->bev;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);

	s->bev = NULL;
	if (err)
		s->fn(NULL, 0, err, s->arg);
	else
		s->fn((const char *)evbuffer_pullup(in, -1), len, NULL, s->arg);
	bufferevent_free(bev);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct lb_stats *s = arg;

	if (evbuffer_get_length(bufferevent_get_input(bev)) > LB_STATS_MAX)
		finish(s, "the stats answer is larger than the agent accepts");
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct lb_stats *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_TIMEOUT)
		finish(s, "timed out");
	else if (what & BEV_EVENT_ERROR)
		finish(s, "connection failed");
	else if (what & BEV_EVENT_EOF)
		finish(s, NULL);
}

int lb_stats_poll(struct lb_stats *s)
{
	struct timeval tv = { s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000 };

	if (s->bev)
		return -1;
	s->bev = bufferevent_socket_new(s->base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	bufferevent_write(s->bev, STATS_COMMAND, strlen(STATS_COMMAND));
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&s->ss, (int)s->sslen) < 0) {
		/* Reported like any failed poll (the socket may not exist yet). */
		finish(s, "connection failed");
	}
	return 0;
}

void lb_stats_free(struct lb_stats *s)
{
	if (!s)
		return;
	if (s->bev)
		bufferevent_free(s->bev);
	free(s);
}
