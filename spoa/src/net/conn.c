/*
 * net/conn: one SPOP connection from HAProxy, owned by one worker thread.
 *
 *   CS_HELLO --HAPROXY-HELLO--> CS_READY --NOTIFY--> decision --> ACK
 *      |                            |
 *      +-- error, timeout, DISCONNECT, health check, drain --> CS_CLOSING --> closed
 *
 * Frames are read whole (length checked against the negotiated maximum before anything
 * is buffered beyond it), and every reply frame is built whole and handed to the
 * bufferevent in one call. Decisions of one connection are independent (pipelining): a
 * pending one does not hold back the next, and ACKs may leave out of order.
 *
 * Lifetime: a conn is freed when its socket is closed AND no decision still refers to it
 * (refs counts both), so a late asynchronous completion never touches freed memory.
 */
#include "net/net_int.h"

#include "metrics/traffic.h"
#include "pipeline/limits.h"
#include "pipeline/pipeline.h"
#include "spop/spop.h"
#include "trace/trace.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Before HELLO a peer is unauthenticated: a HELLO is ~150 bytes; allow generous room,
 * nothing like the negotiated size. */
#define CONN_PREHELLO_MAX 16384u
/* Reply bytes queued for a peer that does not read; beyond it the connection is cut. */
#define CONN_OUTPUT_MAX (4u << 20)
/* Frames handled per read callback before yielding to other connections. */
#define CONN_FRAMES_PER_WAKE 64
#define CONN_FLUSH_TIMEOUT_S 2
#define ACK_BUF_MAX 2048

enum conn_state { CS_HELLO, CS_READY, CS_CLOSING };

struct conn {
	struct conn *next, *prev;
	struct worker *w;
	struct bufferevent *bev; /* NULL once the socket is closed */
	enum conn_state state;
	uint32_t max_frame;
	unsigned inflight;       /* decisions waiting on asynchronous work */
	unsigned refs;           /* the socket + each decision + a running callback */
	int paused;              /* reading stopped at max_inflight */
	int draining;
	uint64_t id;
	uint64_t last_io_ms;     /* monotonic: the last frame read or written */
};

struct req {
	struct pl_ctx ctx;
	struct conn *c;
	uint64_t sid, fid;
	struct timespec t0;
	struct event *deadline; /* armed only when the decision goes asynchronous */
	int counted;            /* included in c->inflight */
};

static atomic_uint_fast64_t conn_ids;

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

struct conn *conn_next(const struct conn *c)
{
	return c->next;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void conn_unref(struct conn *c)
{
	if (--c->refs == 0)
		free(c);
}

static void set_read_timeout(struct conn *c, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	bufferevent_set_timeouts(c->bev, &tv, NULL);
}

/* Lets the input grow to two full frames at most; libevent stops reading beyond. */
static void set_watermark(struct conn *c)
{
	bufferevent_setwatermark(c->bev, EV_READ, 0, 2 * ((size_t)c->max_frame + 4));
}

void conn_adopt(struct worker *w, int fd)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->w = w;
	c->refs = 1;
	c->state = CS_HELLO;
	c->max_frame = CONN_PREHELLO_MAX;
	c->id = atomic_fetch_add(&conn_ids, 1) + 1;
	c->draining = w->grace_over; /* accepted during a drain: served, then let go */
	c->last_io_ms = mono_ms();
	c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		atomic_fetch_sub(&w->srv->connections, 1);
		free(c);
		return;
	}
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
	set_watermark(c);
	set_read_timeout(c, atomic_load(&w->srv->live.hello_timeout_ms));
	bufferevent_enable(c->bev, EV_READ);
	metrics_inc(w->metrics, MC_CONN_ACCEPTED);
}

/* Closes the socket now; the struct lives on while decisions refer to it. */
static void conn_close(struct conn *c)
{
	struct worker *w = c->w;

	if (!c->bev)
		return;
	bufferevent_free(c->bev);
	c->bev = NULL;
	c->state = CS_CLOSING;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	w->nconns--;
	atomic_fetch_sub(&w->srv->connections, 1);
	metrics_inc(w->metrics, MC_CONN_CLOSED);
	conn_unref(c);
	worker_maybe_stop(w);
}

