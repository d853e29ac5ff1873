/*
 * Fuzz target: a NOTIFY payload through the whole decision path, exactly as a worker
 * runs it: decode the `jairouter-request` message, run every stage against a small
 * catalogue, encode the ACK at a large and at the smallest frame size. Any crash,
 * sanitizer report, or an ACK that does not decode back is a bug.
 */
#include "auth/apikey.h"
#include "pipeline/pipeline.h"
#include "spop/spop.h"
#include "state/state.h"

#include "../unit/fixtures.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define KEY "jr-2222222222222222222222222222222222222222222222222222222222222222"

static void on_done(struct pl_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
}

static void check_ack(const struct pl_verdict *v, uint32_t max_frame)
{
	uint8_t buf[2048];
	struct spop_frame f;
	uint32_t len;
	int n = pl_ack_encode(v, 1, 2, buf, sizeof(buf), max_frame);

	if (n < 0)
		__builtin_trap(); /* every verdict must fit even the smallest frame */
	if (spop_frame_length(buf, (size_t)n, max_frame, &len) != 4 || len + 4 != (uint32_t)n ||
	    spop_frame_decode(buf + 4, len, &f) != 0 || f.type != SPOP_FRAME_ACK)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct pl_ctx ctx;
	struct pl_policy pol = { 0, 1700000000 };

	if (!ready) {
		store_init();
		fx_load_one_of_each(KEY);
		ready = 1;
	}
	pl_ctx_init(&ctx, &pol);
	if (pl_request_decode(&ctx, data, size) == PL_DECODE_OK) {
		pl_start(&ctx, pl_default_stages, pl_default_nstages, on_done, on_done, NULL);
		check_ack(&ctx.out, 16380);
		check_ack(&ctx.out, 256);
	}
	pl_ctx_clear(&ctx);
	return 0;
}
