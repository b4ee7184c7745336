/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Exact statistics: every field of shmk_stats() after each step of a
 * scripted sequence (fresh segment, allocations, a hole, coalescing, a
 * named object, small slots and their runs, growth, another client),
 * computed from the documented layout: a block of the page heap is
 * max(48, size + 8 rounded up to 16) bytes; a small request takes a slot
 * of its class in a 64 KiB run; used + free + cached + overhead is the
 * heap's size.
 */
#include "internal.h"
#include "small.h"
#include <pthread.h>
#include <sched.h>

#include "harness.h"

#define HEAP0		SHMK_HEAP_START
#define BLK(n)		shmk__blk_size_for(n)
/* The run map's block: the map, then the thread heaps, 64-byte aligned */
#define META(max)	BLK(small_meta_bytes(max))

struct expect {
	uint64_t total, heap, used, free, nfree, largest, live, named, clients;
	uint64_t cached;
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
	    st.clients != e->clients || st.cached_bytes != e->cached ||
	    st.max_size != 64 << 20) {
		fprintf(stderr, "line %d: stats total %llu/%llu heap %llu/%llu"
			" used %llu/%llu free %llu/%llu nfree %llu/%llu largest"
			" %llu/%llu live %llu/%llu named %llu/%llu clients "
			"%llu/%llu cached %llu/%llu\n", line,
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
			(unsigned long long)e->clients,
			(unsigned long long)st.cached_bytes,
			(unsigned long long)e->cached);
		test_fail();
	}
}

#define CHECK_STATS(h, e) check((h), (e), __LINE__)

static volatile int resizing;

/* Grow and shrink the segment by a page, over and over. */
static void *resizer(void *arg)
{
	struct shmk *h = arg;
	size_t base = shmk_size(h), page = (size_t)sysconf(_SC_PAGESIZE);

	while (resizing) {
		if (shmk_grow(h, base + page) || shmk_shrink(h, base))
			return (void *)1;
	}
	return NULL;
}

/*
 * Every figure of a snapshot is of one moment: the active size too, while
 * another thread grows and shrinks the segment all the time.
 */
static void snapshot_under_resizes(struct shmk *h)
{
	const long rounds = test_small() ? 2000 : 50000;
	const uint64_t base = shmk_size(h);
	struct shmk_stats st;
	pthread_t t;
	void *ret;
	long moved = 0;

	resizing = 1;
	CHECK_OK(pthread_create(&t, NULL, resizer, h));
	/* valgrind runs one thread at a time: wait for the resizer too */
	for (long i = 0; i < rounds || (!moved && i < 1000 * rounds); i++) {
		if (i % 64 == 0)
			sched_yield();
		CHECK_OK(shmk_stats(h, &st));
		CHECK_EQ(st.total_size, st.heap_size + HEAP0);
		CHECK_EQ(st.used_bytes + st.free_bytes + 16 + META(64 << 20),
			 st.heap_size);
		moved += st.total_size != base;
	}
	resizing = 0;
	CHECK_OK(pthread_join(t, &ret));
	CHECK(ret == NULL);
	CHECK(moved > 0);
}

