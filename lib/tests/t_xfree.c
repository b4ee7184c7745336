/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The small tier's lock-free paths across threads and processes: slots
 * allocated by one thread and freed by another (each thread's current runs
 * fill, are let go and come back through the lists), by a child process
 * and freed by the parent and the other way round; double and interior
 * frees refused; more threads than thread heaps at once (the rest use the
 * lists under the lock); threads that exit with slots still allocated,
 * whose heaps are reaped when the table runs out and by shmk_shrink();
 * messages freed by another process through the run's xmap, which the
 * owner takes back when its run has no other free slot, and their double
 * frees ignored. After each part shmk_check() passes, the statistics
 * are exact, and every block's contents survived.
 */
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "page_heap.h"
#include "small.h"
#include "harness.h"

#define NTHREADS	4
#define PER_THREAD	3000
#define MANY		((int)SHMK_THEAPS + 8)

static struct shmk *h;
static const char *seg;
static pthread_barrier_t bar;
static uint8_t *blocks[NTHREADS][PER_THREAD];
static size_t sizes[NTHREADS][PER_THREAD];

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint8_t tag_of(int t, int i)
{
	return (uint8_t)(1 + (t * 131 + i) % 251);
}

/* Allocate our row, then free the next thread's, twice over. */
static void *cross(void *arg)
{
	int t = (int)(intptr_t)arg, u = (t + 1) % NTHREADS;
	uint64_t s = 0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1);

	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < PER_THREAD; i++) {
			size_t n = 1 + xs(&s) % (xs(&s) % 4 ? 200 : SMALL_MAX);

			blocks[t][i] = shmk_alloc(h, n);
			if (!blocks[t][i])
				return (void *)1;
			sizes[t][i] = n;
			memset(blocks[t][i], tag_of(t, i), n);
		}
		pthread_barrier_wait(&bar);
		for (int i = 0; i < PER_THREAD; i++) {
			for (size_t k = 0; k < sizes[u][i]; k++)
				if (blocks[u][i][k] != tag_of(u, i))
					return (void *)2;
			shmk_free(h, blocks[u][i]);
		}
		pthread_barrier_wait(&bar);
	}
	return NULL;
}

/*
 * shmk_check() passes; @live allocations, all of them slots; the slots'
 * bytes split exactly into used and cached; the sum is the heap.
 */
static void check_empty(uint64_t live)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t table = blk_size(shmk__rd(h, hd->dir_table - 8));
	struct shmk_stats st;

	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.live_allocs, live);
	CHECK_EQ(st.used_bytes - table + st.cached_bytes, hd->small_bytes);
	CHECK_EQ(st.used_bytes + st.free_bytes + st.cached_bytes + 16 +
		 hd->run_bytes - hd->small_bytes, st.heap_size);
}

/* The state of the run that holds slot @p. */
static uint64_t run_state(const uint8_t *p)
{
	uint64_t r = small_run_of(h, shmk_off(h, p));

	CHECK(r);
	return ((const struct shmk_run *)(h->base + r))->state & RUN_STATE_MASK;
}

/* A child: allocate what the parent will free, free what it allocated. */
static int child(void *arg)
{
	uint64_t *offs = arg;
	struct shmk *ch;

	if (shmk_open(seg, 0, NULL, &ch))
		return 2;
	for (int i = 0; i < PER_THREAD; i++) {
		uint8_t *p = shmk_ptr(ch, offs[i]);

		if (p[0] != 0x33)
			return 3;
		shmk_free(ch, p);
		shmk_free(ch, p);		/* a double free: refused */
	}
	for (int i = 0; i < PER_THREAD; i++) {
		uint8_t *p = shmk_alloc(ch, 1 + (size_t)(i * 7) % 500);

		if (!p)
			return 4;
		p[0] = 0x44;
		offs[PER_THREAD + i] = shmk_off(ch, p);
	}
	return 0;		/* exits with its thread heap claimed */
}

/* A child: free the parent's messages, each twice (the second ignored). */
static int msg_freer(void *arg)
{
	uint64_t *offs = arg;
	struct shmk *ch;

	if (shmk_open(seg, 0, NULL, &ch))
		return 2;
	for (int i = 0; offs[i]; i++) {
		uint8_t *m = shmk_ptr(ch, offs[i]);

		if (m[0] != (uint8_t)i)
			return 3;
		shmk_msg_free(ch, m);
		shmk_msg_free(ch, m);
	}
	return 0;
}

