/*
 * abuse: per-address failure counters and lock-outs (see abuse.h).
 */
#include "abuse/abuse.h"

#include "util/hmap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

struct slot {
	int family; /* 0 = free */
	uint8_t addr[16];
	int64_t window_start, last_failure, locked_until;
	unsigned failures;
};

struct stripe {
	pthread_mutex_t mu;
	struct slot slots[ABUSE_STRIPE_SLOTS];
};

static struct stripe stripes[ABUSE_STRIPES];
static struct abuse_config cfg = { 10, 5, 60, 300 };
static _Atomic uint64_t n_failures, n_lockouts, n_refused, n_evictions;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_locks(void)
{
	for (int i = 0; i < ABUSE_STRIPES; i++)
		pthread_mutex_init(&stripes[i].mu, NULL);
}

void abuse_configure(const struct abuse_config *c)
{
	pthread_once(&once, init_locks);
	cfg = *c; /* word-sized fields; read racily by workers, which is harmless */
}

void abuse_reset(void)
{
	pthread_once(&once, init_locks);
	for (int i = 0; i < ABUSE_STRIPES; i++) {
		pthread_mutex_lock(&stripes[i].mu);
		memset(stripes[i].slots, 0, sizeof(stripes[i].slots));
		pthread_mutex_unlock(&stripes[i].mu);
	}
}

static uint64_t addr_hash(int family, const uint8_t addr[16])
{
	return hmap_hash_bytes(addr, family == 4 ? 4 : 16) ^ (uint64_t)family;
}

static int same(const struct slot *s, int family, const uint8_t addr[16])
{
	return s->family == family && memcmp(s->addr, addr, family == 4 ? 4 : 16) == 0;
}

/* The slot of the address in its stripe (locked by the caller), or NULL. */
static struct slot *find(struct stripe *st, uint64_t h, int family, const uint8_t addr[16])
{
	size_t start = (size_t)(h >> 32) % ABUSE_STRIPE_SLOTS;

	for (size_t i = 0; i < ABUSE_STRIPE_SLOTS; i++) {
		struct slot *s = &st->slots[(start + i) % ABUSE_STRIPE_SLOTS];
		if (same(s, family, addr))
			return s;
	}
	return NULL;
}

/* A slot for a new address: a free one, else the least recently failing one that is not
 * locked out, else the oldest lock-out. */
static struct slot *claim(struct stripe *st, int64_t now)
{
	struct slot *best = NULL, *best_locked = NULL;

	for (size_t i = 0; i < ABUSE_STRIPE_SLOTS; i++) {
		struct slot *s = &st->slots[i];
		if (!s->family)
			return s;
		if (s->locked_until > now) {
			if (!best_locked || s->locked_until < best_locked->locked_until)
				best_locked = s;
		} else if (!best || s->last_failure < best->last_failure) {
			best = s;
		}
	}
	atomic_fetch_add(&n_evictions, 1);
	return best ? best : best_locked;
}

int abuse_locked(int family, const uint8_t addr[16], int64_t now)
{
	uint64_t h;
	struct stripe *st;
	struct slot *s;
	int left = 0;

	if (!cfg.max_failures || (family != 4 && family != 6))
		return 0;
	pthread_once(&once, init_locks);
	h = addr_hash(family, addr);
	st = &stripes[h % ABUSE_STRIPES];
	pthread_mutex_lock(&st->mu);
	s = find(st, h, family, addr);
	if (s && s->locked_until > now)
		left = (int)(s->locked_until - now);
	pthread_mutex_unlock(&st->mu);
	if (left)
		atomic_fetch_add(&n_refused, 1);
	return left;
}

int abuse_failure(int family, const uint8_t addr[16], int64_t now)
{
	uint64_t h;
	struct stripe *st;
	struct slot *s;
	int64_t lock = 0;

	if (!cfg.max_failures || (family != 4 && family != 6))
		return 0;
	pthread_once(&once, init_locks);
	atomic_fetch_add(&n_failures, 1);
	h = addr_hash(family, addr);
	st = &stripes[h % ABUSE_STRIPES];
	pthread_mutex_lock(&st->mu);
	s = find(st, h, family, addr);
	if (!s) {
		s = claim(st, now);
		memset(s, 0, sizeof(*s));
		s->family = family;
		memcpy(s->addr, addr, family == 4 ? 4 : 16);
	}
	if (s->failures == 0 || now - s->last_failure >= (int64_t)cfg.window_s) {
		s->failures = 0;
		s->window_start = now;
	}
	s->failures++;
	s->last_failure = now;
	if (s->failures >= cfg.max_failures) {
		lock = cfg.block_s;
	} else if (cfg.slow_after && s->failures >= cfg.slow_after) {
		unsigned shift = s->failures - cfg.slow_after;
		lock = shift >= 20 ? cfg.block_s : (int64_t)1 << shift;
		if (lock > (int64_t)cfg.block_s)
			lock = cfg.block_s;
	}
	if (lock && now + lock > s->locked_until) {
		s->locked_until = now + lock;
		atomic_fetch_add(&n_lockouts, 1);
	}
	pthread_mutex_unlock(&st->mu);
	return (int)lock;
}

void abuse_stats(struct abuse_stats *out)
{
	out->failures = atomic_load(&n_failures);
	out->lockouts = atomic_load(&n_lockouts);
	out->refused = atomic_load(&n_refused);
	out->evictions = atomic_load(&n_evictions);
}
