/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Message queues, one behaviour at a time: the receiver gets the very
 * offset the sender wrote; one receiver per queue; timeouts; full queues
 * with and without SHMK_NONBLOCK; a sender asleep on a full queue woken by
 * the receiver in another process, and a receiver asleep woken by a sender
 * in another process; -ECONNRESET when the receiver died, its successor
 * keeping what was queued; SHMK_QUEUE_RECLAIM; broadcast freed exactly
 * once; senders as threads; busy polling; bad arguments; a receiver
 * closed only by the thread that opened it, and shmk_close() refused
 * while a receiver queue is open.
 */
#include <pthread.h>

#include "internal.h"
#include "harness.h"

static const char *seg;

static uint64_t live(struct shmk *h)
{
	struct shmk_stats st;

	CHECK_OK(shmk_stats(h, &st));
	return st.live_allocs;
}

static uint64_t elapsed_ns(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (uint64_t)(b.tv_sec - a->tv_sec) * 1000000000ULL +
	       (uint64_t)(b.tv_nsec - a->tv_nsec);
}

static struct shmk_queue *open_q(struct shmk *h, const char *name, int flags,
				 uint32_t cap)
{
	struct shmk_queue_opts o = { .capacity = cap };
	struct shmk_queue *q = NULL;

	CHECK_OK(shmk_queue_open(h, name, flags, &o, &q));
	CHECK(q != NULL);
	return q;
}

static void test_basic(struct shmk *h)
{
	struct shmk_queue *r, *s, *r2 = (void *)1;
	struct shmk_queue_stats st;
	struct timespec t0;
	uint64_t base = live(h);
	void *m, *got;
	size_t sz;

	CHECK_ERR(shmk_queue_open(h, "basic", 0, NULL, &s), ENOENT);
	CHECK(s == NULL);
	r = open_q(h, "basic", SHMK_QUEUE_RECV, 0);
	CHECK_ERR(shmk_queue_open(h, "basic", SHMK_QUEUE_RECV, NULL, &r2),
		  EADDRINUSE);
	CHECK(r2 == NULL);
	s = open_q(h, "basic", 0, 0);
	CHECK_OK(shmk_queue_stats(s, &st));
	CHECK_EQ(st.capacity, 1024);
	CHECK_EQ(st.queued, 0);
	CHECK_EQ(st.receiver_pid, getpid());

	/* Empty: -EAGAIN at once, -ETIMEDOUT after the timeout. */
	CHECK_ERR(shmk_recv(r, &got, &sz, 0), EAGAIN);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_ERR(shmk_recv(r, &got, &sz, 20000000), ETIMEDOUT);
	CHECK(elapsed_ns(&t0) >= 20000000);
	CHECK(elapsed_ns(&t0) < 2000000000ULL);

	/* The very offset, the size asked for; a message of 3 MiB too. */
	for (size_t n = 0; n < 4; n++) {
		size_t want = n == 3 ? (3u << 20) : n * 100;

		m = shmk_msg_alloc(h, want);
		CHECK(m != NULL);
		memset(m, (int)n, want);
		CHECK_OK(shmk_send(s, m, 0));
		CHECK_OK(shmk_recv(r, &got, &sz, -1));
		CHECK(got == m);
		CHECK_EQ(shmk_off(h, got), shmk_off(h, m));
		CHECK_EQ(sz, want);
		shmk_msg_free(h, got);
	}
	CHECK_OK(shmk_queue_stats(s, &st));
	CHECK_EQ(st.sent, 4);
	CHECK_EQ(st.received, 4);
	CHECK_EQ(st.queued, 0);
	CHECK_EQ(live(h), base);	/* the queue is a named object */

	/* Not a message: refused, and the caller keeps it. */
	m = shmk_alloc(h, 64);
	CHECK_ERR(shmk_send(s, m, 0), EINVAL);
	shmk_free(h, m);
	m = shmk_msg_alloc(h, 8);
	CHECK_ERR(shmk_send(s, m, 4), EINVAL);
	CHECK_ERR(shmk_send(s, (char *)m + 16, 0), EINVAL);
	CHECK_ERR(shmk_send(NULL, m, 0), EINVAL);
	CHECK_ERR(shmk_recv(s, &got, &sz, 0), EINVAL);	/* a sender */
	shmk_msg_free(h, m);
	shmk_msg_free(h, m);		/* a second free is ignored */
	shmk_msg_free(h, NULL);
	CHECK_NULL_ERRNO(shmk_msg_alloc(NULL, 8), EINVAL);
	{
		struct shmk_queue_opts bad = { .capacity = 1000 };
		struct shmk_queue *x;

		CHECK_ERR(shmk_queue_open(h, "basic", 0x100, NULL, &x), EINVAL);

		CHECK_ERR(shmk_queue_open(h, "x", SHMK_QUEUE_RECV, &bad, &x),
			  EINVAL);
	}
	CHECK_OK(shmk_queue_close(s));
	CHECK_OK(shmk_queue_close(r));
	CHECK_EQ(live(h), base);
	test_pass("basic: offsets, sizes, timeouts, errors");
}

