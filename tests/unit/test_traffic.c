/*
 * Unit tests for metrics/traffic: per-tenant and per-model series from report lines,
 * refusals and settled usage; the fold into "other" beyond the caps; label escaping; no
 * key prefix ever rendered.
 */
#include "metrics/traffic.h"

#include "report/report.h"
#include "state/state.h"

#include "evtext.h"
#include "testlib.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

/* The exposition as a NUL-terminated string (caller frees). */
static char *render(void)
{
	struct evbuffer *b = evbuffer_new();

	traffic_render_metrics(b, NULL);
	return evbuffer_text(b);
}

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

static void feed(const char *line)
{
	struct jr_report r;

	if (report_parse(line, strlen(line), &r) == 0)
		traffic_on_report(&r, NULL);
}

static void test_report_lines(void)
{
	char *t;

	traffic_reset();
	traffic_configure(10, 10);
	feed("id=a1 tr=40 ta=120 st=200 tsc=---- v=allow tenant=acme key=jr-0123abcd model=gpt-x fb=- end=1");
	feed("id=a2 tr=3000 ta=7000 st=200 tsc=---- v=allow tenant=acme key=jr-0123abcd model=gpt-x fb=1 end=1");
	feed("id=a3 tr=-1 ta=2 st=429 tsc=---- v=deny tenant=acme key=jr-0123abcd model=gpt-x end=1");
	feed("id=a4 tr=-1 ta=1 st=401 tsc=---- v=deny tenant=- key=- model=- end=1");
	/* Ignored: the adapter's usage line and the rewrite detour's line. */
	feed("src=adapter id=a2 pt=5 ct=7 st=200 stream=1 model=gpt-x tenant=acme");
	feed("id=a2 hop=rewrite st=200 ta=5 tr=4 end=1");
	t = render();
	CHECK(has_line(t, "jairouter_tenant_requests_total{tenant=\"acme\",model=\"gpt-x\",code=\"2xx\"} 2"));
	CHECK(has_line(t, "jairouter_tenant_requests_total{tenant=\"acme\",model=\"gpt-x\",code=\"4xx\"} 1"));
	CHECK(has_line(t, "jairouter_tenant_requests_total{tenant=\"none\",model=\"none\",code=\"4xx\"} 1"));
	CHECK(has_line(t, "jairouter_tenant_fallbacks_total{tenant=\"acme\",model=\"gpt-x\"} 1"));
	/* 40 ms is in le=0.05, 3 s in le=5: cumulative buckets. */
	CHECK(has_line(t, "jairouter_tenant_time_to_first_byte_seconds_bucket{tenant=\"acme\",model=\"gpt-x\",le=\"0.025\"} 0"));
	CHECK(has_line(t, "jairouter_tenant_time_to_first_byte_seconds_bucket{tenant=\"acme\",model=\"gpt-x\",le=\"0.05\"} 1"));
	CHECK(has_line(t, "jairouter_tenant_time_to_first_byte_seconds_bucket{tenant=\"acme\",model=\"gpt-x\",le=\"5\"} 2"));
	CHECK(has_line(t, "jairouter_tenant_time_to_first_byte_seconds_count{tenant=\"acme\",model=\"gpt-x\"} 2"));
	CHECK(has_line(t, "jairouter_tenant_request_duration_seconds_count{tenant=\"acme\",model=\"gpt-x\"} 3"));
	CHECK(has_line(t, "jairouter_tenant_request_duration_seconds_bucket{tenant=\"acme\",model=\"gpt-x\",le=\"+Inf\"} 3"));
	CHECK(has_line(t, "jairouter_tenant_request_duration_seconds_sum{tenant=\"acme\",model=\"gpt-x\"} 7.122000"));
	CHECK(has_line(t, "# TYPE jairouter_tenant_request_duration_seconds histogram"));
	CHECK(strstr(t, "jr-0123abcd") == NULL); /* a key prefix is never a label */
	free(t);
	traffic_reset();
}

