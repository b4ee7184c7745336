/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Exact statistics: every field of shmk_stats() after each step of a
 * scripted sequence (fresh segment, allocations, a hole, coalescing, a
 * named object, growth, another client), computed from the documented
 * block layout: a block is max(48, size + 8 rounded up to 16) bytes.
 */
#include "internal.h"
#include "harness.h"

#define HEAP0		SHMK_HEAP_START
#define BLK(n)		shmk__blk_size_for(n)

struct expect {
	uint64_t total, heap, used, free, nfree, largest, live, named, clients;
};

static void check(struct shmk *h, const struct expect *e, int line)
{
	struct shmk_stats st;

	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_stats(h, &st));
	if (st.total_size != e->total || st.heap_size != e->heap ||
	    st.used_bytes != e->used || st.free_bytes != e->free ||
	    st.free_blocks != e->nfree || st.largest_free != e->largest ||
	    st.live_allocs != e->live || st.named_objects != e->named ||
	    st.clients != e->clients || st.max_size != 64 << 20) {
		fprintf(stderr, "line %d: stats total %llu/%llu heap %llu/%llu"
			" used %llu/%llu free %llu/%llu nfree %llu/%llu largest"
			" %llu/%llu live %llu/%llu named %llu/%llu clients "
			"%llu/%llu\n", line,
			(unsigned long long)st.total_size,
			(unsigned long long)e->total,
			(unsigned long long)st.heap_size,
			(unsigned long long)e->heap,
			(unsigned long long)st.used_bytes,
			(unsigned long long)e->used,
			(unsigned long long)st.free_bytes,
			(unsigned long long)e->free,
			(unsigned long long)st.free_blocks,
			(unsigned long long)e->nfree,
			(unsigned long long)st.largest_free,
			(unsigned long long)e->largest,
			(unsigned long long)st.live_allocs,
			(unsigned long long)e->live,
			(unsigned long long)st.named_objects,
			(unsigned long long)e->named,
			(unsigned long long)st.clients,
			(unsigned long long)e->clients);
		test_fail();
	}
}

#define CHECK_STATS(h, e) check((h), (e), __LINE__)

int main(void)
{
	const uint64_t size = 1 << 20, table = BLK(64 * 16);
	struct expect e;
	struct shmk *h, *h2;
	void *a, *b, *c, *d, *big;
	uint64_t entry;

	h = test_open(test_name("stats"), SHMK_CREATE, size, 64 << 20);
	CHECK_EQ(table, 1040);
	CHECK_ERR(shmk_stats(h, NULL), EINVAL);
	CHECK_ERR(shmk_stats(NULL, NULL), EINVAL);

	/* Fresh: the directory's table, one free block, 16 bytes of tags */
	e = (struct expect){ .total = size, .heap = size - HEAP0,
			     .used = table, .nfree = 1, .clients = 1 };
	e.free = e.largest = e.heap - 16 - table;
	CHECK_STATS(h, &e);

	/* Allocations come off the front of the free block */
	a = shmk_alloc(h, 0);
	b = shmk_alloc(h, 40);
	c = shmk_alloc(h, 41);
	d = shmk_alloc(h, 1000);
	CHECK(a && b && c && d);
	CHECK_EQ(BLK(0) + BLK(40) + BLK(41) + BLK(1000), 48 + 48 + 64 + 1008);
	e.used += 48 + 48 + 64 + 1008;
	e.free -= 48 + 48 + 64 + 1008;
	e.largest = e.free;
	e.live = 4;
	CHECK_STATS(h, &e);
	CHECK_EQ(shmk_usable_size(h, c), 56);

	/* A hole, then its neighbour: they coalesce */
	shmk_free(h, b);
	e.used -= 48;
	e.free += 48;
	e.nfree = 2;
	e.live = 3;
	CHECK_STATS(h, &e);
	shmk_free(h, c);
	e.used -= 64;
	e.free += 64;
	e.live = 2;
	CHECK_STATS(h, &e);	/* still two free blocks: b+c, and the tail */
	/* The hole is reused: best fit, not the tail */
	b = shmk_alloc(h, 100);
	CHECK_EQ(shmk_off(h, b), shmk_off(h, a) + 48);
	e.used += 112;
	e.free -= 112;
	e.nfree = 1;
	e.live = 3;
	CHECK_STATS(h, &e);
	/* d's neighbours: b (used) and the tail (free): merges into it */
	shmk_free(h, d);
	e.used -= 1008;
	e.free += 1008;
	e.largest = e.free;
	e.live = 2;
	CHECK_STATS(h, &e);

	/* A named object: one block holding entry, name and object */
	CHECK(shmk_find_or_alloc(h, "abc", 100, NULL));
	entry = BLK(((24 + 8 + 3 + 1 + 8 + 15) & ~15ULL) + 100);
	e.used += entry;
	e.free -= entry;
	e.largest = e.free;
	e.named = 1;
	CHECK_STATS(h, &e);

	/* Growth: 2 MiB does not fit; the segment grows, stats follow */
	big = shmk_alloc(h, 2 << 20);
	CHECK(big);
	e.total = shmk_size(h);
	CHECK(e.total > (2 << 20));
	e.heap = e.total - HEAP0;
	e.used += BLK(2 << 20);
	e.free = e.heap - 16 - e.used;
	e.largest = e.free;
	e.live = 3;
	CHECK_STATS(h, &e);

	/* Another client */
	CHECK_OK(shmk_open(test_segment, 0, NULL, &h2));
	e.clients = 2;
	CHECK_STATS(h, &e);
	CHECK_STATS(h2, &e);
	CHECK_OK(shmk_close(h2));
	e.clients = 1;

	/* Back to the start but for the size */
	shmk_free(h, big);
	shmk_free(h, a);
	shmk_free(h, b);
	CHECK_OK(shmk_remove(h, "abc"));
	e.used = table;
	e.free = e.largest = e.heap - 16 - table;
	e.nfree = 1;
	e.live = 0;
	e.named = 0;
	CHECK_STATS(h, &e);
	CHECK_OK(shmk_close(h));
	test_pass("stats");
	return 0;
}
