/* Unit tests of the limits stage (pipeline/limits.c) without a network: definitions in the
 * catalogue store, a request context as the earlier stages leave it, the verdict and the
 * x-ratelimit values, estimates, and the ACK variables they become. */
#include "config/config.h"
#include "limit/defs.h"
#include "limit/limiter.h"
#include "pipeline/limits.h"
#include "pipeline/pipeline.h"
#include "report/report.h"
#include "state/endpoints.h"
#include "state/state.h"
#include "usage/usage.h"

#include <event2/event.h>

#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static const char *const k_body = "{\"model\":\"m1\",\"messages\":[],\"max_tokens\":100}";

/* A catalogue with model m1 (id 7, priced 1000 per million tokens both ways) and the
 * given limit definitions. */
static void load(const struct lim_def *defs, size_t n)
{
	struct state *s = state_new();
	struct st_model m;

	memset(&m, 0, sizeof(m));
	m.id = 7;
	snprintf(m.name, sizeof(m.name), "m1");
	snprintf(m.backend, sizeof(m.backend), "be_x");
	m.price_in = m.price_out = 1000;
	state_put_model(s, &m);
	for (size_t i = 0; i < n; i++)
		limdefs_put(state_limits(s), &defs[i]);
	store_replace(s);
}

static struct lim_def def(int64_t id, enum lim_scope sc, enum lim_dim dim, enum lim_algo a,
			  int64_t amount, int64_t window_ms)
{
	struct lim_def d;

	memset(&d, 0, sizeof(d));
	d.id = id;
	d.scope = sc;
	d.dim = dim;
	d.p.algo = a;
	d.p.amount = amount;
	d.p.window_us = window_ms * 1000;
	return d;
}

/* A context as `route` leaves it: allowed, tenant 1, key 2, model m1. */
static void ctx_init(struct pl_ctx *ctx, const char *body)
{
	struct pl_policy pol = { 0, 0 };

	pl_ctx_init(ctx, &pol);
	ctx->tenant_id = 1;
	ctx->key_id = 2;
	ctx->service = PL_SVC_CHAT;
	ctx->out.allow = 1;
	snprintf(ctx->out.model, sizeof(ctx->out.model), "m1");
	snprintf(ctx->out.backend, sizeof(ctx->out.backend), "be_x");
	ctx->in.body.ptr = body;
	ctx->in.body.len = strlen(body);
	ctx->in.body_len = (int64_t)strlen(body);
	jscan_top(body, strlen(body), JSCAN_DEFAULT_DEPTH, &ctx->json);
}

static void setup(void)
{
	struct jr_config cfg;

	config_defaults(&cfg);
	limits_configure(&cfg);
	lim_local_destroy();
	lim_local_init(1000);
}

static void test_estimate(void)
{
	struct pl_ctx ctx;
	int64_t p, c;

	setup();
	ctx_init(&ctx, k_body);
	limits_estimate(&ctx, &p, &c);
	CHECK_EQ_INT(p, (int64_t)(strlen(k_body) + 3) / 4);
	CHECK_EQ_INT(c, 100);
	ctx_init(&ctx, "{\"model\":\"m1\"}");
	limits_estimate(&ctx, &p, &c);
	CHECK_EQ_INT(c, 256); /* limits_default_max_tokens */
	ctx.service = PL_SVC_EMBEDDINGS;
	limits_estimate(&ctx, &p, &c);
	CHECK_EQ_INT(c, 0);
}

static void test_no_limits_admits(void)
{
	struct pl_ctx ctx;

	setup();
	load(NULL, 0);
	ctx_init(&ctx, k_body);
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	CHECK(ctx.out.allow);
	CHECK_EQ_INT(ctx.out.rl[0].limit, -1);
}

