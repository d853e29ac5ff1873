/* oauth: see oauth.h. */
#include "oauth.h"

#include "util/pct.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRA_AUTHORITY "https://login.microsoftonline.com"
#define ENTRA_SCOPE "https://cognitiveservices.azure.com/.default"
#define FORM_MAX 16384

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return -1;
}

enum oa_grant oa_grant_of(const char *secret, enum oa_grant json_grant)
{
	while (secret && (*secret == ' ' || *secret == '\t'))
		secret++;
	return secret && *secret == '{' ? json_grant : OA_NONE;
}

enum oa_grant oa_google_grant(const char *secret)
{
	return oa_grant_of(secret, OA_GOOGLE);
}

int oa_grant_is_bearer(enum oa_grant g)
{
	return g == OA_ENTRA || g == OA_GOOGLE;
}

void oa_request_free(struct oa_request *r)
{
	if (r->body) {
		explicit_bzero(r->body, r->body_len);
		free(r->body);
	}
	r->body = NULL;
	r->body_len = 0;
}

/* A growing form body "k=v&k=v" in a fixed buffer. */
struct form {
	char buf[FORM_MAX];
	size_t len;
	int bad;
};

static void form_add(struct form *f, const char *key, const char *value)
{
	int n = snprintf(f->buf + f->len, sizeof(f->buf) - f->len, "%s%s=", f->len ? "&" : "", key);

	if (f->bad || n < 0 || (size_t)n >= sizeof(f->buf) - f->len) {
		f->bad = 1;
		return;
	}
	f->len += (size_t)n;
	n = pct_encode(value, strlen(value), PCT_UNRESERVED, f->buf + f->len, sizeof(f->buf) - f->len);
	if (n < 0)
		f->bad = 1;
	else
		f->len += (size_t)n;
}

static int form_take(struct form *f, struct oa_request *out, char *err, size_t cap)
{
	int rc = 0;

	if (f->bad)
		rc = fail(err, cap, "the token request is too long");
	else if (!(out->body = strdup(f->buf)))
		rc = fail(err, cap, "out of memory");
	else
		out->body_len = f->len;
	explicit_bzero(f->buf, sizeof(f->buf));
	return rc;
}

/* A string member of a credential object; NULL when absent or empty. */
static const char *member(const json_t *j, const char *key)
{
	const char *v = json_string_value(json_object_get(j, key));

	return v && v[0] ? v : NULL;
}

/* An http(s) URL without control characters or spaces. */
static int url_ok(const char *u)
{
	if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
		return 0;
	for (; *u; u++)
		if ((unsigned char)*u <= ' ' || *u == 0x7f)
			return 0;
	return 1;
}

static json_t *load_secret(const char *secret, char *err, size_t cap)
{
	json_t *j = secret ? json_loads(secret, JSON_REJECT_DUPLICATES, NULL) : NULL;

	if (!json_is_object(j)) {
		json_decref(j);
		fail(err, cap, "the credential is not a JSON object");
		return NULL;
	}
	return j;
}

/* json_decref for objects that hold secrets: their strings are wiped first. */
static void wipe_decref(json_t *j)
{
	const char *k;
	json_t *v;

	json_object_foreach(j, k, v) {
		if (json_is_string(v))
			explicit_bzero((char *)json_string_value(v), json_string_length(v));
	}
	json_decref(j);
}

int oa_entra_request(const char *secret, struct oa_request *out, char *err, size_t cap)
{
	json_t *j = load_secret(secret, err, cap);
	const char *tenant, *client, *csecret, *host, *scope;
	struct form *f;
	int n, rc = -1;

	memset(out, 0, sizeof(*out));
	if (!j)
		return -1;
	tenant = member(j, "tenant_id");
	client = member(j, "client_id");
	csecret = member(j, "client_secret");
	host = member(j, "authority_host");
	scope = member(j, "scope");
	if (!tenant || !client || !csecret || strpbrk(tenant, "/?#%") || (host && !url_ok(host))) {
		fail(err, cap, "the Entra ID credential needs tenant_id, client_id and client_secret "
			       "(authority_host: an http(s) URL)");
		wipe_decref(j);
		return -1;
	}
	host = host ? host : ENTRA_AUTHORITY;
	n = snprintf(out->url, sizeof(out->url), "%.*s/%s/oauth2/v2.0/token",
		     (int)(strlen(host) - (host[strlen(host) - 1] == '/')), host, tenant);
	f = calloc(1, sizeof(*f));
	if (n < 0 || (size_t)n >= sizeof(out->url) || !url_ok(out->url) || !f) {
		fail(err, cap, "the Entra ID token URL is too long");
	} else {
		form_add(f, "grant_type", "client_credentials");
		form_add(f, "client_id", client);
		form_add(f, "client_secret", csecret);
		form_add(f, "scope", scope ? scope : ENTRA_SCOPE);
		rc = form_take(f, out, err, cap);
	}
	free(f);
	wipe_decref(j);
	return rc;
}

