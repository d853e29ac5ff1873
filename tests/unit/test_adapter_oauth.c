/* Credentials exchanged for access tokens (oauth.h): the Entra ID client credentials
 * request, the Google service account's RS256 JWT assertion (verified here with the
 * key's public half), the token endpoint's answer, the refresh and stale times; and the
 * provider entries that take tokens (Azure with Entra ID, Gemini and Anthropic on Vertex
 * AI): URLs, bodies and the Authorization header. */
#include "testlib.h"

#include "oauth.h"
#include "provider.h"
#include "route.h"
#include "test_adapter_helpers.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

static void entra_request(void)
{
	struct oa_request r;
	char err[160];

	CHECK_EQ_INT(oa_entra_request("{\"tenant_id\":\"contoso\",\"client_id\":\"app 1\",\"client_secret\":\"s&=+\"}", &r,
				      err, sizeof(err)), 0);
	CHECK_EQ_STR(r.url, "https://login.microsoftonline.com/contoso/oauth2/v2.0/token");
	CHECK_EQ_STR(r.body, "grant_type=client_credentials&client_id=app%201&client_secret=s%26%3D%2B"
			     "&scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default");
	CHECK_EQ_INT(r.body_len, strlen(r.body));
	oa_request_free(&r);
	CHECK(r.body == NULL);

	/* A sovereign cloud's authority host and an explicit scope. */
	CHECK_EQ_INT(oa_entra_request("{\"tenant_id\":\"t\",\"client_id\":\"c\",\"client_secret\":\"s\","
				      "\"authority_host\":\"https://login.microsoftonline.us/\",\"scope\":\"x/.default\"}",
				      &r, err, sizeof(err)), 0);
	CHECK_EQ_STR(r.url, "https://login.microsoftonline.us/t/oauth2/v2.0/token");
	CHECK(strstr(r.body, "&scope=x%2F.default") != NULL);
	oa_request_free(&r);

	/* Missing fields, a tenant that would change the path, a bad host, not JSON. */
	CHECK_EQ_INT(oa_entra_request("{\"tenant_id\":\"t\",\"client_id\":\"c\"}", &r, err, sizeof(err)), -1);
	CHECK(strstr(err, "client_secret") != NULL);
	CHECK_EQ_INT(oa_entra_request("{\"tenant_id\":\"t/../x\",\"client_id\":\"c\",\"client_secret\":\"s\"}", &r, err,
				      sizeof(err)), -1);
	CHECK_EQ_INT(oa_entra_request("{\"tenant_id\":\"t\",\"client_id\":\"c\",\"client_secret\":\"s\","
				      "\"authority_host\":\"ftp://x\"}", &r, err, sizeof(err)), -1);
	CHECK_EQ_INT(oa_entra_request("plain-api-key", &r, err, sizeof(err)), -1);
	CHECK_EQ_INT(oa_entra_request(NULL, &r, err, sizeof(err)), -1);
}

/* A fresh RSA key as PEM (PKCS#8, as Google's key files hold it); new string. */
static char *rsa_pem(EVP_PKEY **key)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *pem;
	long n;

	*key = EVP_RSA_gen(2048);
	PEM_write_bio_PrivateKey(b, *key, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &data);
	pem = strndup(data, (size_t)n);
	BIO_free(b);
	return pem;
}

/* base64url (no padding) -> bytes; the length, or -1. */
static int b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
	char buf[2048];
	size_t len = 0;
	int m;

	if (n + 3 >= sizeof(buf) || cap < (n + 3) / 4 * 3)
		return -1;
	for (size_t i = 0; i < n; i++)
		buf[len++] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (len % 4)
		buf[len++] = '=';
	m = EVP_DecodeBlock(out, (const unsigned char *)buf, (int)len);
	if (m < 0)
		return -1;
	return m - (n % 4 == 2 ? 2 : n % 4 == 3 ? 1 : 0);
}

static json_t *jwt_part(const char *s, size_t n)
{
	unsigned char buf[1024];
	int m = b64url_decode(s, n, buf, sizeof(buf) - 1);

	return m < 0 ? NULL : json_loadb((const char *)buf, (size_t)m, 0, NULL);
}

static int verify_rs256(EVP_PKEY *key, const char *text, size_t n, const char *sig64, size_t sn)
{
	unsigned char sig[512];
	int m = b64url_decode(sig64, sn, sig, sizeof(sig));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = m > 0 && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		 EVP_DigestVerify(md, sig, (size_t)m, (const unsigned char *)text, n) == 1;

	EVP_MD_CTX_free(md);
	return ok;
}

