/*
 * util/log: every line is one JSON object; log_event adds the event name and typed fields
 * next to the message (stderr captured in a file and read back with jansson).
 */
#include "util/log.h"

#include "testlib.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[] = "/tmp/jr-log-XXXXXX";
static int saved = -1;

static void capture(void)
{
	int fd = mkstemp(path);

	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

/* Restores stderr; returns the captured lines as JSON values (an array). */
static json_t *release(void)
{
	json_t *all = json_array();
	char buf[4096];
	FILE *f;

	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	f = fopen(path, "r");
	while (f && fgets(buf, sizeof(buf), f)) {
		json_t *j = json_loads(buf, 0, NULL);
		CHECK(j != NULL);
		if (j)
			json_array_append_new(all, j);
	}
	if (f)
		fclose(f);
	unlink(path);
	strcpy(path, "/tmp/jr-log-XXXXXX");
	return all;
}

static void test_event_fields(void)
{
	json_t *lines, *j;

	log_set_level(LOG_INFO);
	capture();
	log_event(LOG_INFO, "db_connected",
		  LOG_FIELDS(LOG_S("host", "db1"), LOG_I("port", 5432), LOG_S("database", NULL)),
		  "database: connected to %s:%d", "db1", 5432);
	log_info("plain \"quoted\" message");
	log_event(LOG_DEBUG, "hidden", LOG_NO_FIELDS, "below the level");
	log_event(LOG_WARN, "odd", LOG_FIELDS(LOG_S("error", "a\nb\"c")), "x");
	lines = release();
	CHECK_EQ_INT(json_array_size(lines), 3);
	j = json_array_get(lines, 0);
	CHECK_EQ_STR(json_string_value(json_object_get(j, "level")), "info");
	CHECK_EQ_STR(json_string_value(json_object_get(j, "event")), "db_connected");
	CHECK_EQ_STR(json_string_value(json_object_get(j, "msg")), "database: connected to db1:5432");
	CHECK_EQ_STR(json_string_value(json_object_get(j, "host")), "db1");
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "port")), 5432);
	CHECK(json_is_null(json_object_get(j, "database")));
	CHECK(json_string_value(json_object_get(j, "ts")) != NULL);
	j = json_array_get(lines, 1);
	CHECK(json_object_get(j, "event") == NULL);
	CHECK_EQ_STR(json_string_value(json_object_get(j, "msg")), "plain \"quoted\" message");
	j = json_array_get(lines, 2);
	CHECK_EQ_STR(json_string_value(json_object_get(j, "level")), "warn");
	CHECK_EQ_STR(json_string_value(json_object_get(j, "error")), "a\nb\"c");
	json_decref(lines);
}

int main(void)
{
	RUN(test_event_fields);
	TEST_END();
}
