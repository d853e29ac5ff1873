/* realtime: see realtime.h. */
#include "realtime.h"

#include "adapter.h"
#include "route.h"
#include "wsframe.h"
#include "xlate.h"

#include "util/addr.h"
#include "util/log.h"
#include "util/pct.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RT_CHUNK 16384        /* bytes read from a side per step */
#define RT_HEAD_WAIT_S 30     /* the client's request head, the provider's answer head */
#define RT_CLOSE_GRACE_S 5    /* for the last bytes to go out once a side closed */

enum rt_state { RT_HEAD, RT_UPGRADING, RT_OPEN, RT_PASSING, RT_CLOSING };

struct rt_hub {
	struct ad_server *srv;
	struct evconnlistener *lis;
	struct evdns_base *dns;
	SSL_CTX *tls;
	struct rt_session *list;
	long active;
};

struct rt_session {
	struct rt_hub *hub;
	struct rt_session *prev, *next;
	enum rt_state state;
	struct bufferevent *cli, *up;
	struct ws_reader from_up, from_cli;
	struct event *timer;
	struct ad_route route;
	char id[128];
	int status;              /* the provider's answer (101), or the adapter's refusal */
	int64_t pt, ct;          /* summed over response.done events */
	long responses_open;     /* response.created without its response.done yet */
	int64_t open_chars;      /* text of the output deltas since the open responses began */
	int64_t pass_left;       /* RT_PASSING: body bytes still to relay, -1 = until EOF */
};

/* ---- lifecycle ------------------------------------------------------------------------- */

static void report(struct rt_session *z)
{
	struct ad_server *s = z->hub->srv;
	struct rep_line l = { 0 };

	if (!z->id[0] || !z->route.provider[0])
		return;
	l.id = z->id;
	l.model = z->route.public_model;
	l.tenant = z->route.tenant;
	l.provider = z->route.provider;
	l.prompt = z->pt;
	l.completion = z->ct;
	l.aborted = z->responses_open > 0;
	/* A response cut short has no usage: its output is estimated from the text seen
	 * (4 characters a token, as for a chat stream cut short), and the line says so. */
	if (l.aborted) {
		l.completion += (z->open_chars + 3) / 4;
		l.estimated = 1;
	}
	l.status = z->status;
	l.stream = 1;
	l.rid = "";
	if (rep_send(&s->rep, &l) == 0)
		s->m.reports_sent++;
	else
		s->m.reports_failed++;
}

