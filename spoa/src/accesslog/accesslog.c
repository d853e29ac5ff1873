#include "accesslog/accesslog.h"

#include "report/report.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running, stopping, reopen;
	int fd;
	char path[512];        /* a file target; "" for stdout and stderr */
	struct evbuffer *q;    /* lines waiting for the writer */
	size_t max_queue;
} w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, -1, "", NULL, 0 };

static struct {
	_Atomic uint64_t lines, dropped, write_errors, lost;
} st;

/* How long the writer waits at a time for a target that takes nothing (a pipe nobody
 * reads) before it looks whether the agent stops or the log is reopened. */
#define STALL_WAIT_MS 500

/* ---- the line ------------------------------------------------------------------------------ */

static void key(struct jbuf *b, const char *k)
{
	jbuf_printf(b, ",\"%s\":", k);
}

/* A string field of the report line, null when absent. */
static void str_field(struct jbuf *b, const char *name, const struct jr_report *rep, const char *field)
{
	size_t len = 0;
	const char *v = report_get(rep, field, &len);

	key(b, name);
	if (v)
		jbuf_put_string(b, v, len);
	else
		jbuf_puts(b, "null");
}

/* An integer field of the report line, null when absent or negative (HAProxy's -1). */
static void int_field(struct jbuf *b, const char *name, const struct jr_report *rep, const char *field)
{
	int64_t v = report_get_int(rep, field, -1);

	key(b, name);
	if (v >= 0)
		jbuf_printf(b, "%" PRId64, v);
	else
		jbuf_puts(b, "null");
}

static void str_or_null(struct jbuf *b, const char *name, const char *v)
{
	key(b, name);
	if (v && v[0])
		jbuf_put_string(b, v, strlen(v));
	else
		jbuf_puts(b, "null");
}

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* The W3C trace id: the report line's `trace` field (32 lower-case hex digits, written by
 * HAProxy's "Tracing" block; docs/observability.md), else null. */
static void trace_field(struct jbuf *b, const struct jr_report *rep)
{
	size_t len = 0;
	const char *v = report_get(rep, "trace", &len);

	key(b, "trace_id");
	if (v && len == 32 && is_hex(v, 32))
		jbuf_put_string(b, v, 32);
	else
		jbuf_puts(b, "null");
}

static void time_field(struct jbuf *b, const struct jr_report *rep)
{
	int64_t ts = report_get_int(rep, "ts", -1);
	struct tm tm;
	char buf[32];
	time_t t;

	if (ts < 0) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		ts = (int64_t)now.tv_sec;
	}
	t = (time_t)ts;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	jbuf_printf(b, "{\"ts\":\"%s\"", buf);
}

static void usage_fields(struct jbuf *b, const struct alog_usage *u)
{
	if (!u || !u->known) {
		jbuf_puts(b, ",\"prompt_tokens\":null,\"completion_tokens\":null,\"total_tokens\":null,"
			     "\"usage_estimated\":null,\"cost\":null");
		return;
	}
	jbuf_printf(b, ",\"prompt_tokens\":%" PRId64 ",\"completion_tokens\":%" PRId64
		       ",\"total_tokens\":%" PRId64 ",\"usage_estimated\":%s,\"cost\":%" PRId64 ".%06" PRId64,
		    u->prompt_tokens, u->completion_tokens, u->prompt_tokens + u->completion_tokens,
		    u->estimated ? "true" : "false", u->cost_micro / 1000000, u->cost_micro % 1000000);
}

