/*
 * report: what happened to each request, told after it ended.
 *
 * The SPOE exchange happens before a request is forwarded; nothing in SPOE runs when a
 * streamed response finishes, when a client aborts or when HAProxy answers an upstream
 * timeout itself. HAProxy's log line does: it is written once per request, when the
 * transaction ends, whatever the outcome. The frontend therefore writes its log line, in
 * a key=value format (haproxy/haproxy.cfg, "log-format"), into a ring that HAProxy
 * forwards to the agent's report listener over TCP (RFC 6587 octet counting); the adapter
 * sidecar sends datagrams of the same format for what only it sees (the usage in a
 * streamed response).
 *
 *   HAProxy ring --TCP, "<len> <line>"...--> report listener (control thread)
 *   adapter      --one datagram per line-->  -> report_parse -> every subscriber, in order
 *
 * A line is a sequence of `key=value` tokens separated by single spaces; tokens without
 * '=' are ignored, a value "-" (HAProxy's empty sample) reads as absent. HAProxy's line
 * ends with `end=1`: a line cut by the log length limit lacks it and is flagged as
 * truncated (its fields before the cut are still usable).
 *
 * Subscribers (limits release, usage reconciliation, breaker feedback...) register at
 * start-up, before the listener runs, and are called on the control thread.
 */
#ifndef JR_REPORT_H
#define JR_REPORT_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

#define REPORT_LINE_MAX 8192   /* longer datagrams are cut here and flagged truncated */
#define REPORT_MAX_FIELDS 64   /* further tokens are ignored (flagged truncated) */
#define REPORT_MAX_SUBSCRIBERS 16

struct report_field {
	const char *key, *val;
	size_t key_len, val_len;
};

struct jr_report {
	const char *line; /* the datagram (not NUL-terminated); fields point into it */
	size_t len;
	struct report_field f[REPORT_MAX_FIELDS];
	size_t n;
	int truncated;    /* no `end=1`, or more fields than REPORT_MAX_FIELDS */
	int other_process; /* acct= names another process of this agent (a restart's predecessor) */
	int adapter;      /* `src=adapter`: a line from the adapter sidecar, not HAProxy */
	/* Common fields, decoded once; -1 (or "") when absent. */
	int status;                        /* st: final HTTP status */
	int64_t tw_ms, tc_ms, tr_ms, ta_ms; /* HAProxy's %Tw %Tc %Tr %Ta */
	int64_t bytes;                     /* bytes sent to the client */
	char tsc[5];                       /* termination state, e.g. "----", "CD--" */
};

/* Parses one line. Returns 0, or -1 when the line has no request id (`id=`): such a line
 * cannot be related to a request and is not published. */
int report_parse(const char *line, size_t len, struct jr_report *out);

/* The value of key, NULL when absent or "-". *len gets its length. */
const char *report_get(const struct jr_report *r, const char *key, size_t *len);
/* An integer field; dflt when absent or not a decimal integer. */
int64_t report_get_int(const struct jr_report *r, const char *key, int64_t dflt);
/* Whether the value of key equals lit. */
int report_is(const struct jr_report *r, const char *key, const char *lit);

/* Whether HAProxy's termination state says the client went away (first letter C). */
int report_client_aborted(const struct jr_report *r);

typedef void (*report_fn)(const struct jr_report *r, void *arg);

/* Registers fn; returns 0, or -1 when REPORT_MAX_SUBSCRIBERS are registered. Call at
 * start-up only (the list is not locked). */
int report_subscribe(report_fn fn, void *arg);
void report_unsubscribe_all(void);
/* Calls every subscriber with r, in registration order. */
void report_publish(const struct jr_report *r);

/* The listener on addr: "host:port" listens on TCP (octet-counted stream, HAProxy's ring
 * forwarder) and UDP (one line per datagram) at once; "unix@/path" is a unix datagram
 * socket created with mode 0660, which keeps other local users from forging reports.
 * Everything is read on base's thread. */
struct report_listener;

struct report_stats {
	uint64_t lines;      /* published */
	uint64_t foreign;    /* ag= names another agent: ignored */
	uint64_t forwarded;  /* decided by the successor, sent on to it during a hand-over */
	uint64_t forward_failed; /* such lines that could not be sent (lost) */
	uint64_t malformed;  /* without a request id, or a stream framing error */
	uint64_t truncated;  /* published, but cut short */
	uint64_t dropped;    /* lost in the socket's receive queue (kernel count, SO_RXQ_OVFL) */
};

struct report_listener *report_listen(struct event_base *base, const char *addr, char *err,
				      size_t errlen);
void report_listener_free(struct report_listener *l);

/* This agent's id (the report line's ag=: lines of other agents are not published; lines
 * without ag= are) and this process' tag (the first field of acct=, pipeline/limits.h). */
void report_set_identity(const char *agent_id, const char *process_tag);

/* Restarts (docs/operations.md): a new process of the same agent binds the same address
 * (SO_REUSEPORT) while this one drains.
 *   report_listener_drain: stops listening (what is queued is read first), so HAProxy's
 *     ring and the adapter reach the successor from now on; the open ring connection is
 *     kept, and its lines decided by the successor (acct= of another process) are sent on
 *     to it as datagrams instead of being published here.
 *   report_listener_handover: once nothing here waits for a line, half-closes the ring
 *     connections: HAProxy closes them and reconnects, to the successor.
 *   report_listener_streams: ring connections still open (0: the hand-over is complete). */
void report_listener_drain(struct report_listener *l);
void report_listener_handover(struct report_listener *l);
size_t report_listener_streams(const struct report_listener *l);
void report_listener_stats(const struct report_listener *l, struct report_stats *st);

#endif /* JR_REPORT_H */