static void test_rate_refusal_and_headers(void)
{
	struct lim_def d[2] = { def(1, LS_KEY, LD_REQUESTS, LIM_SLIDING_WINDOW, 2, 60000),
				def(2, LS_TENANT, LD_TOKENS, LIM_TOKEN_BUCKET, 10000, 60000) };
	struct pl_ctx ctx;
	uint8_t buf[4096];
	int n;

	setup();
	load(d, 2);
	ctx_init(&ctx, k_body);
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	CHECK_EQ_INT(ctx.out.rl[0].limit, 2);
	CHECK_EQ_INT(ctx.out.rl[0].remaining, 1);
	CHECK_EQ_INT(ctx.out.rl[0].reset_ms, 60000);
	CHECK_EQ_INT(ctx.out.rl[1].limit, 10000);
	CHECK(ctx.out.rl[1].remaining < 10000 - 100);
	n = pl_ack_encode(&ctx.out, 1, 1, buf, sizeof(buf), sizeof(buf));
	CHECK(n > 0);
	CHECK(memmem(buf, (size_t)n, "rl_rem_req", 10) != NULL);
	CHECK(memmem(buf, (size_t)n, "1m0s", 4) != NULL);
	pl_ctx_clear(&ctx);
	ctx_init(&ctx, k_body);
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	ctx_init(&ctx, k_body);
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_DONE);
	CHECK(!ctx.out.allow);
	CHECK_EQ_INT(ctx.out.status, 429);
	CHECK_EQ_INT(ctx.out.reason, PL_R_RATE_LIMITED);
	CHECK_EQ_STR(ctx.out.err_type, "rate_limit_error");
	CHECK_EQ_STR(ctx.out.err_code, "rate_limit_exceeded");
	CHECK(ctx.out.retry_after >= 59 && ctx.out.retry_after <= 60);
	CHECK_EQ_INT(ctx.out.rl[0].remaining, 0);
	CHECK_EQ_STR(ctx.out.backend, ""); /* never routed */
	n = pl_ack_encode(&ctx.out, 1, 1, buf, sizeof(buf), sizeof(buf));
	CHECK(n > 0 && memmem(buf, (size_t)n, "rl_lim_req", 10) != NULL);
	/* The refused request took nothing from the tenant's tokens: same remaining. */
	{
		int64_t before = ctx.out.rl[1].remaining;
		ctx_init(&ctx, k_body);
		pl_stage_limits(&ctx);
		CHECK_EQ_INT(ctx.out.rl[1].remaining, before);
	}
}

static void test_budget_is_insufficient_quota(void)
{
	/* 0.1 currency units = 100,000 micro-units; a request costs ~ (prompt + 100) * 1000. */
	struct lim_def d[1] = { def(3, LS_TENANT, LD_BUDGET, LIM_PERIOD_DAY, 100000, 0) };
	struct pl_ctx ctx;

	setup();
	load(d, 1);
	ctx_init(&ctx, k_body);
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_DONE);
	CHECK_EQ_INT(ctx.out.status, 429);
	CHECK_EQ_INT(ctx.out.reason, PL_R_QUOTA_EXCEEDED);
	CHECK_EQ_STR(ctx.out.err_type, "insufficient_quota");
	CHECK_EQ_STR(ctx.out.err_code, "insufficient_quota");
	CHECK(ctx.out.retry_after >= 1);
	/* A smaller request fits. */
	ctx_init(&ctx, "{\"model\":\"m1\",\"max_tokens\":10}");
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
}

static void test_denied_earlier_is_untouched(void)
{
	struct lim_def d[1] = { def(4, LS_KEY, LD_REQUESTS, LIM_SLIDING_WINDOW, 1, 60000) };
	struct pl_ctx ctx;

	setup();
	load(d, 1);
	ctx_init(&ctx, k_body);
	ctx.out.allow = 0; /* an earlier stage refused */
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	ctx_init(&ctx, k_body);
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT); /* the refused one was not counted */
}

/* Token callers (no API key): the key scope counts per issuer and subject, and the user
 * scope takes the verified subject before any header. */
