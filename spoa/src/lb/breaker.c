#include "lb/breaker.h"

#include <string.h>

void lb_breaker_conf_default(struct lb_breaker_conf *c)
{
	c->consecutive = 5;
	c->error_rate = 0.5;
	c->min_requests = 10;
	c->window_s = 10;
	c->open_ms = 5000;
	c->probes = 2;
}

void lb_breaker_init(struct lb_breaker *b)
{
	memset(b, 0, sizeof(*b));
	for (int i = 0; i < LB_BR_WINDOW_MAX; i++)
		b->bucket_sec[i] = -1;
}

static unsigned window_of(const struct lb_breaker_conf *c)
{
	if (c->window_s < 1)
		return 1;
	return c->window_s > LB_BR_WINDOW_MAX ? LB_BR_WINDOW_MAX : c->window_s;
}

void lb_breaker_window(const struct lb_breaker *b, const struct lb_breaker_conf *c, int64_t now_ms,
		       uint32_t *ok, uint32_t *fail)
{
	int64_t sec = now_ms / 1000;
	unsigned w = window_of(c);

	*ok = *fail = 0;
	for (unsigned i = 0; i < w; i++)
		if (b->bucket_sec[i] >= 0 && b->bucket_sec[i] > sec - (int64_t)w) {
			*ok += b->ok[i];
			*fail += b->fail[i];
		}
}

/* One-second buckets in a ring of window_s slots; a slot holding an older second is
 * reset before use. */
static void count(struct lb_breaker *b, const struct lb_breaker_conf *c, int failure, int64_t now_ms)
{
	int64_t sec = now_ms / 1000;
	unsigned i = (unsigned)(sec % window_of(c));

	if (b->bucket_sec[i] != sec) {
		b->bucket_sec[i] = sec;
		b->ok[i] = b->fail[i] = 0;
	}
	if (failure)
		b->fail[i]++;
	else
		b->ok[i]++;
}

static void reset_window(struct lb_breaker *b)
{
	for (int i = 0; i < LB_BR_WINDOW_MAX; i++)
		b->bucket_sec[i] = -1;
	b->consec = 0;
}

static enum lb_br_event open_it(struct lb_breaker *b, const struct lb_breaker_conf *c, int64_t now_ms)
{
	b->state = LB_BR_OPEN;
	b->open_until_ms = now_ms + c->open_ms;
	b->probe_ok = 0;
	reset_window(b);
	return LB_BR_OPENED;
}

static int should_open(const struct lb_breaker *b, const struct lb_breaker_conf *c, int64_t now_ms)
{
	uint32_t ok, fail;

	if (c->consecutive && b->consec >= c->consecutive)
		return 1;
	if (c->error_rate <= 0)
		return 0;
	lb_breaker_window(b, c, now_ms, &ok, &fail);
	return ok + fail >= c->min_requests && ok + fail > 0 &&
	       (double)fail >= c->error_rate * (double)(ok + fail);
}

enum lb_br_event lb_breaker_record(struct lb_breaker *b, const struct lb_breaker_conf *c,
				   int failure, int64_t now_ms)
{
	switch (b->state) {
	case LB_BR_OPEN:
		return LB_BR_NONE;
	case LB_BR_HALF_OPEN:
		if (failure)
			return open_it(b, c, now_ms);
		if (++b->probe_ok >= (c->probes ? c->probes : 1)) {
			b->state = LB_BR_CLOSED;
			reset_window(b);
			return LB_BR_CLOSED_EV;
		}
		return LB_BR_NONE;
	case LB_BR_CLOSED:
		break;
	}
	count(b, c, failure, now_ms);
	b->consec = failure ? b->consec + 1 : 0;
	return failure && should_open(b, c, now_ms) ? open_it(b, c, now_ms) : LB_BR_NONE;
}

enum lb_br_event lb_breaker_tick(struct lb_breaker *b, const struct lb_breaker_conf *c,
				 int64_t now_ms)
{
	if (b->state == LB_BR_OPEN && now_ms >= b->open_until_ms) {
		b->state = LB_BR_HALF_OPEN;
		b->probe_ok = 0;
		b->probe_armed_ms = now_ms;
		return LB_BR_HALF_OPENED;
	}
	/* A probe whose report was lost (UDP) must not leave the server half-open forever. */
	if (b->state == LB_BR_HALF_OPEN && now_ms - b->probe_armed_ms >= (int64_t)c->open_ms) {
		b->probe_armed_ms = now_ms;
		return LB_BR_REARM;
	}
	return LB_BR_NONE;
}

const char *lb_breaker_state_name(enum lb_br_state s)
{
	static const char *const names[] = { "closed", "open", "half_open" };

	return (unsigned)s < 3 ? names[s] : "unknown";
}
