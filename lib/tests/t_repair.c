/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Recovery beyond the undo log: a lock owner that dies leaving a broken free
 * index and small tier (here: corrupted on purpose) gets them rebuilt from
 * the block chain and the runs' bitmaps, and the segment checks clean with every block intact; one that
 * leaves a broken block chain gets the lock made unrecoverable, so that
 * every later caller fails with ENOTRECOVERABLE instead of using a corrupt
 * heap.
 */
#include <pthread.h>

#include "internal.h"
#include "page_heap.h"
#include "harness.h"

static const char *seg;
static uint64_t victim;		/* a live block's header */

enum { CORRUPT_INDEX, CORRUPT_CHAIN };

/* Take the lock, corrupt, die holding it. */
static int corrupt_and_die(void *arg)
{
	struct shmk *h;

	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	if (shmk__lock_raw(h))
		return 3;
	if ((intptr_t)arg == CORRUPT_INDEX) {
		/* Lose the large trees and a bin, and garble the bitmaps. */
		memset(h->hdr->trees, 0, sizeof(h->hdr->trees));
		h->hdr->tree_map[0] = 0x5a5a;
		for (unsigned int i = 0; i < SHMK_NBINS; i++)
			if (h->hdr->bins[i]) {
				h->hdr->bins[i] = 0;
				break;
			}
		h->hdr->bin_map = ~0ULL;
		h->hdr->free_blocks += 7;
		/*
		 * Lose the small tier's lists, a thread heap's runs, and
		 * garble a counter.
		 */
		for (unsigned int i = 0; i < SHMK_NCLASSES; i++)
			h->hdr->runs[i] = 0;
		for (unsigned int i = 0; i < SHMK_THEAPS; i++) {
			struct shmk_theap *th = (struct shmk_theap *)
				(h->base + h->hdr->theaps) + i;

			for (unsigned int c = 0; c < SHMK_NCLASSES; c += 2)
				th->run[c] = 0;
		}
		h->hdr->small_bytes += 3;
	} else {
		/* A block header in the middle of the heap. */
		*shmk__w(h, victim) = 0x1234;
	}
	raise(SIGKILL);
	return 4;
}

/* The lock says ENOTRECOVERABLE, and is left free for the next one. */
static void *lock_unrecoverable(void *arg)
{
	struct shmk *h = arg;

	for (int i = 0; i < 1000; i++)
		if (shmk__lock(h) != -ENOTRECOVERABLE)
			return (void *)1;
	return NULL;
}

int main(void)
{
	struct shmk_stats st;
	struct shmk *h, *h2;
	void *keep[200];
	int n = 0;

	seg = test_name("repair");
	h = test_open(seg, SHMK_CREATE, 1 << 20, 64 << 20);
	for (int i = 0; i < 400; i++) {
		void *p = shmk_alloc(h, 10 + (size_t)(i * 53) % 3000);

		CHECK(p);
		memset(p, i, 8);
		if (i % 2)
			shmk_free(h, p);
		else
			keep[n++] = p;
	}
	CHECK(shmk_find_or_alloc(h, "named", 100, NULL));
	CHECK_OK(shmk_check(h));

	/* A broken index is rebuilt. */
	CHECK_EQ(test_wait(test_fork(corrupt_and_die, (void *)CORRUPT_INDEX)),
		 128 + SIGKILL);
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.recoveries, 1);
	CHECK_EQ(st.live_allocs, (uint64_t)n);
	CHECK(shmk_find(h, "named", NULL));
	for (int i = 0; i < n; i++)
		shmk_free(h, keep[i]);
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.live_allocs, 0);
	CHECK(shmk_alloc(h, 100000));
	CHECK_OK(shmk_check(h));

	/* A broken chain is not handed out. */
	victim = shmk_off(h, shmk_alloc(h, SMALL_MAX + 1000)) - 8;
	CHECK(shmk_alloc(h, SMALL_MAX + 1000));
	CHECK_EQ(test_wait(test_fork(corrupt_and_die, (void *)CORRUPT_CHAIN)),
		 128 + SIGKILL);
	CHECK_NULL_ERRNO(shmk_alloc(h, 10), ENOTRECOVERABLE);
	CHECK_ERR(shmk_check(h), ENOTRECOVERABLE);
	CHECK_NULL_ERRNO(shmk_find_or_alloc(h, "x", 10, NULL),
			 ENOTRECOVERABLE);
	CHECK_ERR(shmk_open(seg, 0, NULL, &h2), ENOTRECOVERABLE);
	CHECK_ERR(shmk_stats(h, &st), ENOTRECOVERABLE);
	/* Readers too */
	CHECK_OK(shmk_open(seg, SHMK_RDONLY, NULL, &h2));
	CHECK_NULL_ERRNO(shmk_find(h2, "named", NULL), ENOTRECOVERABLE);
	CHECK_ERR(shmk_check(h2), ENOTRECOVERABLE);
	CHECK_OK(shmk_close(h2));

	/*
	 * A mutex made not recoverable is handed back by every locker, even
	 * one whose trylock takes it (glibc does that): with the header's
	 * flag cleared, so that the lock itself is tried, threads racing on
	 * it all get ENOTRECOVERABLE and none of them hangs.
	 */
	WRITE_ONCE(h->hdr->unrecoverable, 0);
	{
		pthread_t t[4];
		void *ret;

		for (int i = 0; i < 4; i++)
			CHECK_OK(pthread_create(&t[i], NULL, lock_unrecoverable,
						h));
		for (int i = 0; i < 4; i++) {
			CHECK_OK(pthread_join(t[i], &ret));
			CHECK(ret == NULL);
		}
	}
	CHECK_ERR(shmk__lock(h), ENOTRECOVERABLE);
	CHECK_OK(shmk_close(h));
	test_pass("repair");
	return 0;
}
