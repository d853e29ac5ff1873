#include "util/log.h"

#include "util/json.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int log_level = LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level);
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

/* Writes one line: the head, the event (NULL: none), the message, the fields. */
static void emit(enum log_level level, const char *event, const struct log_field *f, size_t n,
		 const char *fmt, va_list ap)
{
	char msg[1024], ts[40];
	struct jbuf b = { 0 };
	struct timespec now;
	struct tm tm;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	jbuf_printf(&b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\"", ts, now.tv_nsec / 1000000,
		    level_names[level]);
	if (event)
		jbuf_printf(&b, ",\"event\":\"%s\"", event);
	jbuf_puts(&b, ",\"msg\":");
	jbuf_put_string(&b, msg, strlen(msg));
	for (size_t i = 0; i < n; i++) {
		jbuf_puts(&b, ",");
		jbuf_put_string(&b, f[i].key, strlen(f[i].key));
		if (f[i].is_num)
			jbuf_printf(&b, ":%lld", f[i].num);
		else if (f[i].str) {
			jbuf_puts(&b, ":");
			jbuf_put_string(&b, f[i].str, strlen(f[i].str));
		} else
			jbuf_puts(&b, ":null");
	}
	jbuf_puts(&b, "}\n");
	/* One fwrite per line: stdio locks the stream, so lines from threads never mix. */
	fwrite(b.p, 1, b.len, stderr);
	free(b.p);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if ((int)level > atomic_load(&log_level))
		return;
	va_start(ap, fmt);
	emit(level, NULL, NULL, 0, fmt, ap);
	va_end(ap);
}

void log_event(enum log_level level, const char *event, const struct log_field *f, size_t n,
	       const char *fmt, ...)
{
	va_list ap;

	if ((int)level > atomic_load(&log_level))
		return;
	va_start(ap, fmt);
	emit(level, event, f, n, fmt, ap);
	va_end(ap);
}