void alog_format(const struct jr_report *rep, const struct alog_usage *u, struct jbuf *b)
{
	time_field(b, rep);
	str_field(b, "request_id", rep, "id");
	trace_field(b, rep);
	str_field(b, "client_ip", rep, "ci");
	int_field(b, "client_port", rep, "cp");
	str_field(b, "method", rep, "m");
	str_field(b, "path", rep, "p");
	str_field(b, "tenant", rep, "tenant");
	str_field(b, "key_prefix", rep, "key");
	str_or_null(b, "issuer", u ? u->issuer : NULL);
	str_or_null(b, "end_user", u ? u->end_user : NULL);
	str_field(b, "model", rep, "model");
	str_field(b, "fallback_reason", rep, "fb");
	str_field(b, "backend", rep, report_get(rep, "lb", NULL) ? "lb" : "be");
	str_field(b, "server", rep, report_get(rep, "ls", NULL) ? "ls" : "srv");
	str_field(b, "verdict", rep, "v");
	int_field(b, "status", rep, "st");
	str_field(b, "error_code", rep, "ec");
	int_field(b, "retry_after_s", rep, report_get(rep, "rt", NULL) ? "rt" : "ra");
	usage_fields(b, u);
	int_field(b, "time_request_ms", rep, "tq");
	int_field(b, "time_queue_ms", rep, "tw");
	int_field(b, "time_connect_ms", rep, "tc");
	int_field(b, "time_response_ms", rep, "tr");
	int_field(b, "time_total_ms", rep, "ta");
	int_field(b, "time_decision_ms", rep, "spoe_ms");
	int_field(b, "bytes_out", rep, "bytes");
	str_field(b, "termination", rep, "tsc");
	str_field(b, "spoe_error", rep, "spoe_err");
	jbuf_printf(b, ",\"truncated\":%s}\n", rep->truncated ? "true" : "false");
}

/* ---- the writer ---------------------------------------------------------------------------- */

static int open_target(const char *target, char *err, size_t errlen)
{
	int fd;

	if (strcmp(target, "-") == 0)
		return dup(STDOUT_FILENO);
	if (strcmp(target, "stderr") == 0)
		return dup(STDERR_FILENO);
	/* Non-blocking: a FIFO without a reader is refused at once (ENXIO) instead of
	 * blocking the open, and a pipe nobody reads never holds the writer for good. */
	fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
	if (fd < 0 && err)
		snprintf(err, errlen, "access_log %s: %s%s", target, strerror(errno),
			 errno == ENXIO ? " (a FIFO nobody reads)" : "");
	return fd;
}

/* The lines in buf (its newlines: a line cut by a failed write counts once). */
static uint64_t count_lines(struct evbuffer *buf)
{
	int n = evbuffer_peek(buf, -1, NULL, NULL, 0);
	struct evbuffer_iovec *v = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*v));
	uint64_t lines = 0;

	n = evbuffer_peek(buf, -1, NULL, v, n);
	for (int i = 0; i < n; i++)
		for (const char *p = v[i].iov_base, *end = p + v[i].iov_len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
			lines++;
	free(v);
	return lines;
}

/* Whether the writer is asked to stop or to reopen the log. */
static int interrupted(void)
{
	int yes;

	pthread_mutex_lock(&w.mu);
	yes = w.stopping || w.reopen;
	pthread_mutex_unlock(&w.mu);
	return yes;
}

/* Writes all of buf. A target that takes nothing (EAGAIN: a pipe nobody reads) is waited
 * for in slices of STALL_WAIT_MS, and given up once the agent stops or the log is
 * reopened; a write error (disk full) discards the rest. Returns the lines lost. */
static uint64_t write_all(struct evbuffer *buf)
{
	uint64_t lost;

	while (evbuffer_get_length(buf) > 0) {
		int n = evbuffer_write(buf, w.fd);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    (poll(&(struct pollfd){ .fd = w.fd, .events = POLLOUT }, 1, STALL_WAIT_MS) != 0 || !interrupted()))
			continue;
		if (n <= 0) {
			lost = count_lines(buf);
			evbuffer_drain(buf, evbuffer_get_length(buf));
			return lost ? lost : 1;
		}
	}
	return 0;
}

static void reopen_file(void)
{
	char err[600];
	int fd;

	if (!w.path[0])
		return;
	fd = open_target(w.path, err, sizeof(err));
	if (fd < 0) {
		log_event(LOG_ERROR, "access_log_reopen_failed", LOG_FIELDS(LOG_S("error", err)),
			  "%s (kept writing to the file open before)", err);
		return;
	}
	close(w.fd);
	w.fd = fd;
}

static void *writer(void *arg)
{
	struct evbuffer *out = evbuffer_new();

	(void)arg;
	pthread_mutex_lock(&w.mu);
	for (;;) {
		while (!w.stopping && !w.reopen && evbuffer_get_length(w.q) == 0)
			pthread_cond_wait(&w.cv, &w.mu);
		evbuffer_add_buffer(out, w.q);
		int stop = w.stopping, reopen = w.reopen;
		w.reopen = 0;
		pthread_mutex_unlock(&w.mu);
		uint64_t lost = write_all(out);
		if (lost) {
			atomic_fetch_add(&st.write_errors, 1);
			atomic_fetch_add(&st.lost, lost);
		}
		if (reopen)
			reopen_file();
		pthread_mutex_lock(&w.mu);
		if (stop && evbuffer_get_length(w.q) == 0)
			break;
	}
	pthread_mutex_unlock(&w.mu);
	evbuffer_free(out);
	return NULL;
}