static void session_free(struct rt_session *z)
{
	struct rt_hub *h = z->hub;
	struct ad_server *s = h->srv;

	report(z);
	if (z->status == 101)
		s->m.rt_closed++;
	s->m.rt_tokens_prompt += (uint64_t)z->pt;
	s->m.rt_tokens_completion += (uint64_t)z->ct;
	if (z->cli)
		bufferevent_free(z->cli);
	if (z->up)
		bufferevent_free(z->up);
	if (z->timer)
		event_free(z->timer);
	ws_reader_free(&z->from_up);
	ws_reader_free(&z->from_cli);
	if (z->prev)
		z->prev->next = z->next;
	else
		h->list = z->next;
	if (z->next)
		z->next->prev = z->prev;
	h->active--;
	s->m.rt_active = h->active;
	free(z);
	if (s->draining && !s->jobs && h->active == 0)
		event_base_loopexit(s->base, NULL);
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

static void arm_timer(struct rt_session *z, long seconds)
{
	struct timeval tv = { seconds, 0 };

	if (!z->timer)
		z->timer = evtimer_new(z->hub->srv->base, on_timer, z);
	if (!z->timer)
		abort();
	evtimer_add(z->timer, &tv);
}

/* Both sides stop being read; the session ends once what is written went out (or after
 * the grace period). */
static void closing_write_cb(struct bufferevent *bev, void *arg);

static int drained(struct bufferevent *b);

static void begin_close(struct rt_session *z)
{
	z->state = RT_CLOSING;
	if (z->cli) {
		bufferevent_disable(z->cli, EV_READ);
		bufferevent_setwatermark(z->cli, EV_WRITE, 0, 0);
		bufferevent_setcb(z->cli, NULL, closing_write_cb, NULL, z);
	}
	if (z->up) {
		bufferevent_disable(z->up, EV_READ);
		bufferevent_setwatermark(z->up, EV_WRITE, 0, 0);
		bufferevent_setcb(z->up, NULL, closing_write_cb, NULL, z);
	}
	/* Never freed here: callers still hold z. The timer ends it at once when nothing is
	 * pending, after the grace period otherwise (or closing_write_cb before that). */
	arm_timer(z, drained(z->cli) && drained(z->up) ? 0 : RT_CLOSE_GRACE_S);
}

static int drained(struct bufferevent *b)
{
	return !b || evbuffer_get_length(bufferevent_get_output(b)) == 0;
}

static void closing_write_cb(struct bufferevent *bev, void *arg)
{
	struct rt_session *z = arg;

	(void)bev;
	if (drained(z->cli) && drained(z->up))
		session_free(z);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rt_session *z = arg;
	uint8_t frame[8], key[4];

	(void)fd, (void)what;
	if (z->state == RT_CLOSING) {
		session_free(z);
		return;
	}
	if (z->state == RT_OPEN) {
		/* The longest session (--realtime-max-session-s): going away, to both. */
		z->hub->srv->m.rt_expired++;
		if (ws_at_boundary(&z->from_up))
			bufferevent_write(z->cli, frame, ws_close_frame(frame, 1001, NULL));
		if (ws_at_boundary(&z->from_cli) && RAND_bytes(key, sizeof(key)) == 1)
			bufferevent_write(z->up, frame, ws_close_frame(frame, 1001, key));
	}
	begin_close(z);
}

/* ---- refusals before the upgrade -------------------------------------------------------- */

static void refuse(struct rt_session *z, int status, const char *type, const char *code, const char *msg)
{
	struct xl_error e;
	json_t *err;
	char *body;

	xl_fail(&e, status, type, code, "%s", msg);
	err = xl_error_json(&e);
	body = err ? json_dumps(err, JSON_COMPACT) : NULL;
	if (!body)
		abort();
	z->status = status;
	z->hub->srv->m.rt_refused++;
	evbuffer_add_printf(bufferevent_get_output(z->cli),
			    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			    "Connection: close\r\n\r\n%s",
			    status, status == 400 ? "Bad Request" : status == 500 ? "Internal Server Error"
				    : status == 503 ? "Service Unavailable" : status == 504 ? "Gateway Timeout"
				    : "Bad Gateway",
			    strlen(body), body);
	free(body);
	json_decref(err);
	if (z->up) {
		bufferevent_free(z->up);
		z->up = NULL;
	}
	begin_close(z);
}

/* ---- heads --------------------------------------------------------------------------- */

/* A header's value in a head (lines ending in CRLF), trimmed. 0, or -1 when absent. */
static int head_get(const char *head, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l && l[2] && !(l[2] == '\r'); l = strstr(l + 2, "\r\n")) {
		const char *p = l + 2, *end = strstr(p, "\r\n");
		if (!end || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
			continue;
		p += nl + 1;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - p) >= cap)
			return -1;
		memcpy(out, p, (size_t)(end - p));
		out[end - p] = '\0';
		return 0;
	}
	return -1;
}

/* The head at the start of in (with its blank line), NUL-terminated, removed from in.
 * NULL when not complete yet; *too_big when it outgrew RT_HEAD_MAX. */
static char *take_head(struct evbuffer *in, int *too_big)
{
	struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char *head;

	*too_big = 0;
	if (p.pos < 0) {
		*too_big = evbuffer_get_length(in) > RT_HEAD_MAX;
		return NULL;
	}
	if ((size_t)p.pos + 4 > RT_HEAD_MAX) {
		*too_big = 1;
		return NULL;
	}
	head = xmalloc((size_t)p.pos + 5);
	evbuffer_remove(in, head, (size_t)p.pos + 4);
	head[p.pos + 4] = '\0';
	return head;
}

struct target {
	int tls;
	char host[256];
	int port;
	char path[RT_URL_MAX];
};