static void conn_flushed_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_close(arg);
}

/* Stops reading and closes once every queued byte has left. */
static void close_after_flush(struct conn *c)
{
	struct timeval tv = { CONN_FLUSH_TIMEOUT_S, 0 };

	if (!c->bev)
		return;
	c->state = CS_CLOSING;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_close(c);
		return;
	}
	bufferevent_setcb(c->bev, NULL, conn_flushed_cb, conn_event_cb, c);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
}

/* Cleanup of a frame queued by reference: it held a secret. */
static void secret_frame_free(const void *data, size_t len, void *arg)
{
	(void)arg;
	OPENSSL_cleanse((void *)data, len);
	free((void *)data);
}

/* Writes what it can of a frame at once when nothing is queued before it: the common
 * case of an ACK to an idle connection then costs one send(), not a write event added,
 * a loop turn to learn the socket is writable, a writev and the event removed again
 * (docs/benchmarks.md, "Where HAProxy's CPU went at 250 requests/s"). Returns the bytes
 * written, 0 when the frame must be queued whole (the caller's buffer path then sees
 * any error). */
static size_t send_now(struct conn *c, struct evbuffer *out, const uint8_t *buf, size_t n)
{
	ssize_t w;

	if (evbuffer_get_length(out) != 0)
		return 0;
	do
		w = send(bufferevent_getfd(c->bev), buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	return w > 0 ? (size_t)w : 0;
}

/* Queues (the rest of) a frame for libevent to write. A frame holding a secret (a
 * provider credential) is not copied into libevent's buffers, where it would be freed
 * without being wiped: a private copy is queued by reference and wiped once written (or
 * when the connection is freed with it still queued). Returns -1 when the connection was
 * closed instead. */
static int queue_frame(struct conn *c, const uint8_t *buf, size_t n, int secret)
{
	if (secret) {
		uint8_t *copy = xmalloc(n);
		memcpy(copy, buf, n);
		if (evbuffer_add_reference(bufferevent_get_output(c->bev), copy, n,
					   secret_frame_free, NULL) < 0) {
			secret_frame_free(copy, n, NULL);
			conn_close(c);
			return -1;
		}
		return 0;
	}
	bufferevent_write(c->bev, buf, n);
	return 0;
}

/* Sends one frame as one contiguous write: at once when it can (send_now), the rest
 * queued (queue_frame). */
static void send_frame_ex(struct conn *c, const uint8_t *buf, size_t n, int secret)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t sent;

	if (evbuffer_get_length(out) + n > CONN_OUTPUT_MAX) {
		log_event(LOG_WARN, "spop_peer_not_reading",
			  LOG_FIELDS(LOG_I("conn", c->id), LOG_I("queued_bytes", evbuffer_get_length(out))),
			  "conn %llu: peer is not reading (%zu bytes queued); closing",
			  (unsigned long long)c->id, evbuffer_get_length(out));
		conn_close(c);
		return;
	}
	sent = send_now(c, out, buf, n);
	if (sent < n && queue_frame(c, buf + sent, n - sent, secret) < 0)
		return;
	metrics_inc(c->w->metrics, MC_FRAMES_OUT);
	c->last_io_ms = mono_ms();
}

static void send_frame(struct conn *c, const uint8_t *buf, size_t n)
{
	send_frame_ex(c, buf, n, 0);
}

static void disconnect(struct conn *c, int status, const char *message)
{
	uint8_t buf[512];
	int n = spop_agent_disconnect_encode(buf, sizeof(buf), (uint32_t)status, message);

	if (c->bev && c->state != CS_CLOSING && n > 0) {
		send_frame(c, buf, (size_t)n);
		metrics_inc(c->w->metrics, MC_DISCONNECT_OUT);
	}
	close_after_flush(c);
}

static void protocol_error(struct conn *c, int status, const char *what)
{
	log_event(LOG_WARN, "spop_protocol_error",
		  LOG_FIELDS(LOG_I("conn", c->id), LOG_S("error", what), LOG_I("status", status),
			     LOG_S("status_name", spop_status_str(status))),
		  "conn %llu: protocol error: %s (%s); disconnecting", (unsigned long long)c->id, what,
		  spop_status_str(status));
	metrics_inc(c->w->metrics, MC_PROTOCOL_ERRORS);
	disconnect(c, status, what);
}

