/*
 * The SPOP server over real loopback sockets, in process: handshake, decisions,
 * pipelining, health checks, every protocol error path, timeouts and the drain.
 * HAProxy itself is exercised by the integration suite; this plays HAProxy's part byte
 * for byte so each edge case is reachable on demand.
 */
#include "auth/apikey.h"
#include "config/config.h"
#include "net/server.h"
#include "spop/spop.h"
#include "state/state.h"
#include "util/log.h"

#include "fixtures.h"
#include "testlib.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define KEY "jr-1111111111111111111111111111111111111111111111111111111111111111"

static struct event_base *base;
static struct server *srv;
static pthread_t control_thread;
static int port;

static void *control_main(void *arg)
{
	(void)arg;
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static int client(void)
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

static void send_all(int fd, const void *p, size_t n)
{
	CHECK(write(fd, p, n) == (ssize_t)n);
}

static int read_full(int fd, uint8_t *p, size_t n)
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
static int recv_frame(int fd, uint8_t *buf, size_t cap, struct spop_frame *f)
{
	uint32_t len;

	if (read_full(fd, buf, 4) < 0 || spop_frame_length(buf, 4, (uint32_t)cap - 4, &len) != 4 ||
	    read_full(fd, buf + 4, len) < 0)
		return -1;
	return spop_frame_decode(buf + 4, len, f);
}

static int at_eof(int fd)
{
	uint8_t b;

	return read(fd, &b, 1) == 0;
}

static size_t hello_frame(uint8_t *buf, size_t cap, uint32_t max_frame, int healthcheck)
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

static size_t notify_frame(uint8_t *buf, size_t cap, uint64_t sid, uint64_t fid, uint32_t flags,
			   const char *model)
{
	struct spop_writer w;
	static const char name[] = "jairouter-request";
	struct spop_data method = spop_cstr("POST"), path = spop_cstr("/v1/chat/completions");
	struct spop_data auth = spop_cstr("Bearer " KEY), m = spop_cstr(model);

	spop_writer_init(&w, buf, cap);
	spop_frame_begin(&w, SPOP_FRAME_NOTIFY, flags, sid, fid);
	buf[w.len++] = (uint8_t)(sizeof(name) - 1);
	memcpy(buf + w.len, name, sizeof(name) - 1);
	w.len += sizeof(name) - 1;
	buf[w.len++] = 4;
	spop_put_kv(&w, "method", &method);
	spop_put_kv(&w, "path", &path);
	spop_put_kv(&w, "authorization", &auth);
	spop_put_kv(&w, "model", &m);
	return (size_t)spop_frame_end(&w, 16380);
}

/* Connects and completes the handshake with max-frame-size mfs. */
static int ready_client(uint32_t mfs)
{
	uint8_t buf[512];
	struct spop_frame f;
	int fd = client();

	send_all(fd, buf, hello_frame(buf, sizeof(buf), mfs, 0));
	CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_AGENT_HELLO);
	return fd;
}

/* Expects an AGENT-DISCONNECT with the status, then a close. */
static void expect_disconnect(int fd, uint32_t status)
{
	uint8_t buf[1024];
	struct spop_frame f;
	struct spop_disconnect d = { 99, NULL, 0 };

	CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_AGENT_DISCONNECT);
	CHECK_EQ_INT(spop_disconnect_parse(f.payload, f.payload_len, &d), 0);
	CHECK_EQ_INT(d.status_code, status);
	CHECK(at_eof(fd));
	close(fd);
}