/* ---- Google: the RS256 JWT assertion ------------------------------------------------- */

/* base64url without padding of n bytes; new string. */
static char *b64url(const unsigned char *p, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1), *w;
	int len;

	if (!s)
		return NULL;
	len = EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	while (len > 0 && s[len - 1] == '=')
		len--;
	s[len] = '\0';
	for (w = s; *w; w++)
		*w = *w == '+' ? '-' : *w == '/' ? '_' : *w;
	return s;
}

static char *b64url_json(json_t *j)
{
	char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS), *s;

	json_decref(j);
	if (!t)
		return NULL;
	s = b64url((const unsigned char *)t, strlen(t));
	free(t);
	return s;
}

/* RS256 over text with a PEM private key; base64url signature or NULL. */
static char *rs256(const char *pem, const char *text, char *err, size_t cap)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	char *out = NULL;

	if (!key || EVP_PKEY_base_id(key) != EVP_PKEY_RSA)
		fail(err, cap, "the service account's private_key is not an RSA key in PEM");
	else if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
		 EVP_DigestSign(md, sig, &siglen, (const unsigned char *)text, strlen(text)) != 1)
		fail(err, cap, "the JWT assertion could not be signed");
	else if (!(out = b64url(sig, siglen)))
		fail(err, cap, "out of memory");
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	BIO_free(bio);
	return out;
}

static char *assertion_of(const json_t *sa, const char *scope, time_t now, char *err, size_t cap)
{
	const char *kid = member(sa, "private_key_id");
	char *head = b64url_json(kid ? json_pack("{s:s,s:s,s:s}", "alg", "RS256", "typ", "JWT", "kid", kid)
				     : json_pack("{s:s,s:s}", "alg", "RS256", "typ", "JWT"));
	char *claims = b64url_json(json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", member(sa, "client_email"),
					     "scope", scope, "aud", member(sa, "token_uri"), "iat",
					     (json_int_t)now, "exp", (json_int_t)now + OA_JWT_LIFETIME));
	char *text = NULL, *sig = NULL, *jwt = NULL;

	if (!head || !claims || asprintf(&text, "%s.%s", head, claims) < 0)
		text = NULL;
	if (!text)
		fail(err, cap, "out of memory");
	else if ((sig = rs256(member(sa, "private_key"), text, err, cap)) && asprintf(&jwt, "%s.%s", text, sig) < 0)
		jwt = NULL;
	free(head);
	free(claims);
	free(text);
	free(sig);
	return jwt;
}

char *oa_google_assertion(const char *secret, const char *scope, time_t now, char *err, size_t cap)
{
	json_t *sa = load_secret(secret, err, cap);
	char *jwt = NULL;

	if (!sa)
		return NULL;
	if (!member(sa, "client_email") || !member(sa, "private_key") || !member(sa, "token_uri") ||
	    !url_ok(member(sa, "token_uri")) || strlen(member(sa, "token_uri")) >= OA_URL_MAX)
		fail(err, cap, "the service account key needs client_email, private_key and token_uri "
			       "(an http(s) URL)");
	else
		jwt = assertion_of(sa, scope, now, err, cap);
	wipe_decref(sa);
	return jwt;
}

int oa_google_request(const char *secret, const char *scope, time_t now, struct oa_request *out,
		      char *err, size_t cap)
{
	char *jwt = oa_google_assertion(secret, scope, now, err, cap);
	json_t *sa;
	struct form *f;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!jwt)
		return -1;
	sa = json_loads(secret, 0, NULL); /* it parsed above */
	snprintf(out->url, sizeof(out->url), "%s", member(sa, "token_uri"));
	wipe_decref(sa);
	if ((f = calloc(1, sizeof(*f)))) {
		form_add(f, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
		form_add(f, "assertion", jwt);
		rc = form_take(f, out, err, cap);
		free(f);
	} else {
		fail(err, cap, "out of memory");
	}
	explicit_bzero(jwt, strlen(jwt));
	free(jwt);
	return rc;
}

/* ---- the token endpoint's answer ----------------------------------------------------- */

int oa_parse_token(const char *body, size_t len, char **token, long *expires_in, char *err, size_t cap)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const json_t *t = json_object_get(j, "access_token"), *ex = json_object_get(j, "expires_in");
	const char *v = json_string_value(t);
	int rc = -1;

	*token = NULL;
	*expires_in = 3600;
	if (!v || !v[0] || strlen(v) > OA_TOKEN_MAX || strpbrk(v, "\r\n"))
		fail(err, cap, "the token endpoint's answer has no usable access_token");
	else if (!(*token = strdup(v)))
		fail(err, cap, "out of memory");
	else
		rc = 0;
	/* Entra ID and Google send a number; some servers a numeric string. */
	if (json_is_integer(ex) && json_integer_value(ex) > 0)
		*expires_in = (long)json_integer_value(ex);
	else if (json_is_string(ex) && atol(json_string_value(ex)) > 0)
		*expires_in = atol(json_string_value(ex));
	if (j)
		wipe_decref(j);
	return rc;
}

