/*
 * cred: provider credentials sealed with AES-256-GCM under master keys that only the
 * agents hold.
 *
 * Master key file (config `master_key_file`): one key per line, `<key-id>:<64 hex
 * digits>` (32 bytes), `#` comments and blank lines allowed. Key ids are 1 to 32 of
 * A-Z a-z 0-9 _ . -. Several keys coexist for rotation: every key opens, the LAST one
 * seals. The file must be a regular file that is not accessible to "others" (mode
 * o-rwx): cred_keyring_load refuses it otherwise.
 *
 * Sealed form (what PostgreSQL stores): `<key-id>:<base64(nonce[12] | ciphertext |
 * tag[16])>`, with a random 96-bit nonce per seal and caller-chosen additional data
 * (the record id and scope: jairouter.credential_aad()), so a sealed value copied to
 * another row does not open.
 *
 * Opened secrets are heap buffers that must be released with cred_secret_free(),
 * which zeroes them (OPENSSL_cleanse). Nothing here logs a secret.
 */
#ifndef JR_CRED_H
#define JR_CRED_H

#include <stddef.h>
#include <stdint.h>

#define CRED_KEY_ID_MAX 32      /* characters of a key id */
#define CRED_SECRET_MAX 4096    /* largest secret accepted for sealing */
#define CRED_SEALED_MAX 8192    /* longest sealed text accepted for opening */
#define CRED_AAD_MAX 512

struct cred_keyring;

/* Parses key file text (`name` is used in messages). Returns the keyring, or NULL with
 * "name:line: reason" in err. The text is not retained. */
struct cred_keyring *cred_keyring_parse(const char *text, size_t len, const char *name, char *err,
					size_t errlen);

/* Reads and parses path after checking that it is a regular file without permissions
 * for others. NULL with a reason in err. */
struct cred_keyring *cred_keyring_load(const char *path, char *err, size_t errlen);

/* Zeroes the key material and frees. NULL is a no-op. */
void cred_keyring_free(struct cred_keyring *kr);

size_t cred_keyring_count(const struct cred_keyring *kr);

/* Seals secret under the last key. Returns a malloc'd NUL-terminated sealed string. */
char *cred_seal(const struct cred_keyring *kr, const uint8_t *secret, size_t len, const char *aad,
		size_t aadlen);

enum cred_open_result {
	CRED_OK = 0,
	CRED_MALFORMED = -1,   /* not `<key-id>:<base64>` or too short/long */
	CRED_UNKNOWN_KEY = -2, /* no master key with that id */
	CRED_REJECTED = -3,    /* authentication failed: wrong key, wrong AAD or tampered */
};

/* Opens a sealed string. On CRED_OK *out is a malloc'd buffer of *outlen bytes plus a
 * terminating NUL (free with cred_secret_free). */
enum cred_open_result cred_open(const struct cred_keyring *kr, const char *sealed, size_t slen,
				const char *aad, size_t aadlen, uint8_t **out, size_t *outlen);

const char *cred_open_error(enum cred_open_result r);

/* Zeroes len bytes of p and frees it. NULL is a no-op. */
void cred_secret_free(void *p, size_t len);

/* The process-wide keyring the loader opens credentials with (control thread only).
 * cred_global_set takes ownership and frees the previous one. */
void cred_global_set(struct cred_keyring *kr);
const struct cred_keyring *cred_global(void);

/* `jairouter-spoa --seal|--reseal ...`: operator tool (docs/tenancy.md). Returns the
 * process exit status. */
int cred_cli_main(int argc, char **argv);

/* True when argv[1] asks for the tool. */
int cred_cli_wanted(int argc, char **argv);

#endif /* JR_CRED_H */
