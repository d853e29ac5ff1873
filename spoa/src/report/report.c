/*
 * report: parsing and fan-out of end-of-request lines, and their datagram listener.
 * See report.h for the format and the threading rules.
 */
#include "report/report.h"

#include "util/addr.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- parsing ------------------------------------------------------------------------ */

static int key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* A decimal integer (optional '-'), or dflt. */
static int64_t to_int(const char *p, size_t n, int64_t dflt)
{
	int64_t v = 0;
	int neg = 0;
	size_t i = 0;

	if (!p || !n)
		return dflt;
	if (p[0] == '-' || p[0] == '+') {
		neg = p[0] == '-';
		i = 1;
	}
	if (i == n || n - i > 18)
		return dflt;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return dflt;
		v = v * 10 + (p[i] - '0');
	}
	return neg ? -v : v;
}

const char *report_get(const struct jr_report *r, const char *key, size_t *len)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < r->n; i++) {
		const struct report_field *f = &r->f[i];
		if (f->key_len != kl || memcmp(f->key, key, kl) != 0)
			continue;
		if (f->val_len == 0 || (f->val_len == 1 && f->val[0] == '-'))
			return NULL;
		if (len)
			*len = f->val_len;
		return f->val;
	}
	return NULL;
}

int64_t report_get_int(const struct jr_report *r, const char *key, int64_t dflt)
{
	size_t n = 0;
	const char *v = report_get(r, key, &n);

	return to_int(v, n, dflt);
}

int report_is(const struct jr_report *r, const char *key, const char *lit)
{
	size_t n = 0;
	const char *v = report_get(r, key, &n);

	return v && n == strlen(lit) && memcmp(v, lit, n) == 0;
}

int report_client_aborted(const struct jr_report *r)
{
	return r->tsc[0] == 'C';
}

int report_parse(const char *line, size_t len, struct jr_report *out)
{
	size_t i = 0, n;
	const char *v;
	int ended = 0;

	memset(out, 0, sizeof(*out));
	out->line = line;
	/* A trailing newline (syslog-style senders) is not part of the last value. */
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == '\0'))
		len--;
	out->len = len;
	while (i < len) {
		size_t start = i, eq = 0;
		while (i < len && line[i] != ' ')
			i++;
		/* token [start, i) */
		for (size_t j = start; j < i; j++) {
			if (line[j] == '=') {
				eq = j;
				break;
			}
			if (!key_char(line[j]))
				break;
		}
		if (eq > start) {
			if (out->n == REPORT_MAX_FIELDS) {
				out->truncated = 1;
				break;
			}
			struct report_field *f = &out->f[out->n++];
			f->key = line + start;
			f->key_len = eq - start;
			f->val = line + eq + 1;
			f->val_len = i - eq - 1;
			ended = f->key_len == 3 && memcmp(f->key, "end", 3) == 0;
		}
		while (i < len && line[i] == ' ')
			i++;
	}
	if (!report_get(out, "id", NULL))
		return -1;
	out->adapter = report_is(out, "src", "adapter");
	/* Only HAProxy's lines carry the end marker (the adapter's are short). */
	if (!ended && !out->adapter)
		out->truncated = 1;
	out->status = (int)report_get_int(out, "st", -1);
	out->tw_ms = report_get_int(out, "tw", -1);
	out->tc_ms = report_get_int(out, "tc", -1);
	out->tr_ms = report_get_int(out, "tr", -1);
	out->ta_ms = report_get_int(out, "ta", -1);
	out->bytes = report_get_int(out, "bytes", -1);
	n = 0;
	v = report_get(out, "tsc", &n);
	if (v && n <= 4) {
		memcpy(out->tsc, v, n);
		out->tsc[n] = '\0';
	}
	return 0;
}

/* ---- subscribers -------------------------------------------------------------------- */

static struct {
	report_fn fn;
	void *arg;
} subs[REPORT_MAX_SUBSCRIBERS];
static size_t nsubs;

int report_subscribe(report_fn fn, void *arg)
{
	if (nsubs == REPORT_MAX_SUBSCRIBERS)
		return -1;
	subs[nsubs].fn = fn;
	subs[nsubs].arg = arg;
	nsubs++;
	return 0;
}

void report_unsubscribe_all(void)
{
	nsubs = 0;
}

void report_publish(const struct jr_report *r)
{
	for (size_t i = 0; i < nsubs; i++)
		subs[i].fn(r, subs[i].arg);
}

