/*
 * api/: the administration API's connection bound, on a real listener with real sockets.
 * Clients that open connections and never finish a request (slow or stalled, held up to
 * the request timeout) must not take the agent's descriptors without limit: beyond
 * API_CONNS_MAX open connections every request is answered 503 admin_busy, and at
 * API_CONNS_MAX + API_CONNS_SPARE the listener stops accepting until one closes.
 */
#include "api/api.h"

#include "ports.h"
#include "testlib.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HELD (API_CONNS_MAX + API_CONNS_SPARE + 8)

static int connect_to(int port)
{
	int fd = fx_connect(port);

	if (fd < 0)
		abort();
	return fd;
}

/* A connection that sent half a request and stalls. */
static int stalled(int port)
{
	static const char half[] = "GET /jairouter/admin/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\n";
	int fd = connect_to(port);

	CHECK(write(fd, half, sizeof(half) - 1) == (ssize_t)(sizeof(half) - 1));
	return fd;
}

/* One whole request on a new connection: its status, its body in body. */
static int request(int port, char *body, size_t cap)
{
	static const char req[] = "GET /jairouter/admin/v1/no-such-thing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	char resp[8192];
	size_t got = 0;
	ssize_t n;
	int fd = connect_to(port);
	const char *b;

	CHECK(write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1));
	while (got < sizeof(resp) - 1 && (n = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0) {
		got += (size_t)n;
		resp[got] = '\0';
		if ((b = strstr(resp, "\r\n\r\n")) && strstr(b, "}}"))
			break;
	}
	resp[got] = '\0';
	close(fd);
	return fx_http_answer(resp, body, cap);
}

/* A number from the API's metrics text. */
static unsigned long long metric(struct api *a, const char *name)
{
	struct evbuffer *out = evbuffer_new();
	char key[128], *text, *at;
	unsigned long long v = 0;

	api_render_metrics(out, a);
	evbuffer_add(out, "", 1);
	text = (char *)evbuffer_pullup(out, -1);
	snprintf(key, sizeof(key), "\n%s ", name);
	if ((at = strstr(text, key)))
		v = strtoull(at + strlen(key), NULL, 10);
	evbuffer_free(out);
	return v;
}

/* Polls until the metric reads want (the API's thread accepts on its own loop); returns
 * the last reading. */
static unsigned long long wait_metric(struct api *a, const char *name, unsigned long long want)
{
	unsigned long long v = 0;

	for (int i = 0; i < 500 && (v = metric(a, name)) != want; i++)
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	return v;
}

static unsigned long long wait_conns(struct api *a, unsigned long long want)
{
	return wait_metric(a, "jairouter_admin_api_connections", want);
}

static void connection_bound(void)
{
	char err[128], addr[32], body[4096];
	int port = fx_free_port(), fds[HELD], n = 0;
	struct api *a;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	/* No database: requests that reach it are 503 database_unavailable. */
	a = api_start(addr, "host=127.0.0.1 port=1 dbname=none connect_timeout=1", 0, err, sizeof(err));
	CHECK(a != NULL);
	if (!a)
		return;
	CHECK_EQ_INT(request(port, body, sizeof(body)), 404);

	while (n < API_CONNS_MAX + 1)
		fds[n++] = stalled(port);
	CHECK_EQ_INT((long long)wait_conns(a, API_CONNS_MAX + 1), API_CONNS_MAX + 1);
	/* Beyond the bound: a clear error at once, its connection closed. */
	CHECK_EQ_INT(request(port, body, sizeof(body)), 503);
	CHECK(strstr(body, "\"code\":\"admin_busy\"") != NULL);
	CHECK(strstr(body, "too many open connections") != NULL);
	CHECK_EQ_INT((long long)metric(a, "jairouter_admin_api_connections_refused_total"), 1);

	/* At API_CONNS_MAX + API_CONNS_SPARE the listener stops: the next connections wait
	 * in the kernel's backlog, none is taken. */
	while (n < API_CONNS_MAX + API_CONNS_SPARE)
		fds[n++] = stalled(port);
	CHECK_EQ_INT((long long)wait_conns(a, API_CONNS_MAX + API_CONNS_SPARE), API_CONNS_MAX + API_CONNS_SPARE);
	while (n < HELD)
		fds[n++] = stalled(port);
	/* (the two probes and the stalled ones so far) */
	nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
	CHECK_EQ_INT((long long)metric(a, "jairouter_admin_api_connections_accepted_total"), API_CONNS_MAX + API_CONNS_SPARE + 2);
	CHECK_EQ_INT((long long)metric(a, "jairouter_admin_api_connections"), API_CONNS_MAX + API_CONNS_SPARE);

	/* Once the stalled clients are gone, the waiting ones are taken and served. */
	while (n > 0)
		close(fds[--n]);
	CHECK_EQ_INT((long long)wait_metric(a, "jairouter_admin_api_connections_accepted_total", HELD + 2), HELD + 2);
	CHECK_EQ_INT((long long)wait_conns(a, 0), 0);
	CHECK_EQ_INT(request(port, body, sizeof(body)), 404);
	CHECK(strstr(body, "admin_busy") == NULL);
	CHECK_EQ_INT((long long)metric(a, "jairouter_admin_api_connections_refused_total"), 1);
	api_stop(a);
}

int main(void)
{
	evthread_use_pthreads();
	RUN(connection_bound);
	TEST_END();
}
