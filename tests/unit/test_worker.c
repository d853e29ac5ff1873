/*
 * Worker start and stop: the server runs every worker-exit hook it was given on each
 * worker thread, and the per-worker state the stages keep (the verified-token cache) is
 * freed there. Two workers each verify a JWT over real SPOP connections, so each fills its
 * own cache; then the server drains and stops. Under ASan (make check) LeakSanitizer
 * fails this binary if a worker's cache outlives its thread.
 */
#include "authz/ident.h"
#include "config/config.h"
#include "jwt/jwt.h"
#include "net/server.h"
#include "pipeline/pipeline.h"
#include "spop/spop.h"
#include "state/state.h"
#include "util/log.h"

#include "fixtures.h"
#include "jwt_fixtures.h"
#include "testlib.h"
#include "spop_client.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define ISS "https://idp.example"
#define WORKERS 2

static const uint8_t SECRET[32] = "0123456789abcdef0123456789abcdef";
static struct event_base *base;
static struct server *srv;
static pthread_t control_thread;
static atomic_int exits, drained;

static void *control_main(void *arg)
{
	(void)arg;
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* Tenant "acme" (1) with demo-model, an HS256 issuer bound to it whose tokens get the
 * role "user" (chat on every model). */
static void load(void)
{
	struct state *s = state_new();
	struct ident *id = state_ident(s);
	struct st_tenant acme = { 1, "acme", ST_ACTIVE };
	struct st_model m = { .id = 1, .name = "demo-model", .backend = "be_mock" };
	struct id_perm perms[2];
	struct id_role role;
	struct id_issuer is;

	m.services = FX_SERVICES_ALL;
	state_put_tenant(s, &acme);
	state_put_model(s, &m);
	ident_put_tenant_name(id, 1, "acme");
	memset(&is, 0, sizeof(is));
	is.id = 1;
	snprintf(is.name, sizeof(is.name), "corp");
	snprintf(is.iss, sizeof(is.iss), ISS);
	is.algs = 1u << JWT_HS256;
	is.require_exp = 1;
	is.tenant_id = 1;
	snprintf(is.default_roles[0], sizeof(is.default_roles[0]), "user");
	is.ndefault_roles = 1;
	is.enabled = 1;
	ident_put_issuer(id, &is);
	CHECK_EQ_INT(fxj_put_secret(id, 1, 1, SECRET, sizeof(SECRET), "h1"), 0);
	memset(&role, 0, sizeof(role));
	role.id = 100;
	snprintf(role.name, sizeof(role.name), "user");
	role.perms = perms;
	CHECK_EQ_INT(ident_perm_parse("service:chat", 12, 0, &perms[role.nperms++]), 0);
	CHECK_EQ_INT(ident_perm_parse("model:*", 7, 0, &perms[role.nperms++]), 0);
	ident_put_role(id, &role);
	store_replace(s);
	store_set_db_online(1);
}

/* "Bearer " + a token of the issuer, valid for an hour from now (the server's clock). */
static char *bearer(const char *sub)
{
	char hdr[160], payload[256], *tok, *out;
	long long now = (long long)time(NULL);

	fxj_header(hdr, sizeof(hdr), "HS256", "h1");
	snprintf(payload, sizeof(payload), "{\"iss\":\"" ISS "\",\"sub\":\"%s\",\"exp\":%lld,\"iat\":%lld}",
		 sub, now + 3600, now - 10);
	tok = fxj_sign(hdr, payload, "HS256", NULL, SECRET, sizeof(SECRET));
	out = malloc(strlen(tok) + 8);
	sprintf(out, "Bearer %s", tok);
	free(tok);
	return out;
}

static void count_exit(void *arg)
{
	(void)arg;
	atomic_fetch_add(&exits, 1);
}

static void on_drained(void *arg)
{
	(void)arg;
	atomic_store(&drained, 1);
}

/* One connection per worker (the hand-off is round robin); each decides on a token. */
static void test_tokens_on_every_worker(void)
{
	int fd[WORKERS];
	uint8_t buf[16384];
	struct spop_frame f;

	for (int i = 0; i < WORKERS; i++)
		fd[i] = ready_client(16380);
	for (int i = 0; i < WORKERS; i++) {
		char sub[32], *auth;
		snprintf(sub, sizeof(sub), "user-%d", i);
		auth = bearer(sub);
		send_all(fd[i], buf, notify_frame_auth(buf, sizeof(buf), 1, 1, SPOP_FLAG_FIN, auth, "demo-model"));
		free(auth);
		CHECK_EQ_INT(recv_frame(fd[i], buf, sizeof(buf), &f), 0);
		CHECK_EQ_INT(f.type, SPOP_FRAME_ACK);
		CHECK(fx_contains(f.payload, f.payload_len, "allow")); /* the token was verified */
	}
	for (int i = 0; i < WORKERS; i++)
		close(fd[i]);
}

/* Drain and stop: each worker runs both hooks once as it exits. */
static void test_stop_runs_every_hook(void)
{
	server_drain(srv, 400, on_drained, NULL);
	for (int i = 0; i < 300 && !atomic_load(&drained); i++)
		usleep(10000);
	event_base_loopexit(base, NULL);
	pthread_join(control_thread, NULL);
	server_free(srv);
	CHECK(atomic_load(&drained));
	CHECK_EQ_INT(atomic_load(&exits), WORKERS);
}

int main(void)
{
	struct server_exit_hooks hooks = { 0 };
	struct jr_config cfg;
	char err[256];

	log_set_level(LOG_ERROR);
	config_defaults(&cfg);
	snprintf(cfg.listen, sizeof(cfg.listen), "127.0.0.1:0");
	cfg.workers = WORKERS;
	evthread_use_pthreads();
	base = event_base_new();
	store_init();
	load();
	CHECK_EQ_INT(server_exit_hooks_add(&hooks, pl_worker_exit, NULL), 0);
	CHECK_EQ_INT(server_exit_hooks_add(&hooks, count_exit, NULL), 0);
	srv = server_start(base, &cfg, &hooks, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "server_start: %s\n", err);
		return 1;
	}
	port = server_port(srv);
	pthread_create(&control_thread, NULL, control_main, NULL);
	RUN(test_tokens_on_every_worker);
	RUN(test_stop_runs_every_hook);
	store_destroy();
	event_base_free(base);
	TEST_END();
}