static void test_token_subjects(void)
{
	struct lim_def d[2] = { def(5, LS_KEY, LD_REQUESTS, LIM_SLIDING_WINDOW, 1, 60000),
				def(6, LS_USER, LD_REQUESTS, LIM_SLIDING_WINDOW, 2, 60000) };
	struct pl_ctx ctx;
	int i;

	setup();
	load(d, 2);
	ctx_init(&ctx, k_body);
	ctx.key_id = 0;
	ctx.issuer_id = 3;
	snprintf(ctx.end_user, sizeof(ctx.end_user), "alice");
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	ctx_init(&ctx, k_body);
	ctx.key_id = 0;
	ctx.issuer_id = 3;
	snprintf(ctx.end_user, sizeof(ctx.end_user), "alice");
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_DONE); /* alice's "key" is used up */
	for (i = 0; i < 2; i++) {
		ctx_init(&ctx, k_body);
		ctx.key_id = 0;
		ctx.issuer_id = 3;
		snprintf(ctx.end_user, sizeof(ctx.end_user), "bob");
		ctx.in.user.ptr = "alice"; /* a header cannot borrow alice's counters */
		ctx.in.user.len = 5;
		/* bob: his key-scope counter admits one, then refuses */
		CHECK_EQ_INT(pl_stage_limits(&ctx), i == 0 ? PL_NEXT : PL_DONE);
	}
}

/* Report lines and the accounting they carry (limits_acct): a line of another process of
 * this agent is billed from its own fields, once; a line of this process is settled from
 * its reservation, never billed twice; a graceful hand-over leaves what is in flight to
 * the lines. */
static void publish(const char *line)
{
	struct jr_report r;

	CHECK_EQ_INT(report_parse(line, strlen(line), &r), 0);
	report_publish(&r);
}

static uint64_t usage_requests(void)
{
	struct usage_stats u;

	usage_stats(&u);
	return u.requests;
}

static uint64_t usage_estimated(void)
{
	struct usage_stats u;

	usage_stats(&u);
	return u.estimated;
}

static void test_acct_and_reports(void)
{
	struct event_base *base = event_base_new();
	struct jr_config cfg;
	struct pl_ctx ctx;
	char acct[LIMITS_ACCT_MAX], line[512], want[64];
	uint64_t before, est_before;

	config_defaults(&cfg);
	cfg.database[0] = '\0';
	lim_local_destroy();
	CHECK_EQ_INT(limits_start(base, &cfg), 0);
	load(NULL, 0);
	ctx_init(&ctx, k_body);
	ctx.in.request_id.ptr = "req-1";
	ctx.in.request_id.len = 5;
	CHECK(limits_acct(&ctx, acct, sizeof(acct)) > 0);
	snprintf(want, sizeof(want), "%s.1.2.7.", limits_process_tag());
	CHECK(strncmp(acct, want, strlen(want)) == 0);
	/* Admitted here: a reservation; its line settles it, once. */
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	CHECK_EQ_INT((int)limits_reservations(), 1);
	before = usage_requests();
	snprintf(line, sizeof(line), "id=req-1 st=200 pt=10 ct=5 acct=%s end=1", acct);
	publish(line);
	CHECK_EQ_INT((int)limits_reservations(), 0);
	CHECK_EQ_INT(usage_requests(), before + 1);
	publish(line); /* the same line again: this process' own, reservation gone */
	CHECK_EQ_INT(usage_requests(), before + 1);
	/* Decided by another process of this agent: billed from the line. */
	publish("id=req-2 st=200 acct=0badf00d.1.2.7.30.100 end=1");
	CHECK_EQ_INT(usage_requests(), before + 2);
	/* No acct (a refusal, an older HAProxy configuration): nothing to bill. */
	publish("id=req-3 st=401 end=1");
	CHECK_EQ_INT(usage_requests(), before + 2);
	est_before = usage_estimated();
	/* A stream: the rewrite detour's line brings the usage its Lua filter read, before
	 * or after HAProxy's own line; the detour's line without usage is not a settlement. */
	ctx.in.stream = 1;
	ctx.in.request_id.ptr = "req-5";
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	publish("id=req-5 hop=rewrite st=200 pt=- ct=- end=1");
	CHECK_EQ_INT((int)limits_reservations(), 1);
	publish("id=req-5 hop=rewrite st=200 pt=11 ct=3 end=1");
	CHECK_EQ_INT((int)limits_reservations(), 1);
	snprintf(line, sizeof(line), "id=req-5 st=200 acct=%s end=1", acct);
	publish(line);
	CHECK_EQ_INT((int)limits_reservations(), 0);
	CHECK_EQ_INT(usage_requests(), before + 3);
	CHECK_EQ_INT(usage_estimated(), est_before);
	ctx.in.request_id.ptr = "req-6";
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	snprintf(line, sizeof(line), "id=req-6 st=200 acct=%s end=1", acct);
	publish(line); /* HAProxy's line first: the usage is waited for */
	CHECK_EQ_INT((int)limits_reservations(), 1);
	publish("id=req-6 hop=rewrite st=200 pt=4 ct=9 end=1");
	CHECK_EQ_INT((int)limits_reservations(), 0);
	CHECK_EQ_INT(usage_requests(), before + 4);
	CHECK_EQ_INT(usage_estimated(), est_before);
	ctx.in.stream = 0;
	/* A graceful hand-over: the request in flight is left to its line. */
	ctx.in.request_id.ptr = "req-4";
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	limits_stop(1);
	CHECK_EQ_INT(usage_requests(), before + 4);
	pl_ctx_clear(&ctx);
	report_unsubscribe_all();
	lim_local_init(1000);
	event_base_free(base);
}