/* http(s)://host[:port][/path] of the route's base URL. */
static int parse_base(const char *url, struct target *t)
{
	const char *p, *host, *slash;
	size_t hl;

	t->tls = strncmp(url, "https://", 8) == 0;
	if (!t->tls && strncmp(url, "http://", 7) != 0)
		return -1;
	host = url + (t->tls ? 8 : 7);
	slash = strchr(host, '/');
	hl = slash ? (size_t)(slash - host) : strlen(host);
	snprintf(t->path, sizeof(t->path), "%s", slash ? slash : "");
	if (hl == 0 || hl >= sizeof(t->host))
		return -1;
	memcpy(t->host, host, hl);
	t->host[hl] = '\0';
	t->port = t->tls ? 443 : 80;
	p = t->host[0] == '[' ? strchr(t->host, ']') : t->host;
	if (!p)
		return -1;
	if ((p = strchr(p, ':'))) {
		t->port = atoi(p + 1);
		*(char *)p = '\0';
	}
	if (t->host[0] == '[') {
		memmove(t->host, t->host + 1, strlen(t->host));
		t->host[strlen(t->host) - 1] = '\0';
	}
	hl = strlen(t->path);
	while (hl > 0 && t->path[hl - 1] == '/')
		t->path[--hl] = '\0';
	return t->port > 0 && t->port < 65536 ? 0 : -1;
}

/* Copies a client header to the provider's request when present. */
static void pass_header(struct evbuffer *out, const char *head, const char *name)
{
	char v[4096];

	if (head_get(head, name, v, sizeof(v)) == 0)
		evbuffer_add_printf(out, "%s: %s\r\n", name, v);
}

/* The provider's upgrade request. */
static void write_upgrade(struct rt_session *z, const char *head, const struct target *t, const char *key)
{
	struct evbuffer *out = bufferevent_get_output(z->up);
	char model[RT_NAME_MAX * 3];
	int default_port = t->port == (t->tls ? 443 : 80);

	if (pct_encode(z->route.model, strlen(z->route.model), PCT_UNRESERVED, model, sizeof(model)) < 0)
		model[0] = '\0';
	evbuffer_add_printf(out, "GET %s/realtime?model=%s HTTP/1.1\r\nHost: %s%s%s%s", t->path, model,
			    strchr(t->host, ':') ? "[" : "", t->host, strchr(t->host, ':') ? "]" : "",
			    default_port ? "" : ":");
	if (!default_port)
		evbuffer_add_printf(out, "%d", t->port);
	evbuffer_add_printf(out, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
				 "Sec-WebSocket-Version: 13\r\n", key);
	pass_header(out, head, "Sec-WebSocket-Protocol");
	pass_header(out, head, "OpenAI-Beta");
	pass_header(out, head, "Authorization");
	pass_header(out, head, "api-key");
	pass_header(out, head, "x-request-id");
	pass_header(out, head, "traceparent");
	pass_header(out, head, "User-Agent");
	evbuffer_add(out, "\r\n", 2);
}

/* ---- the relay ------------------------------------------------------------------------ */

static void to_cli(void *arg, const uint8_t *p, size_t n)
{
	struct rt_session *z = arg;

	bufferevent_write(z->cli, p, n);
}

static void to_up(void *arg, const uint8_t *p, size_t n)
{
	struct rt_session *z = arg;

	bufferevent_write(z->up, p, n);
}

/* The text delta events: the reply's text (response.output_text.delta; the beta's
 * response.text.delta) and the transcript of its audio. */
static const char *const text_deltas[] = { "response.output_text.delta", "response.text.delta",
					   "response.output_audio_transcript.delta",
					   "response.audio_transcript.delta" };

/* Whether the message may be a text delta (a cheap look before parsing it). */
static int may_be_text_delta(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < sizeof(text_deltas) / sizeof(text_deltas[0]); i++)
		if (memmem(p, n, text_deltas[i], strlen(text_deltas[i])))
			return 1;
	return 0;
}

static int is_text_delta(const char *type)
{
	for (size_t i = 0; i < sizeof(text_deltas) / sizeof(text_deltas[0]); i++)
		if (strcmp(type, text_deltas[i]) == 0)
			return 1;
	return 0;
}