static char *service_account(const char *pem)
{
	json_t *sa = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", "service_account", "project_id", "p1",
			       "private_key_id", "kid-1", "private_key", pem, "client_email",
			       "sa@p1.iam.gserviceaccount.com", "token_uri", "https://oauth2.googleapis.com/token");
	char *s = json_dumps(sa, JSON_COMPACT);

	json_decref(sa);
	return s;
}

static void google_assertion(void)
{
	EVP_PKEY *key, *other;
	char *pem = rsa_pem(&key), *pem2 = rsa_pem(&other), *sa = service_account(pem), *jwt, err[160];
	const char *d1, *d2;
	json_t *head, *claims;
	struct oa_request r;

	jwt = oa_google_assertion(sa, "https://www.googleapis.com/auth/cloud-platform", 1700000000, err, sizeof(err));
	CHECK(jwt != NULL);
	d1 = jwt ? strchr(jwt, '.') : NULL;
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	CHECK(d2 != NULL);
	if (!d2) {
		free(jwt);
		return;
	}
	head = jwt_part(jwt, (size_t)(d1 - jwt));
	claims = jwt_part(d1 + 1, (size_t)(d2 - d1 - 1));
	CHECK(PEQ(head, "", "{\"alg\":\"RS256\",\"kid\":\"kid-1\",\"typ\":\"JWT\"}"));
	CHECK(PEQ(claims, "", "{\"aud\":\"https://oauth2.googleapis.com/token\",\"exp\":1700003600,\"iat\":1700000000,"
			      "\"iss\":\"sa@p1.iam.gserviceaccount.com\",\"scope\":\"https://www.googleapis.com/auth/cloud-platform\"}"));
	/* The signature verifies with the key's public half, not with another key's. */
	CHECK(verify_rs256(key, jwt, (size_t)(d2 - jwt), d2 + 1, strlen(d2 + 1)));
	CHECK(!verify_rs256(other, jwt, (size_t)(d2 - jwt), d2 + 1, strlen(d2 + 1)));
	json_decref(head);
	json_decref(claims);

	/* The token request carries it as the jwt-bearer grant's assertion. */
	CHECK_EQ_INT(oa_google_request(sa, "scope", 1700000000, &r, err, sizeof(err)), 0);
	CHECK_EQ_STR(r.url, "https://oauth2.googleapis.com/token");
	CHECK(strncmp(r.body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=ey", 77) == 0);
	oa_request_free(&r);
	free(jwt);

	/* A key that is not RSA PEM, a missing token_uri. */
	free(sa);
	sa = service_account("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
	CHECK(oa_google_assertion(sa, "s", 0, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "private_key") != NULL);
	CHECK(oa_google_assertion("{\"client_email\":\"a\",\"private_key\":\"k\"}", "s", 0, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "token_uri") != NULL);
	CHECK_EQ_INT(oa_google_request("ya29.token", "s", 0, &r, err, sizeof(err)), -1);
	free(sa);
	free(pem);
	free(pem2);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

static void token_answers(void)
{
	const char *ok = "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,\"access_token\":\"eyJ0eXAi\"}";
	char *token, err[128];
	long ttl;

	CHECK_EQ_INT(oa_parse_token(ok, strlen(ok), &token, &ttl, err, sizeof(err)), 0);
	CHECK_EQ_STR(token, "eyJ0eXAi");
	CHECK_EQ_INT(ttl, 3599);
	free(token);
	ok = "{\"access_token\":\"ya29.c\",\"expires_in\":\"120\"}";
	CHECK_EQ_INT(oa_parse_token(ok, strlen(ok), &token, &ttl, err, sizeof(err)), 0);
	CHECK_EQ_INT(ttl, 120);
	free(token);
	ok = "{\"access_token\":\"t\"}";
	CHECK_EQ_INT(oa_parse_token(ok, strlen(ok), &token, &ttl, err, sizeof(err)), 0);
	CHECK_EQ_INT(ttl, 3600);
	free(token);
	/* No token, an empty one, one that would split a header, not JSON. */
	CHECK_EQ_INT(oa_parse_token("{\"error\":\"invalid_client\"}", 26, &token, &ttl, err, sizeof(err)), -1);
	CHECK(token == NULL);
	CHECK_EQ_INT(oa_parse_token("{\"access_token\":\"\"}", 19, &token, &ttl, err, sizeof(err)), -1);
	CHECK_EQ_INT(oa_parse_token("{\"access_token\":\"a\\r\\nX: y\"}", 27, &token, &ttl, err, sizeof(err)), -1);
	CHECK_EQ_INT(oa_parse_token("<html>", 6, &token, &ttl, err, sizeof(err)), -1);
}

static void token_times(void)
{
	time_t refresh, stale;

	oa_times(1000, 3600, &refresh, &stale);
	CHECK_EQ_INT(refresh, 1000 + 2700);
	CHECK_EQ_INT(stale, 1000 + 3540);
	oa_times(0, 300, &refresh, &stale);
	CHECK_EQ_INT(refresh, 225);
	CHECK_EQ_INT(stale, 270);
	oa_times(0, 8, &refresh, &stale);
	CHECK_EQ_INT(refresh, 6);
	CHECK_EQ_INT(stale, 8);
	CHECK_EQ_INT(oa_grant_of(" {\"a\":1}", OA_GOOGLE), OA_GOOGLE);
	CHECK_EQ_INT(oa_grant_of("sk-123", OA_ENTRA), OA_NONE);
	CHECK_EQ_INT(oa_grant_of(NULL, OA_ENTRA), OA_NONE);
}

static void token_providers(void)
{
	json_t *req = J("{\"model\":\"pub\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"),
	       *body;
	const char *base = "u=https%3A%2F%2Fus-east5-aiplatform.googleapis.com%2Fv1%2Fprojects%2Fp1%2Flocations%2Fus-east5";
	struct ad_route r;
	struct up_request u;
	struct xl_error e;
	char h[512], err[64];

	snprintf(h, sizeof(h), "p=vertex_anthropic&%s&m=claude-3-5-haiku%%4020241022", base);
	CHECK_EQ_INT(route_parse(h, strlen(h), &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(prov_grant(&r, "{\"type\":\"service_account\"}"), OA_GOOGLE);
	CHECK_EQ_INT(prov_grant(&r, "ya29.ready-token"), OA_NONE);
	CHECK_EQ_INT(up_build_token(&r, "/v1/chat/completions", req, "ya29.t", 0, &u, &e), 0);
	CHECK_EQ_STR(u.url, "https://us-east5-aiplatform.googleapis.com/v1/projects/p1/locations/us-east5"
			    "/publishers/anthropic/models/claude-3-5-haiku%4020241022:rawPredict");
	CHECK_EQ_STR(u.headers[0], "Authorization: Bearer ya29.t");
	body = J(u.body);
	CHECK_EQ_STR(PS(body, "anthropic_version"), "vertex-2023-10-16");
	CHECK(P(body, "model") == NULL);
	CHECK_EQ_INT(PI(body, "max_tokens"), 64);
	json_decref(body);
	up_free(&u);
	/* A token minted elsewhere is used as it is. */
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "ya29.ready", 0, &u, &e), 0);
	CHECK_EQ_STR(u.headers[0], "Authorization: Bearer ya29.ready");
	up_free(&u);

	snprintf(h, sizeof(h), "p=vertex_gemini&%s&m=gemini-2.0-flash", base);
	route_parse(h, strlen(h), &r, err, sizeof(err));
	json_object_set_new(req, "stream", json_true());
	CHECK_EQ_INT(up_build_token(&r, "/v1/chat/completions", req, "ya29.t", 0, &u, &e), 0);
	CHECK(strstr(u.url, "/locations/us-east5/publishers/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse"));
	CHECK_EQ_STR(u.headers[0], "Authorization: Bearer ya29.t");
	body = J(u.body);
	CHECK_EQ_STR(PS(body, "contents.0.parts.0.text"), "hi");
	json_decref(body);
	up_free(&u);
	CHECK_EQ_INT(up_build_token(&r, "/v1/embeddings", req, "ya29.t", 0, &u, &e), -1);
	CHECK_EQ_INT(e.status, 400);

	/* Azure: an Entra ID token replaces the api-key header. */
	route_parse("p=azure_openai&u=https%3A%2F%2Fres.openai.azure.com&m=dep", 57, &r, err, sizeof(err));
	CHECK_EQ_INT(prov_grant(&r, "{\"tenant_id\":\"t\"}"), OA_ENTRA);
	CHECK_EQ_INT(prov_grant(&r, "azure-api-key"), OA_NONE);
	CHECK_EQ_INT(up_build_token(&r, "/v1/chat/completions", req, "eyJ0", 0, &u, &e), 0);
	CHECK_EQ_STR(u.headers[0], "Authorization: Bearer eyJ0");
	CHECK_EQ_INT(header_count(&u, "api-key:", 1), 0);
	up_free(&u);
	/* Providers without a grant never exchange. */
	route_parse("p=anthropic&m=c", 15, &r, err, sizeof(err));
	CHECK_EQ_INT(prov_grant(&r, "{\"a\":1}"), OA_NONE);
	json_decref(req);
}


/* AWS's documented AssumeRoleWithWebIdentity answer (the STS API reference's example). */
static const char *STS_EXAMPLE =
	"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
	"  <AssumeRoleWithWebIdentityResult>\n"
	"    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A</SubjectFromWebIdentityToken>\n"
	"    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>\n"
	"    <AssumedRoleUser>\n"
	"      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>\n"
	"      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>\n"
	"    </AssumedRoleUser>\n"
	"    <Credentials>\n"
	"      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>\n"
	"      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
	"      <Expiration>2014-10-24T23:00:23Z</Expiration>\n"
	"      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
	"    </Credentials>\n"
	"    <SourceIdentity>SourceIdentityValue</SourceIdentity>\n"
	"    <Provider>www.amazon.com</Provider>\n"
	"  </AssumeRoleWithWebIdentityResult>\n"
	"  <ResponseMetadata>\n"
	"    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\n"
	"  </ResponseMetadata>\n"
	"</AssumeRoleWithWebIdentityResponse>\n";

static void sts_web_identity(void)
{
	const char *cred = "{\"role_arn\":\"arn:aws:iam::123456789012:role/FederatedWebIdentityRole\","
			   "\"web_identity_token_file\":\"/var/run/secrets/eks.amazonaws.com/serviceaccount/token\"}";
	struct oa_request r;
	char *creds, *path, err[160];
	long ttl;

	path = oa_sts_token_file(cred, err, sizeof(err));
	CHECK_EQ_STR(path ? path : "(null)", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token");
	free(path);
	CHECK(oa_sts_token_file("{\"role_arn\":\"a\",\"web_identity_token_file\":\"relative\"}", err, sizeof(err)) == NULL);
	CHECK(oa_sts_token_file("{\"web_identity_token_file\":\"/t\"}", err, sizeof(err)) == NULL);
	CHECK_EQ_INT(oa_sts_request(cred, "eyJ.a+b.c", &r, err, sizeof(err)), 0);
	CHECK_EQ_STR(r.url, "https://sts.amazonaws.com");
	CHECK_EQ_STR(r.body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A"
			     "123456789012%3Arole%2FFederatedWebIdentityRole&RoleSessionName=jairouter"
			     "&WebIdentityToken=eyJ.a%2Bb.c");
	oa_request_free(&r);

	/* 2014-10-24T23:00:23Z is 1414191623: an hour before it, 3600 s left. */
	CHECK_EQ_INT(oa_parse_sts(STS_EXAMPLE, strlen(STS_EXAMPLE), 1414191623 - 3600, &creds, &ttl, err, sizeof(err)), 0);
	CHECK_EQ_STR(creds ? creds : err, "ASgeIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY:"
					  "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE");
	CHECK_EQ_INT(ttl, 3600);
	free(creds);
	/* An error answer, a cut answer. */
	CHECK_EQ_INT(oa_parse_sts("<ErrorResponse><Error><Code>InvalidIdentityToken</Code></Error></ErrorResponse>", 78,
				  0, &creds, &ttl, err, sizeof(err)), -1);
	CHECK(creds == NULL);
	CHECK_EQ_INT(oa_parse_sts(STS_EXAMPLE, 700, 0, &creds, &ttl, err, sizeof(err)), -1);
	CHECK_EQ_INT(oa_grant_is_bearer(OA_STS), 0);
	CHECK_EQ_INT(oa_grant_is_bearer(OA_GOOGLE), 1);
}

/* Temporary credentials (STS, or given as they are): the session token is sent and signed. */
static void bedrock_session_token(void)
{
	json_t *req = J("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	const char *h = "p=bedrock&r=eu-west-1&m=anthropic.claude-3-haiku-20240307-v1%3A0";
	struct ad_route r;
	struct up_request u;
	struct xl_error e;
	char err[64];
	int auth = 0, token = 0;

	CHECK_EQ_INT(route_parse(h, strlen(h), &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(prov_grant(&r, "{\"role_arn\":\"x\"}"), OA_STS);
	CHECK_EQ_INT(prov_grant(&r, "ASIAX:secret:FwoGZX"), OA_NONE);
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "ASIAX:secret:FwoGZXIvYXdzEJr", 1440938160, &u, &e), 0);
	for (size_t i = 0; i < u.nheaders; i++) {
		auth += strstr(u.headers[i], "Credential=ASIAX/20150830/eu-west-1/bedrock/aws4_request, "
					     "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=") != NULL;
		token += strcmp(u.headers[i], "X-Amz-Security-Token: FwoGZXIvYXdzEJr") == 0;
	}
	CHECK_EQ_INT(auth, 1);
	CHECK_EQ_INT(token, 1);
	up_free(&u);
	json_decref(req);
}

int main(void)
{
	RUN(entra_request);
	RUN(google_assertion);
	RUN(token_answers);
	RUN(token_times);
	RUN(token_providers);
	RUN(sts_web_identity);
	RUN(bedrock_session_token);
	TEST_END();
}
