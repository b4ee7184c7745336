/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Message queues and SIGKILL: in each round three senders and a receiver
 * storm one queue (of 64 slots, so senders also sleep for room), and
 * journal in memory shared with the parent what they sent and received.
 * The parent SIGKILLs a random non-empty subset of them at a random moment
 * (and some senders kill themselves at a random fault point of the
 * library, such as right after the CAS that queues a message), stops the
 * rest, runs shmk_check(), then takes the queue over as its receiver (the
 * dead one's successor) and drains it. Then:
 *
 *  - each sender's messages were received in order, without loss or
 *    duplicate, by the receiver and then the parent; the only exceptions
 *    are the one message a killed sender was sending (queued or not) and
 *    the one message a killed receiver was taking;
 *  - senders saw -ECONNRESET only when the receiver was killed;
 *  - every heap block is accounted for: after the drain nothing is left
 *    but the directory's blocks and at most those two kinds of message
 *    per killed process, which the parent frees; the heap is then empty.
 *
 * 200 rounds (30 with SHMK_TEST_SCALE=small).
 */
#include "internal.h"
#include "directory.h"
#include "small.h"
#include "harness.h"
#include "blocks.h"

#define NSEND		3
#define NPROC		(NSEND + 1)	/* the receiver is the last */

struct msg {
	uint32_t sender;
	uint32_t round;
	uint64_t seq;
};

struct journal {
	volatile int ready, stop, reset, bad;
	volatile int inflight;
	volatile uint64_t inflight_off;
	volatile uint64_t count;		/* sender: sent; */
	volatile uint64_t next[NSEND];		/* receiver: next seq expected */
	volatile long fault;			/* sender: die at this point */
};

static const char *seg;
static struct journal *js;
static uint32_t round_no;

#define JB() __atomic_thread_fence(__ATOMIC_SEQ_CST)

static int sender(void *arg)
{
	int id = (int)(intptr_t)arg;
	struct journal *j = &js[id];
	struct shmk_queue *s;
	struct shmk *h;

	test_rng_state ^= (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
	if (shmk_open(seg, 0, NULL, &h) ||
	    shmk_queue_open(h, "storm", 0, NULL, &s))
		return 2;
	j->ready = 1;
	shmk__fault_countdown = j->fault;
	while (!j->stop) {
		struct msg *m;
		int r;

		j->inflight = 1;
		JB();
		m = shmk_msg_alloc(h, 16 + rnd_below(2) * rnd_below(20000));
		if (!m)
			return 3;
		m->sender = (uint32_t)id;
		m->round = round_no;
		m->seq = j->count;
		j->inflight_off = shmk_off(h, m);
		JB();
		r = shmk_send(s, m, rnd_below(2) ? SHMK_NONBLOCK : 0);
		JB();
		if (!r) {
			j->count++;
		} else if (r == -EAGAIN || r == -ECONNRESET) {
			shmk_msg_free(h, m);
			if (r == -ECONNRESET)
				j->reset = 1;
		} else {
			return 4;
		}
		JB();
		j->inflight = 0;
		JB();
		if (j->reset)
			break;
		if (r == -EAGAIN)
			sched_yield();
	}
	shmk__fault_countdown = 0;
	while (!j->stop)
		usleep(200);
	shmk_queue_close(s);
	shmk_close(h);
	return 0;
}

static int receiver(void *arg)
{
	struct journal *j = &js[NSEND];
	struct shmk_queue *r;
	struct shmk *h;
	int ret;

	(void)arg;
	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	ret = shmk_queue_open(h, "storm", SHMK_QUEUE_RECV, NULL, &r);
	if (ret) {
		fprintf(stderr, "receiver: %s\n", strerror(-ret));
		return 3;
	}
	j->ready = 1;
	while (!j->stop) {
		struct msg *m;
		size_t sz;

		j->inflight = 1;
		JB();
		ret = shmk_recv(r, (void **)&m, &sz, 2000000);
		if (ret == -ETIMEDOUT) {
			j->inflight = 0;
			continue;
		}
		if (ret)
			return 4;
		j->inflight_off = shmk_off(r ? h : h, m);
		if (m->sender >= NSEND || m->round != round_no ||
		    m->seq != j->next[m->sender]) {
			j->bad = 1;
			fprintf(stderr, "receiver: from %u round %u seq %llu, "
				"expected %llu\n", m->sender, m->round,
				(unsigned long long)m->seq,
				m->sender < NSEND ?
				(unsigned long long)j->next[m->sender] : 0ULL);
			return 5;
		}
		j->next[m->sender]++;
		JB();
		shmk_msg_free(h, m);
		JB();
		j->inflight = 0;
		JB();
	}
	shmk_queue_close(r);
	shmk_close(h);
	return 0;
}

/* ---- accounting -------------------------------------------------------- */

static int dir_fn(const char *name, void *ptr, size_t size, void *arg)
{
	struct blocks *b = arg;

	(void)size;
	blocks_add(b, (uint64_t)((uint8_t *)ptr - (uint8_t *)b->off[0]) -
		      dir_obj_delta(strlen(name)));
	return 0;
}

/* Drain as the successor; check every sender's sequence. */
static void drain_and_check(struct shmk *h, const bool *killed)
{
	const struct journal *rj = &js[NSEND];
	bool lost_ok = killed[NSEND] && rj->inflight;
	uint64_t next[NSEND];
	struct shmk_queue *q;
	struct msg *m;
	size_t sz;

	for (int i = 0; i < NSEND; i++)
		next[i] = rj->next[i];
	CHECK_OK(shmk_queue_open(h, "storm", SHMK_QUEUE_RECV, NULL, &q));
	while (shmk_recv(q, (void **)&m, &sz, 0) == 0) {
		CHECK(m->sender < NSEND);
		CHECK_EQ(m->round, round_no);
		if (m->seq == next[m->sender] + 1 && lost_ok) {
			lost_ok = false;	/* the dead receiver's */
			next[m->sender]++;
		}
		if (m->seq != next[m->sender]) {
			fprintf(stderr, "drain: from %u seq %llu, expected "
				"%llu\n", m->sender, (unsigned long long)m->seq,
				(unsigned long long)next[m->sender]);
			test_fail();
		}
		next[m->sender]++;
		shmk_msg_free(h, m);
	}
	for (int i = 0; i < NSEND; i++) {
		const struct journal *j = &js[i];

		if (next[i] == j->count)
			continue;
		/* Queued by a sender killed before it counted it. */
		if (next[i] == j->count + 1 && killed[i] && j->inflight)
			continue;
		/* Taken by a receiver killed before it counted it. */
		if (next[i] + 1 == j->count && lost_ok) {
			lost_ok = false;
			continue;
		}
		fprintf(stderr, "sender %d: sent %llu, received %llu\n", i,
			(unsigned long long)j->count,
			(unsigned long long)next[i]);
		test_fail();
	}
	CHECK_OK(shmk_queue_close(q));
}

static long account(struct shmk *h, const bool *killed)
{
	struct blocks used = { 0 }, expected = { 0 };
	struct shmk_stats st;
	long allowed = 0, extra = 0;

	CHECK_OK(shmk__alloc_walk(h, blocks_walk_fn, &used));
	blocks_add(&expected, (uint64_t)(uintptr_t)shmk_base(h));
	blocks_add(&expected, h->hdr->dir_table);
	CHECK(shmk_foreach(h, dir_fn, &expected) >= 0);
	for (int i = 0; i < NPROC; i++)
		if (killed[i] && js[i].inflight)
			allowed++;
	for (size_t i = 0; i < used.n; i++) {
		bool known = false;

		for (size_t k = 1; k < expected.n; k++)
			known |= expected.off[k] == used.off[i];
		if (known)
			continue;
		extra++;
		shmk_free(h, shmk_ptr(h, used.off[i]));
	}
	if (extra > allowed) {
		fprintf(stderr, "%ld unaccounted blocks, %ld allowed\n", extra,
			allowed);
		test_fail();
	}
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.live_allocs, 0);
	free(used.off);
	free(expected.off);
	return extra;
}

int main(void)
{
	const int rounds = test_small() ? 30 : 200;
	long kills = 0, faults = 0, extras = 0, msgs = 0, resets = 0;
	struct shmk_queue_opts o = { .capacity = 64 };
	struct shmk_queue *q;
	struct shmk *h;

	test_seed();
	seg = test_name("qcrash");
	js = test_shared(NPROC * sizeof(*js));
	h = test_open(seg, SHMK_CREATE, 1 << 20, 256 << 20);
	CHECK_OK(shmk_queue_open(h, "storm", SHMK_QUEUE_RECV, &o, &q));
	CHECK_OK(shmk_queue_close(q));

	for (int round = 0; round < rounds; round++) {
		unsigned int mask = 1 + (unsigned int)rnd_below((1 << NPROC) - 1);
		bool killed[NPROC];
		pid_t pids[NPROC];

		round_no = (uint32_t)round;
		memset(js, 0, NPROC * sizeof(*js));
		for (int i = 0; i < NSEND; i++)
			if (rnd_below(4) == 0)
				js[i].fault = 1 + (long)rnd_below(400);
		pids[NSEND] = test_fork(receiver, NULL);
		while (!js[NSEND].ready) {
			int ws;

			CHECK(waitpid(pids[NSEND], &ws, WNOHANG) == 0);
			usleep(100);
		}
		for (int i = 0; i < NSEND; i++)
			pids[i] = test_fork(sender, (void *)(intptr_t)i);
		usleep((useconds_t)rnd_below(4000));
		for (int i = 0; i < NPROC; i++) {
			killed[i] = mask & (1u << i);
			if (killed[i])
				kill(pids[i], SIGKILL);
		}
		/* Senders first: a live receiver makes room for them. */
		for (int i = 0; i < NSEND; i++) {
			int st;

			js[i].stop = 1;
			st = test_wait(pids[i]);
			if (st == 128 + SIGKILL && !killed[i]) {
				killed[i] = true;	/* its fault point */
				faults++;
			}
			CHECK_EQ(st, killed[i] ? 128 + SIGKILL : 0);
			CHECK(!js[i].reset || killed[NSEND]);
			resets += js[i].reset;
		}
		js[NSEND].stop = 1;
		CHECK_EQ(test_wait(pids[NSEND]), killed[NSEND] ? 128 + SIGKILL : 0);
		CHECK(!js[NSEND].bad);
		for (int i = 0; i < NPROC; i++)
			kills += killed[i];
		for (int i = 0; i < NSEND; i++)
			msgs += (long)js[i].count;
		CHECK_OK(shmk_check(h));
		drain_and_check(h, killed);
		extras += account(h, killed);
	}
	printf("%d rounds, %ld processes killed (%ld at fault points), %ld "
	       "messages, %ld -ECONNRESET, %ld killed messages freed\n",
	       rounds, kills, faults, msgs, resets, extras);
	CHECK(msgs > 0);
	CHECK_OK(shmk_close(h));
	test_pass("queue crash");
	return 0;
}