/* usage.input_tokens / output_tokens of a response.done event. */
static void server_message(void *arg, enum ws_opcode op, const uint8_t *p, size_t n)
{
	struct rt_session *z = arg;
	json_t *ev, *usage;
	const char *type;

	/* Only response.created and response.done are parsed, and the text deltas while a
	 * response is open (their text estimates a response cut short); the others (audio
	 * deltas above all) are not. */
	if (op != WS_TEXT)
		return;
	if (!memmem(p, n, "\"response.done\"", 15) && !memmem(p, n, "\"response.created\"", 18) &&
	    !(z->responses_open > 0 && may_be_text_delta(p, n)))
		return;
	if (!(ev = json_loadb((const char *)p, n, 0, NULL)))
		return;
	type = json_string_value(json_object_get(ev, "type"));
	if (type && strcmp(type, "response.created") == 0) {
		z->responses_open++;
	} else if (type && z->responses_open > 0 && is_text_delta(type)) {
		z->open_chars += (int64_t)json_string_length(json_object_get(ev, "delta"));
	} else if (type && strcmp(type, "response.done") == 0) {
		usage = json_object_get(json_object_get(ev, "response"), "usage");
		if (json_is_integer(json_object_get(usage, "input_tokens")))
			z->pt += json_integer_value(json_object_get(usage, "input_tokens"));
		if (json_is_integer(json_object_get(usage, "output_tokens")))
			z->ct += json_integer_value(json_object_get(usage, "output_tokens"));
		if (z->responses_open > 0 && --z->responses_open == 0)
			z->open_chars = 0;
		z->hub->srv->m.rt_responses++;
	}
	json_decref(ev);
}

static void client_message(void *arg, enum ws_opcode op, const uint8_t *p, size_t n)
{
	(void)arg, (void)op, (void)p, (void)n;
}

/* A side broke the framing rules (code 1002 or 1009): a close frame with that code to
 * the side that was writing to it, 1001 to the other, each only at a frame boundary. */
static void violation(struct rt_session *z, int code, int from_server)
{
	uint8_t frame[8], key[4];

	if (code == WS_TOO_BIG)
		z->hub->srv->m.rt_too_big++;
	else
		z->hub->srv->m.rt_protocol_errors++;
	log_event(LOG_WARN, "realtime_frame_refused",
		  LOG_FIELDS(LOG_S("request_id", z->id), LOG_I("code", code), LOG_S("from", from_server ? "server" : "client")),
		  "realtime session %s: %s frame refused, closing with %d", z->id, from_server ? "server" : "client", code);
	if (ws_at_boundary(&z->from_up))
		bufferevent_write(z->cli, frame, ws_close_frame(frame, (uint16_t)(from_server ? code : WS_PROTOCOL_ERROR), NULL));
	if (ws_at_boundary(&z->from_cli) && RAND_bytes(key, sizeof(key)) == 1)
		bufferevent_write(z->up, frame, ws_close_frame(frame, (uint16_t)(from_server ? code : 1001), key));
	begin_close(z);
}

/* Reads what src holds into the reader; stops reading src while dst's output is over
 * --max-pending (dst's write callback resumes it). */
static void pump(struct rt_session *z, struct bufferevent *src, struct bufferevent *dst, struct ws_reader *r,
		 const struct ws_sink *sink, int from_server)
{
	struct evbuffer *in = bufferevent_get_input(src);
	uint8_t buf[RT_CHUNK];
	int n, code;

	while (z->state == RT_OPEN && (n = evbuffer_remove(in, buf, sizeof(buf))) > 0) {
		if ((code = ws_feed(r, buf, (size_t)n, sink)) != 0) {
			violation(z, code, from_server);
			return;
		}
	}
	if (evbuffer_get_length(bufferevent_get_output(dst)) > z->hub->srv->cfg->max_pending)
		bufferevent_disable(src, EV_READ);
}

static void up_read(struct bufferevent *bev, void *arg)
{
	struct rt_session *z = arg;
	const struct ws_sink sink = { to_cli, server_message, z };

	pump(z, bev, z->cli, &z->from_up, &sink, 1);
}

static void cli_read(struct bufferevent *bev, void *arg)
{
	struct rt_session *z = arg;
	const struct ws_sink sink = { to_up, client_message, z };

	pump(z, bev, z->up, &z->from_cli, &sink, 0);
}

/* The output fell below half of --max-pending: the other side is read again. */
static void cli_written(struct bufferevent *bev, void *arg)
{
	struct rt_session *z = arg;

	(void)bev;
	if (z->state == RT_OPEN)
		bufferevent_enable(z->up, EV_READ);
}

static void up_written(struct bufferevent *bev, void *arg)
{
	struct rt_session *z = arg;

	(void)bev;
	if (z->state == RT_OPEN)
		bufferevent_enable(z->cli, EV_READ);
}