static void test_full(struct shmk *h)
{
	struct shmk_queue *r = open_q(h, "full", SHMK_QUEUE_RECV, 4);
	struct shmk_queue *s = open_q(h, "full", 0, 0);
	struct shmk_queue_stats st;
	void *m[6], *got;
	size_t sz;

	for (int i = 0; i < 6; i++) {
		m[i] = shmk_msg_alloc(h, 32);
		CHECK(m[i] != NULL);
	}
	for (int i = 0; i < 4; i++)
		CHECK_OK(shmk_send(s, m[i], SHMK_NONBLOCK));
	CHECK_ERR(shmk_send(s, m[4], SHMK_NONBLOCK), EAGAIN);
	CHECK_OK(shmk_queue_stats(s, &st));
	CHECK_EQ(st.queued, 4);
	CHECK_OK(shmk_recv(r, &got, &sz, 0));
	CHECK(got == m[0]);
	shmk_msg_free(h, got);
	CHECK_OK(shmk_send(s, m[4], SHMK_NONBLOCK));
	CHECK_ERR(shmk_send(s, m[5], SHMK_NONBLOCK), EAGAIN);
	for (int i = 1; i < 5; i++) {
		CHECK_OK(shmk_recv(r, &got, &sz, 0));
		CHECK(got == m[i]);
		shmk_msg_free(h, got);
	}
	CHECK_OK(shmk_queue_stats(s, &st));
	CHECK_EQ(st.high_water, 4);
	CHECK_EQ(st.sent, 5);
	shmk_msg_free(h, m[5]);
	shmk_queue_close(s);
	shmk_queue_close(r);
	test_pass("full queue with and without room, SHMK_NONBLOCK");
}

/* ---- across processes -------------------------------------------------- */

struct shared {
	volatile int step;
	volatile int result;
	volatile uint64_t off[64];
};

static struct shared *sh;

/* A sender that fills a queue of 2 and blocks on the third send. */
static int blocked_sender(void *arg)
{
	struct shmk_queue *s;
	struct shmk *h;

	(void)arg;
	if (shmk_open(seg, 0, NULL, &h) || shmk_queue_open(h, "wake", 0, NULL,
							    &s))
		return 2;
	for (int i = 0; i < 3; i++) {
		void *m = shmk_msg_alloc(h, 16);

		if (!m)
			return 3;
		*(int *)m = i;
		sh->off[i] = shmk_off(h, m);
		if (i == 2)
			sh->step = 1;	/* about to block */
		if (shmk_send(s, m, 0))
			return 4;
	}
	sh->step = 2;
	return 0;
}

/* A receiver that sleeps until a sender in another process wakes it. */
static int sleeping_receiver(void *arg)
{
	struct shmk_queue *r;
	struct shmk *h;
	void *m;
	size_t sz;

	(void)arg;
	if (shmk_open(seg, 0, NULL, &h) ||
	    shmk_queue_open(h, "sleep", SHMK_QUEUE_RECV, NULL, &r))
		return 2;
	sh->step = 1;
	if (shmk_recv(r, &m, &sz, -1))
		return 3;
	sh->off[0] = shmk_off(h, m);
	sh->result = *(int *)m;
	shmk_msg_free(h, m);
	shmk_queue_close(r);
	shmk_close(h);
	return 0;
}

static void wait_step(int step)
{
	for (int i = 0; sh->step < step; i++) {
		CHECK(i < 100000);
		usleep(100);
	}
}