/* ---- listener ----------------------------------------------------------------------- */

/* Datagrams read per wake-up: bounds the time one burst holds the control loop (pgsync
 * and the admin endpoint share it); the rest wait for the next turn of the loop. */
#define REPORT_BATCH 256
/* Receive queue asked of the kernel: about 4 MiB holds some 10,000 lines of ~400 bytes,
 * a second of a busy node, while the control thread is briefly busy elsewhere. */
#define REPORT_RCVBUF (4 << 20)

/* Stream connections at once: HAProxy's ring forwarder keeps one per ring server, a
 * reload briefly two; beyond this, connections are refused. */
#define REPORT_MAX_STREAMS 8
/* Bytes one read callback consumes from a stream before the loop turns (~600 lines). */
#define REPORT_STREAM_CHUNK (256 * 1024)

struct report_stream {
	struct report_listener *l;
	struct bufferevent *bev;
};

struct report_listener {
	int fd;                       /* datagram socket */
	int fwd_fd;                   /* draining: datagrams to the successor, else -1 */
	struct sockaddr_storage addr; /* the listening address (the successor's too) */
	socklen_t addr_len;
	struct event *ev;
	struct evconnlistener *tcp;   /* octet-counted stream (host:port only) */
	struct report_stream *streams[REPORT_MAX_STREAMS];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix socket to unlink */
	struct report_stats st;
	char buf[REPORT_LINE_MAX];
};

static char own_agent[64], own_tag[16];

void report_set_identity(const char *agent_id, const char *process_tag)
{
	snprintf(own_agent, sizeof(own_agent), "%s", agent_id ? agent_id : "");
	snprintf(own_tag, sizeof(own_tag), "%s", process_tag ? process_tag : "");
}

/* Whether acct= (pipeline/limits.h: "<process tag>.<...>") names another process. */
static int other_process(const struct jr_report *r)
{
	size_t n = 0;
	const char *a = report_get(r, "acct", &n);
	size_t tl = strlen(own_tag);

	return a && own_tag[0] && !(n > tl && memcmp(a, own_tag, tl) == 0 && a[tl] == '.');
}

/* A line decided by the successor while this process still holds the ring: sent on to
 * it. Returns 1 when sent (or lost: counted), 0 when nobody listens there any more (no
 * successor): the line is then billed here, since nobody else holds it. */
static int forward(struct report_listener *l, size_t n)
{
	if (send(l->fwd_fd, l->buf, n, MSG_DONTWAIT) == (ssize_t)n) {
		l->st.forwarded++;
		return 1;
	}
	if (errno == ECONNREFUSED)
		return 0;
	if (l->st.forward_failed++ == 0)
		log_event(LOG_WARN, "report_forward_failed", LOG_FIELDS(LOG_S("error", strerror(errno))),
			  "report: cannot send a line on to the new agent process: %s (counted in "
			  "jairouter_report_forward_failed_total)", strerror(errno));
	return 1;
}

/* One line from either transport: parse, count, publish. */
static void handle_line(struct report_listener *l, size_t n, int cut)
{
	struct jr_report r;
	size_t agl = 0;
	const char *ag;

	if (report_parse(l->buf, n, &r) < 0) {
		l->st.malformed++;
		return;
	}
	/* Every agent behind one HAProxy gets every line (a ring per agent): only the agent
	 * that decided acts on it. */
	ag = report_get(&r, "ag", &agl);
	if (ag && own_agent[0] && (agl != strlen(own_agent) || memcmp(ag, own_agent, agl) != 0)) {
		l->st.foreign++;
		return;
	}
	r.other_process = other_process(&r);
	if (r.other_process && l->fwd_fd >= 0 && forward(l, n))
		return;
	if (cut)
		r.truncated = 1;
	if (r.truncated)
		l->st.truncated++;
	l->st.lines++;
	report_publish(&r);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct report_listener *l = arg;
	(void)what;

	for (int i = 0; i < REPORT_BATCH; i++) {
		char cbuf[CMSG_SPACE(sizeof(uint32_t))];
		struct iovec iov = { l->buf, sizeof(l->buf) };
		struct msghdr mh;
		ssize_t n;

		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_event(LOG_WARN, "report_receive_failed",
					  LOG_FIELDS(LOG_S("error", strerror(errno))), "report listener: %s",
					  strerror(errno));
			return;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
				uint32_t drops;
				memcpy(&drops, CMSG_DATA(c), sizeof(drops));
				l->st.dropped = drops; /* the kernel's running total for this socket */
			}
		}
		handle_line(l, (size_t)n, (mh.msg_flags & MSG_TRUNC) != 0);
	}
}

