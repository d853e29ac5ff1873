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
#include <time.h>
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
		/* Connections accepted while the listener closed are served too (their
		 * HELLO is answered; they drain like the others). */
		for (i = 0; i < n; i++)
			conn_adopt(w, fds[i]);
	} while (n == 256);
	if (drain && !w->draining) {
		w->draining = 1;
		worker_maybe_stop(w);
	}
}

/* Letting connections go, one at a time. HAProxy 2.6 fails the NOTIFYs waiting on a
 * connection when it reads its DISCONNECT, and the NOTIFYs queued for its thread when
 * that was the thread's last connection: a connection is let go only when it has been
 * quiet for LET_GO_IDLE_MS with nothing unanswered, and one per LET_GO_TICK_MS, so that
 * HAProxy always has another connection (or opens one to the next process) meanwhile. */
#define LET_GO_TICK_MS 10
#define LET_GO_IDLE_MS 20

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void worker_let_go_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t now = now_ms();
	/* A connection HAProxy keeps busy is never quiet that long: in the second half of
	 * the time left, "nothing unanswered right now" is enough (rather than a hard close
	 * at the deadline, which fails what is in flight). */
	unsigned idle = now < w->let_go_relax_ms ? LET_GO_IDLE_MS : 0;

	(void)fd;
	(void)what;
	for (struct conn *c = w->conns, *next; c; c = next) {
		next = conn_next(c);
		if (conn_let_go(c, now, idle))
			break;
	}
	worker_maybe_stop(w);
}

/* Half-way to the drain deadline: existing connections have kept serving while HAProxy
 * moved new work to the next process (or, without one, its health checks found the
 * listener gone); now they are let go. */
static void worker_grace_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tick = { 0, LET_GO_TICK_MS * 1000 };

	(void)fd;
	(void)what;
	w->grace_over = 1;
	w->let_go_relax_ms = now_ms() + w->srv->drain_deadline_ms / 4;
	for (struct conn *c = w->conns; c; c = conn_next(c))
		conn_drain(c, 0);
	event_add(w->let_go_tick, &tick);
	worker_maybe_stop(w);
}

static void worker_drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	log_event(LOG_WARN, "drain_deadline_reached",
		  LOG_FIELDS(LOG_I("worker", w->index), LOG_I("connections", w->nconns)),
		  "worker %u: drain deadline reached with %u connection(s) open; closing them",
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
		log_event(LOG_ERROR, "worker_start_failed", LOG_FIELDS(LOG_S("error", "event_base_new")),
			  "event_base_new failed");
		abort();
	}
	pthread_mutex_init(&w->lock, NULL);
	w->queue_cap = 64;
	w->queue = xcalloc(w->queue_cap, sizeof(int));
	/* A persistent pseudo-event: the control thread calls event_active() on it. */
	w->wake = event_new(w->base, -1, EV_PERSIST, worker_wake_cb, w);
	w->drain_timer = evtimer_new(w->base, worker_drain_timer_cb, w);
	w->grace_timer = evtimer_new(w->base, worker_grace_timer_cb, w);
	w->let_go_tick = event_new(w->base, -1, EV_PERSIST, worker_let_go_cb, w);
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
		log_event(LOG_WARN, "spop_connection_refused",
			  LOG_FIELDS(LOG_I("max_connections", atomic_load(&srv->live.max_connections))),
			  "max_connections (%u) reached: refusing a connection",
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
	log_event(LOG_ERROR, "spop_accept_failed", LOG_FIELDS(LOG_S("error", evutil_socket_error_to_string(err))),
		  "accept failed: %s", evutil_socket_error_to_string(err));
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
	/* SO_REUSEPORT: a new agent process binds the same address while this one drains
	 * (docs/operations.md, "Restarts and upgrades"). */
	l = evconnlistener_new_bind(srv->control, accept_cb, srv,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT |
					    LEV_OPT_CLOSE_ON_EXEC,
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
			    const struct server_exit_hooks *hooks, int listen_now, char *err,
			    size_t errlen)
{
	struct server *srv = xcalloc(1, sizeof(*srv));

	srv->control = control;
	if (hooks)
		srv->exit_hooks = *hooks;
	live_apply(&srv->live, cfg);
	snprintf(srv->agent_id, sizeof(srv->agent_id), "%s", cfg->agent_id);
	srv->nworkers = cfg->workers ? cfg->workers : default_workers();
	if (listen_now) {
		srv->listener = listen_on(srv, cfg->listen, err, errlen);
		if (!srv->listener) {
			free(srv);
			return NULL;
		}
	}
	srv->workers = xcalloc(srv->nworkers, sizeof(*srv->workers));
	for (unsigned i = 0; i < srv->nworkers; i++)
		worker_init(srv, &srv->workers[i], i);
	for (unsigned i = 0; i < srv->nworkers; i++) {
		atomic_fetch_add(&srv->workers_running, 1);
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0) {
			log_event(LOG_ERROR, "worker_start_failed", LOG_FIELDS(LOG_S("error", "pthread_create")),
				  "pthread_create failed");
			abort();
		}
	}
	if (srv->listener)
		log_event(LOG_INFO, "spop_listening",
			  LOG_FIELDS(LOG_S("addr", cfg->listen), LOG_I("workers", srv->nworkers)),
			  "listening for SPOP on %s with %u worker(s)", cfg->listen, srv->nworkers);
	return srv;
}

int server_listen(struct server *srv, const char *addr, char *err, size_t errlen)
{
	if (srv->listener || srv->drain_done)
		return 0;
	srv->listener = listen_on(srv, addr, err, errlen);
	if (!srv->listener)
		return -1;
	log_event(LOG_INFO, "spop_listening", LOG_FIELDS(LOG_S("addr", addr), LOG_I("workers", srv->nworkers)),
		  "listening for SPOP on %s with %u worker(s)", addr, srv->nworkers);
	return 0;
}

int server_address_in_use(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, rc;

	memset(&ss, 0, sizeof(ss));
	if (addr_resolve(addr, SOCK_STREAM, &ss, &sl) < 0)
		return 0;
	if (ss.ss_family == AF_INET && ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY))
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (ss.ss_family == AF_INET6 &&
		 IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	rc = connect(fd, (struct sockaddr *)&ss, sl) == 0; /* loopback: immediate */
	close(fd);
	return rc;
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

/* Closing a listening socket resets the connections still in its accept queue; with
 * SO_REUSEPORT the kernel may have queued HAProxy's new connections here rather than on
 * the successor's socket. They are accepted (and served) first; the window left
 * between this loop and the close is microseconds (net.ipv4.tcp_migrate_req = 1 closes
 * it: the kernel then moves such connections to the successor). */
static void accept_backlog(struct server *srv)
{
	int lfd = evconnlistener_get_fd(srv->listener), fd, n = 0;

	evconnlistener_disable(srv->listener);
	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		accept_cb(srv->listener, fd, NULL, 0, srv);
		n++;
	}
	if (n)
		log_event(LOG_INFO, "drain_queued_accepted", LOG_FIELDS(LOG_I("connections", n)),
			  "drain: %d queued connection(s) accepted before closing the listener", n);
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
	srv->drain_deadline_ms = deadline_ms;
	if (srv->listener) {
		accept_backlog(srv);
		evconnlistener_free(srv->listener);
		srv->listener = NULL;
	}
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
		event_free(w->let_go_tick);
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
	return srv->listener ? addr_bound_port(evconnlistener_get_fd(srv->listener)) : 0;
}

unsigned server_workers(const struct server *srv)
{
	return srv->nworkers;
}