/* A side closed or failed: what is pending goes out to the other one, then it closes. */
static void open_event(struct bufferevent *bev, short what, void *arg)
{
	struct rt_session *z = arg;

	(void)what;
	if (bev == z->cli) {
		cli_read(bev, z); /* the client's last bytes */
		bufferevent_free(z->cli);
		z->cli = NULL;
	} else {
		up_read(bev, z); /* the provider's last bytes */
		bufferevent_free(z->up);
		z->up = NULL;
	}
	if (z->state != RT_CLOSING)
		begin_close(z);
}

static void start_relay(struct rt_session *z)
{
	size_t low = z->hub->srv->cfg->max_pending / 2;

	z->state = RT_OPEN;
	z->hub->srv->m.rt_opened++;
	bufferevent_set_timeouts(z->cli, NULL, NULL);
	bufferevent_set_timeouts(z->up, NULL, NULL);
	bufferevent_setwatermark(z->cli, EV_WRITE, low, 0);
	bufferevent_setwatermark(z->up, EV_WRITE, low, 0);
	bufferevent_setcb(z->cli, cli_read, cli_written, open_event, z);
	bufferevent_setcb(z->up, up_read, up_written, open_event, z);
	bufferevent_enable(z->cli, EV_READ);
	bufferevent_enable(z->up, EV_READ);
	arm_timer(z, z->hub->srv->cfg->realtime_max_session_s);
	if (evbuffer_get_length(bufferevent_get_input(z->up)))
		up_read(z->up, z);
	if (z->state == RT_OPEN && evbuffer_get_length(bufferevent_get_input(z->cli)))
		cli_read(z->cli, z);
}

/* ---- a refused upgrade: the provider's answer relayed as it is ---------------------------- */

static void pass_read(struct bufferevent *bev, void *arg)
{
	struct rt_session *z = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	if (z->pass_left >= 0 && (int64_t)n > z->pass_left)
		n = (size_t)z->pass_left;
	evbuffer_remove_buffer(in, bufferevent_get_output(z->cli), n);
	if (z->pass_left >= 0 && (z->pass_left -= (int64_t)n) == 0)
		begin_close(z);
}

static void pass_event(struct bufferevent *bev, short what, void *arg)
{
	struct rt_session *z = arg;

	(void)what;
	if (bev == z->up) {
		pass_read(bev, z);
		bufferevent_free(z->up);
		z->up = NULL;
	} else {
		bufferevent_free(z->cli);
		z->cli = NULL;
	}
	if (z->state != RT_CLOSING)
		begin_close(z);
}

/* ---- the provider's answer ------------------------------------------------------------- */

/* The answer head goes to the client without Sec-WebSocket-Extensions (none was offered). */
static void relay_head(struct rt_session *z, const char *head)
{
	struct evbuffer *out = bufferevent_get_output(z->cli);

	for (const char *l = head; *l;) {
		const char *end = strstr(l, "\r\n");
		size_t len = end ? (size_t)(end - l) + 2 : strlen(l);
		if (strncasecmp(l, "Sec-WebSocket-Extensions:", 25) != 0)
			evbuffer_add(out, l, len);
		l += len;
	}
}

static void up_head(struct bufferevent *bev, void *arg)
{
	struct rt_session *z = arg;
	char v[32];
	int too_big, status;
	char *head = take_head(bufferevent_get_input(bev), &too_big);

	if (!head) {
		if (too_big)
			refuse(z, 502, "server_error", "bad_gateway", "The model server's answer to the upgrade is too large.");
		return;
	}
	if (sscanf(head, "HTTP/1.%*c %3d", &status) != 1) {
		free(head);
		refuse(z, 502, "server_error", "bad_gateway", "The model server's answer to the upgrade is not HTTP.");
		return;
	}
	z->status = status;
	relay_head(z, head);
	if (status == 101) {
		free(head);
		start_relay(z);
		return;
	}
	z->hub->srv->m.rt_upstream_refused++;
	z->pass_left = head_get(head, "Content-Length", v, sizeof(v)) == 0 ? atoll(v) : -1;
	free(head);
	z->state = RT_PASSING;
	bufferevent_set_timeouts(z->up, NULL, NULL);
	bufferevent_setcb(z->up, pass_read, NULL, pass_event, z);
	bufferevent_setcb(z->cli, NULL, NULL, pass_event, z);
	if (z->pass_left == 0)
		begin_close(z);
	else
		pass_read(z->up, z);
}