/* ---- the stream transport: RFC 6587 octet counting, "<length> <line>" repeated, as
 * HAProxy's ring forwarder sends it (`server ... log-proto octet-count`). */

static void stream_free(struct report_stream *s)
{
	struct report_listener *l = s->l;

	for (size_t i = 0; i < REPORT_MAX_STREAMS; i++)
		if (l->streams[i] == s)
			l->streams[i] = NULL;
	bufferevent_free(s->bev);
	free(s);
}

/* Parses the frames in the input buffer. Returns -1 on a framing error. */
static int stream_frames(struct report_stream *s)
{
	struct report_listener *l = s->l;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t consumed = 0;

	while (consumed < REPORT_STREAM_CHUNK) {
		unsigned char hdr[8];
		size_t avail = evbuffer_get_length(in), hl = 0, len = 0, take;
		ssize_t got;

		if (!avail)
			break;
		got = evbuffer_copyout(in, hdr, sizeof(hdr));
		while (hl < (size_t)got && hdr[hl] >= '0' && hdr[hl] <= '9')
			len = len * 10 + (size_t)(hdr[hl++] - '0');
		if (hl == (size_t)got) {
			if (got == (ssize_t)sizeof(hdr))
				return -1; /* 8 digits and no space: not a length we accept */
			break;             /* the length is still arriving */
		}
		if (hl == 0 || hdr[hl] != ' ' || len == 0 || len > 65535)
			return -1;
		if (avail < hl + 1 + len)
			break; /* the line is still arriving */
		evbuffer_drain(in, hl + 1);
		take = len < sizeof(l->buf) ? len : sizeof(l->buf);
		evbuffer_remove(in, l->buf, take);
		if (len > take)
			evbuffer_drain(in, len - take);
		handle_line(l, take, len > take);
		consumed += hl + 1 + len;
	}
	/* More left: come back on the next turn of the loop, after other events. */
	if (evbuffer_get_length(in) && consumed >= REPORT_STREAM_CHUNK)
		bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	return 0;
}

static void stream_read_cb(struct bufferevent *bev, void *arg)
{
	struct report_stream *s = arg;
	(void)bev;

	if (stream_frames(s) < 0) {
		s->l->st.malformed++;
		log_event(LOG_WARN, "report_stream_framing_error", LOG_NO_FIELDS,
			  "report stream: framing error, closing the connection");
		stream_free(s);
	}
}

static void stream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		stream_free(arg);
}

