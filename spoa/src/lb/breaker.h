/*
 * lb/breaker: the circuit breaker of one server, as a pure state machine over an injected
 * clock (milliseconds). The caller (lb/table.c, on the control thread) feeds it one outcome
 * per finished request and ticks it; workers only see the published state and claim probe
 * tokens.
 *
 *   closed --(consecutive failures, or error rate over the window)--> open
 *   open --(open_ms elapsed)--> half_open: `probes` requests may go through
 *   half_open --(a failure)--> open;  --(`probes` successes)--> closed
 *
 * Failures are 5xx answers, timeouts and connection failures; 4xx answers (429 included,
 * which is handled as saturation instead) are successes: the server did its job.
 */
#ifndef JR_LB_BREAKER_H
#define JR_LB_BREAKER_H

#include <stdint.h>

#define LB_BR_WINDOW_MAX 60 /* seconds of error-rate history at most */

enum lb_br_state { LB_BR_CLOSED = 0, LB_BR_OPEN = 1, LB_BR_HALF_OPEN = 2 };

struct lb_breaker_conf {
	unsigned consecutive;  /* consecutive failures that open it; 0 disables that rule */
	double error_rate;     /* failure ratio over the window that opens it; 0 disables */
	unsigned min_requests; /* outcomes in the window before the ratio is trusted */
	unsigned window_s;     /* 1..LB_BR_WINDOW_MAX */
	unsigned open_ms;      /* time open before probing */
	unsigned probes;       /* successful probes that close it (and probes let through) */
};

/* The defaults of docs/routing.md. */
void lb_breaker_conf_default(struct lb_breaker_conf *c);

struct lb_breaker {
	enum lb_br_state state;
	unsigned consec;
	uint32_t ok[LB_BR_WINDOW_MAX], fail[LB_BR_WINDOW_MAX];
	int64_t bucket_sec[LB_BR_WINDOW_MAX];
	int64_t open_until_ms;  /* open: when probing may start */
	int64_t probe_armed_ms; /* half_open: when the probe tokens were last handed out */
	unsigned probe_ok;
};

void lb_breaker_init(struct lb_breaker *b);

/* Outcomes of lb_breaker_record / lb_breaker_tick. */
enum lb_br_event {
	LB_BR_NONE = 0,
	LB_BR_OPENED,      /* closed or half_open -> open */
	LB_BR_HALF_OPENED, /* open -> half_open: hand out `probes` tokens */
	LB_BR_CLOSED_EV,   /* half_open -> closed */
	LB_BR_REARM,       /* half_open and no verdict for open_ms: hand out tokens again */
};

/* One finished request (failure != 0 for a failure). Outcomes while open are requests
 * sent before it opened: ignored. */
enum lb_br_event lb_breaker_record(struct lb_breaker *b, const struct lb_breaker_conf *c,
				   int failure, int64_t now_ms);

/* Time-driven transitions; call a few times a second. */
enum lb_br_event lb_breaker_tick(struct lb_breaker *b, const struct lb_breaker_conf *c,
				 int64_t now_ms);

/* Failures and outcomes currently in the window (for tests and metrics). */
void lb_breaker_window(const struct lb_breaker *b, const struct lb_breaker_conf *c, int64_t now_ms,
		       uint32_t *ok, uint32_t *fail);

const char *lb_breaker_state_name(enum lb_br_state s);

#endif /* JR_LB_BREAKER_H */