int main(void)
{
	const uint64_t size = 1 << 20, table = BLK(64 * 5);
	/*
	 * The run map, a byte per 64 KiB of the 64 MiB reservation, and the
	 * thread heaps, 64-byte aligned after it
	 */
	const uint64_t map = META(64 << 20);
	const uint64_t S = SMALL_MAX + 1;	/* the page heap's */
	const uint64_t ba = BLK(S), bb = BLK(S + 40), bc = BLK(S + 41);
	const uint64_t bd = BLK(S + 1000);
	const struct shmk_small_class *c16 = &shmk__small_classes[0];
	const struct shmk_small_class *c48 = &shmk__small_classes[2];
	struct expect e;
	struct shmk *h, *h2;
	void *a, *b, *c, *d, *big, *s[3];
	uint64_t entry, end, gap;

	h = test_open(test_name("stats"), SHMK_CREATE, size, 64 << 20);
	CHECK_EQ(table, 336);
	CHECK_EQ(map, 1024 + 48 + SHMK_THEAPS * 320 + 16);
	CHECK_ERR(shmk_stats(h, NULL), EINVAL);
	CHECK_ERR(shmk_stats(NULL, NULL), EINVAL);
	snapshot_under_resizes(h);

	/*
	 * Fresh: the directory's table and the run map, one free block, 16
	 * bytes of tags; the map is overhead, not used.
	 */
	e = (struct expect){ .total = size, .heap = size - HEAP0,
			     .used = table, .nfree = 1, .clients = 1 };
	e.free = e.largest = e.heap - 16 - table - map;
	CHECK_STATS(h, &e);

	/* Allocations come off the front of the free block */
	a = shmk_alloc(h, S + 0);
	b = shmk_alloc(h, S + 40);
	c = shmk_alloc(h, S + 41);
	d = shmk_alloc(h, S + 1000);
	CHECK(a && b && c && d);
	CHECK_EQ(ba + bb + bc + bd, 8208 + 8256 + 8256 + 9216);
	e.used += ba + bb + bc + bd;
	e.free -= ba + bb + bc + bd;
	e.largest = e.free;
	e.live = 4;
	CHECK_STATS(h, &e);
	CHECK_EQ(shmk_usable_size(h, c), bc - 8);

	/* A hole, then its neighbour: they coalesce */
	shmk_free(h, b);
	e.used -= bb;
	e.free += bb;
	e.nfree = 2;
	e.live = 3;
	CHECK_STATS(h, &e);
	shmk_free(h, c);
	e.used -= bc;
	e.free += bc;
	e.live = 2;
	CHECK_STATS(h, &e);	/* still two free blocks: b+c, and the tail */
	/* The hole is reused: best fit, not the tail */
	b = shmk_alloc(h, bb + bc - 8);
	CHECK_EQ(shmk_off(h, b), shmk_off(h, a) + ba);
	e.used += bb + bc;
	e.free -= bb + bc;
	e.nfree = 1;
	e.live = 3;
	CHECK_STATS(h, &e);
	/* d's neighbours: b (used) and the tail (free): merges into it */
	shmk_free(h, d);
	e.used -= bd;
	e.free += bd;
	e.largest = e.free;
	e.live = 2;
	CHECK_STATS(h, &e);

	/* A named object: one block holding entry, name and object */
	CHECK(shmk_find_or_alloc(h, "abc", 100, NULL));
	entry = BLK(((16 + 3 + 1 + 8 + 15) & ~15ULL) + 100);
	e.used += entry;
	e.free -= entry;
	e.largest = e.free;
	e.named = 1;
	CHECK_STATS(h, &e);

	/*
	 * Small slots: the first request of a class makes a 64 KiB run whose
	 * block starts 8 bytes past the next chunk boundary (the gap before
	 * it stays free); the rest of its slots are cached, and only the slot
	 * counts as used.
	 */
	end = shmk_off(h, b) - 8 + bb + bc + entry;	/* the free block */
	gap = ALIGN_UP(end, (uint64_t)RUN_CHUNK) + 8 - end;
	CHECK(gap >= 48);
	s[0] = shmk_alloc(h, 0);
	CHECK(s[0]);
	CHECK_EQ(shmk_usable_size(h, s[0]), 16);
	CHECK_EQ(shmk_off(h, s[0]), end + gap + 8 + c16->first);
	e.used += 16;
	e.cached = (uint64_t)c16->nslots * 16 - 16;
	e.free -= RUN_CHUNK;
	e.nfree = 2;
	e.largest = e.free - gap;
	e.live = 3;
	CHECK_STATS(h, &e);
	/* Two of another class: a second run, right after the first */
	s[1] = shmk_alloc(h, 40);
	s[2] = shmk_alloc(h, 41);
	CHECK(s[1] && s[2]);
	CHECK_EQ(shmk_off(h, s[1]), end + gap + RUN_CHUNK + 8 + c48->first);
	CHECK_EQ(shmk_off(h, s[2]), shmk_off(h, s[1]) + 48);
	e.used += 96;
	e.cached += (uint64_t)c48->nslots * 48 - 96;
	e.free -= RUN_CHUNK;
	e.largest -= RUN_CHUNK;
	e.live = 5;
	CHECK_STATS(h, &e);
	/* A freed slot is cached; a class's last run stays when empty */
	shmk_free(h, s[1]);
	shmk_free(h, s[1]);	/* a double free: refused */
	shmk_free(h, (char *)s[2] + 16);	/* inside a slot: refused */
	e.used -= 48;
	e.cached += 48;
	e.live = 4;
	CHECK_STATS(h, &e);
	CHECK_EQ(shmk_usable_size(h, s[1]), 0);

	/* Growth: 2 MiB does not fit; the segment grows, stats follow */
	big = shmk_alloc(h, 2 << 20);
	CHECK(big);
	e.total = shmk_size(h);
	CHECK(e.total > (2 << 20));
	e.free += e.total - size - BLK(2 << 20);
	e.heap = e.total - HEAP0;
	e.used += BLK(2 << 20);
	/* the gap before the runs, or what the big block left of the tail */
	e.largest = gap > e.free - gap ? gap : e.free - gap;
	e.live = 5;
	CHECK_STATS(h, &e);

	/* Another client */
	CHECK_OK(shmk_open(test_segment, 0, NULL, &h2));
	e.clients = 2;
	CHECK_STATS(h, &e);
	CHECK_STATS(h2, &e);
	CHECK_OK(shmk_close(h2));
	e.clients = 1;

	/* Back to the start but for the size, once shrink gives runs back */
	shmk_free(h, big);
	shmk_free(h, a);
	shmk_free(h, b);
	shmk_free(h, s[0]);
	shmk_free(h, s[2]);
	CHECK_OK(shmk_remove(h, "abc"));
	e.used = table;
	e.cached = (uint64_t)c16->nslots * 16 + (uint64_t)c48->nslots * 48;
	e.live = 0;
	e.named = 0;
	e.free = e.heap - 16 - table - map - 2 * RUN_CHUNK;
	e.nfree = 2;
	e.largest = e.free - (end + gap - (HEAP0 + 8 + table + map));
	CHECK_STATS(h, &e);
	CHECK_OK(shmk_shrink(h, shmk_size(h)));
	e.cached = 0;
	e.free = e.largest = e.heap - 16 - table - map;
	e.nfree = 1;
	CHECK_STATS(h, &e);
	CHECK_OK(shmk_close(h));
	test_pass("stats");
	return 0;
}