static void stream_accept_cb(struct evconnlistener *tcp, evutil_socket_t fd, struct sockaddr *sa,
			     int salen, void *arg)
{
	struct report_listener *l = arg;
	struct report_stream *s;
	size_t slot = REPORT_MAX_STREAMS;
	(void)sa;
	(void)salen;

	for (size_t i = 0; i < REPORT_MAX_STREAMS; i++)
		if (!l->streams[i]) {
			slot = i;
			break;
		}
	if (slot == REPORT_MAX_STREAMS) {
		log_event(LOG_WARN, "report_stream_refused", LOG_FIELDS(LOG_I("streams", REPORT_MAX_STREAMS)),
			  "report stream: %d connections already open; refusing another", REPORT_MAX_STREAMS);
		evutil_closesocket(fd);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->l = l;
	s->bev = bufferevent_socket_new(evconnlistener_get_base(tcp), fd, BEV_OPT_CLOSE_ON_FREE);
	if (!s->bev) {
		evutil_closesocket(fd);
		free(s);
		return;
	}
	l->streams[slot] = s;
	/* Bounded input: at most this much waits in our buffer; TCP pushes back beyond. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, 4 * REPORT_STREAM_CHUNK);
	bufferevent_setcb(s->bev, stream_read_cb, NULL, stream_event_cb, s);
	bufferevent_enable(s->bev, EV_READ);
}

static int open_socket(struct report_listener *l, struct event_base *base, const char *addr,
		       char *err, size_t errlen)
{
	int one = 1, rcv = REPORT_RCVBUF;

	if (strncmp(addr, "unix@", 5) == 0) {
		struct sockaddr_un sun;
		const char *path = addr + 5;

		if (!path[0] || strlen(path) >= sizeof(sun.sun_path)) {
			snprintf(err, errlen, "report_listen: unix socket path too long or empty");
			return -1;
		}
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		strcpy(sun.sun_path, path);
		l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (l->fd < 0)
			goto sys;
		unlink(path); /* a stale socket from an earlier run */
		if (bind(l->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			goto sys;
		strcpy(l->path, path);
		memcpy(&l->addr, &sun, sizeof(sun));
		l->addr_len = sizeof(sun);
		if (chmod(path, 0660) < 0)
			goto sys;
	} else {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		memset(&ss, 0, sizeof(ss));
		if (addr_resolve(addr, SOCK_DGRAM, &ss, &sl) < 0) {
			snprintf(err, errlen, "report_listen: cannot parse address '%s' (expected host:port or unix@/path)", addr);
			return -1;
		}
		l->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (l->fd < 0)
			goto sys;
		/* SO_REUSEPORT on both: the next process of this agent binds them while this
		 * one drains (report_listener_drain). */
		(void)setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		if (bind(l->fd, (struct sockaddr *)&ss, sl) < 0)
			goto sys;
		memcpy(&l->addr, &ss, sl);
		l->addr_len = sl;
		/* The same address, over TCP, for HAProxy's ring forwarder. */
		l->tcp = evconnlistener_new_bind(base, stream_accept_cb, l,
						 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
							 LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
						 16, (struct sockaddr *)&ss, (int)sl);
		if (!l->tcp)
			goto sys;
	}
	/* Best effort: the kernel caps it at net.core.rmem_max. */
	(void)setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	(void)setsockopt(l->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	return 0;
sys:
	snprintf(err, errlen, "report_listen: cannot bind %s: %s", addr, strerror(errno));
	return -1;
}

struct report_listener *report_listen(struct event_base *base, const char *addr, char *err,
				      size_t errlen)
{
	struct report_listener *l = xcalloc(1, sizeof(*l));

	l->fd = -1;
	l->fwd_fd = -1;
	if (open_socket(l, base, addr, err, errlen) < 0) {
		report_listener_free(l);
		return NULL;
	}
	l->ev = event_new(base, l->fd, EV_READ | EV_PERSIST, read_cb, l);
	event_add(l->ev, NULL);
	return l;
}

void report_listener_free(struct report_listener *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < REPORT_MAX_STREAMS; i++)
		if (l->streams[i])
			stream_free(l->streams[i]);
	if (l->tcp)
		evconnlistener_free(l->tcp);
	if (l->ev)
		event_free(l->ev);
	if (l->fd >= 0)
		close(l->fd);
	if (l->fwd_fd >= 0)
		close(l->fwd_fd);
	if (l->path[0])
		unlink(l->path);
	free(l);
}

void report_listener_drain(struct report_listener *l)
{
	int fd;

	if (!l || l->fwd_fd >= 0)
		return;
	if (l->tcp) {
		evconnlistener_disable(l->tcp);
		while ((fd = accept4(evconnlistener_get_fd(l->tcp), NULL, NULL,
				     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			stream_accept_cb(l->tcp, fd, NULL, 0, l);
		evconnlistener_free(l->tcp);
		l->tcp = NULL;
	}
	if (l->fd >= 0) {
		read_cb(l->fd, EV_READ, l); /* what is queued (up to one batch) */
		event_free(l->ev);
		l->ev = NULL;
		close(l->fd);
		l->fd = -1;
	}
	/* The path (unix@) is the successor's now: it re-created it at its start. */
	l->path[0] = '\0';
	fd = socket(l->addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&l->addr, l->addr_len) < 0) {
		close(fd);
		fd = -1;
	}
	l->fwd_fd = fd;
	if (fd < 0)
		log_event(LOG_WARN, "report_forward_socket_failed", LOG_FIELDS(LOG_S("error", strerror(errno))),
			  "report: no datagram socket to the next agent process: %s", strerror(errno));
}

void report_listener_handover(struct report_listener *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < REPORT_MAX_STREAMS; i++)
		if (l->streams[i])
			shutdown(bufferevent_getfd(l->streams[i]->bev), SHUT_WR);
}

size_t report_listener_streams(const struct report_listener *l)
{
	size_t n = 0;

	for (size_t i = 0; l && i < REPORT_MAX_STREAMS; i++)
		n += l->streams[i] != NULL;
	return n;
}

void report_listener_stats(const struct report_listener *l, struct report_stats *st)
{
	if (l)
		*st = l->st;
	else
		memset(st, 0, sizeof(*st));
}