static void test_wakeups(struct shmk *h)
{
	struct shmk_queue *r = open_q(h, "wake", SHMK_QUEUE_RECV, 2), *s;
	struct shmk_queue_stats st;
	pid_t pid;
	void *m;
	size_t sz;

	memset(sh, 0, sizeof(*sh));
	pid = test_fork(blocked_sender, NULL);
	wait_step(1);
	usleep(50000);			/* let it block */
	CHECK_EQ(sh->step, 1);
	CHECK_OK(shmk_queue_stats(r, &st));
	CHECK_EQ(st.queued, 2);
	CHECK_EQ(st.senders_blocked, 1);
	for (int i = 0; i < 3; i++) {
		CHECK_OK(shmk_recv(r, &m, &sz, 5000000000LL));
		CHECK_EQ(*(int *)m, i);
		CHECK_EQ(shmk_off(h, m), sh->off[i]);
		shmk_msg_free(h, m);
	}
	CHECK_EQ(test_wait(pid), 0);
	CHECK_EQ(sh->step, 2);
	shmk_queue_close(r);

	/* A receiver asleep in another process. */
	memset(sh, 0, sizeof(*sh));
	pid = test_fork(sleeping_receiver, NULL);
	wait_step(1);
	usleep(50000);
	CHECK_OK(shmk_queue_open(h, "sleep", 0, NULL, &s));
	m = shmk_msg_alloc(h, 4);
	*(int *)m = 4242;
	CHECK_OK(shmk_send(s, m, 0));
	CHECK_EQ(test_wait(pid), 0);
	CHECK_EQ(sh->result, 4242);
	CHECK_EQ(sh->off[0], shmk_off(h, m));
	/* Closed: nobody receives. */
	m = shmk_msg_alloc(h, 4);
	CHECK_ERR(shmk_send(s, m, 0), ECONNRESET);
	shmk_msg_free(h, m);
	shmk_queue_close(s);
	test_pass("futex wake-ups across processes");
}

/* A receiver that takes one message, then is killed holding the queue. */
static int dying_receiver(void *arg)
{
	struct shmk_queue *r;
	struct shmk *h;
	void *m;
	size_t sz;

	(void)arg;
	if (shmk_open(seg, 0, NULL, &h) ||
	    shmk_queue_open(h, "phoenix", SHMK_QUEUE_RECV, NULL, &r))
		return 2;
	sh->step = 1;
	if (shmk_recv(r, &m, &sz, -1))
		return 3;
	sh->result = *(int *)m;
	shmk_msg_free(h, m);
	sh->step = 2;
	pause();
	return 0;
}

static void test_receiver_death(struct shmk *h)
{
	struct shmk_queue *s, *r;
	uint64_t base;
	pid_t pid;
	void *m;
	size_t sz;

	memset(sh, 0, sizeof(*sh));
	pid = test_fork(dying_receiver, NULL);
	wait_step(1);
	s = open_q(h, "phoenix", 0, 0);
	base = live(h);
	for (int i = 0; i < 5; i++) {
		m = shmk_msg_alloc(h, 24);
		*(int *)m = i;
		CHECK_OK(shmk_send(s, m, 0));
	}
	wait_step(2);
	CHECK_EQ(sh->result, 0);
	kill(pid, SIGKILL);
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	m = shmk_msg_alloc(h, 24);
	CHECK_ERR(shmk_send(s, m, 0), ECONNRESET);
	CHECK_ERR(shmk_send(s, m, SHMK_NONBLOCK), ECONNRESET);
	shmk_msg_free(h, m);
	CHECK_EQ(live(h), base + 4);

	/* The successor gets what was queued, in order. */
	r = open_q(h, "phoenix", SHMK_QUEUE_RECV, 0);
	for (int i = 1; i < 5; i++) {
		CHECK_OK(shmk_recv(r, &m, &sz, 0));
		CHECK_EQ(*(int *)m, i);
		shmk_msg_free(h, m);
	}
	CHECK_ERR(shmk_recv(r, &m, &sz, 0), EAGAIN);
	m = shmk_msg_alloc(h, 24);
	CHECK_OK(shmk_send(s, m, 0));
	CHECK_OK(shmk_recv(r, &m, &sz, 0));
	shmk_msg_free(h, m);
	CHECK_EQ(live(h), base);
	shmk_queue_close(r);

	/* Dead again with three queued: reclaim frees them. */
	memset(sh, 0, sizeof(*sh));
	pid = test_fork(dying_receiver, NULL);
	wait_step(1);
	for (int i = 0; i < 4; i++) {
		m = shmk_msg_alloc(h, 4096);
		*(int *)m = i;
		CHECK_OK(shmk_send(s, m, 0));
	}
	wait_step(2);
	CHECK_ERR(shmk_queue_open(h, "phoenix", SHMK_QUEUE_RECLAIM, NULL, &r),
		  EADDRINUSE);
	kill(pid, SIGKILL);
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	CHECK_EQ(live(h), base + 3);
	CHECK_EQ(shmk_queue_open(h, "phoenix", SHMK_QUEUE_RECLAIM, NULL, &r),
		 3);
	CHECK(r == NULL);
	CHECK_EQ(live(h), base);
	CHECK_OK(shmk_check(h));
	shmk_queue_close(s);
	test_pass("a receiver killed, replaced, reclaimed");
}