static void test_handshake(void)
{
	uint8_t buf[512];
	struct spop_frame f;
	struct spop_reader r;
	struct spop_kv kv;
	int fd = client(), seen = 0;

	send_all(fd, buf, hello_frame(buf, sizeof(buf), 16380, 0));
	CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_AGENT_HELLO);
	CHECK_EQ_INT(f.flags, SPOP_FLAG_FIN);
	spop_reader_init(&r, f.payload, f.payload_len);
	while (spop_kv_next(&r, &kv) > 0) {
		if (spop_name_eq(kv.name, kv.name_len, "version")) {
			seen++;
			CHECK(kv.value.u.str.len == 3 && !memcmp(kv.value.u.str.ptr, "2.0", 3));
		} else if (spop_name_eq(kv.name, kv.name_len, "max-frame-size")) {
			seen++;
			CHECK_EQ_INT(kv.value.u.u32, 16380); /* echoed, never smaller */
		} else if (spop_name_eq(kv.name, kv.name_len, "capabilities")) {
			seen++;
			CHECK(kv.value.u.str.len == 10 && !memcmp(kv.value.u.str.ptr, "pipelining", 10));
		}
	}
	CHECK_EQ_INT(seen, 3);
	close(fd);
}

static void test_notify_ack(void)
{
	uint8_t buf[4096];
	struct spop_frame f;
	int fd = ready_client(16380);

	send_all(fd, buf, notify_frame(buf, sizeof(buf), 12345678901ULL, 1, SPOP_FLAG_FIN, "demo-model"));
	CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_ACK);
	CHECK_EQ_INT(f.stream_id, 12345678901ULL);
	CHECK_EQ_INT(f.frame_id, 1);
	CHECK(fx_contains(f.payload, f.payload_len, "allow") && fx_contains(f.payload, f.payload_len, "be_mock"));
	send_all(fd, buf, notify_frame(buf, sizeof(buf), 5, 2, SPOP_FLAG_FIN, "unknown-model"));
	CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), &f), 0);
	CHECK(fx_contains(f.payload, f.payload_len, "deny") && fx_contains(f.payload, f.payload_len, "model_not_found"));
	close(fd);
}

static void test_pipelined(void)
{
	uint8_t out[20 * 200], buf[4096];
	struct spop_frame f;
	size_t n = 0;
	int seen[20] = { 0 }, fd = ready_client(16380);

	for (int i = 0; i < 20; i++)
		n += notify_frame(out + n, sizeof(out) - n, 100, (uint64_t)i + 1, SPOP_FLAG_FIN, "demo-model");
	send_all(fd, out, n); /* twenty frames in one segment */
	for (int i = 0; i < 20; i++) {
		CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), &f), 0);
		if (f.frame_id >= 1 && f.frame_id <= 20)
			seen[f.frame_id - 1]++;
	}
	for (int i = 0; i < 20; i++)
		CHECK_EQ_INT(seen[i], 1);
	close(fd);
}

static void test_byte_at_a_time(void)
{
	uint8_t out[512], buf[4096];
	struct spop_frame f;
	size_t n;
	int fd = ready_client(16380);

	n = notify_frame(out, sizeof(out), 1, 1, SPOP_FLAG_FIN, "demo-model");
	for (size_t i = 0; i < n; i++) {
		send_all(fd, out + i, 1);
		usleep(200);
	}
	CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_ACK);
	close(fd);
}

static void test_healthcheck(void)
{
	uint8_t buf[512];
	struct spop_frame f;
	int fd = client();

	send_all(fd, buf, hello_frame(buf, sizeof(buf), 16380, 1));
	CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_AGENT_HELLO);
	CHECK(at_eof(fd));
	close(fd);
}

static void test_garbage(void)
{
	int fd = client();

	send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	expect_disconnect(fd, SPOP_ST_TOO_BIG);
	fd = client();
	send_all(fd, "\0\0\0\0", 4); /* zero-length frame */
	expect_disconnect(fd, SPOP_ST_INVALID);
	fd = client();
	send_all(fd, "\0\0\0\x07\x03\0\0\0\x01\0\0", 11); /* NOTIFY before HELLO */
	expect_disconnect(fd, SPOP_ST_INVALID);
}