static void up_event(struct bufferevent *bev, short what, void *arg)
{
	struct rt_session *z = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	z->hub->srv->m.upstream_errors[XL_OPENAI]++;
	log_event(LOG_WARN, "realtime_upstream_failed",
		  LOG_FIELDS(LOG_S("request_id", z->id), LOG_S("url", z->route.base_url)),
		  "realtime session %s: the model server %s %s", z->id, z->route.base_url,
		  (what & BEV_EVENT_TIMEOUT) ? "did not answer in time" : "could not be reached");
	if (what & BEV_EVENT_TIMEOUT)
		refuse(z, 504, "server_error", "upstream_timeout", "The model server did not answer the upgrade in time.");
	else
		refuse(z, 502, "server_error", "upstream_unreachable", "The model server could not be reached.");
}

/* ---- the client's request ------------------------------------------------------------ */

static struct bufferevent *connect_upstream(struct rt_session *z, const struct target *t)
{
	struct rt_hub *h = z->hub;
	struct bufferevent *b;
	SSL *ssl = NULL;

	if (t->tls) {
		if (!h->tls || !(ssl = SSL_new(h->tls)))
			return NULL;
		SSL_set_tlsext_host_name(ssl, t->host);
		SSL_set1_host(ssl, t->host);
		b = bufferevent_openssl_socket_new(h->srv->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
						   BEV_OPT_CLOSE_ON_FREE);
	} else {
		b = bufferevent_socket_new(h->srv->base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!b)
		return NULL;
	if (bufferevent_socket_connect_hostname(b, h->dns, AF_UNSPEC, t->host, t->port) < 0) {
		bufferevent_free(b);
		return NULL;
	}
	return b;
}

/* The checks the agent and HAProxy made already, made again: this listener must only be
 * reachable from HAProxy, but a request without the route is still refused. */
static int check_request(struct rt_session *z, const char *head, struct target *t, char *key, size_t cap)
{
	char route[RT_HEADER_MAX], v[64], err[160];

	if (head_get(head, "x-jairouter-adapter", route, sizeof(route)) < 0) {
		refuse(z, 400, "invalid_request_error", "adapter_route_missing",
		       "This request did not come through the gateway's decision (no route header).");
		return -1;
	}
	if (strncmp(head, "GET ", 4) != 0 || head_get(head, "Upgrade", v, sizeof(v)) < 0 ||
	    strcasecmp(v, "websocket") != 0 || head_get(head, "Sec-WebSocket-Key", key, cap) < 0) {
		refuse(z, 400, "invalid_request_error", "invalid_upgrade",
		       "The Realtime API takes a WebSocket upgrade (GET with Upgrade: websocket).");
		return -1;
	}
	if (route_parse(route, strlen(route), &z->route, err, sizeof(err)) < 0 || z->route.family != XL_OPENAI ||
	    parse_base(z->route.base_url, t) < 0) {
		z->route.provider[0] = '\0'; /* no report: the agent bills nothing it did not route */
		refuse(z, 500, "server_error", "adapter_route_invalid", "The gateway's route for this session is invalid.");
		return -1;
	}
	return 0;
}

static void cli_head(struct bufferevent *bev, void *arg)
{
	struct rt_session *z = arg;
	struct target t;
	char key[128];
	int too_big;
	char *head = take_head(bufferevent_get_input(bev), &too_big);

	if (!head) {
		if (too_big)
			refuse(z, 400, "invalid_request_error", "request_too_large", "The upgrade request's head is too large.");
		return;
	}
	if (head_get(head, "x-request-id", z->id, sizeof(z->id)) < 0)
		z->id[0] = '\0';
	if (check_request(z, head, &t, key, sizeof(key)) < 0) {
		free(head);
		return;
	}
	if (!(z->up = connect_upstream(z, &t))) {
		free(head);
		refuse(z, 502, "server_error", "upstream_unreachable", "The model server could not be reached.");
		return;
	}
	write_upgrade(z, head, &t, key);
	free(head);
	z->state = RT_UPGRADING;
	bufferevent_disable(z->cli, EV_READ); /* the client waits for the 101 */
	bufferevent_setcb(z->cli, NULL, NULL, pass_event, z);
	bufferevent_setcb(z->up, up_head, NULL, up_event, z);
	{
		struct timeval tv = { z->hub->srv->cfg->connect_timeout_ms / 1000 + RT_HEAD_WAIT_S, 0 };
		bufferevent_set_timeouts(z->up, &tv, &tv);
	}
	bufferevent_enable(z->up, EV_READ);
}

static void head_event(struct bufferevent *bev, short what, void *arg)
{
	struct rt_session *z = arg;

	(void)bev, (void)what;
	session_free(z); /* the client went away or was too slow before it asked anything */
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct rt_hub *h = arg;
	struct rt_session *z = xcalloc(1, sizeof(*z));
	struct timeval tv = { RT_HEAD_WAIT_S, 0 };

	(void)lis, (void)sa, (void)len;
	z->hub = h;
	if (!(z->cli = bufferevent_socket_new(h->srv->base, fd, BEV_OPT_CLOSE_ON_FREE)))
		abort();
	ws_reader_init(&z->from_up, 0, h->srv->cfg->realtime_max_message);
	ws_reader_init(&z->from_cli, 1, 0);
	z->next = h->list;
	if (h->list)
		h->list->prev = z;
	h->list = z;
	h->active++;
	h->srv->m.rt_active = h->active;
	bufferevent_setcb(z->cli, cli_head, NULL, head_event, z);
	bufferevent_set_timeouts(z->cli, &tv, NULL);
	bufferevent_enable(z->cli, EV_READ);
	if (h->active > h->srv->cfg->realtime_max_sessions) {
		h->srv->m.refused_busy++;
		refuse(z, 503, "server_error", "adapter_busy", "The gateway's adapter is at its session limit; retry shortly.");
	}
}

/* ---- start-up ------------------------------------------------------------------------ */

static SSL_CTX *tls_client(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	if (!c)
		return NULL;
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_default_verify_paths(c);
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	return c;
}

static int bind_listener(struct rt_hub *h, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	if (addr_resolve_numeric(addr, SOCK_STREAM, &ss, &sl) < 0)
		return -1;
	h->lis = evconnlistener_new_bind(h->srv->base, on_accept, h, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
					 128, (struct sockaddr *)&ss, (int)sl);
	if (!h->lis)
		return -1;
	printf("LISTENING_REALTIME %d\n", addr_bound_port(evconnlistener_get_fd(h->lis)));
	fflush(stdout);
	return 0;
}

struct rt_hub *rt_start(struct ad_server *s)
{
	struct rt_hub *h = xcalloc(1, sizeof(*h));

