/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The allocator against a reference model (model.h): a million random
 * allocs (some aligned) and frees of mixed sizes, with the live set swinging
 * between a hundred and two thousand blocks, the heap growing on demand.
 * Every returned offset must be the model's (best fit, lowest address,
 * split, coalesce; the small tier's classes, runs and slots), contents must
 * survive, and after every batch
 * shmk_check() passes, the free blocks equal the model's and the stats are
 * exact. Ends with everything freed and the heap shrunk back.
 */
#include "internal.h"
#include "model.h"

struct live {
	uint64_t off, bsize, n;
	uint8_t tag;
};

static void fill(uint8_t *p, uint64_t n, uint8_t tag)
{
	if (n <= 256) {
		memset(p, tag, n);
	} else {
		memset(p, tag, 128);
		memset(p + n - 128, tag, 128);
	}
}

static void verify(const uint8_t *p, uint64_t n, uint8_t tag)
{
	uint64_t len = n <= 256 ? n : 128;

	for (uint64_t i = 0; i < len; i++)
		CHECK(p[i] == tag && p[n - 1 - i] == tag);
}

static void check_stats(struct shmk *h, const struct model *m, size_t nlive)
{
	struct shmk_stats st;

	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.used_bytes, m_used(m));
	CHECK_EQ(st.free_bytes, m->free_bytes);
	CHECK_EQ(st.cached_bytes, m->small_cached);
	CHECK_EQ(st.free_blocks, m->n);
	CHECK_EQ(st.largest_free, m_largest(m));
	CHECK_EQ(st.live_allocs, nlive);
	CHECK_EQ(st.named_objects, 0);
	CHECK_EQ(st.heap_size, m->heap_end - SHMK_HEAP_START);
	/* the rest: tags, the run map, run headers and their unused tails */
	CHECK_EQ(st.used_bytes + st.free_bytes + st.cached_bytes + 16 +
		 m->meta_bytes + m->run_bytes - m->small_used - m->small_cached,
		 st.heap_size);
	CHECK_EQ(st.total_size, m->heap_end);
	CHECK_EQ(st.max_size, shmk_max_size(h));
}

static uint64_t pick_size(void)
{
	uint64_t r = rnd_below(100);

	if (r < 70)
		return rnd_below(1025);
	if (r < 95)
		return 1024 + rnd_below(16 << 10);
	return (16 << 10) + rnd_below(256 << 10);
}

/*
 * The model's prediction for one allocation: its offset (0: the library
 * must grow first; call again with @grown), and the block size in the
 * page heap (0 for a small slot) and the usable size.
 */
static uint64_t predict(struct model *m, uint64_t n, uint64_t align,
			bool grown, uint64_t *bs, uint64_t *usable)
{
	int64_t pred = -1;

	*bs = 0;
	if (n <= SMALL_MAX && align <= 16)
		pred = m_small_alloc(m, n, grown, usable);
	if (pred >= 0)
		return (uint64_t)pred;
	pred = (int64_t)m_alloc(m, n, align, bs);
	*usable = *bs - 8;
	return (uint64_t)pred;
}

/*
 * One allocation, checked against the model: the same offset and usable
 * size when the model has room (after growing the heap if the library
 * did), and ENOMEM with the heap unchanged when it has none. Returns true
 * and records the block in *l when it was allocated.
 */
static bool model_alloc(struct shmk *h, struct model *m, uint64_t n,
			uint64_t align, struct live *l, long *grows, long *enomem)
{
	uint64_t bs, usable, pred = predict(m, n, align, false, &bs, &usable);
	uint8_t *p;

	errno = 0;
	p = align > 16 ? shmk_alloc_aligned(h, n, align) : shmk_alloc(h, n);
	if (!pred) {
		if (!p) {
			CHECK_EQ(errno, ENOMEM);
			CHECK_EQ(h->hdr->heap_end, m->heap_end);
			CHECK(!predict(m, n, align, true, &bs, &usable));
			(*enomem)++;
			return false;
		}
		if (h->hdr->heap_end != m->heap_end)
			(*grows)++;
		m_extend(m, h->hdr->heap_end);
		pred = predict(m, n, align, true, &bs, &usable);
		CHECK(pred);
	}
	CHECK(p != NULL);
	CHECK_EQ(shmk_off(h, p), pred);
	CHECK_EQ(shmk_usable_size(h, p), usable);
	CHECK_EQ(pred % align, 0);
	CHECK_EQ((uintptr_t)p % 16, 0);
	*l = (struct live){ pred, bs, n, (uint8_t)(1 + pred % 251) };
	fill(p, n, l->tag);
	return true;
}

/*
 * The page heap's size classes above the bins: every size falls in the
 * bounds of its tree, the trees follow each other without a gap, and a
 * larger size never goes to an earlier tree.
 */
static void tree_classes(void)
{
	uint64_t prev = 0;

	CHECK_EQ(tree_index(BIN_MAX_SIZE + BLK_ALIGN), 0);
	CHECK_EQ(tree_min(0), BIN_MAX_SIZE + BLK_ALIGN);
	for (unsigned int i = 0; i + 1 < SHMK_NTREES; i++) {
		CHECK_EQ(tree_max(i) + 1, tree_min(i + 1));
		CHECK_EQ(tree_index(tree_min(i + 1)), i + 1);
		CHECK_EQ(tree_index(tree_max(i)), i);
	}
	CHECK_EQ(tree_max(SHMK_NTREES - 1), UINT64_MAX);
	for (uint64_t s = BIN_MAX_SIZE + BLK_ALIGN; s < (1ULL << 47);
	     s += BLK_ALIGN + s / 7) {
		unsigned int i = tree_index(s);

		CHECK(i >= prev && i < SHMK_NTREES);
		CHECK(tree_min(i) <= s && s <= tree_max(i));
		prev = i;
	}
}

