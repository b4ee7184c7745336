/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Statistics are not starved by a storm of writers: two processes allocate
 * and free small blocks as fast as they can, so that the sequence counter
 * is odd nearly all the time (and now and then for a whole time slice,
 * when a writer is preempted inside a transaction), while a read-only
 * client takes snapshots. shmk_stats() copies what the last commit
 * published, so each must succeed within a few attempts, never sleeping
 * (it used to wait for a gap between transactions: hundreds of attempts,
 * up to 36 ms, for one snapshot), and every snapshot must add up. Lookups
 * and checks go on meanwhile.
 */
#include "internal.h"
#include "harness.h"

#define NSTORM		2
#define MAX_ATTEMPTS	64	/* a copy overtaken by publishers 64 times */

struct shared {
	volatile int stop, ready;
	volatile long ops;
};

static const char *seg;
static struct shared *sh;

static int storm(void *arg)
{
	void *p[64] = { 0 };
	struct shmk *h;
	long n = 0;

	(void)arg;
	test_rng_state ^= (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	__atomic_fetch_add(&sh->ready, 1, __ATOMIC_SEQ_CST);
	while (!sh->stop) {
		unsigned int i = (unsigned int)rnd_below(64);

		if (p[i]) {
			shmk_free(h, p[i]);
			p[i] = NULL;
		} else if (!(p[i] = shmk_alloc(h, 16 + rnd_below(2000)))) {
			return 3;
		}
		n++;
	}
	__atomic_fetch_add(&sh->ops, n, __ATOMIC_RELAXED);
	for (unsigned int i = 0; i < 64; i++)
		shmk_free(h, p[i]);
	return shmk_close(h) ? 4 : 0;
}

int main(void)
{
	const long snaps = test_small() ? 500 : 20000;
	unsigned int worst = 0;
	struct shmk_stats st;
	struct shmk *h, *r;
	pid_t pid[NSTORM];

	test_seed();
	seg = test_name("storm");
	sh = test_shared(sizeof(*sh));
	h = test_open(seg, SHMK_CREATE, 1 << 20, 64 << 20);
	CHECK(shmk_find_or_alloc(h, "named", 100, NULL));
	CHECK_OK(shmk_open(seg, SHMK_RDONLY, NULL, &r));
	for (int i = 0; i < NSTORM; i++)
		pid[i] = test_fork(storm, NULL);
	while (sh->ready < NSTORM)
		usleep(1000);
	for (long k = 0; k < snaps; k++) {
		CHECK_OK(shmk_stats(r, &st));
		if (shmk__read_attempts > worst)
			worst = shmk__read_attempts;
		CHECK_EQ(st.total_size, st.heap_size + SHMK_HEAP_START);
		CHECK_EQ(st.named_objects, 1);
		CHECK(st.used_bytes + st.free_bytes + st.cached_bytes <
		      st.heap_size);
		CHECK(st.live_allocs <= NSTORM * 64);
		CHECK(shmk_find(r, "named", NULL));
		if (k % 1000 == 0)
			CHECK_OK(shmk_check(r));
	}
	sh->stop = 1;
	for (int i = 0; i < NSTORM; i++)
		CHECK_EQ(test_wait(pid[i]), 0);
	printf("%ld snapshots during %ld operations: at most %u attempts\n",
	       snaps, sh->ops, worst);
	fflush(stdout);
	CHECK(worst <= MAX_ATTEMPTS);
	CHECK_OK(shmk_stats(r, &st));
	CHECK_EQ(st.live_allocs, 0);
	CHECK_OK(shmk_close(r));
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_close(h));
	test_pass("storm");
	return 0;
}