/* ---- decisions ---------------------------------------------------------------------- */

static uint64_t elapsed_ns(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - t0->tv_sec) * 1000000000u + (uint64_t)(now.tv_nsec - t0->tv_nsec);
}

static void log_decision(const struct req *r, uint64_t ns)
{
	const struct pl_verdict *v = &r->ctx.out;

	if (log_get_level() < LOG_DEBUG)
		return;
	log_event(LOG_DEBUG, "decision",
		  LOG_FIELDS(LOG_I("conn", r->c->id), LOG_I("sid", r->sid), LOG_I("fid", r->fid),
			     LOG_S("verdict", v->allow ? "allow" : "deny"), LOG_I("status", v->status),
			     LOG_S("reason", pl_reason_name(v->reason)), LOG_S("tenant", v->tenant),
			     LOG_S("key_prefix", v->key_prefix), LOG_S("model", v->model),
			     LOG_S("backend", v->backend), LOG_I("ns", ns)),
		  "decision conn=%llu sid=%llu fid=%llu verdict=%s status=%d reason=%s tenant=%s "
		  "key=%s model=%s backend=%s us=%.1f",
		  (unsigned long long)r->c->id, (unsigned long long)r->sid, (unsigned long long)r->fid,
		  v->allow ? "allow" : "deny", v->status, pl_reason_name(v->reason), v->tenant,
		  v->key_prefix, v->model, v->backend, (double)ns / 1000.0);
}

/* Every ACK names this agent (`agent`, the report line's ag=), and an admitted request
 * carries its accounting (`acct`, pipeline/limits.h): whichever process of this agent reads
 * the request's report line can settle or bill it. Appended to the encoded frame (an
 * action list is a plain sequence); an ACK that has no room left goes out without. */
static int ack_append_identity(const struct conn *c, const struct pl_ctx *ctx, uint8_t *buf,
			       size_t cap, int n)
{
	struct spop_writer w;
	struct spop_data d;
	char acct[LIMITS_ACCT_MAX];
	int m;

	spop_writer_init(&w, buf, cap);
	w.len = (size_t)n;
	d = spop_cstr(c->w->srv->agent_id);
	spop_action_set_var(&w, SPOP_SCOPE_TXN, "agent", &d);
	if (limits_acct(ctx, acct, sizeof(acct)) > 0) {
		d = spop_cstr(acct);
		spop_action_set_var(&w, SPOP_SCOPE_TXN, "acct", &d);
	}
	m = spop_frame_end(&w, c->max_frame);
	return m > 0 ? m : n;
}

/* The decision's spans, when the request is traced (trace/trace.h). */
static void trace_req(const struct pl_ctx *ctx)
{
	const char *names[PL_TRACE_STAGES];
	struct trace_decision_info d;
	size_t n = ctx->next < PL_TRACE_STAGES ? ctx->next : PL_TRACE_STAGES;

	if (!ctx->traced)
		return;
	for (size_t i = 0; i < n; i++)
		names[i] = ctx->stages[i].name;
	memset(&d, 0, sizeof(d));
	d.ctx = ctx->in.trace.ptr;
	d.ctx_len = ctx->in.trace.len;
	d.start_ns = ctx->trace_start_ns;
	d.end_ns = trace_now_ns();
	d.stage_names = names;
	d.stage_end_ns = ctx->stage_end_ns;
	d.nstages = n;
	d.verdict = ctx->out.allow ? "allow" : ctx->out.respond ? "respond" : "deny";
	d.reason = pl_reason_name(ctx->out.reason);
	d.model = ctx->out.model[0] ? ctx->out.model : NULL;
	trace_decision(&d);
}

