#include "cred/cred.h"

#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define MAX_KEYS 16
#define KEYFILE_MAX (64 * 1024)

struct cred_key {
	char id[CRED_KEY_ID_MAX + 1];
	uint8_t key[KEY_LEN];
};

struct cred_keyring {
	size_t n;
	struct cred_key keys[MAX_KEYS];
};

static struct cred_keyring *global_ring;

void cred_secret_free(void *p, size_t len)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

void cred_keyring_free(struct cred_keyring *kr)
{
	cred_secret_free(kr, sizeof(*kr));
}

size_t cred_keyring_count(const struct cred_keyring *kr)
{
	return kr ? kr->n : 0;
}

static int id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

static int id_valid(const char *s, size_t n)
{
	if (n == 0 || n > CRED_KEY_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!id_char(s[i]))
			return 0;
	return 1;
}

static int nibble(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static const struct cred_key *key_find(const struct cred_keyring *kr, const char *id, size_t n)
{
	for (size_t i = 0; i < kr->n; i++)
		if (strlen(kr->keys[i].id) == n && memcmp(kr->keys[i].id, id, n) == 0)
			return &kr->keys[i];
	return NULL;
}

/* One non-comment line "<id>:<64 hex>" (blanks around the line are ignored). */
static const char *parse_key_line(struct cred_keyring *kr, const char *p, size_t n)
{
	const char *colon = memchr(p, ':', n);
	struct cred_key *k;
	size_t idlen, hexlen;

	if (!colon)
		return "expected <key-id>:<64 hex digits>";
	idlen = (size_t)(colon - p);
	hexlen = n - idlen - 1;
	if (!id_valid(p, idlen))
		return "key id: 1 to 32 of A-Z a-z 0-9 _ . -";
	if (key_find(kr, p, idlen))
		return "duplicate key id";
	if (hexlen != 2 * KEY_LEN)
		return "the key must be 64 hex digits (32 bytes)";
	if (kr->n == MAX_KEYS)
		return "too many keys (at most 16)";
	k = &kr->keys[kr->n];
	for (size_t i = 0; i < KEY_LEN; i++) {
		int hi = nibble(colon[1 + 2 * i]), lo = nibble(colon[2 + 2 * i]);
		if (hi < 0 || lo < 0)
			return "the key must be 64 hex digits (32 bytes)";
		k->key[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(k->id, p, idlen);
	k->id[idlen] = '\0';
	kr->n++;
	return NULL;
}

static void trim_span(const char **p, size_t *n)
{
	while (*n && (**p == ' ' || **p == '\t' || **p == '\r'))
		(*p)++, (*n)--;
	while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r'))
		(*n)--;
}

struct cred_keyring *cred_keyring_parse(const char *text, size_t len, const char *name, char *err,
					size_t errlen)
{
	struct cred_keyring *kr = xcalloc(1, sizeof(*kr));
	const char *p = text, *end = text + len;
	int lineno = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *line = p, *why;
		size_t n = (size_t)((nl ? nl : end) - p);

		p += n + (nl != NULL);
		lineno++;
		trim_span(&line, &n);
		if (n == 0 || line[0] == '#')
			continue;
		if ((why = parse_key_line(kr, line, n)) != NULL) {
			snprintf(err, errlen, "%s:%d: %s", name, lineno, why);
			cred_keyring_free(kr);
			return NULL;
		}
	}
	if (kr->n == 0) {
		snprintf(err, errlen, "%s: no master key in the file", name);
		cred_keyring_free(kr);
		return NULL;
	}
	return kr;
}

static ssize_t read_all(int fd, char *buf, size_t cap)
{
	size_t used = 0;

	for (;;) {
		ssize_t r = read(fd, buf + used, cap - used);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0 || (used += (size_t)r) == cap)
			return (ssize_t)used;
	}
}

struct cred_keyring *cred_keyring_load(const char *path, char *err, size_t errlen)
{
	struct cred_keyring *kr = NULL;
	struct stat st;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(err, errlen, "master key file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "master key file %s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if (st.st_mode & S_IRWXO) {
		snprintf(err, errlen, "master key file %s is accessible to other users (mode %03o); "
			 "run chmod o-rwx on it", path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return NULL;
	}
	buf = xmalloc(KEYFILE_MAX + 1);
	n = read_all(fd, buf, KEYFILE_MAX + 1);
	close(fd);
	if (n < 0 || n > KEYFILE_MAX)
		snprintf(err, errlen, "master key file %s: %s", path,
			 n < 0 ? "read error" : "larger than 64 KiB");
	else
		kr = cred_keyring_parse(buf, (size_t)n, path, err, errlen);
	cred_secret_free(buf, KEYFILE_MAX + 1);
	return kr;
}

/* ---- AES-256-GCM ------------------------------------------------------------------- */

/* Runs one GCM pass. enc: 1 seal, 0 open (tag checked). Returns 0 or -1. */
static int gcm(int enc, const uint8_t key[KEY_LEN], const uint8_t nonce[NONCE_LEN], const char *aad,
	       size_t aadlen, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[TAG_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ok, outl = 0, finl = 0;

	if (!c)
		abort();
	ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
	     EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) == 1 &&
	     (aadlen == 0 || EVP_CipherUpdate(c, NULL, &outl, (const uint8_t *)aad, (int)aadlen) == 1) &&
	     (len == 0 || EVP_CipherUpdate(c, out, &outl, in, (int)len) == 1) &&
	     (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
	     EVP_CipherFinal_ex(c, out + (len ? outl : 0), &finl) == 1 &&
	     (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

char *cred_seal(const struct cred_keyring *kr, const uint8_t *secret, size_t len, const char *aad,
		size_t aadlen)
{
	const struct cred_key *k = &kr->keys[kr->n - 1];
	size_t raw_len = NONCE_LEN + len + TAG_LEN, idlen = strlen(k->id);
	uint8_t *raw = xmalloc(raw_len);
	char *out = xmalloc(idlen + 1 + 4 * ((raw_len + 2) / 3) + 1);

	if (RAND_bytes(raw, NONCE_LEN) != 1 ||
	    gcm(1, k->key, raw, aad, aadlen, secret, len, raw + NONCE_LEN, raw + NONCE_LEN + len) < 0)
		abort(); /* no randomness or a broken cipher: nothing safe to return */
	memcpy(out, k->id, idlen);
	out[idlen] = ':';
	EVP_EncodeBlock((uint8_t *)out + idlen + 1, raw, (int)raw_len);
	cred_secret_free(raw, raw_len);
	return out;
}

static int b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/';
}

/* Strict base64 (padded, no blanks). Returns the decoded length or -1. */
static long b64_decode(const char *s, size_t n, uint8_t *out)
{
	size_t pad = 0;
	int r;

	if (n == 0 || n % 4)
		return -1;
	while (pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < n - pad; i++)
		if (!b64_char(s[i]))
			return -1;
	r = EVP_DecodeBlock(out, (const uint8_t *)s, (int)n);
	return r < 0 ? -1 : (long)((size_t)r - pad);
}

enum cred_open_result cred_open(const struct cred_keyring *kr, const char *sealed, size_t slen,
				const char *aad, size_t aadlen, uint8_t **out, size_t *outlen)
{
	const char *colon = slen <= CRED_SEALED_MAX ? memchr(sealed, ':', slen) : NULL;
	const struct cred_key *k;
	uint8_t *raw, *pt;
	long rl;
	size_t ctlen, b64len;

	if (!colon || !id_valid(sealed, (size_t)(colon - sealed)))
		return CRED_MALFORMED;
	b64len = slen - (size_t)(colon - sealed) - 1;
	raw = xmalloc(b64len / 4 * 3 + 3);
	rl = b64_decode(colon + 1, b64len, raw);
	if (rl < NONCE_LEN + TAG_LEN + 1) {
		free(raw);
		return CRED_MALFORMED;
	}
	if (!(k = key_find(kr, sealed, (size_t)(colon - sealed)))) {
		free(raw);
		return CRED_UNKNOWN_KEY;
	}
	ctlen = (size_t)rl - NONCE_LEN - TAG_LEN;
	pt = xmalloc(ctlen + 1);
	if (gcm(0, k->key, raw, aad, aadlen, raw + NONCE_LEN, ctlen, pt, raw + NONCE_LEN + ctlen) < 0) {
		free(raw);
		cred_secret_free(pt, ctlen + 1);
		return CRED_REJECTED;
	}
	free(raw);
	pt[ctlen] = '\0';
	*out = pt;
	*outlen = ctlen;
	return CRED_OK;
}

const char *cred_open_error(enum cred_open_result r)
{
	switch (r) {
	case CRED_OK: return "ok";
	case CRED_MALFORMED: return "malformed sealed value";
	case CRED_UNKNOWN_KEY: return "sealed under a master key id that is not in the key file";
	case CRED_REJECTED: return "authentication failed (wrong key, wrong record, or tampered)";
	}
	return "unknown error";
}

void cred_global_set(struct cred_keyring *kr)
{
	cred_keyring_free(global_ring);
	global_ring = kr;
}

const struct cred_keyring *cred_global(void)
{
	return global_ring;
}