/* ---- broadcast --------------------------------------------------------- */

static int bcast_receiver(void *arg)
{
	int id = (int)(intptr_t)arg;
	struct shmk_queue *r;
	struct shmk *h;
	char name[16];
	void *m;
	size_t sz;

	snprintf(name, sizeof(name), "bc%d", id);
	if (shmk_open(seg, 0, NULL, &h) ||
	    shmk_queue_open(h, name, SHMK_QUEUE_RECV, NULL, &r))
		return 2;
	__atomic_add_fetch(&sh->step, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 100; i++) {
		if (shmk_recv(r, &m, &sz, 10000000000LL))
			return 3;
		if (*(int *)m != i || sz != 256)
			return 4;
		if (shmk_off(h, m) == 0)
			return 5;
		shmk_msg_free(h, m);
	}
	shmk_queue_close(r);
	shmk_close(h);
	return 0;
}

static void test_broadcast(struct shmk *h)
{
	struct shmk_queue *qs[3];
	uint64_t base = live(h);
	pid_t pids[3];
	void *m;

	memset(sh, 0, sizeof(*sh));
	for (int i = 0; i < 3; i++)
		pids[i] = test_fork(bcast_receiver, (void *)(intptr_t)i);
	wait_step(3);
	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "bc%d", i);
		qs[i] = open_q(h, name, 0, 0);
	}
	base = live(h);
	for (int i = 0; i < 100; i++) {
		m = shmk_msg_alloc(h, 256);
		CHECK(m != NULL);
		*(int *)m = i;
		CHECK_EQ(shmk_broadcast(qs, 3, m, 0), 3);
	}
	for (int i = 0; i < 3; i++)
		CHECK_EQ(test_wait(pids[i]), 0);
	/* Freed exactly once: nothing left, the heap whole. */
	CHECK_EQ(live(h), base);
	CHECK_OK(shmk_check(h));

	/* A receiver gone: delivered to two; the last of them frees it. */
	m = shmk_msg_alloc(h, 256);
	CHECK_EQ(shmk_broadcast(qs, 3, m, 0), -ECONNRESET);	/* none live */
	CHECK_EQ(live(h), base + 1);
	{
		struct shmk_queue *r0 = open_q(h, "bc0", SHMK_QUEUE_RECV, 0);
		struct shmk_queue *r2 = open_q(h, "bc2", SHMK_QUEUE_RECV, 0);
		void *g;
		size_t sz;

		CHECK_EQ(shmk_broadcast(qs, 3, m, 0), 2);
		CHECK_OK(shmk_recv(r0, &g, &sz, 0));
		CHECK(g == m);
		shmk_msg_free(h, g);
		CHECK_EQ(live(h), base + 1);
		CHECK_OK(shmk_recv(r2, &g, &sz, 0));
		CHECK(g == m);
		shmk_msg_free(h, g);
		CHECK_EQ(live(h), base);
		shmk_queue_close(r0);
		shmk_queue_close(r2);
	}
	for (int i = 0; i < 3; i++)
		shmk_queue_close(qs[i]);
	test_pass("broadcast freed exactly once");
}

/* ---- threads, busy polling --------------------------------------------- */

#define TSEND	4

struct targ {
	struct shmk *h;
	int id, n;
};

static void *thread_sender(void *arg)
{
	struct targ *t = arg;
	struct shmk_queue *s;

	if (shmk_queue_open(t->h, "threads", 0, NULL, &s))
		return (void *)1;
	for (int i = 0; i < t->n; i++) {
		uint32_t *m = shmk_msg_alloc(t->h, 8);

		if (!m)
			return (void *)2;
		m[0] = (uint32_t)t->id;
		m[1] = (uint32_t)i;
		if (shmk_send(s, m, 0))
			return (void *)3;
	}
	shmk_queue_close(s);
	return NULL;
}