static void test_refusals_and_usage(void)
{
	char *t;

	traffic_reset();
	traffic_configure(10, 10);
	traffic_denied("acme", "gpt-x", 12, "rate_limited");
	traffic_denied("acme", "gpt-x", 12, "rate_limited");
	traffic_denied("", "", 3, "invalid_key");
	traffic_denied("acme", "gpt-x", 4000, "out_of_range"); /* ignored */
	traffic_refused("acme", "gpt-x", 0, "tenant", 1, "tokens");
	traffic_refused("acme", "gpt-x", 1, "key", 4, "budget");
	traffic_settled("acme", "gpt-x", 100, 50, 1250000, 1, 0);
	traffic_settled("acme", "gpt-x", 10, 5, 250000, 0, 1);
	t = render();
	CHECK(has_line(t, "jairouter_tenant_denied_total{tenant=\"acme\",model=\"gpt-x\",reason=\"rate_limited\"} 2"));
	CHECK(has_line(t, "jairouter_tenant_denied_total{tenant=\"none\",model=\"none\",reason=\"invalid_key\"} 1"));
	CHECK(strstr(t, "out_of_range") == NULL);
	CHECK(has_line(t, "jairouter_tenant_limit_refusals_total{tenant=\"acme\",model=\"gpt-x\",scope=\"tenant\",dimension=\"tokens\"} 1"));
	CHECK(has_line(t, "jairouter_tenant_limit_refusals_total{tenant=\"acme\",model=\"gpt-x\",scope=\"key\",dimension=\"budget\"} 1"));
	CHECK(has_line(t, "jairouter_tenant_prompt_tokens_total{tenant=\"acme\",model=\"gpt-x\"} 110"));
	CHECK(has_line(t, "jairouter_tenant_completion_tokens_total{tenant=\"acme\",model=\"gpt-x\"} 55"));
	CHECK(has_line(t, "jairouter_tenant_cost_total{tenant=\"acme\",model=\"gpt-x\"} 1.500000"));
	CHECK(has_line(t, "jairouter_tenant_streamed_requests_total{tenant=\"acme\",model=\"gpt-x\"} 1"));
	CHECK(has_line(t, "jairouter_tenant_estimated_usage_total{tenant=\"acme\",model=\"gpt-x\"} 1"));
	/* The current day and month hold what was just settled. */
	CHECK(has_line(t, "jairouter_tenant_period_cost{tenant=\"acme\",period=\"day\"} 1.500000"));
	CHECK(has_line(t, "jairouter_tenant_period_cost{tenant=\"acme\",period=\"month\"} 1.500000"));
	CHECK(has_line(t, "jairouter_tenant_period_tokens{tenant=\"acme\",period=\"month\"} 165"));
	free(t);
	traffic_reset();
}

static void test_fold_into_other(void)
{
	char *t;

	traffic_reset();
	traffic_configure(2, 1);
	traffic_settled("t1", "m1", 1, 0, 0, 0, 0);
	traffic_settled("t2", "m2", 2, 0, 0, 0, 0);
	traffic_settled("t3", "m1", 4, 0, 0, 0, 0);
	traffic_settled("t4", "m3", 8, 0, 0, 0, 0);
	t = render();
	CHECK(has_line(t, "jairouter_tenant_prompt_tokens_total{tenant=\"t1\",model=\"m1\"} 1"));
	CHECK(has_line(t, "jairouter_tenant_prompt_tokens_total{tenant=\"t2\",model=\"other\"} 2"));
	CHECK(has_line(t, "jairouter_tenant_prompt_tokens_total{tenant=\"other\",model=\"m1\"} 4"));
	CHECK(has_line(t, "jairouter_tenant_prompt_tokens_total{tenant=\"other\",model=\"other\"} 8"));
	CHECK(strstr(t, "t3") == NULL && strstr(t, "t4") == NULL && strstr(t, "m3") == NULL);
	CHECK(has_line(t, "jairouter_tenant_series_cap{label=\"tenant\"} 2"));
	CHECK(has_line(t, "jairouter_tenant_series_names{label=\"tenant\"} 2"));
	CHECK(has_line(t, "jairouter_tenant_series_names{label=\"model\"} 1"));
	free(t);
	traffic_reset();
	/* A cap of 0: everything is "other". */
	traffic_configure(0, 0);
	traffic_settled("t1", "m1", 3, 0, 0, 0, 0);
	t = render();
	CHECK(has_line(t, "jairouter_tenant_prompt_tokens_total{tenant=\"other\",model=\"other\"} 3"));
	free(t);
	traffic_reset();
	traffic_configure(100, 50);
}

static void test_escaping(void)
{
	char *t;

	traffic_reset();
	traffic_configure(10, 10);
	traffic_settled("a\"b\\c", "m\nx", 1, 0, 0, 0, 0);
	t = render();
	CHECK(has_line(t, "jairouter_tenant_prompt_tokens_total{tenant=\"a\\\"b\\\\c\",model=\"m\\nx\"} 1"));
	free(t);
	traffic_reset();
}

static void test_tenant_info(void)
{
	struct state *st = state_new();
	struct st_tenant a = { .id = 1, .name = "acme", .status = ST_ACTIVE,
			       .labels = "{\"team\": \"search\", \"plan\": \"gold \\\"x\\\"\"}" };
	struct st_tenant b = { .id = 2, .name = "quiet", .status = ST_ACTIVE, .labels = "{\"team\": \"ops\"}" };
	char *t;

	store_init();
	state_put_tenant(st, &a);
	state_put_tenant(st, &b);
	store_replace(st);
	traffic_reset();
	traffic_configure(10, 10);
	traffic_settled("acme", "m", 1, 0, 0, 0, 0);
	t = render();
	CHECK(has_line(t, "jairouter_tenant_info{tenant=\"acme\",label_team=\"search\",label_plan=\"gold \\\"x\\\"\"} 1"));
	/* A tenant without series of its own has no info series (bounded like the rest). */
	CHECK(strstr(t, "quiet") == NULL);
	free(t);
	traffic_reset();
	store_destroy();
}

int main(void)
{
	RUN(test_report_lines);
	RUN(test_refusals_and_usage);
	RUN(test_fold_into_other);
	RUN(test_escaping);
	RUN(test_tenant_info);
	TEST_END();
}