	h->srv = s;
	h->dns = evdns_base_new(s->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	h->tls = tls_client();
	if (!h->dns || bind_listener(h, s->cfg->realtime_listen) < 0) {
		log_event(LOG_ERROR, "realtime_listen_failed", LOG_FIELDS(LOG_S("addr", s->cfg->realtime_listen)),
			  "cannot listen for realtime sessions on %s", s->cfg->realtime_listen);
		rt_free(h);
		return NULL;
	}
	return h;
}

void rt_stop_accepting(struct rt_hub *h)
{
	if (h && h->lis) {
		evconnlistener_free(h->lis);
		h->lis = NULL;
	}
}

long rt_active(const struct rt_hub *h)
{
	return h ? h->active : 0;
}

void rt_end_all(struct rt_hub *h)
{
	uint8_t frame[8], key[4];

	for (struct rt_session *z = h ? h->list : NULL, *next; z; z = next) {
		next = z->next;
		if (z->state == RT_CLOSING)
			continue;
		if (z->state == RT_OPEN) {
			if (ws_at_boundary(&z->from_up))
				bufferevent_write(z->cli, frame, ws_close_frame(frame, 1001, NULL));
			if (ws_at_boundary(&z->from_cli) && RAND_bytes(key, sizeof(key)) == 1)
				bufferevent_write(z->up, frame, ws_close_frame(frame, 1001, key));
		}
		begin_close(z);
	}
}

void rt_free(struct rt_hub *h)
{
	if (!h)
		return;
	while (h->list) {
		h->list->state = RT_CLOSING;
		session_free(h->list);
	}
	rt_stop_accepting(h);
	if (h->dns)
		evdns_base_free(h->dns, 0);
	if (h->tls)
		SSL_CTX_free(h->tls);
	free(h);
}
