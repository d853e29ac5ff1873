#include "config/config.h"
#include "util/log.h"

#include "testlib.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void test_defaults_need_database(void)
{
	struct jr_config c;
	char err[256];

	CHECK(config_parse("", "t", &c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "database") != NULL);
}

static void test_full_file(void)
{
	struct jr_config c;
	char err[256];
	const char *text = "# comment\n"
			   "listen = 127.0.0.1:9999\n"
			   "database = \"host=/tmp dbname=x # not a comment\"  # a comment\n"
			   "workers=3\n"
			   "   deadline_ms = 120\n"
			   "on_error = allow\n"
			   "log_level = debug\n"
			   "\n";

	CHECK_EQ_INT(config_parse(text, "t", &c, err, sizeof(err)), 0);
	CHECK_EQ_STR(c.listen, "127.0.0.1:9999");
	CHECK_EQ_STR(c.database, "host=/tmp dbname=x # not a comment");
	CHECK_EQ_INT(c.workers, 3);
	CHECK_EQ_INT(c.deadline_ms, 120);
	CHECK_EQ_INT(c.on_error_allow, 1);
	CHECK_EQ_INT(c.log_level, LOG_DEBUG);
	CHECK_EQ_INT(c.max_inflight_per_conn, 64);
	CHECK_EQ_STR(c.metrics_listen, "127.0.0.1:9180");
}

static void test_errors_name_the_line(void)
{
	struct jr_config c;
	char err[256];

	CHECK(config_parse("database=x\nbogus = 1\n", "f.conf", &c, err, sizeof(err)) < 0);
	CHECK_EQ_STR(err, "f.conf:2: unknown setting 'bogus'");
	CHECK(config_parse("database=x\ndeadline_ms = 0\n", "f", &c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "f:2: deadline_ms: expected an integer") == err);
	CHECK(config_parse("database=x\nworkers = -1\n", "f", &c, err, sizeof(err)) < 0);
	CHECK(config_parse("database=x\nworkers = 12abc\n", "f", &c, err, sizeof(err)) < 0);
	CHECK(config_parse("database=x\non_error = maybe\n", "f", &c, err, sizeof(err)) < 0);
	CHECK(config_parse("database=x\njust a line\n", "f", &c, err, sizeof(err)) < 0);
	CHECK_EQ_STR(err, "f:2: expected key = value");
}

static void test_failed_parse_leaves_output_alone(void)
{
	struct jr_config c;
	char err[256];

	config_defaults(&c);
	c.workers = 7;
	CHECK(config_parse("database=x\nworkers=2\nnope=1\n", "f", &c, err, sizeof(err)) < 0);
	CHECK_EQ_INT(c.workers, 7);
}

static void test_restart_diff(void)
{
	struct jr_config a, b;
	char buf[128];

	config_defaults(&a);
	b = a;
	config_restart_diff(&a, &b, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "");
	b.workers = 9;
	b.deadline_ms = 1;
	snprintf(b.listen, sizeof(b.listen), "0.0.0.0:1");
	config_restart_diff(&a, &b, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "listen, workers");
}

static void test_missing_file(void)
{
	struct jr_config c;
	char err[256];

	CHECK(config_load("/nonexistent/jr.conf", &c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "/nonexistent/jr.conf") != NULL);
}

/* agent_id: the listen address by default (host name and port for a wildcard one),
 * or what the file says, in the characters a report line can carry. */
static void test_agent_id(void)
{
	struct jr_config c;
	char err[256], host[64] = "", want[96];

	CHECK_EQ_INT(config_parse("database=x\nlisten = 127.0.0.1:7000\n", "t", &c, err, sizeof(err)), 0);
	CHECK_EQ_STR(c.agent_id, "127.0.0.1:7000");
	CHECK_EQ_INT(config_parse("database=x\nlisten = 0.0.0.0:7001\n", "t", &c, err, sizeof(err)), 0);
	gethostname(host, sizeof(host) - 1);
	snprintf(want, sizeof(want), "%.40s:7001", host);
	for (char *p = want; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", *p))
			*p = '_';
	CHECK_EQ_STR(c.agent_id, want);
	CHECK_EQ_INT(config_parse("database=x\nagent_id = edge-1.a\n", "t", &c, err, sizeof(err)), 0);
	CHECK_EQ_STR(c.agent_id, "edge-1.a");
	CHECK(config_parse("database=x\nagent_id = \"a b\"\n", "t", &c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "agent_id") != NULL);
}

int main(void)
{
	RUN(test_defaults_need_database);
	RUN(test_full_file);
	RUN(test_errors_name_the_line);
	RUN(test_failed_parse_leaves_output_alone);
	RUN(test_restart_diff);
	RUN(test_missing_file);
	RUN(test_agent_id);
	TEST_END();
}