static void test_errors_after_hello(void)
{
	uint8_t buf[4096];
	int fd = ready_client(1024);

	send_all(fd, "\0\0\x07\xd0", 4); /* 2000 > negotiated 1024 */
	expect_disconnect(fd, SPOP_ST_TOO_BIG);
	fd = ready_client(16380);
	send_all(fd, buf, notify_frame(buf, sizeof(buf), 1, 1, 0, "demo-model")); /* no FIN */
	expect_disconnect(fd, SPOP_ST_FRAG_NOT_SUPPORTED);
	fd = ready_client(16380);
	send_all(fd, buf, hello_frame(buf, sizeof(buf), 16380, 0)); /* second HELLO */
	expect_disconnect(fd, SPOP_ST_INVALID);
	fd = ready_client(16380);
	/* A NOTIFY whose message list is cut short inside an argument. */
	send_all(fd, "\0\0\0\x0e\x03\0\0\0\x01\x01\x01\x05hello\x02", 18);
	expect_disconnect(fd, SPOP_ST_INVALID);
}

static void test_haproxy_disconnect(void)
{
	uint8_t buf[512];
	struct spop_writer w;
	int fd = ready_client(16380);

	spop_writer_init(&w, buf, sizeof(buf));
	spop_frame_begin(&w, SPOP_FRAME_HAPROXY_DISCONNECT, SPOP_FLAG_FIN, 0, 0);
	spop_put_kv_uint32(&w, "status-code", 2);
	spop_put_kv_string(&w, "message", "a timeout occurred", 18);
	send_all(fd, buf, (size_t)spop_frame_end(&w, 16380));
	expect_disconnect(fd, SPOP_ST_NORMAL);
}

static void test_hello_timeout(void)
{
	int fd = client(); /* says nothing: the 300 ms hello timeout closes it */

	expect_disconnect(fd, SPOP_ST_TIMEOUT);
}

static void test_unknown_frame_type_skipped(void)
{
	uint8_t buf[4096];
	struct spop_frame f;
	int fd = ready_client(16380);

	send_all(fd, "\0\0\0\x07\x2a\0\0\0\x01\0\0", 11); /* type 42 */
	send_all(fd, buf, notify_frame(buf, sizeof(buf), 9, 9, SPOP_FLAG_FIN, "demo-model"));
	CHECK_EQ_INT(recv_frame(fd, buf, sizeof(buf), &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_ACK);
	CHECK_EQ_INT(f.frame_id, 9);
	close(fd);
}

static int drained_flag;

static void on_drained(void *arg)
{
	(void)arg;
	drained_flag = 1;
}

static void test_drain(void)
{
	int fd = ready_client(16380);

	server_drain(srv, 400, on_drained, NULL); /* grace 200 ms, then DISCONNECT */
	expect_disconnect(fd, SPOP_ST_NORMAL);
	for (int i = 0; i < 200 && !drained_flag; i++)
		usleep(10000);
	CHECK(drained_flag);
	CHECK_EQ_INT(server_connections(srv), 0);
}

int main(void)
{
	struct jr_config cfg;
	char err[256];

	log_set_level(LOG_ERROR);
	config_defaults(&cfg);
	snprintf(cfg.listen, sizeof(cfg.listen), "127.0.0.1:0");
	cfg.workers = 2;
	cfg.hello_timeout_ms = 300;
	evthread_use_pthreads();
	base = event_base_new();
	store_init();
	fx_load_one_of_each(KEY);
	srv = server_start(base, &cfg, 1, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "server_start: %s\n", err);
		return 1;
	}
	port = server_port(srv);
	pthread_create(&control_thread, NULL, control_main, NULL);
	RUN(test_handshake);
	RUN(test_notify_ack);
	RUN(test_pipelined);
	RUN(test_byte_at_a_time);
	RUN(test_healthcheck);
	RUN(test_garbage);
	RUN(test_errors_after_hello);
	RUN(test_haproxy_disconnect);
	RUN(test_hello_timeout);
	RUN(test_unknown_frame_type_skipped);
	RUN(test_drain);
	event_base_loopexit(base, NULL);
	pthread_join(control_thread, NULL);
	server_free(srv);
	store_destroy();
	event_base_free(base);
	TEST_END();
}
