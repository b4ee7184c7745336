/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The message cache (msg_cache.c): a large message's block, freed by its
 * last reference, is kept whole (cached in the statistics, not allocated,
 * refused by shmk_free()) and is the next message of about its size, also
 * in another process; a request it does not fit (smaller, or more than a
 * quarter smaller) leaves it; a full cache frees to the page heap; an
 * allocation that would grow the segment flushes the cache first, and
 * shmk_shrink() flushes it; a read-only client takes and keeps nothing.
 * shmk_check() passes after each part.
 */
#include "internal.h"
#include "harness.h"

#define BIG	(100u << 10)

static const char *seg;

static struct shmk_stats stats(struct shmk *h)
{
	struct shmk_stats st;

	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.used_bytes + st.free_bytes + st.cached_bytes +
		 h->hdr->run_bytes - h->hdr->small_bytes + 16, st.heap_size);
	return st;
}

/* In a child: free the parent's message, then take one of the same size. */
static int child(void *arg)
{
	uint64_t *off = arg;
	struct shmk *h;
	void *m;

	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	m = shmk_ptr(h, off[0]);
	if (*(uint32_t *)m != 0xfeedbeef)
		return 3;
	shmk_msg_free(h, m);
	if (shmk_usable_size(h, (uint8_t *)m - 16))
		return 4;
	m = shmk_msg_alloc(h, BIG);
	if (!m)
		return 5;
	off[1] = shmk_off(h, m);
	return 0;
}

static int reader(void *arg)
{
	uint64_t *off = arg;
	struct shmk *h;
	void *m;

	if (shmk_open(seg, SHMK_RDONLY, NULL, &h))
		return 2;
	errno = 0;
	m = shmk_msg_alloc(h, BIG);
	if (m || errno != EPERM)
		return 3;
	shmk_msg_free(h, shmk_ptr(h, off[0]));	/* ignored */
	return 0;
}

int main(void)
{
	struct shmk *h;
	struct shmk_stats st0, st;
	uint64_t *off = test_shared(2 * sizeof(*off));
	uint8_t *m, *n, *keep[SHMK_MSG_CACHE + 1];
	uint64_t blk, nblk, size0;

	seg = test_name("msgcache");
	shmk_unlink(seg);
	h = test_open(seg, SHMK_CREATE | SHMK_EXCL, 1 << 20, 64 << 20);
	st0 = stats(h);

	/* Kept: cached, not allocated; shmk_free() refuses it */
	m = shmk_msg_alloc(h, BIG);
	CHECK(m);
	blk = shmk_usable_size(h, m - 16) + BLK_HDR;
	CHECK(blk >= BIG + 16 + BLK_HDR);
	st = stats(h);
	CHECK_EQ(st.live_allocs, st0.live_allocs + 1);
	shmk_msg_free(h, m);
	CHECK_EQ(shmk_usable_size(h, m - 16), 0);
	st = stats(h);
	CHECK_EQ(st.live_allocs, st0.live_allocs);
	CHECK_EQ(st.cached_bytes, st0.cached_bytes + blk);
	CHECK_EQ(st.used_bytes, st0.used_bytes);
	shmk_free(h, m - 16);
	CHECK_EQ(stats(h).cached_bytes, st0.cached_bytes + blk);
	shmk_msg_free(h, m);			/* freed already: ignored */
	CHECK_EQ(stats(h).cached_bytes, st0.cached_bytes + blk);

	/* Not for a request it does not fit, nor one it would waste */
	n = shmk_msg_alloc(h, BIG + 4096);
	CHECK(n && n != m);
	shmk_free(h, n - 16);			/* not a message: not kept */
	n = shmk_msg_alloc(h, BIG / 2);
	CHECK(n && n != m);
	nblk = shmk_usable_size(h, n - 16) + BLK_HDR;
	shmk_msg_free(h, n);
	CHECK_EQ(stats(h).cached_bytes, st0.cached_bytes + blk + nblk);
	CHECK_EQ(shmk_usable_size(h, n - 16), 0);
	/* The next message of its size, within a quarter */
	n = shmk_msg_alloc(h, BIG - BIG / 8);
	CHECK(n == m);
	*(uint32_t *)n = 0xfeedbeef;

	/* Another process frees it (kept), then takes it again */
	off[0] = shmk_off(h, n);
	CHECK_EQ(test_wait(test_fork(child, off)), 0);
	CHECK_EQ(off[1], off[0]);
	st = stats(h);
	shmk_msg_free(h, shmk_ptr(h, off[1]));

	/* A read-only client takes and keeps nothing */
	m = shmk_msg_alloc(h, BIG);
	CHECK(m == n);
	off[0] = shmk_off(h, m);
	CHECK_EQ(test_wait(test_fork(reader, off)), 0);
	CHECK_EQ(shmk_usable_size(h, m - 16), blk - BLK_HDR);
	shmk_msg_free(h, m);

	/* shmk_shrink() flushes: nothing cached but runs' free slots */
	CHECK_OK(shmk_shrink(h, shmk_size(h)));
	st = stats(h);
	CHECK_EQ(st.live_allocs, st0.live_allocs);
	CHECK_EQ(st.cached_bytes, st0.cached_bytes);

	/* A full cache frees to the page heap */
	for (unsigned int i = 0; i <= SHMK_MSG_CACHE; i++)
		CHECK(keep[i] = shmk_msg_alloc(h, BIG));
	for (unsigned int i = 0; i <= SHMK_MSG_CACHE; i++)
		shmk_msg_free(h, keep[i]);
	st = stats(h);
	CHECK_EQ(st.cached_bytes, st0.cached_bytes + SHMK_MSG_CACHE * blk);
	CHECK_EQ(shmk_usable_size(h, keep[SHMK_MSG_CACHE] - 16), 0);
	CHECK_EQ(st.live_allocs, st0.live_allocs);

	/*
	 * Growth flushes first: a block larger than any free one, which the
	 * kept ones (allocated one after the other) make room for when they
	 * go back.
	 */
	size0 = shmk_size(h);
	CHECK(st.largest_free + BIG < (SHMK_MSG_CACHE - 1) * blk);
	m = shmk_alloc(h, st.largest_free + BIG);
	CHECK(m);
	CHECK_EQ(shmk_size(h), size0);
	st = stats(h);
	CHECK_EQ(st.cached_bytes, st0.cached_bytes);
	CHECK_EQ(st.live_allocs, st0.live_allocs + 1);
	shmk_free(h, m);
	st = stats(h);
	CHECK_EQ(st.live_allocs, st0.live_allocs);

	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
	test_pass("msg_cache");
	return 0;
}
