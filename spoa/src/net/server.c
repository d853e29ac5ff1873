#include "net/server.h"

#include "net/net_int.h"
#include "util/addr.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 1024

static void live_apply(struct net_live *l, const struct jr_config *cfg)
{
	atomic_store(&l->max_connections, cfg->max_connections);
	atomic_store(&l->max_inflight, cfg->max_inflight_per_conn);
	atomic_store(&l->hello_timeout_ms, cfg->hello_timeout_ms);
	atomic_store(&l->idle_timeout_ms, cfg->idle_timeout_ms);
	atomic_store(&l->deadline_ms, cfg->deadline_ms);
	atomic_store(&l->on_error_allow, cfg->on_error_allow);
}

/* ---- workers ------------------------------------------------------------------------ */

/* Runs on the worker: adopts handed-off fds and notices a drain request. */
static void worker_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	int fds[256];
	unsigned n, i;
	int drain;

	(void)fd;
	(void)what;
	do {
		pthread_mutex_lock(&w->lock);
		n = w->queue_len < 256 ? w->queue_len : 256;
		memcpy(fds, w->queue, n * sizeof(int));
		memmove(w->queue, w->queue + n, (w->queue_len - n) * sizeof(int));
		w->queue_len -= n;
		drain = w->drain_requested;
		pthread_mutex_unlock(&w->lock);
		for (i = 0; i < n; i++) {
			if (drain || w->draining) {
				close(fds[i]);
				atomic_fetch_sub(&w->srv->connections, 1);
			} else {
				conn_adopt(w, fds[i]);
			}
		}
	} while (n == 256);
	if (drain && !w->draining) {
		w->draining = 1;
		worker_maybe_stop(w);
	}
}

/* Half-way to the drain deadline: existing connections have kept serving while HAProxy's
 * health checks found the listener gone and moved new work to other agents; now each
 * connection says DISCONNECT as soon as its in-flight decisions are answered. */
static void worker_grace_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	for (struct conn *c = w->conns, *next; c; c = next) {
		next = conn_next(c);
		conn_drain(c, 0);
	}
	worker_maybe_stop(w);
}

static void worker_drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	log_warn("worker %u: drain deadline reached with %u connection(s) open; closing them",
		 w->index, w->nconns);
	while (w->conns)
		conn_drain(w->conns, 1);
	worker_maybe_stop(w);
}

void worker_maybe_stop(struct worker *w)
{
	if (w->draining && w->nconns == 0)
		event_base_loopexit(w->base, NULL);
}

int server_exit_hooks_add(struct server_exit_hooks *l, void (*fn)(void *arg), void *arg)
{
	if (l->n >= SERVER_EXIT_HOOKS_MAX)
		return -1;
	l->h[l->n].fn = fn;
	l->h[l->n++].arg = arg;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct server_exit_hooks *hooks = &w->srv->exit_hooks;

	/* The loop must not exit while the worker has no connection yet. */
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	/* Before the base is freed: modules close their I/O on it and free their caches. */
	for (size_t i = 0; i < hooks->n; i++)
		hooks->h[i].fn(hooks->h[i].arg);
	atomic_fetch_sub(&w->srv->workers_running, 1);
	return NULL;
}

static void worker_init(struct server *srv, struct worker *w, unsigned index)
{
	w->srv = srv;
	w->index = index;
	w->base = event_base_new();
	if (!w->base) {
		log_error("event_base_new failed");
		abort();
	}
	pthread_mutex_init(&w->lock, NULL);
	w->queue_cap = 64;
	w->queue = xcalloc(w->queue_cap, sizeof(int));
	/* A persistent pseudo-event: the control thread calls event_active() on it. */
	w->wake = event_new(w->base, -1, EV_PERSIST, worker_wake_cb, w);
	w->drain_timer = evtimer_new(w->base, worker_drain_timer_cb, w);
	w->grace_timer = evtimer_new(w->base, worker_grace_timer_cb, w);
	w->metrics = metrics_shard_new();
}

/* Runs on the control thread. */
static void worker_handoff(struct worker *w, int fd)
{
	pthread_mutex_lock(&w->lock);
	if (w->queue_len == w->queue_cap) {
		w->queue_cap *= 2;
		w->queue = xrealloc(w->queue, w->queue_cap * sizeof(int));
	}
	w->queue[w->queue_len++] = fd;
	pthread_mutex_unlock(&w->lock);
	event_active(w->wake, EV_READ, 0);
}

/* ---- listener ----------------------------------------------------------------------- */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct server *srv = arg;
	int one = 1;

	(void)l;
	(void)sa;
	(void)salen;
	if (atomic_load(&srv->connections) >= (long)atomic_load(&srv->live.max_connections)) {
		metrics_inc(srv->workers[0].metrics, MC_CONN_REFUSED);
		log_warn("max_connections (%u) reached: refusing a connection",
			 atomic_load(&srv->live.max_connections));
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	atomic_fetch_add(&srv->connections, 1);
	worker_handoff(&srv->workers[srv->next_worker++ % srv->nworkers], fd);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	(void)l;
	(void)arg;
	/* EMFILE and friends: log and keep the listener; libevent retries on the next event. */
	log_error("accept failed: %s", evutil_socket_error_to_string(err));
}