static void req_done(struct pl_ctx *ctx, void *arg)
{
	struct req *r = arg;
	struct conn *c = r->c;
	uint8_t stack_buf[ACK_BUF_MAX], *buf = stack_buf;
	size_t cap = pl_ack_size_hint(&ctx->out);
	uint64_t ns = elapsed_ns(&r->t0);
	int n;

	metrics_observe_decision(c->w->metrics, ctx->out.allow, ctx->out.reason, ns);
	if (!ctx->out.allow && ctx->out.reason != PL_R_OK)
		traffic_denied(ctx->out.tenant, ctx->out.model, (int)ctx->out.reason,
			       pl_reason_name(ctx->out.reason));
	log_decision(r, ns);
	trace_req(ctx);
	if (!c->bev || c->state == CS_CLOSING)
		return; /* HAProxy went away; nobody waits for this ACK */
	if (cap > (size_t)c->max_frame + 4)
		cap = (size_t)c->max_frame + 4;
	if (cap > sizeof(stack_buf))
		buf = xmalloc(cap); /* only direct answers (model lists) are this large */
	n = pl_ack_encode(&ctx->out, r->sid, r->fid, buf, cap, c->max_frame);
	if (n > 0)
		n = ack_append_identity(c, ctx, buf, cap, n);
	if (n < 0)
		protocol_error(c, SPOP_ST_RES, "ACK does not fit the negotiated frame size");
	else
		send_frame_ex(c, buf, (size_t)n, ctx->out.up_len > 0);
	if (ctx->out.up_len && n > 0)
		OPENSSL_cleanse(buf, (size_t)n); /* it held a provider credential */
	if (buf != stack_buf)
		free(buf);
}

static void resume_reading(struct conn *c)
{
	if (!c->paused || !c->bev || c->state == CS_CLOSING)
		return;
	c->paused = 0;
	bufferevent_enable(c->bev, EV_READ);
	/* Frames may already sit in the input buffer: run the read callback for them. */
	bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

static void req_release(struct pl_ctx *ctx, void *arg)
{
	struct req *r = arg;
	struct conn *c = r->c;

	if (r->deadline)
		event_free(r->deadline);
	if (r->counted) {
		c->inflight--;
		if (c->inflight < atomic_load(&c->w->srv->live.max_inflight))
			resume_reading(c);
	}
	pl_ctx_clear(ctx);
	free(r);
	conn_unref(c);
}

static void req_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct req *r = arg;

	(void)fd;
	(void)what;
	log_event(LOG_WARN, "decision_deadline_missed",
		  LOG_FIELDS(LOG_I("conn", r->c->id), LOG_I("sid", r->sid), LOG_I("fid", r->fid)),
		  "conn %llu: decision sid=%llu fid=%llu missed its deadline; answering with the "
		  "error verdict", (unsigned long long)r->c->id, (unsigned long long)r->sid,
		  (unsigned long long)r->fid);
	pl_abandon(&r->ctx);
}

static void req_went_async(struct req *r)
{
	struct conn *c = r->c;
	unsigned ms = atomic_load(&c->w->srv->live.deadline_ms);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	r->counted = 1;
	c->inflight++;
	r->deadline = evtimer_new(c->w->base, req_deadline_cb, r);
	evtimer_add(r->deadline, &tv);
	if (c->inflight >= atomic_load(&c->w->srv->live.max_inflight) && c->bev) {
		c->paused = 1;
		bufferevent_disable(c->bev, EV_READ);
		metrics_inc(c->w->metrics, MC_READ_PAUSES);
	}
}

static void req_start(struct conn *c, const struct spop_frame *f)
{
	struct req *r = xcalloc(1, sizeof(*r));
	struct pl_policy pol = { atomic_load(&c->w->srv->live.on_error_allow), (int64_t)time(NULL) };
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	pl_ctx_init(&r->ctx, &pol);
	r->ctx.base = c->w->base;
	r->c = c;
	r->sid = f->stream_id;
	r->fid = f->frame_id;
	c->refs++;
	rc = pl_request_decode(&r->ctx, f->payload, f->payload_len);
	if (rc == PL_DECODE_MALFORMED) {
		pl_ctx_clear(&r->ctx);
		free(r);
		conn_unref(c);
		protocol_error(c, SPOP_ST_INVALID, "malformed NOTIFY payload");
		return;
	}
	if (rc == PL_DECODE_NO_MESSAGE) {
		/* A haproxy config that does not send our message: answer, do not hang. */
		pl_fail(&r->ctx, PL_R_BAD_MESSAGE);
		req_done(&r->ctx, r);
		req_release(&r->ctx, r);
		return;
	}
	if (!pl_start(&r->ctx, pl_default_stages, pl_default_nstages, req_done, req_release, r))
		req_went_async(r);
}

