/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * A minimal harness for libshmk's tests: CHECK macros that print and exit,
 * a seeded PRNG (SHMK_TEST_SEED), a scale knob (SHMK_TEST_SCALE=small for
 * valgrind), per-process segment names, and helpers for child processes.
 * A test program exits 0 on success, 1 on failure, 77 when skipped.
 */
#ifndef SHMK_TEST_HARNESS_H
#define SHMK_TEST_HARNESS_H

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmk.h"

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n",	\
				__FILE__, __LINE__, #cond);		\
			test_fail();					\
		}							\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		long long _a = (long long)(a), _b = (long long)(b);	\
		if (_a != _b) {						\
			fprintf(stderr, "%s:%d: %s == %lld, expected %s"\
				" == %lld\n", __FILE__, __LINE__, #a, _a,	\
				#b, _b);				\
			test_fail();					\
		}							\
	} while (0)

#define CHECK_OK(expr)	CHECK_EQ((expr), 0)
#define CHECK_ERR(expr, err) CHECK_EQ((expr), -(err))
#define CHECK_NULL_ERRNO(expr, err)					\
	do {								\
		errno = 0;						\
		void *_p = (void *)(expr);				\
		if (_p || errno != (err)) {				\
			fprintf(stderr, "%s:%d: %s gave %p errno %d, "	\
				"expected NULL errno %d\n", __FILE__,	\
				__LINE__, #expr, _p, errno, (err));	\
			test_fail();					\
		}							\
	} while (0)

static char test_segment[64];
static int test_is_child;

static void test_cleanup(void)
{
	if (!test_is_child && test_segment[0])
		shmk_unlink(test_segment);
}

static inline __attribute__((noreturn)) void test_fail(void)
{
	if (!test_is_child)
		test_cleanup();
	_exit(1);
}

static inline void test_skip(const char *why)
{
	printf("SKIP: %s\n", why);
	test_cleanup();
	exit(77);
}

/* A name for this test run's segment; unlinked at exit. */
static inline const char *test_name(const char *tag)
{
	snprintf(test_segment, sizeof(test_segment), "t-%s-%d", tag,
		 (int)getpid());
	shmk_unlink(test_segment);
	atexit(test_cleanup);
	return test_segment;
}

static inline int test_small(void)
{
	const char *s = getenv("SHMK_TEST_SCALE");

	return s && !strcmp(s, "small");
}

static inline int test_under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p && strstr(p, "vgpreload");
}

/* xorshift64*: deterministic for a seed */
static uint64_t test_rng_state;

static inline uint64_t test_seed(void)
{
	const char *s = getenv("SHMK_TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0)
			  : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);

	test_rng_state = seed ? seed : 1;
	printf("seed %" PRIu64 "\n", seed);
	fflush(stdout);
	return seed;
}

static inline uint64_t rnd(void)
{
	uint64_t x = test_rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	test_rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static inline uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static inline struct shmk *test_open(const char *name, int flags,
				     size_t size, size_t max)
{
	struct shmk_opts o = { .size = size, .max_size = max };
	struct shmk *h = NULL;
	int r = shmk_open(name, flags, &o, &h);

	if (r) {
		fprintf(stderr, "shmk_open(%s, %#x): %s\n", name, flags,
			strerror(-r));
		test_fail();
	}
	return h;
}

/* Fork a child running fn(arg); returns its pid. */
static inline pid_t test_fork(int (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		test_fail();
	}
	if (pid == 0) {
		test_is_child = 1;
		/* A parent that fails does not leave its children running. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(3);
		_exit(fn(arg));
	}
	return pid;
}

/* Wait for a child; returns its exit status, or 128 + signal. */
static inline int test_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

/* Anonymous memory shared with forked children. */
static inline void *test_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

static inline void test_pass(const char *what)
{
	printf("ok: %s\n", what);
	fflush(stdout);
}

#endif /* SHMK_TEST_HARNESS_H */