static void test_threads(struct shmk *h)
{
	const int n = test_small() ? 2000 : 50000;
	struct shmk_queue_opts o = { .capacity = 64,
				     .busy_poll_ns = 200000 };
	struct targ ta[TSEND];
	pthread_t th[TSEND];
	int next[TSEND] = { 0 };
	struct shmk_queue *r;
	uint64_t base = live(h);

	CHECK_OK(shmk_queue_open(h, "threads", SHMK_QUEUE_RECV, &o, &r));
	for (int i = 0; i < TSEND; i++) {
		ta[i] = (struct targ){ h, i, n };
		CHECK_OK(pthread_create(&th[i], NULL, thread_sender, &ta[i]));
	}
	for (long k = 0; k < (long)n * TSEND; k++) {
		uint32_t *m;
		size_t sz;

		CHECK_OK(shmk_recv(r, (void **)&m, &sz, 10000000000LL));
		CHECK(m[0] < TSEND);
		CHECK_EQ(m[1], next[m[0]]);
		next[m[0]]++;
		shmk_msg_free(h, m);
	}
	for (int i = 0; i < TSEND; i++) {
		void *ret;

		CHECK_OK(pthread_join(th[i], &ret));
		CHECK(ret == NULL);
	}
	CHECK_EQ(live(h), base);
	shmk_queue_close(r);
	test_pass("senders as threads, FIFO each, busy-polling receiver");
}

/* NULL names the caller's own client name. */
static void test_own_name(void)
{
	struct shmk_opts o = { .client_name = "svc-a" };
	struct shmk_queue *r, *s;
	struct shmk *a;
	void *m;
	size_t sz;

	CHECK_OK(shmk_open(seg, 0, &o, &a));
	CHECK_OK(shmk_queue_open(a, NULL, SHMK_QUEUE_RECV, NULL, &r));
	CHECK_OK(shmk_queue_open(a, "svc-a", 0, NULL, &s));
	m = shmk_msg_alloc(a, 10);
	CHECK_OK(shmk_send(s, m, 0));
	CHECK_OK(shmk_recv(r, &m, &sz, 0));
	shmk_msg_free(a, m);
	shmk_queue_close(s);
	shmk_queue_close(r);
	shmk_close(a);
	test_pass("a NULL name is the client's name");
}

static void *close_elsewhere(void *arg)
{
	return (void *)(intptr_t)shmk_queue_close(arg);
}

/*
 * The receiver holds a robust mutex in the segment: only its thread can
 * give it back, and the segment may not be unmapped under it.
 */
static void test_close_order(void)
{
	struct shmk_queue *r, *s;
	struct shmk *a;
	pthread_t t;
	void *ret, *m;

	CHECK_OK(shmk_open(seg, 0, NULL, &a));
	CHECK_OK(shmk_queue_open(a, "order", SHMK_QUEUE_RECV, NULL, &r));
	CHECK_OK(shmk_queue_open(a, "order", 0, NULL, &s));
	CHECK_ERR(shmk_close(a), EBUSY);
	CHECK_OK(pthread_create(&t, NULL, close_elsewhere, r));
	CHECK_OK(pthread_join(t, &ret));
	CHECK_EQ((intptr_t)ret, -EPERM);
	/* Both still work: the receiver is alive and receives */
	m = shmk_msg_alloc(a, 8);
	CHECK(m);
	CHECK_OK(shmk_send(s, m, SHMK_NONBLOCK));
	CHECK_OK(shmk_recv(r, &m, NULL, 0));
	shmk_msg_free(a, m);
	CHECK_ERR(shmk_close(a), EBUSY);
	CHECK_OK(shmk_queue_close(r));
	CHECK_OK(shmk_queue_close(s));
	CHECK_OK(shmk_close(a));
	test_pass("a receiver closed by its own thread, before shmk_close()");
}

int main(void)
{
	struct shmk *h;

	test_seed();
	seg = test_name("queue");
	sh = test_shared(sizeof(*sh));
	h = test_open(seg, SHMK_CREATE, 1 << 20, 256 << 20);
	test_basic(h);
	test_full(h);
	test_wakeups(h);
	test_receiver_death(h);
	test_broadcast(h);
	test_threads(h);
	test_own_name();
	test_close_order();
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_close(h));
	test_pass("queue");
	return 0;
}