/* ---- frames ------------------------------------------------------------------------- */

static void on_hello(struct conn *c, const struct spop_frame *f)
{
	struct spop_hello h;
	uint8_t buf[256];
	int n;

	if (c->state != CS_HELLO)
		return protocol_error(c, SPOP_ST_INVALID, "HELLO on an established connection");
	if (f->stream_id || f->frame_id)
		return protocol_error(c, SPOP_ST_INVALID, "HELLO with non-zero stream or frame id");
	if (spop_hello_parse(f->payload, f->payload_len, &h) < 0)
		return protocol_error(c, SPOP_ST_INVALID, "malformed HELLO");
	if (!h.has_version)
		return protocol_error(c, SPOP_ST_NO_VSN, "HELLO without supported-versions");
	if (!h.version_ok)
		return protocol_error(c, SPOP_ST_BAD_VSN, "HAProxy does not offer SPOP 2.0");
	if (!h.has_max_frame_size)
		return protocol_error(c, SPOP_ST_NO_FRAME_SIZE, "HELLO without max-frame-size");
	if (h.max_frame_size < SPOP_FRAME_MIN_NEGOTIATED)
		return protocol_error(c, SPOP_ST_BAD_FRAME_SIZE, "max-frame-size below 256");
	/* Echo HAProxy's size (research/spoe.md §5.1: a smaller one loops on 2.6). */
	c->max_frame = h.max_frame_size < SPOP_FRAME_HARD_MAX ? h.max_frame_size : SPOP_FRAME_HARD_MAX;
	n = spop_agent_hello_encode(buf, sizeof(buf), c->max_frame, "pipelining");
	if (n < 0)
		return protocol_error(c, SPOP_ST_RES, "cannot encode AGENT-HELLO");
	send_frame(c, buf, (size_t)n);
	if (!c->bev)
		return;
	if (h.healthcheck) {
		metrics_inc(c->w->metrics, MC_HEALTHCHECK);
		close_after_flush(c);
		return;
	}
	metrics_inc(c->w->metrics, MC_HELLO);
	c->state = CS_READY;
	set_watermark(c);
	set_read_timeout(c, atomic_load(&c->w->srv->live.idle_timeout_ms));
}

static void on_haproxy_disconnect(struct conn *c, const struct spop_frame *f)
{
	struct spop_disconnect d = { 0, NULL, 0 };

	metrics_inc(c->w->metrics, MC_DISCONNECT_IN);
	spop_disconnect_parse(f->payload, f->payload_len, &d);
	/* 0 normal, 1 I/O error (HAProxy dropping a spare connection), 2 idle timeout. */
	if (d.status_code <= SPOP_ST_TIMEOUT) {
		log_event(LOG_DEBUG, "spop_haproxy_disconnects",
			  LOG_FIELDS(LOG_I("conn", c->id), LOG_I("status", d.status_code)),
			  "conn %llu: HAProxy disconnects (status %u)", (unsigned long long)c->id,
			  d.status_code);
	} else {
		char why[201];

		snprintf(why, sizeof(why), "%.*s", (int)(d.message_len > 200 ? 200 : d.message_len),
			 d.message ? (const char *)d.message : "");
		log_event(LOG_WARN, "spop_haproxy_disconnects_error",
			  LOG_FIELDS(LOG_I("conn", c->id), LOG_I("status", d.status_code),
				     LOG_S("status_name", spop_status_str((int)d.status_code)),
				     LOG_S("error", why)),
			  "conn %llu: HAProxy disconnects: status %u (%s): %s", (unsigned long long)c->id,
			  d.status_code, spop_status_str((int)d.status_code), why);
	}
	disconnect(c, SPOP_ST_NORMAL, "bye");
}

