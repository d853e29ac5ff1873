/*
 * testlib: the smallest harness that does the job. Each test binary defines test
 * functions, lists them in main() with RUN(), and ends with TEST_END(), which prints
 * "N passed, N failed" (scripts/test sums these lines) and sets the exit status.
 * A CHECK failure reports file:line and marks the current test failed; the test goes on
 * so one run shows every broken expectation.
 */
#ifndef JR_TESTLIB_H
#define JR_TESTLIB_H

#include <stdio.h>
#include <string.h>

static int tl_passed, tl_failed, tl_cur_failed;
static const char *tl_cur_name;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "  FAIL %s: %s:%d: %s\n", tl_cur_name, __FILE__,     \
				__LINE__, #cond);                                              \
			tl_cur_failed = 1;                                             \
		}                                                                      \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                             \
	do {                                                                           \
		long long tl_a = (long long)(a), tl_b = (long long)(b);                \
		if (tl_a != tl_b) {                                                    \
			fprintf(stderr, "  FAIL %s: %s:%d: %s == %s (%lld != %lld)\n",      \
				tl_cur_name, __FILE__, __LINE__, #a, #b, tl_a, tl_b);          \
			tl_cur_failed = 1;                                             \
		}                                                                      \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                             \
	do {                                                                           \
		const char *tl_a = (a), *tl_b = (b);                                   \
		if (!tl_a || !tl_b || strcmp(tl_a, tl_b) != 0) {                       \
			fprintf(stderr, "  FAIL %s: %s:%d: %s == %s (\"%s\" != \"%s\")\n",  \
				tl_cur_name, __FILE__, __LINE__, #a, #b,                       \
				tl_a ? tl_a : "(null)", tl_b ? tl_b : "(null)");              \
			tl_cur_failed = 1;                                             \
		}                                                                      \
	} while (0)

#define RUN(fn)                                                                        \
	do {                                                                           \
		tl_cur_name = #fn;                                                     \
		tl_cur_failed = 0;                                                     \
		fn();                                                                  \
		if (tl_cur_failed)                                                     \
			tl_failed++;                                                   \
		else                                                                   \
			tl_passed++;                                                   \
		printf("%s %s\n", tl_cur_failed ? "not ok" : "ok", #fn);               \
	} while (0)

#define TEST_END()                                                                     \
	do {                                                                           \
		printf("%d passed, %d failed\n", tl_passed, tl_failed);                \
		return tl_failed ? 1 : 0;                                              \
	} while (0)

#endif /* JR_TESTLIB_H */