int main(void)
{
	const long ops = test_small() ? 40000 : 1000000;
	const long batch = test_small() ? 4000 : 10000;
	const size_t maxlive = 4096;
	struct live *live = calloc(maxlive, sizeof(*live));
	long allocs = 0, frees = 0, grows = 0, enomem = 0, aligned = 0;
	const char *seg;
	struct model m;
	struct shmk *h;
	size_t nlive = 0, maxfree = 0;

	tree_classes();
	test_seed();
	seg = test_name("model");
	h = test_open(seg, SHMK_CREATE, 256 << 10, 16 << 20);
	m_init(&m, h);
	CHECK(live);

	for (long op = 0; op < ops; op++) {
		size_t target = 100 + (size_t)(op / (ops / 25) % 4) * 600;
		bool do_alloc = !nlive || (nlive < maxlive &&
					   rnd_below(2 * target) >= nlive);

		if (do_alloc) {
			uint64_t n = pick_size(), align = 16;

			if (rnd_below(16) == 0) {
				align = 32ULL << rnd_below(8);
				aligned++;
			}
			if (model_alloc(h, &m, n, align, &live[nlive], &grows,
					&enomem))
				nlive++;
			allocs++;
		} else {
			size_t i = rnd_below(nlive);
			uint8_t *p = shmk_ptr(h, live[i].off);

			verify(p, live[i].n, live[i].tag);
			shmk_free(h, p);
			m_free_any(&m, live[i].off, live[i].bsize);
			live[i] = live[--nlive];
			frees++;
		}
		if ((op + 1) % batch == 0) {
			CHECK_OK(shmk_check(h));
			m_compare(&m, h);
			check_stats(h, &m, nlive);
			if (m.n > maxfree)
				maxfree = m.n;
		}
	}
	/*
	 * Whatever the seed did, fill the heap to its limit with 64 KiB blocks:
	 * the heap grows to the maximum and the allocation past it gets ENOMEM.
	 */
	for (long tries = 0; ; tries++) {
		long before = enomem;

		CHECK(tries <= (long)(shmk_max_size(h) >> 16) + 1 &&
		      nlive < maxlive);
		if (!model_alloc(h, &m, 64 << 10, 16, &live[nlive], &grows,
				 &enomem)) {
			CHECK_EQ(enomem, before + 1);
			break;
		}
		nlive++;
		allocs++;
	}
	CHECK_EQ(m.heap_end, shmk_max_size(h));
	CHECK_OK(shmk_check(h));
	m_compare(&m, h);
	check_stats(h, &m, nlive);

	printf("%ld allocs (%ld aligned), %ld frees, %ld growths, %ld ENOMEM,"
	       " heap %llu KiB, up to %zu free blocks\n", allocs, aligned,
	       frees, grows, enomem, (unsigned long long)(m.heap_end >> 10),
	       maxfree);
	CHECK(grows > 0 && enomem > 0);

	/*
	 * Invalid frees are refused and change nothing: inside a block, inside
	 * a slot, a run's header, the segment's header.
	 */
	for (size_t i = 0; i < nlive; i++) {
		uint8_t *p = shmk_ptr(h, live[i].off);

		if (live[i].bsize)
			shmk_free(h, p + 16);
		shmk_free(h, p + 8);
	}
	for (size_t i = 0; i < m.nruns; i++)
		shmk_free(h, shmk_ptr(h, m.runs[i]->r));
	shmk_free(h, (char *)shmk_base(h) + 100);
	CHECK_OK(shmk_check(h));
	m_compare(&m, h);
	check_stats(h, &m, nlive);
	while (nlive) {
		nlive--;
		verify(shmk_ptr(h, live[nlive].off), live[nlive].n,
		       live[nlive].tag);
		shmk_free(h, shmk_ptr(h, live[nlive].off));
		m_free_any(&m, live[nlive].off, live[nlive].bsize);
	}
	CHECK_OK(shmk_check(h));
	m_compare(&m, h);
	check_stats(h, &m, 0);

	/* A double free is refused too, in either tier. */
	for (uint64_t n = 100; n <= 20000; n += 19900) {
		struct live a, b;

		CHECK(model_alloc(h, &m, n, 16, &a, &grows, &enomem));
		CHECK(model_alloc(h, &m, n, 16, &b, &grows, &enomem));
		shmk_free(h, shmk_ptr(h, a.off));
		m_free_any(&m, a.off, a.bsize);
		shmk_free(h, shmk_ptr(h, a.off));
		shmk_free(h, shmk_ptr(h, b.off));
		m_free_any(&m, b.off, b.bsize);
		shmk_free(h, shmk_ptr(h, b.off));
		CHECK_OK(shmk_check(h));
		m_compare(&m, h);
		check_stats(h, &m, 0);
	}

	/*
	 * All free: the heap shrinks back to what the directory and the run
	 * map with the thread heaps need.
	 */
	CHECK_OK(shmk_shrink(h, SHMK_HEAP_START + (64 << 10)));
	m_trim(&m);
	CHECK_EQ(m.nruns, 0);
	CHECK(shmk_size(h) < 256 << 10);
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_close(h));
	free(live);
	m_destroy(&m);
	test_pass("model");
	return 0;
}
