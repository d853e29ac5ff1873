/*
 * realtime: the Realtime API relay (docs/adapter.md, "Realtime sessions"). A listener
 * of its own (--realtime-listen) takes the WebSocket upgrades HAProxy sends to backend
 * be_adapter_rt once the agent allowed them, with the agent's route in
 * x-jairouter-adapter. For each: a connection to the provider's `<base URL>/realtime
 * ?model=<upstream name>` with the client's upgrade (its Sec-WebSocket-Key, version and
 * subprotocols, the provider credential; never Sec-WebSocket-Extensions, so no
 * compression is negotiated and every frame can be read), the provider's answer relayed
 * as it is, then the frames both ways, unchanged (wsframe.h checks them on the way).
 * The usage of every `response.done` event the provider sends is summed and reported
 * in one line (report.h) when the session closes.
 *
 * Bounds: a request or answer head of at most RT_HEAD_MAX bytes; a server message of at
 * most --realtime-max-message bytes (beyond: close 1009 to both sides); at most
 * --max-pending bytes waiting for a slow side before the other one is read again; at
 * most --realtime-max-sessions sessions (beyond: 503 adapter_busy); a session ends after
 * --realtime-max-session-s.
 */
#ifndef JR_AD_REALTIME_H
#define JR_AD_REALTIME_H

struct ad_server;
struct rt_hub;

#define RT_HEAD_MAX 32768

/* Listens on cfg->realtime_listen (printing "LISTENING_REALTIME <port>"). NULL after
 * logging why. */
struct rt_hub *rt_start(struct ad_server *s);
/* Stops accepting (drain). */
void rt_stop_accepting(struct rt_hub *h);
/* Sessions open. */
long rt_active(const struct rt_hub *h);
/* Ends every session (close 1001 to both sides), reporting each. */
void rt_end_all(struct rt_hub *h);
void rt_free(struct rt_hub *h);

#endif
