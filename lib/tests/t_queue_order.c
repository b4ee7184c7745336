/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Message queues under load: 8 sender processes send 10^6 messages each
 * (10^5 with ASan; 2 * 10^4 in the emulated test VM, where 10^5 took 3
 * minutes plain and 6 with ASan; 10^4 with SHMK_TEST_SCALE=small) to one
 * receiver, on a queue of 256 slots so that senders also wait for room. Every message
 * carries its sender and sequence number; the receiver requires each
 * sender's messages in order, none lost and none twice, then the heap back
 * to where it was (every buffer freed once).
 */
#include "harness.h"

#define NSEND	8

static const char *seg;

static long per_sender(void)
{
	if (test_small())
		return 10000;
	if (getenv("SHMK_VM"))
		return 20000;
#if defined(__SANITIZE_ADDRESS__)
	return 100000;
#else
	return 1000000;
#endif
}

static int sender(void *arg)
{
	int id = (int)(intptr_t)arg;
	long n = per_sender();
	struct shmk_queue *s;
	struct shmk *h;

	if (shmk_open(seg, 0, NULL, &h) ||
	    shmk_queue_open(h, "order", 0, NULL, &s))
		return 2;
	for (long i = 0; i < n; i++) {
		uint64_t *m = shmk_msg_alloc(h, 16 + (size_t)(i % 7) * 40);

		if (!m)
			return 3;
		m[0] = (uint64_t)id;
		m[1] = (uint64_t)i;
		if (shmk_send(s, m, (i & 1) ? 0 : SHMK_NONBLOCK)) {
			/* Full: wait for room. */
			if (shmk_send(s, m, 0))
				return 4;
		}
	}
	shmk_queue_close(s);
	shmk_close(h);
	return 0;
}

int main(void)
{
	struct shmk_queue_opts o = { .capacity = 256 };
	struct shmk_queue_stats qs;
	struct shmk_stats st;
	long n = per_sender(), next[NSEND] = { 0 };
	struct shmk_queue *r;
	struct timespec t0, t1;
	pid_t pids[NSEND];
	struct shmk *h;
	uint64_t base;

	test_seed();
	seg = test_name("qorder");
	h = test_open(seg, SHMK_CREATE, 4 << 20, 256 << 20);
	CHECK_OK(shmk_queue_open(h, "order", SHMK_QUEUE_RECV, &o, &r));
	CHECK_OK(shmk_stats(h, &st));
	base = st.live_allocs;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < NSEND; i++)
		pids[i] = test_fork(sender, (void *)(intptr_t)i);
	for (long k = 0; k < n * NSEND; k++) {
		uint64_t *m;
		size_t sz;

		CHECK_OK(shmk_recv(r, (void **)&m, &sz, 30000000000LL));
		if (m[0] >= NSEND || (long)m[1] != next[m[0]]) {
			fprintf(stderr, "from %llu: seq %llu, expected %ld\n",
				(unsigned long long)m[0],
				(unsigned long long)m[1],
				m[0] < NSEND ? next[m[0]] : -1L);
			test_fail();
		}
		CHECK_EQ(sz, 16 + (size_t)(m[1] % 7) * 40);
		next[m[0]]++;
		shmk_msg_free(h, m);
	}
	for (int i = 0; i < NSEND; i++)
		CHECK_EQ(test_wait(pids[i]), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	{
		void *m;
		size_t sz;

		CHECK_ERR(shmk_recv(r, &m, &sz, 0), EAGAIN);
	}
	CHECK_OK(shmk_queue_stats(r, &qs));
	CHECK_EQ(qs.sent, n * NSEND);
	CHECK_EQ(qs.received, n * NSEND);
	CHECK_EQ(qs.queued, 0);
	CHECK(qs.high_water <= 256);
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.live_allocs, base);
	CHECK_OK(shmk_check(h));
	printf("%d senders x %ld messages in %.2f s; high water %llu, "
	       "%llu sends slept\n", NSEND, n,
	       (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (unsigned long long)qs.high_water,
	       (unsigned long long)qs.senders_blocked);
	shmk_queue_close(r);
	CHECK_OK(shmk_close(h));
	test_pass("queue order");
	return 0;
}