int alog_open(const char *target, size_t max_queue, char *err, size_t errlen)
{
	if (!target || !target[0] || w.running)
		return 0;
	w.fd = open_target(target, err, errlen);
	if (w.fd < 0)
		return -1;
	snprintf(w.path, sizeof(w.path), "%s", strcmp(target, "-") && strcmp(target, "stderr") ? target : "");
	w.q = evbuffer_new();
	w.max_queue = max_queue ? max_queue : 4u << 20;
	w.stopping = w.reopen = 0;
	if (pthread_create(&w.thread, NULL, writer, NULL) != 0) {
		snprintf(err, errlen, "access_log: cannot start its writer thread");
		close(w.fd);
		evbuffer_free(w.q);
		w.q = NULL;
		return -1;
	}
	w.running = 1;
	return 0;
}

int alog_enabled(void)
{
	return w.running;
}

void alog_request(const struct jr_report *rep, const struct alog_usage *u)
{
	struct jbuf b = { 0 };

	if (!w.running)
		return;
	alog_format(rep, u, &b);
	pthread_mutex_lock(&w.mu);
	if (evbuffer_get_length(w.q) + b.len > w.max_queue) {
		atomic_fetch_add(&st.dropped, 1);
	} else {
		evbuffer_add(w.q, b.p, b.len);
		atomic_fetch_add(&st.lines, 1);
		pthread_cond_signal(&w.cv);
	}
	pthread_mutex_unlock(&w.mu);
	free(b.p);
}

void alog_reopen(void)
{
	if (!w.running)
		return;
	pthread_mutex_lock(&w.mu);
	w.reopen = 1;
	pthread_cond_signal(&w.cv);
	pthread_mutex_unlock(&w.mu);
}

void alog_close(void)
{
	if (!w.running)
		return;
	pthread_mutex_lock(&w.mu);
	w.stopping = 1;
	pthread_cond_signal(&w.cv);
	pthread_mutex_unlock(&w.mu);
	pthread_join(w.thread, NULL);
	close(w.fd);
	w.fd = -1;
	evbuffer_free(w.q);
	w.q = NULL;
	w.running = 0;
}

void alog_stats(struct alog_stats *o)
{
	o->lines = atomic_load(&st.lines);
	o->dropped = atomic_load(&st.dropped);
	o->write_errors = atomic_load(&st.write_errors);
	o->lost = atomic_load(&st.lost);
	pthread_mutex_lock(&w.mu);
	o->queued = w.q ? evbuffer_get_length(w.q) : 0;
	pthread_mutex_unlock(&w.mu);
}

void alog_render_metrics(struct evbuffer *out, void *arg)
{
	struct alog_stats s;

	(void)arg;
	alog_stats(&s);
	evbuffer_add_printf(out,
		"# HELP jairouter_access_log_lines_total Access log lines queued for writing.\n"
		"# TYPE jairouter_access_log_lines_total counter\njairouter_access_log_lines_total %" PRIu64 "\n"
		"# HELP jairouter_access_log_dropped_total Access log lines dropped (queue full).\n"
		"# TYPE jairouter_access_log_dropped_total counter\njairouter_access_log_dropped_total %" PRIu64 "\n"
		"# HELP jairouter_access_log_write_errors_total Failed writes of the access log (lines lost).\n"
		"# TYPE jairouter_access_log_write_errors_total counter\njairouter_access_log_write_errors_total %" PRIu64 "\n"
		"# HELP jairouter_access_log_lines_lost_total Queued access log lines lost: a failed write (disk full) or a target that took nothing until the agent stopped or reopened the log.\n"
		"# TYPE jairouter_access_log_lines_lost_total counter\njairouter_access_log_lines_lost_total %" PRIu64 "\n"
		"# HELP jairouter_access_log_queued_bytes Access log bytes waiting for the writer.\n"
		"# TYPE jairouter_access_log_queued_bytes gauge\njairouter_access_log_queued_bytes %zu\n",
		s.lines, s.dropped, s.write_errors, s.lost, s.queued);
}
