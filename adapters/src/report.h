/*
 * report: the adapter's usage line to the agent's report listener, one UDP datagram a
 * request (docs/adapter.md): "src=adapter id=… pt=… ct=… [est=1] [abort=1] st=… …".
 * Values are percent-encoded where they are not printable ASCII (pct.h, PCT_PRINTABLE).
 */
#ifndef JR_AD_REPORT_H
#define JR_AD_REPORT_H

#include <stdint.h>
#include <sys/socket.h>

struct ad_reporter {
	int fd; /* -1: no listener configured */
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

struct rep_line {
	const char *id, *model, *tenant, *provider;
	int64_t prompt, completion;
	int estimated, aborted, status, stream;
	const char *rid; /* the stored object the request created (a response id), or "" */
	/* Tracing, when HAProxy sent a trace context (NULL: none): the gateway's context, the
	 * provider call's span id, and microsecond times from the request's arrival. */
	const char *traceparent, *call_span;
	int64_t t_start_us, translate_us, first_byte_us, total_us;
	const char *cache; /* "hit": answered from the response cache; NULL otherwise */
};

/* Opens the socket for a numeric "HOST:PORT" ("" = reports off: fd -1). 0, or -1 with
 * a message in err. */
int rep_open(struct ad_reporter *r, const char *hostport, char *err, size_t cap);
void rep_close(struct ad_reporter *r);

/* Sends one line. 0 when sent, -1 when it could not be. */
int rep_send(const struct ad_reporter *r, const struct rep_line *l);

#endif
