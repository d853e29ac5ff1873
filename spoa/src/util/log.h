/*
 * log: one JSON object per line on stderr ({"ts":…,"level":…,"msg":…}). The message is
 * printf-formatted and JSON-escaped. Callers never pass secrets: keys appear only as their
 * prefix, tokens never, connection strings never (only host, port and database name).
 *
 * log_event adds a stable event name and fields for machines, next to the message for
 * people: {"ts":…,"level":"info","event":"db_connected","msg":"…","host":"db1","port":5432}.
 * Event names and field names are snake_case and stable (docs/observability.md, "Agent
 * and adapter log events");
 * fields never use the names ts, level, event or msg.
 */
#ifndef JR_LOG_H
#define JR_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns -1 for anything else. */
int log_level_parse(const char *s);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One field of a structured line: a string (str, NULL writes null) or, with is_num, num. */
struct log_field {
	const char *key;
	const char *str;
	long long num;
	int is_num;
};
#define LOG_S(k, v) ((struct log_field){ (k), (v), 0, 0 })
#define LOG_I(k, v) ((struct log_field){ (k), NULL, (long long)(v), 1 })
/* The array and count log_event takes: LOG_FIELDS(LOG_S("host", h), LOG_I("port", p)). */
#define LOG_FIELDS(...) (const struct log_field[]){ __VA_ARGS__ },                           \
	sizeof((const struct log_field[]){ __VA_ARGS__ }) / sizeof(struct log_field)
#define LOG_NO_FIELDS NULL, 0

void log_event(enum log_level level, const char *event, const struct log_field *f, size_t n,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif /* JR_LOG_H */