/* What the observer saw of the last settlement. */
static int64_t seen_cost = -1, seen_prompt = -1;

static void on_settled(const char *tenant, const char *model, int64_t pt, int64_t ct, int64_t cost, int stream,
		       int estimated)
{
	(void)tenant, (void)model, (void)ct, (void)stream, (void)estimated;
	seen_cost = cost;
	seen_prompt = pt;
}

/* A response cache hit (cache=hit in HAProxy's line, docs/cache.md) is settled with the
 * stored usage at the tenant's hit price factor; without the mark, at the full price. */
static void test_cache_hit_priced(void)
{
	static const struct limits_observer obs = { NULL, on_settled, NULL };
	struct event_base *base = event_base_new();
	struct jr_config cfg;
	struct pl_ctx ctx;
	char acct[LIMITS_ACCT_MAX], line[512];
	struct st_cache cp = { .id = 1, .tenant_id = 1, .model_id = 7, .ttl_s = 60, .max_entry_bytes = 4096,
			       .hit_price_factor = 0.25 };
	struct state *s;

	config_defaults(&cfg);
	cfg.database[0] = '\0';
	lim_local_destroy();
	CHECK_EQ_INT(limits_start(base, &cfg), 0);
	load(NULL, 0);
	s = store_write_begin();
	adapter_put_cache(state_adapter(s), &cp);
	store_write_end();
	limits_set_observer(&obs);
	ctx_init(&ctx, k_body);
	ctx.in.request_id.ptr = "hit-1";
	ctx.in.request_id.len = 5;
	CHECK(limits_acct(&ctx, acct, sizeof(acct)) > 0);
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	/* 1000 + 1000 tokens at 1000 per million each way: 2,000,000 micro-units in full */
	snprintf(line, sizeof(line), "id=hit-1 st=200 pt=1000 ct=1000 cache=hit acct=%s end=1", acct);
	publish(line);
	CHECK_EQ_INT((int)seen_prompt, 1000);
	CHECK_EQ_INT((int)seen_cost, 500000);
	ctx.in.request_id.ptr = "miss-1";
	ctx.in.request_id.len = 6;
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	snprintf(line, sizeof(line), "id=miss-1 st=200 pt=1000 ct=1000 cache=miss acct=%s end=1", acct);
	publish(line);
	CHECK_EQ_INT((int)seen_cost, 2000000);
	limits_set_observer(NULL);
	limits_stop(0);
	pl_ctx_clear(&ctx);
	report_unsubscribe_all();
	lim_local_init(1000);
	event_base_free(base);
}

