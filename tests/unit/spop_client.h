/*
 * spop_client: HAProxy's side of SPOP for the tests that run the agent's server over
 * loopback (test_server, test_worker): connect, handshake, frames in and out. The test
 * sets `port` to the server's port. Needs testlib.h first.
 */
#ifndef JR_TEST_SPOP_CLIENT_H
#define JR_TEST_SPOP_CLIENT_H

#include "spop/spop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int port; /* the server under test */

static inline int client(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 3, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		abort();
	}
	return fd;
}

static inline void send_all(int fd, const void *p, size_t n)
{
	CHECK(write(fd, p, n) == (ssize_t)n);
}

static inline int read_full(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Reads one frame; returns 0 and fills f (payload inside buf), or -1 on EOF/timeout. */
static inline int recv_frame(int fd, uint8_t *buf, size_t cap, struct spop_frame *f)
{
	uint32_t len;

	if (read_full(fd, buf, 4) < 0 || spop_frame_length(buf, 4, (uint32_t)cap - 4, &len) != 4 ||
	    read_full(fd, buf + 4, len) < 0)
		return -1;
	return spop_frame_decode(buf + 4, len, f);
}

static inline int at_eof(int fd)
{
	uint8_t b;

	return read(fd, &b, 1) == 0;
}

static inline size_t hello_frame(uint8_t *buf, size_t cap, uint32_t max_frame, int healthcheck)
{
	struct spop_writer w;
	struct spop_data t = spop_bool(1);

	spop_writer_init(&w, buf, cap);
	spop_frame_begin(&w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0);
	spop_put_kv_string(&w, "supported-versions", "2.0", 3);
	spop_put_kv_uint32(&w, "max-frame-size", max_frame);
	spop_put_kv_string(&w, "capabilities", healthcheck ? "" : "pipelining,async",
			   healthcheck ? 0 : 16);
	if (healthcheck)
		spop_put_kv(&w, "healthcheck", &t);
	else
		spop_put_kv_string(&w, "engine-id", "test-engine", 11);
	return (size_t)spop_frame_end(&w, max_frame);
}

/* A NOTIFY with the `jairouter-request` message: method POST, the chat path, the
 * authorization header value auth, and the legacy `model` argument. */
static inline size_t notify_frame_auth(uint8_t *buf, size_t cap, uint64_t sid, uint64_t fid,
				       uint32_t flags, const char *auth, const char *model)
{
	struct spop_writer w;
	static const char name[] = "jairouter-request";
	struct spop_data method = spop_cstr("POST"), path = spop_cstr("/v1/chat/completions");
	struct spop_data a = spop_cstr(auth), m = spop_cstr(model);

	spop_writer_init(&w, buf, cap);
	spop_frame_begin(&w, SPOP_FRAME_NOTIFY, flags, sid, fid);
	buf[w.len++] = (uint8_t)(sizeof(name) - 1);
	memcpy(buf + w.len, name, sizeof(name) - 1);
	w.len += sizeof(name) - 1;
	buf[w.len++] = 4;
	spop_put_kv(&w, "method", &method);
	spop_put_kv(&w, "path", &path);
	spop_put_kv(&w, "authorization", &a);
	spop_put_kv(&w, "model", &m);
	return (size_t)spop_frame_end(&w, 16380);
}

/* Connects and completes the handshake with max-frame-size mfs. */
static inline int ready_client(uint32_t mfs)
{
	uint8_t buf[512];
	struct spop_frame f;
	int fd = client();

	send_all(fd, buf, hello_frame(buf, sizeof(buf), mfs, 0));
	CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_AGENT_HELLO);
	return fd;
}

#endif /* JR_TEST_SPOP_CLIENT_H */