void oa_times(time_t now, long expires_in, time_t *refresh_at, time_t *stale_at)
{
	long margin = expires_in / 10 < 60 ? expires_in / 10 : 60;

	*refresh_at = now + expires_in * 3 / 4;
	*stale_at = now + expires_in - margin;
}

/* ---- AWS STS: AssumeRoleWithWebIdentity ---------------------------------------------- */

#define STS_ENDPOINT "https://sts.amazonaws.com"

char *oa_sts_token_file(const char *secret, char *err, size_t cap)
{
	json_t *j = load_secret(secret, err, cap);
	const char *f = j ? member(j, "web_identity_token_file") : NULL;
	char *out = NULL;

	if (j && (!f || f[0] != '/' || !member(j, "role_arn")))
		fail(err, cap, "the STS credential needs role_arn and web_identity_token_file (an absolute path)");
	else if (f && !(out = strdup(f)))
		fail(err, cap, "out of memory");
	if (j)
		wipe_decref(j);
	return out;
}

int oa_sts_request(const char *secret, const char *web_token, struct oa_request *out, char *err, size_t cap)
{
	json_t *j = load_secret(secret, err, cap);
	const char *ep, *name;
	struct form *f;
	int n, rc = -1;

	memset(out, 0, sizeof(*out));
	if (!j)
		return -1;
	ep = member(j, "sts_endpoint");
	name = member(j, "role_session_name");
	ep = ep ? ep : STS_ENDPOINT;
	n = snprintf(out->url, sizeof(out->url), "%s", ep);
	f = calloc(1, sizeof(*f));
	if (!member(j, "role_arn") || !url_ok(ep) || n < 0 || (size_t)n >= sizeof(out->url) || !f) {
		fail(err, cap, "the STS credential needs role_arn (sts_endpoint: an http(s) URL)");
	} else {
		form_add(f, "Action", "AssumeRoleWithWebIdentity");
		form_add(f, "Version", "2011-06-15");
		form_add(f, "RoleArn", member(j, "role_arn"));
		form_add(f, "RoleSessionName", name ? name : "jairouter");
		form_add(f, "WebIdentityToken", web_token);
		rc = form_take(f, out, err, cap);
	}
	free(f);
	wipe_decref(j);
	return rc;
}

/* The text of the first <tag>...</tag> in body, bounded; NULL when absent or too long. */
static const char *xml_text(const char *body, size_t len, const char *tag, char *out, size_t cap)
{
	char open_tag[48], close_tag[48];
	const char *a, *b, *end = body + len;
	size_t n;

	snprintf(open_tag, sizeof(open_tag), "<%s>", tag);
	snprintf(close_tag, sizeof(close_tag), "</%s>", tag);
	if (!(a = memmem(body, len, open_tag, strlen(open_tag))))
		return NULL;
	a += strlen(open_tag);
	if (!(b = memmem(a, (size_t)(end - a), close_tag, strlen(close_tag))) || (n = (size_t)(b - a)) == 0 ||
	    n >= cap)
		return NULL;
	memcpy(out, a, n);
	out[n] = '\0';
	return strpbrk(out, "<>&\r\n") ? NULL : out;
}

int oa_parse_sts(const char *body, size_t len, time_t now, char **creds, long *expires_in, char *err,
		 size_t cap)
{
	char ak[128], sk[128], exp[40], *tok = malloc(OA_TOKEN_MAX + 1);
	struct tm tm = { 0 };
	const char *rest;
	int rc = -1;

	*creds = NULL;
	if (!tok)
		return fail(err, cap, "out of memory");
	if (!xml_text(body, len, "AccessKeyId", ak, sizeof(ak)) || !xml_text(body, len, "SecretAccessKey", sk, sizeof(sk)) ||
	    !xml_text(body, len, "SessionToken", tok, OA_TOKEN_MAX + 1) || !xml_text(body, len, "Expiration", exp, sizeof(exp)) ||
	    strchr(ak, ':') || strchr(sk, ':') || strchr(tok, ':')) /* ':' separates them */
		fail(err, cap, "the STS answer has no usable Credentials");
	else if (!(rest = strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm)) || (*rest && *rest != 'Z' && *rest != '.'))
		fail(err, cap, "the STS answer's Expiration is not an ISO 8601 time");
	else if (asprintf(creds, "%s:%s:%s", ak, sk, tok) >= 0)
		rc = 0;
	else
		fail(err, cap, "out of memory");
	if (rc < 0)
		*creds = NULL;
	*expires_in = rc == 0 && timegm(&tm) > now ? (long)(timegm(&tm) - now) : 1;
	explicit_bzero(sk, sizeof(sk));
	explicit_bzero(tok, OA_TOKEN_MAX + 1);
	free(tok);
	return rc;
}