/* The slot that holds message @m: its run, and its index there. */
static const struct shmk_run *slot_of(const void *m, uint64_t *r,
				      uint64_t *i)
{
	const struct shmk_run *run;
	uint64_t off = shmk_off(h, m);

	*r = small_run_of(h, off);
	CHECK(*r);
	run = (const void *)(h->base + *r);
	*i = (off - *r - run->first) / run->slot_size;
	return run;
}

static bool xmap_empty(const struct shmk_run *run)
{
	for (uint32_t w = 0; w < (run->nslots + 63) / 64; w++)
		if (small_xmap(run)[w])
			return false;
	return true;
}

/*
 * Messages of the parent's current run, freed by a child: set in the
 * run's xmap, still in map, counted free; the parent's allocations take them back only when the run has
 * no other free slot, all from the same run.
 */
static void msg_frees(void)
{
	enum { MSGS = 150, SIZE = 700 };
	uint64_t *offs = test_shared((MSGS + 1) * sizeof(*offs));
	const struct shmk_run *run;
	uint64_t r, r0, i, used = 0;
	uint32_t nfree;

	for (int k = 0; k < MSGS; k++) {
		uint8_t *m = shmk_msg_alloc(h, SIZE);

		CHECK(m);
		m[0] = (uint8_t)k;
		offs[k] = shmk_off(h, m);
	}
	offs[MSGS] = 0;
	run = slot_of(shmk_ptr(h, offs[MSGS - 1]), &r0, &i);
	CHECK_EQ(run->state & RUN_STATE_MASK, RUN_OWNED);
	check_empty(MSGS);
	CHECK_EQ(test_wait(test_fork(msg_freer, offs)), 0);
	check_empty(0);
	for (int k = 0; k < MSGS; k++) {
		uint64_t bit;

		/* The runs let go before (empty now, released): the U path */
		if (small_run_of(h, offs[k]) != r0)
			continue;
		run = slot_of(shmk_ptr(h, offs[k]), &r, &i);
		bit = 1ULL << (i % 64);
		CHECK(run->map[i / 64] & bit);
		CHECK(small_xmap(run)[i / 64] & bit);
		used++;
	}
	CHECK(used > 1);
	check_empty(0);
	/* The run's free slots first, then the ones freed through xmap */
	run = (const void *)(h->base + r0);
	nfree = run->nslots;
	for (uint64_t w = 0; w < (run->nslots + 63) / 64; w++)
		nfree -= (uint32_t)__builtin_popcountll(run->map[w]);
	nfree += (uint32_t)__builtin_popcountll(small_pad_bits(run->nslots));
	for (uint32_t k = 0; k < nfree + used; k++) {
		uint8_t *m = shmk_msg_alloc(h, SIZE);

		CHECK(m);
		slot_of(m, &r, &i);
		CHECK_EQ(r, r0);
		/* xmap is folded only once map is full */
		CHECK(xmap_empty(run) == (k >= nfree));
		offs[k] = shmk_off(h, m);
	}
	check_empty(nfree + used);
	for (uint32_t k = 0; k < nfree + used; k++)
		shmk_msg_free(h, shmk_ptr(h, offs[k]));
	check_empty(0);
}

/* Whether the calling thread holds a thread heap (its tid in a tag). */
static bool have_heap(void)
{
	const struct shmk_theap *th = (const void *)(h->base + h->hdr->theaps);
	uint64_t tid = (uint64_t)syscall(SYS_gettid);

	for (unsigned int i = 0; i < SHMK_THEAPS; i++)
		if (th[i].owner >> 32 == tid)
			return true;
	return false;
}

static void *hold(void *arg)
{
	uint8_t **p = arg;
	void *got;

	*p = shmk_alloc(h, 24);
	if (*p)
		**p = 0x55;
	got = have_heap() ? (void *)1 : NULL;
	pthread_barrier_wait(&bar);
	return got;
}

static uint8_t *held[MANY];
static pid_t left[MANY];	/* the tids of leave()'s threads */

static void *leave(void *arg)
{
	uint8_t **p = arg;

	left[p - held] = (pid_t)syscall(SYS_gettid);
	*p = shmk_alloc(h, 40);
	if (*p)
		memset(*p, 0x66, 40);
	return NULL;
}

