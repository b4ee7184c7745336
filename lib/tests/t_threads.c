/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Thread and process safety: two processes, four threads each, on one
 * segment (the threads of a process share its handle), storm allocs, frees,
 * creates, finds and removes with content checks, starting from a small
 * heap that has to grow. Afterwards everything is freed: the heap checks
 * clean and the stats count nothing left.
 */
#include <pthread.h>

#include "harness.h"

#define NTHREADS	4
#define NPROCS		2
#define MAXLIVE		200

static const char *seg;
static long nops;

struct worker {
	struct shmk *h;
	int id;
	uint64_t rng;
	int err;
};

static uint64_t wrnd(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint8_t *live[MAXLIVE];
	size_t sizes[MAXLIVE];
	int n = 0;

	for (long k = 0; k < nops && !w->err; k++) {
		uint64_t r = wrnd(w) % 100;

		/* Calls that succeed leave errno alone, contended or not. */
		if (errno != 4242 && k)
			w->err = 7;
		errno = 4242;

		if (r < 45 && n < MAXLIVE) {
			size_t sz = 1 + wrnd(w) % (wrnd(w) % 8 ? 300 : 20000);
			uint8_t *p = shmk_alloc(w->h, sz);

			if (!p) {
				w->err = 1;
				break;
			}
			memset(p, w->id, sz);
			live[n] = p;
			sizes[n++] = sz;
		} else if (r < 90 && n) {
			int i = (int)(wrnd(w) % (uint64_t)n);

			for (size_t j = 0; j < sizes[i]; j += 61)
				if (live[i][j] != (uint8_t)w->id)
					w->err = 2;
			shmk_free(w->h, live[i]);
			live[i] = live[--n];
			sizes[i] = sizes[n];
		} else {
			char name[32];
			int created;
			uint8_t *p;

			snprintf(name, sizeof(name), "w%d-%d", w->id,
				 (int)(wrnd(w) % 8));
			p = shmk_find_or_alloc(w->h, name, 64, &created);
			if (!p) {
				w->err = 3;
				break;
			}
			if (created)
				p[0] = (uint8_t)w->id;
			else if (p[0] != (uint8_t)w->id)
				w->err = 4;
			if (wrnd(w) % 2 && shmk_remove(w->h, name))
				w->err = 5;
			if (!shmk_find(w->h, "common", NULL))
				w->err = 6;
		}
	}
	while (n)
		shmk_free(w->h, live[--n]);
	for (int i = 0; i < 8; i++) {
		char name[32];

		snprintf(name, sizeof(name), "w%d-%d", w->id, i);
		shmk_remove(w->h, name);
	}
	return NULL;
}

static int run_threads(void *arg)
{
	int base = (int)(intptr_t)arg;
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	struct shmk *h;
	int err = 0;

	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ h, base + i + 1,
					0x9e3779b97f4a7c15ULL * (uint64_t)(base + i + 1),
					0 };
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		if (w[i].err)
			err = 10 + w[i].err;
	}
	if (shmk_close(h))
		return 3;
	return err;
}

int main(void)
{
	struct shmk_stats st;
	struct shmk *h;
	pid_t pids[NPROCS];

	nops = test_small() ? 3000 : 100000;
	seg = test_name("threads");
	h = test_open(seg, SHMK_CREATE, 192 << 10, 256 << 20);
	CHECK(shmk_find_or_alloc(h, "common", 8, NULL));
	for (int p = 0; p < NPROCS; p++)
		pids[p] = test_fork(run_threads, (void *)(intptr_t)(p * 10));
	for (int p = 0; p < NPROCS; p++)
		CHECK_EQ(test_wait(pids[p]), 0);
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.live_allocs, 0);
	CHECK_EQ(st.named_objects, 1);
	CHECK(st.grows > 0);
	printf("%d processes x %d threads x %ld operations, heap grew to %llu"
	       " KiB\n", NPROCS, NTHREADS, nops,
	       (unsigned long long)(st.total_size >> 10));
	CHECK_OK(shmk_close(h));
	test_pass("threads");
	return 0;
}