static void on_notify(struct conn *c, const struct spop_frame *f)
{
	if (c->state != CS_READY)
		return protocol_error(c, SPOP_ST_INVALID, "NOTIFY before HELLO");
	if (f->flags & SPOP_FLAG_ABORT) {
		metrics_inc(c->w->metrics, MC_NOTIFY_ABORTED);
		return;
	}
	if (!(f->flags & SPOP_FLAG_FIN))
		return protocol_error(c, SPOP_ST_FRAG_NOT_SUPPORTED, "fragmented NOTIFY");
	metrics_inc(c->w->metrics, MC_NOTIFY);
	req_start(c, f);
}

static void process_frame(struct conn *c, const uint8_t *body, uint32_t len)
{
	struct spop_frame f;
	int rc = spop_frame_decode(body, len, &f);

	metrics_inc(c->w->metrics, MC_FRAMES_IN);
	c->last_io_ms = mono_ms();
	if (rc < 0)
		return protocol_error(c, -rc, "malformed frame header");
	switch (f.type) {
	case SPOP_FRAME_HAPROXY_HELLO:
		return on_hello(c, &f);
	case SPOP_FRAME_NOTIFY:
		return on_notify(c, &f);
	case SPOP_FRAME_HAPROXY_DISCONNECT:
		return on_haproxy_disconnect(c, &f);
	case SPOP_FRAME_UNSET:
		return protocol_error(c, SPOP_ST_FRAG_NOT_SUPPORTED, "fragment received");
	case SPOP_FRAME_AGENT_HELLO:
	case SPOP_FRAME_AGENT_DISCONNECT:
	case SPOP_FRAME_ACK:
		return protocol_error(c, SPOP_ST_INVALID, "agent frame type sent to the agent");
	default:
		return; /* unknown frame types are skipped (SPOE.txt §3.2.2) */
	}
}

/* Reads whole frames from the input. Returns 1 to continue, 0 to stop. */
static int read_one_frame(struct conn *c, struct evbuffer *in)
{
	size_t avail = evbuffer_get_length(in);
	uint8_t hdr[4];
	uint32_t len;
	uint8_t *p;
	int rc;

	if (avail < 4)
		return 0;
	evbuffer_copyout(in, hdr, 4);
	rc = spop_frame_length(hdr, 4, c->max_frame, &len);
	if (rc < 0) {
		protocol_error(c, -rc, rc == -SPOP_ST_TOO_BIG ? "frame larger than max-frame-size"
							       : "frame shorter than 7 bytes");
		return 0;
	}
	if (avail < 4 + (size_t)len)
		return 0;
	p = evbuffer_pullup(in, 4 + (ssize_t)len);
	process_frame(c, p + 4, len);
	if (!c->bev)
		return 0;
	evbuffer_drain(in, 4 + (size_t)len);
	return c->state != CS_CLOSING && !c->paused;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	int budget = CONN_FRAMES_PER_WAKE;

	c->refs++; /* the frame handlers may close the connection under us */
	while (read_one_frame(c, in)) {
		if (--budget == 0) {
			bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
			break;
		}
	}
	conn_unref(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if ((what & BEV_EVENT_TIMEOUT) && c->state == CS_HELLO) {
		metrics_inc(c->w->metrics, MC_HELLO_TIMEOUTS);
		disconnect(c, SPOP_ST_TIMEOUT, "no HELLO in time");
	} else if ((what & BEV_EVENT_TIMEOUT) && c->state == CS_READY) {
		metrics_inc(c->w->metrics, MC_IDLE_TIMEOUTS);
		disconnect(c, SPOP_ST_TIMEOUT, "idle timeout");
	} else {
		/* EOF, reset, or a flush that timed out: a bare close is normal in SPOP. */
		conn_close(c);
	}
}

void conn_drain(struct conn *c, int hard)
{
	if (hard) {
		conn_close(c);
		return;
	}
	c->draining = 1;
}

int conn_let_go(struct conn *c, uint64_t now_ms, unsigned idle_ms)
{
	if (!c->draining || !c->bev || c->state == CS_CLOSING)
		return 0;
	if (c->state != CS_READY)
		return 0; /* its HELLO first (or its hello timeout, or the drain deadline) */
	if (c->inflight > 0 || evbuffer_get_length(bufferevent_get_input(c->bev)) >= 4 ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 || now_ms - c->last_io_ms < idle_ms)
		return 0;
	disconnect(c, SPOP_ST_NORMAL, "agent is shutting down");
	return 1;
}
