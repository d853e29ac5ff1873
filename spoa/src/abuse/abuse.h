/*
 * abuse: brute-force protection per client address, local to this agent.
 *
 * Every request the identity stage refuses with 401 (missing, malformed, unknown,
 * revoked or expired credentials) counts as one failure of its client address. Within a
 * window of `window_s` seconds:
 *   - from `slow_after` failures on, the address is locked out for 1 s, then 2 s, 4 s, ...
 *     after each further failure (it is slowed: a guesser gets a handful of tries a minute);
 *   - at `max_failures` it is blocked for `block_s` seconds.
 * A locked-out address gets 429 with retry-after for every request, whatever credential it
 * sends, without any key lookup or signature check (unauthenticated peers get the tightest
 * limit there is). A window with no failure for `window_s` seconds starts over.
 *
 * Memory is bounded: ABUSE_SLOTS addresses are tracked (64 stripes of 128 slots, one
 * mutex per stripe). When a stripe is full, the entry whose last failure is oldest is
 * replaced, but never one that is still locked out while another is free to go; if all
 * are locked out, the oldest lock-out is replaced (an attacker spraying from more than
 * 8192 addresses at once loses the lock-out of the oldest ones, and the metric
 * abuse_evictions counts it).
 *
 * Fleet-wide: this table is per agent. Sharing it through Redis is left to the limits work
 * (docs/identity.md).
 */
#ifndef JR_ABUSE_H
#define JR_ABUSE_H

#include <stddef.h>
#include <stdint.h>

#define ABUSE_STRIPES 64
#define ABUSE_STRIPE_SLOTS 128
#define ABUSE_SLOTS (ABUSE_STRIPES * ABUSE_STRIPE_SLOTS)

struct abuse_config {
	unsigned max_failures; /* 0 disables the protection */
	unsigned slow_after;
	unsigned window_s;
	unsigned block_s;
};

void abuse_configure(const struct abuse_config *c);
/* Forgets every address (tests). */
void abuse_reset(void);

/* Seconds the address is still locked out at `now` (unix seconds), or 0. family 4 or 6;
 * an unknown address (family 0) is never tracked. */
int abuse_locked(int family, const uint8_t addr[16], int64_t now);

/* Records one failure; returns the lock-out it now has (seconds, 0 none). */
int abuse_failure(int family, const uint8_t addr[16], int64_t now);

struct abuse_stats {
	uint64_t failures, lockouts, refused, evictions;
};
void abuse_stats(struct abuse_stats *out);

#endif /* JR_ABUSE_H */
