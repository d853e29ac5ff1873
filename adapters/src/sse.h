/*
 * sse: an incremental parser for Server-Sent Events (the WHATWG "text/event-stream"
 * format) as model servers send them: bytes arrive in arbitrary pieces; every complete
 * event (a blank line ends it) is handed to a callback with its `event` name and its
 * `data` (several data lines joined with '\n').
 *
 * Bounded: a line longer than the buffer, or an event whose data outgrows it, is an
 * error (SSE_TOO_LONG) and the parser stops; the caller ends the stream with an error
 * event. Lines may end in "\n", "\r\n" or "\r". Comments (":...") and unknown fields
 * (id, retry) are ignored.
 */
#ifndef JR_AD_SSE_H
#define JR_AD_SSE_H

#include <stddef.h>

#define SSE_EVENT_MAX 32
#define SSE_DATA_MAX (1024 * 1024) /* one event's data; a provider chunk is far smaller */

enum sse_status { SSE_OK = 0, SSE_TOO_LONG = -1, SSE_STOPPED = -2 };

/* Returns 0 to go on, non-zero to stop the parser (sse_feed returns SSE_STOPPED). */
typedef int (*sse_event_fn)(void *arg, const char *event, const char *data, size_t len);

struct sse_parser {
	sse_event_fn fn;
	void *arg;
	char event[SSE_EVENT_MAX + 1];
	char *line;        /* the line being read */
	size_t line_len, line_cap;
	char *data;        /* the event's data so far */
	size_t data_len, data_cap;
	int has_data;
	int last_cr;       /* the previous byte was '\r': a following '\n' is the same end */
	int failed;
};

void sse_init(struct sse_parser *p, sse_event_fn fn, void *arg);
void sse_free(struct sse_parser *p);
/* Feeds bytes; calls fn for each complete event. */
enum sse_status sse_feed(struct sse_parser *p, const char *buf, size_t len);
/* End of input: an event not yet ended by a blank line is delivered (some servers
 * close right after the last data line). */
enum sse_status sse_finish(struct sse_parser *p);

/* NDJSON (one JSON document per line, Ollama's native stream): the same bounds. */
typedef int (*nd_line_fn)(void *arg, const char *line, size_t len);

struct nd_parser {
	nd_line_fn fn;
	void *arg;
	char *line;
	size_t len, cap;
	int failed;
};

void nd_init(struct nd_parser *p, nd_line_fn fn, void *arg);
void nd_free(struct nd_parser *p);
/* Calls fn for each non-empty line (without its "\n" or "\r\n"). */
enum sse_status nd_feed(struct nd_parser *p, const char *buf, size_t len);
/* A last line without its end is delivered. */
enum sse_status nd_finish(struct nd_parser *p);

#endif
