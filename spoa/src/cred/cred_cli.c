/*
 * The operator side of cred: `jairouter-spoa --seal` turns a provider secret read on
 * stdin into the sealed text PostgreSQL stores; `--reseal` re-encrypts a sealed text
 * under the newest master key (rotation). scripts/jairouterctl drives both. The secret
 * never appears in argv, in the environment or in any message.
 *
 * Exit status: 0 done, 1 failure (message on stderr), 2 usage error.
 */
#include "cred/cred.h"

#include "config/config.h"
#include "util/xalloc.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cli {
	int reseal;
	const char *config, *keyfile, *aad;
};

static void cli_usage(FILE *f)
{
	fprintf(f, "usage: jairouter-spoa --seal   (-c CONFIG | -k KEYFILE) --aad AAD  < secret\n"
		   "       jairouter-spoa --reseal (-c CONFIG | -k KEYFILE) --aad AAD  < sealed\n"
		   "  --seal    read a provider secret on stdin (one line, printable ASCII) and print\n"
		   "            KEY_ID:BASE64 sealed with the last key of the master key file\n"
		   "  --reseal  read a sealed value on stdin, open it with any key of the file and\n"
		   "            print it sealed again with the last key\n"
		   "  -c FILE   agent configuration (its master_key_file setting is used)\n"
		   "  -k FILE   master key file, directly\n"
		   "  --aad S   additional data binding the value to its record: the output of\n"
		   "            jairouter.credential_aad() (scripts/jairouterctl passes it)\n");
}

int cred_cli_wanted(int argc, char **argv)
{
	return argc > 1 && (strcmp(argv[1], "--seal") == 0 || strcmp(argv[1], "--reseal") == 0);
}

static int cli_args(int argc, char **argv, struct cli *c)
{
	static const struct option longs[] = {
		{ "seal", no_argument, NULL, 's' }, { "reseal", no_argument, NULL, 'r' },
		{ "aad", required_argument, NULL, 'a' }, { NULL, 0, NULL, 0 },
	};
	int opt;

	memset(c, 0, sizeof(*c));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:k:", longs, NULL)) != -1) {
		switch (opt) {
		case 's': c->reseal = 0; break;
		case 'r': c->reseal = 1; break;
		case 'a': c->aad = optarg; break;
		case 'c': c->config = optarg; break;
		case 'k': c->keyfile = optarg; break;
		default: return -1;
		}
	}
	if (optind != argc || !c->aad || !c->aad[0] || strlen(c->aad) > CRED_AAD_MAX ||
	    !c->config == !c->keyfile)
		return -1;
	return 0;
}

static struct cred_keyring *cli_keyring(const struct cli *c)
{
	struct jr_config cfg;
	struct cred_keyring *kr;
	char err[512];
	const char *path = c->keyfile;

	if (c->config) {
		if (config_load(c->config, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "jairouter-spoa: %s\n", err);
			return NULL;
		}
		if (!cfg.master_key_file[0]) {
			fprintf(stderr, "jairouter-spoa: %s sets no master_key_file\n", c->config);
			return NULL;
		}
		path = cfg.master_key_file;
	}
	kr = cred_keyring_load(path, err, sizeof(err));
	if (!kr)
		fprintf(stderr, "jairouter-spoa: %s\n", err);
	return kr;
}

/* Reads stdin (at most cap bytes) and drops one trailing newline. -1 when larger. */
static long read_input(uint8_t *buf, size_t cap)
{
	size_t n = fread(buf, 1, cap + 1, stdin);

	if (n > cap)
		return -1;
	if (n && buf[n - 1] == '\n')
		n--;
	if (n && buf[n - 1] == '\r')
		n--;
	return (long)n;
}

/* A header value: printable ASCII, no blank at either end. */
static int secret_valid(const uint8_t *s, size_t n)
{
	if (n == 0 || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

static int cli_seal(const struct cred_keyring *kr, const char *aad)
{
	uint8_t *buf = xmalloc(CRED_SECRET_MAX + 1);
	long n = read_input(buf, CRED_SECRET_MAX);
	char *sealed;
	int rc = 1;

	if (n < 0)
		fprintf(stderr, "jairouter-spoa: the secret is longer than %d bytes\n", CRED_SECRET_MAX);
	else if (!secret_valid(buf, (size_t)n))
		fprintf(stderr, "jairouter-spoa: the secret must be one line of printable ASCII "
			"(it becomes an HTTP header value)\n");
	else {
		sealed = cred_seal(kr, buf, (size_t)n, aad, strlen(aad));
		printf("%s\n", sealed);
		free(sealed);
		rc = 0;
	}
	cred_secret_free(buf, CRED_SECRET_MAX + 1);
	return rc;
}

static int cli_reseal(const struct cred_keyring *kr, const char *aad)
{
	uint8_t *buf = xcalloc(1, CRED_SEALED_MAX + 1), *pt = NULL;
	long n = read_input(buf, CRED_SEALED_MAX);
	size_t ptlen = 0;
	enum cred_open_result r = n < 0 ? CRED_MALFORMED
				 : cred_open(kr, (const char *)buf, (size_t)n, aad, strlen(aad), &pt, &ptlen);
	char *sealed;

	free(buf);
	if (r != CRED_OK) {
		fprintf(stderr, "jairouter-spoa: cannot open the sealed value: %s\n", cred_open_error(r));
		return 1;
	}
	sealed = cred_seal(kr, pt, ptlen, aad, strlen(aad));
	cred_secret_free(pt, ptlen + 1);
	printf("%s\n", sealed);
	free(sealed);
	return 0;
}

int cred_cli_main(int argc, char **argv)
{
	struct cli c;
	struct cred_keyring *kr;
	int rc;

	if (cli_args(argc, argv, &c) < 0) {
		cli_usage(stderr);
		return 2;
	}
	if (!(kr = cli_keyring(&c)))
		return 1;
	rc = c.reseal ? cli_reseal(kr, c.aad) : cli_seal(kr, c.aad);
	cred_keyring_free(kr);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}