static struct evconnlistener *listen_on(struct server *srv, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	struct evconnlistener *l;

	memset(&ss, 0, sizeof(ss));
	if (addr_resolve(addr, SOCK_STREAM, &ss, &sslen) < 0) {
		snprintf(err, errlen, "listen: cannot parse address '%s' (expected host:port)", addr);
		return NULL;
	}
	l = evconnlistener_new_bind(srv->control, accept_cb, srv,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
				    LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)sslen);
	if (!l) {
		snprintf(err, errlen, "listen: cannot bind %s: %s", addr, strerror(errno));
		return NULL;
	}
	evconnlistener_set_error_cb(l, accept_error_cb);
	return l;
}

/* ---- life cycle --------------------------------------------------------------------- */

static unsigned default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

struct server *server_start(struct event_base *control, const struct jr_config *cfg,
			    const struct server_exit_hooks *hooks, char *err, size_t errlen)
{
	struct server *srv = xcalloc(1, sizeof(*srv));

	srv->control = control;
	if (hooks)
		srv->exit_hooks = *hooks;
	live_apply(&srv->live, cfg);
	srv->nworkers = cfg->workers ? cfg->workers : default_workers();
	srv->listener = listen_on(srv, cfg->listen, err, errlen);
	if (!srv->listener) {
		free(srv);
		return NULL;
	}
	srv->workers = xcalloc(srv->nworkers, sizeof(*srv->workers));
	for (unsigned i = 0; i < srv->nworkers; i++)
		worker_init(srv, &srv->workers[i], i);
	for (unsigned i = 0; i < srv->nworkers; i++) {
		atomic_fetch_add(&srv->workers_running, 1);
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0) {
			log_error("pthread_create failed");
			abort();
		}
	}
	log_info("listening for SPOP on %s with %u worker(s)", cfg->listen, srv->nworkers);
	return srv;
}

void server_reconfigure(struct server *srv, const struct jr_config *cfg)
{
	live_apply(&srv->live, cfg);
}

static void drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	if (atomic_load(&srv->workers_running) > 0)
		return;
	event_del(srv->drain_check);
	srv->drain_done(srv->drain_arg);
}

void server_drain(struct server *srv, unsigned deadline_ms, void (*done)(void *), void *arg)
{
	struct timeval dl = { deadline_ms / 1000, (deadline_ms % 1000) * 1000 };
	struct timeval grace = { deadline_ms / 2000, ((deadline_ms / 2) % 1000) * 1000 };
	struct timeval tick = { 0, 20000 };

	if (srv->drain_done)
		return; /* already draining */
	srv->drain_done = done;
	srv->drain_arg = arg;
	evconnlistener_free(srv->listener);
	srv->listener = NULL;
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct worker *w = &srv->workers[i];
		pthread_mutex_lock(&w->lock);
		w->drain_requested = 1;
		pthread_mutex_unlock(&w->lock);
		/* The drain timer is armed from here: event_add is thread-safe with
		 * evthread_use_pthreads(), which main() calls before any base exists. */
		event_add(w->drain_timer, &dl);
		event_add(w->grace_timer, &grace);
		event_active(w->wake, EV_READ, 0);
	}
	/* The control thread polls for the workers' exit: cheap, and keeps joins simple. */
	srv->drain_check = event_new(srv->control, -1, EV_PERSIST, drain_check_cb, srv);
	event_add(srv->drain_check, &tick);
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct worker *w = &srv->workers[i];
		/* A worker that has not drained (a second SIGTERM) stops here, hard. */
		event_base_loopexit(w->base, NULL);
		pthread_join(w->thread, NULL);
		while (w->conns)
			conn_drain(w->conns, 1);
		for (unsigned j = 0; j < w->queue_len; j++)
			close(w->queue[j]);
		event_free(w->wake);
		event_free(w->drain_timer);
		event_free(w->grace_timer);
		event_base_free(w->base);
		pthread_mutex_destroy(&w->lock);
		free(w->queue);
	}
	if (srv->listener)
		evconnlistener_free(srv->listener);
	if (srv->drain_check)
		event_free(srv->drain_check);
	free(srv->workers);
	free(srv);
}

long server_connections(const struct server *srv)
{
	return atomic_load(&srv->connections);
}

int server_port(const struct server *srv)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (!srv->listener ||
	    getsockname(evconnlistener_get_fd(srv->listener), (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

unsigned server_workers(const struct server *srv)
{
	return srv->nworkers;
}
