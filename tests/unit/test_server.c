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
#include "spop_client.h"

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

static void *control_main(void *arg)
{
	(void)arg;
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static size_t notify_frame(uint8_t *buf, size_t cap, uint64_t sid, uint64_t fid, uint32_t flags,
			   const char *model)
{
	return notify_frame_auth(buf, cap, sid, fid, flags, "Bearer " KEY, model);
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
	srv = server_start(base, &cfg, NULL, err, sizeof(err));
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
