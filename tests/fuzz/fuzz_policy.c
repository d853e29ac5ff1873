/*
 * Fuzz target: the tenant-policy parsers on arbitrary bytes. The first byte chooses the
 * parser: a CIDR list (every parsed network is well-formed and its own address matches
 * it), a master key file, or a sealed credential opened with a fixed key (it must never
 * open: the fuzzer cannot forge a GCM tag, and must never crash on any length).
 */
#include "cred/cred.h"
#include "state/policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIXED_KEYS "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_cidrs(const char *text, size_t len)
{
	struct pol_cidr c[POL_CIDR_MAX];
	struct pol_iplist l = { 1, 0, c };
	int n = policy_cidrs_parse(text, len, c, POL_CIDR_MAX);

	for (int i = 0; i < n; i++) {
		if ((c[i].family != 4 && c[i].family != 6) || c[i].bits > (c[i].family == 4 ? 32 : 128))
			__builtin_trap();
		l.n = (size_t)i + 1;
		if (!policy_ip_allowed(&l, c[i].family, c[i].addr))
			__builtin_trap();
	}
}

static void fuzz_keyfile(const char *text, size_t len)
{
	char err[256];
	struct cred_keyring *kr = cred_keyring_parse(text, len, "fuzz", err, sizeof(err));

	if (kr && cred_keyring_count(kr) == 0)
		__builtin_trap();
	cred_keyring_free(kr);
}

static void fuzz_open(const char *text, size_t len)
{
	char err[256];
	struct cred_keyring *kr = cred_keyring_parse(FIXED_KEYS, strlen(FIXED_KEYS), "k", err, sizeof(err));
	uint8_t *pt = NULL;
	size_t ptlen = 0;

	if (!kr || cred_open(kr, text, len, "aad", 3, &pt, &ptlen) == CRED_OK)
		__builtin_trap();
	cred_keyring_free(kr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size == 0 || size > 16384)
		return 0;
	text = malloc(size);
	memcpy(text, data + 1, size - 1); /* not NUL-terminated: lengths are honoured */
	switch (data[0] % 3) {
	case 0: fuzz_cidrs(text, size - 1); break;
	case 1: fuzz_keyfile(text, size - 1); break;
	default: fuzz_open(text, size - 1); break;
	}
	free(text);
	return 0;
}
