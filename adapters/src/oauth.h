/*
 * oauth: the pure half of exchanging a provider credential for a short-lived access
 * token (tokens.c does the I/O): the token requests of Microsoft Entra ID's client
 * credentials grant and of a Google service account (an RS256-signed JWT assertion,
 * RFC 7523), the token endpoint's answer (RFC 6749 section 5.1) and when a token is
 * refreshed and when it is no longer used. No I/O; secrets are wiped when freed.
 *
 * Credentials (the provider credential's secret, docs/adapter.md):
 *   Entra ID:  {"tenant_id": "...", "client_id": "...", "client_secret": "...",
 *               ["authority_host": "https://login.microsoftonline.com"], ["scope": "..."]}
 *   Google:    the service account key file as downloaded ({"type": "service_account",
 *               "client_email", "private_key" (PEM), "token_uri", ...})
 *   AWS STS:   {"role_arn": "arn:aws:iam::ACCOUNT:role/NAME", "web_identity_token_file":
 *               "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
 *               ["role_session_name": "jairouter"], ["sts_endpoint": "https://sts.amazonaws.com"]}
 *               AssumeRoleWithWebIdentity with the token file's content (as on Kubernetes
 *               with a projected service account token); the answer's temporary
 *               credentials are "ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN".
 */
#ifndef JR_AD_OAUTH_H
#define JR_AD_OAUTH_H

#include <stddef.h>
#include <time.h>

/* How a credential is exchanged for an access token; OA_NONE: it is used as it is. */
enum oa_grant { OA_NONE = -1, OA_ENTRA, OA_GOOGLE, OA_STS };

/* The grant's result goes in "Authorization: Bearer" (Entra ID, Google); else it is the
 * entry's secret (STS: the temporary credentials Bedrock signs with). */
int oa_grant_is_bearer(enum oa_grant g);

/* The grant of a secret for a provider that takes either: a JSON object (Entra ID client
 * credentials, a service account key) is exchanged, anything else (an API key, a token
 * minted elsewhere) is not. */
enum oa_grant oa_grant_of(const char *secret, enum oa_grant json_grant);
/* The grant of a Google Cloud credential (Gemini and Anthropic on Vertex AI): a JSON
 * service account key is exchanged, an access token minted elsewhere is not. */
enum oa_grant oa_google_grant(const char *secret);

#define OA_URL_MAX 512
#define OA_TOKEN_MAX 8192   /* longest access token accepted */
#define OA_JWT_LIFETIME 3600

/* A token request: POST url with an application/x-www-form-urlencoded body. */
struct oa_request {
	char url[OA_URL_MAX];
	char *body; /* owned, NUL-terminated; holds the secret or a signed assertion */
	size_t body_len;
};

void oa_request_free(struct oa_request *r);

/* The Entra ID client credentials request for secret (JSON above). 0, or -1 with err. */
int oa_entra_request(const char *secret, struct oa_request *out, char *err, size_t cap);

/* The Google service account request: a JWT {iss: client_email, scope, aud: token_uri,
 * iat: now, exp: now + OA_JWT_LIFETIME} signed RS256 with private_key, exchanged with
 * grant_type urn:ietf:params:oauth:grant-type:jwt-bearer. 0, or -1 with err. */
int oa_google_request(const char *secret, const char *scope, time_t now, struct oa_request *out,
		      char *err, size_t cap);

/* The signed JWT alone ("header.claims.signature", base64url), new string or NULL with
 * err. For tests and the request above. */
char *oa_google_assertion(const char *secret, const char *scope, time_t now, char *err, size_t cap);

/* The web identity token file of an STS credential (a new string), or NULL with err. */
char *oa_sts_token_file(const char *secret, char *err, size_t cap);

/* The AssumeRoleWithWebIdentity request for secret with the web identity token's text.
 * 0, or -1 with err. */
int oa_sts_request(const char *secret, const char *web_token, struct oa_request *out, char *err, size_t cap);

/* STS's XML answer: *creds "ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN" (new string)
 * and *expires_in from its Expiration (ISO 8601, UTC) against now. 0, or -1 with err. */
int oa_parse_sts(const char *body, size_t len, time_t now, char **creds, long *expires_in, char *err,
		 size_t cap);

/* A token endpoint's JSON answer: *token (new string) and *expires_in (seconds; 3600
 * when the answer has none). 0, or -1 with err (no access_token, not JSON, too long). */
int oa_parse_token(const char *body, size_t len, char **token, long *expires_in, char *err, size_t cap);

/* A token obtained at now, valid for expires_in seconds: *refresh_at, when a new one is
 * fetched in the background (three quarters of its life), and *stale_at, when it is no
 * longer used (a tenth of its life, at most 60 s, before it expires). */
void oa_times(time_t now, long expires_in, time_t *refresh_at, time_t *stale_at);

#endif
