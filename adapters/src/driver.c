/* driver: see driver.h. */
#include "driver.h"

#include "util/xalloc.h"

#include <event2/event.h>
#include <stdlib.h>

struct drv {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
};

/* One socket curl watches: its libevent event. */
struct sock {
	struct event *ev;
	struct drv *d;
};

static void check_multi(struct drv *d)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(d->multi, &left))) {
		struct drv_xfer *x = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x)
			x->done(x, msg->data.result);
	}
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct drv *d = arg;
	int running, flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(d->multi, fd, flags, &running);
	check_multi(d);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct drv *d = arg;
	int running;

	(void)fd, (void)what;
	curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi(d);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct drv *d = userp;
	struct sock *sk = socketp;
	short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0));

	(void)e;
	if (sk)
		event_free(sk->ev);
	if (what == CURL_POLL_REMOVE) {
		free(sk);
		curl_multi_assign(d->multi, s, NULL);
		return 0;
	}
	if (!sk) {
		sk = xcalloc(1, sizeof(*sk));
		curl_multi_assign(d->multi, s, sk);
	}
	sk->ev = event_new(d->base, s, kind | EV_PERSIST, on_sock_event, d);
	if (!sk->ev)
		abort(); /* out of memory: as xalloc */
	event_add(sk->ev, NULL);
	return 0;
}

static int timer_cb(CURLM *m, long ms, void *userp)
{
	struct drv *d = userp;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	(void)m;
	if (ms < 0)
		evtimer_del(d->timer);
	else
		evtimer_add(d->timer, &tv);
	return 0;
}

struct drv *drv_new(struct event_base *base)
{
	struct drv *d = xcalloc(1, sizeof(*d));

	d->base = base;
	if (!(d->multi = curl_multi_init()) || !(d->timer = evtimer_new(base, on_timer, d))) {
		drv_free(d);
		return NULL;
	}
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
	/* Connections to providers are reused across requests. */
	curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	return d;
}

void drv_free(struct drv *d)
{
	if (!d)
		return;
	if (d->multi)
		curl_multi_cleanup(d->multi);
	if (d->timer)
		event_free(d->timer);
	free(d);
}

void drv_post_options(CURL *easy, const struct drv_post *p)
{
	curl_easy_setopt(easy, CURLOPT_URL, p->url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, p->headers);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, p->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)p->body_len);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, p->write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, p->write_arg);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, p->xfer);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, p->err);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, p->connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
}

int drv_add(struct drv *d, CURL *easy)
{
	return curl_multi_add_handle(d->multi, easy) == CURLM_OK ? 0 : -1;
}

void drv_remove(struct drv *d, CURL *easy)
{
	curl_multi_remove_handle(d->multi, easy);
}