/* A completed batch billed first here (limits_charge_batch): its tokens count against the
 * quotas and its cost against the budgets of its tenant, key and model, never against a
 * rate (tokens per minute) or a scope a batch does not have (a client address). */
static void test_batch_charge(void)
{
	struct lim_def d[4] = { def(11, LS_TENANT, LD_QUOTA, LIM_PERIOD_DAY, 2000, 0),
				def(12, LS_TENANT, LD_TOKENS, LIM_SLIDING_WINDOW, 500, 60000),
				def(13, LS_IP, LD_QUOTA, LIM_PERIOD_DAY, 1000, 0),
				def(14, LS_KEY, LD_BUDGET, LIM_PERIOD_MONTH, 1000000, 0) };
	struct event_base *base = event_base_new();
	struct jr_config cfg;
	struct pl_ctx ctx;

	config_defaults(&cfg);
	cfg.database[0] = '\0';
	limits_configure(&cfg);
	lim_local_destroy();
	lim_local_init(1000);
	CHECK_EQ_INT(limits_start(base, &cfg), 0);
	load(d, 4);
	/* 1500 tokens: under the quota of 2000, over the rate of 500 and the address quota. */
	limits_charge_batch(1, 2, 7, 1500, 0);
	ctx_init(&ctx, k_body); /* ~ 112 tokens */
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	CHECK_EQ_INT(ctx.out.rl[1].limit, 500);
	CHECK(ctx.out.rl[1].remaining > 500 - 150);
	pl_ctx_clear(&ctx);
	/* 400 more: 1500 + ~112 + 400 leaves less than a request's estimate. */
	limits_charge_batch(1, 2, 7, 400, 0);
	ctx_init(&ctx, k_body);
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_DONE);
	CHECK_EQ_INT(ctx.out.status, 429);
	CHECK_EQ_STR(ctx.out.err_code, "insufficient_quota");
	pl_ctx_clear(&ctx);
	/* Another tenant's batch, a batch without a key: nothing of tenant 1's key budget. */
	load(d + 3, 1);
	limits_charge_batch(3, 4, 7, 0, 5000000);
	limits_charge_batch(1, 0, 7, 0, 5000000);
	ctx_init(&ctx, "{\"model\":\"m1\",\"max_tokens\":10}"); /* ~ 14,000 micro-units */
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_NEXT);
	pl_ctx_clear(&ctx);
	/* The key's batch: its cost exhausts the key's monthly budget. */
	limits_charge_batch(1, 2, 7, 0, 990000);
	ctx_init(&ctx, "{\"model\":\"m1\",\"max_tokens\":10}");
	CHECK_EQ_INT(pl_stage_limits(&ctx), PL_DONE);
	CHECK_EQ_STR(ctx.out.err_code, "insufficient_quota");
	pl_ctx_clear(&ctx);
	limits_stop(0);
	report_unsubscribe_all();
	lim_local_init(1000);
	event_base_free(base);
}

int main(void)
{
	store_init();
	RUN(test_estimate);
	RUN(test_no_limits_admits);
	RUN(test_rate_refusal_and_headers);
	RUN(test_budget_is_insufficient_quota);
	RUN(test_denied_earlier_is_untouched);
	RUN(test_token_subjects);
	RUN(test_acct_and_reports);
	RUN(test_cache_hit_priced);
	RUN(test_batch_charge);
	lim_local_destroy();
	store_destroy();
	TEST_END();
}