int main(void)
{
	uint64_t *offs;
	pthread_t t[MANY];
	struct shmk_stats st;
	void *ret;

	seg = test_name("xfree");
	h = test_open(seg, SHMK_CREATE, 1 << 20, 256 << 20);

	/* Cross-thread frees */
	CHECK_OK(pthread_barrier_init(&bar, NULL, NTHREADS));
	for (int i = 0; i < NTHREADS; i++)
		CHECK_OK(pthread_create(&t[i], NULL, cross, (void *)(intptr_t)i));
	for (int i = 0; i < NTHREADS; i++) {
		CHECK_OK(pthread_join(t[i], &ret));
		CHECK(ret == NULL);
	}
	CHECK_OK(pthread_barrier_destroy(&bar));
	check_empty(0);

	/* Interior and double frees: refused, nothing changes */
	for (int i = 0; i < 64; i++) {
		uint8_t *p = shmk_alloc(h, 100), *q = shmk_alloc(h, 100);

		CHECK(p && q);
		shmk_free(h, p + 16);
		shmk_free(h, p + 48);
		CHECK_EQ(shmk_usable_size(h, p), 112);
		shmk_free(h, p);
		shmk_free(h, p);
		CHECK_EQ(shmk_usable_size(h, p), 0);
		check_empty(1);
		shmk_free(h, q);
	}
	check_empty(0);

	/* Cross-process frees, both ways */
	offs = test_shared(2 * PER_THREAD * sizeof(*offs));
	for (int i = 0; i < PER_THREAD; i++) {
		uint8_t *p = shmk_alloc(h, 1 + (size_t)(i * 13) % 700);

		CHECK(p);
		*p = 0x33;
		offs[i] = shmk_off(h, p);
	}
	CHECK_EQ(test_wait(test_fork(child, offs)), 0);
	check_empty(PER_THREAD);
	for (int i = 0; i < PER_THREAD; i++) {
		uint8_t *p = shmk_ptr(h, offs[PER_THREAD + i]);

		CHECK_EQ(*p, 0x44);
		shmk_free(h, p);
	}
	check_empty(0);

	msg_frees();

	/* More threads than thread heaps at once */
	CHECK_OK(pthread_barrier_init(&bar, NULL, MANY + 1));
	for (int i = 0; i < MANY; i++)
		CHECK_OK(pthread_create(&t[i], NULL, hold, &held[i]));
	pthread_barrier_wait(&bar);
	/* The threads beyond the table's 64 took slots from the lists */
	{
		int with = 0;

		for (int i = 0; i < MANY; i++) {
			CHECK_OK(pthread_join(t[i], &ret));
			with += ret != NULL;
		}
		CHECK(with > 0 && with <= (int)SHMK_THEAPS);
	}
	CHECK_OK(pthread_barrier_destroy(&bar));
	check_empty(MANY);
	for (int i = 0; i < MANY; i++) {
		CHECK(held[i] && *held[i] == 0x55);
		shmk_free(h, held[i]);
	}
	check_empty(0);

	/* Threads that leave slots behind, one after the other: reaped */
	for (int i = 0; i < MANY; i++) {
		CHECK_OK(pthread_create(&t[i], NULL, leave, &held[i]));
		CHECK_OK(pthread_join(t[i], NULL));
		CHECK(held[i]);
		/* a heap of its own: reaped from a dead thread, if need be */
		CHECK_EQ(run_state(held[i]), RUN_OWNED);
	}
	check_empty(MANY);
	for (int i = 0; i < MANY; i++) {
		for (int k = 0; k < 40; k++)
			CHECK_EQ(held[i][k], 0x66);
		shmk_free(h, held[i]);
	}
	check_empty(0);

	/*
	 * Everything free: shrink gives every run back. A joined thread is
	 * not gone yet: pthread_join() returns when it cleared its tid, a
	 * little before it leaves /proc, and until then its heap counts as
	 * live (a slow emulated VM showed it). Wait until they are gone.
	 */
	for (int i = 0; i < MANY; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/task/%d", (int)left[i]);
		for (int w = 0; w < 10000 && !access(path, F_OK); w++)
			usleep(1000);
		CHECK(access(path, F_OK));
	}
	CHECK_OK(shmk_shrink(h, shmk_size(h)));
	check_empty(0);
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.cached_bytes, 0);
	CHECK_EQ(h->hdr->run_blocks, 1);
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
	test_pass("xfree");
	return 0;
}
