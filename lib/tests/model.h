/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * A reference model of the allocator's policy, for the tests: free blocks
 * in two sorted arrays (by address, and by (size, address)), best fit with
 * ties to the lowest address, splitting and coalescing exactly as the
 * library documents; and the small tier's runs, each with its bitmap, as
 * one thread's current runs or on per-class lists in the documented order.
 * It predicts every offset shmk_alloc() returns from one thread.
 */
#ifndef SHMK_TEST_MODEL_H
#define SHMK_TEST_MODEL_H

#include "harness.h"
#include "page_heap.h"
#include "small.h"

struct mblk {
	uint64_t off, size;
};

struct mrun {
	uint64_t r;			/* payload offset */
	uint64_t bsize;			/* its block's size */
	unsigned int cls;
	uint64_t state;			/* RUN_OWNED (ours), _LISTED, _FULL */
	uint64_t nfreed;		/* RUN_FULL: frees since */
	uint64_t map[64];		/* 1: allocated */
	struct mrun *next, *prev;	/* the class's list of listed runs */
};

struct model {
	struct mblk *by_addr, *by_size;
	size_t n, cap;
	uint64_t heap_end;
	uint64_t used_bytes, free_bytes, nallocs;
	/* The small tier */
	struct mrun *runs[1024];		/* all runs, any order */
	size_t nruns;
	struct mrun *head[SHMK_NCLASSES];
	struct mrun *cur[SHMK_NCLASSES];	/* the thread's current runs */
	unsigned int hint[SHMK_NCLASSES];
	uint64_t map_end;		/* runs lie below this offset */
	uint64_t meta_bytes;		/* the run map's block */
	uint64_t run_bytes, small_live, small_used, small_cached;
};

static int mcmp_size(const struct mblk *a, const struct mblk *b)
{
	if (a->size != b->size)
		return a->size < b->size ? -1 : 1;
	return a->off < b->off ? -1 : a->off > b->off;
}

/* First index in by_size not below (size, off). */
static size_t m_lower_size(const struct model *m, uint64_t size, uint64_t off)
{
	size_t lo = 0, hi = m->n;
	struct mblk k = { off, size };

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (mcmp_size(&m->by_size[mid], &k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t m_lower_addr(const struct model *m, uint64_t off)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->by_addr[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void m_insert(struct model *m, uint64_t off, uint64_t size)
{
	size_t i;

	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 1024;
		m->by_addr = realloc(m->by_addr, m->cap * sizeof(struct mblk));
		m->by_size = realloc(m->by_size, m->cap * sizeof(struct mblk));
		CHECK(m->by_addr && m->by_size);
	}
	i = m_lower_addr(m, off);
	memmove(&m->by_addr[i + 1], &m->by_addr[i],
		(m->n - i) * sizeof(struct mblk));
	m->by_addr[i] = (struct mblk){ off, size };
	i = m_lower_size(m, size, off);
	memmove(&m->by_size[i + 1], &m->by_size[i],
		(m->n - i) * sizeof(struct mblk));
	m->by_size[i] = (struct mblk){ off, size };
	m->n++;
	m->free_bytes += size;
}

static void m_remove(struct model *m, uint64_t off, uint64_t size)
{
	size_t i = m_lower_addr(m, off), j = m_lower_size(m, size, off);

	CHECK(i < m->n && m->by_addr[i].off == off);
	CHECK(j < m->n && m->by_size[j].off == off);
	memmove(&m->by_addr[i], &m->by_addr[i + 1],
		(m->n - i - 1) * sizeof(struct mblk));
	memmove(&m->by_size[j], &m->by_size[j + 1],
		(m->n - j - 1) * sizeof(struct mblk));
	m->n--;
	m->free_bytes -= size;
}

/* Best fit for @need: index in by_size, or m->n. */
static size_t m_fit(const struct model *m, uint64_t need)
{
	return m_lower_size(m, need, 0);
}

static int m_walk_fn(uint64_t b, uint64_t w, void *arg)
{
	struct model *m = arg;

	if (blk_tag(w) == BLK_TAG_END)
		return 0;
	if (blk_used(w)) {
		CHECK(blk_kind(w) != BLK_F_RUN);	/* a fresh heap */
		if (blk_kind(w) == BLK_F_META) {
			m->meta_bytes = blk_size(w);
			return 0;
		}
		m->used_bytes += blk_size(w);
		m->nallocs++;
	} else {
		m_insert(m, b, blk_size(w));
	}
	return 0;
}

/* Start from the library's current state. */
static void m_init(struct model *m, const struct shmk *h)
{
	memset(m, 0, sizeof(*m));
	m->heap_end = h->hdr->heap_end;
	m->map_end = h->hdr->run_map_len << RUN_CHUNK_SHIFT;
	CHECK_OK(shmk__heap_walk(h, m_walk_fn, m));
}

/* The heap grew to @new_end: the old end sentinel starts a free block. */
static void m_extend(struct model *m, uint64_t new_end)
{
	uint64_t s = m->heap_end - 8, size = new_end - m->heap_end;

	if (new_end <= m->heap_end)
		return;
	if (m->n && m->by_addr[m->n - 1].off + m->by_addr[m->n - 1].size == s) {
		struct mblk l = m->by_addr[m->n - 1];

		m_remove(m, l.off, l.size);
		m_insert(m, l.off, l.size + size);
	} else {
		m_insert(m, s, size);
	}
	m->heap_end = new_end;
}

/*
 * Predict an allocation: returns the payload offset and the block size, or
 * 0 when nothing fits (the library then grows, or fails).
 */
static uint64_t m_alloc(struct model *m, uint64_t n, uint64_t align,
			uint64_t *bsize)
{
	uint64_t need = shmk__blk_size_for(n), req = need, b, bs, start, tail;
	size_t i;

	if (align > BLK_ALIGN)
		req = need + align + BLK_MIN;
	i = m_fit(m, req);
	if (i == m->n)
		return 0;
	b = m->by_size[i].off;
	bs = m->by_size[i].size;
	m_remove(m, b, bs);
	start = b;
	if (align > BLK_ALIGN) {
		uint64_t p = (b + 8 + align - 1) & ~(align - 1);

		if (p - 8 != b && p - 8 - b < BLK_MIN)
			p += align;
		start = p - 8;
		if (start > b)
			m_insert(m, b, start - b);
	}
	tail = b + bs - (start + need);
	if (tail >= BLK_MIN)
		m_insert(m, start + need, tail);
	else
		need += tail;
	m->used_bytes += need;
	m->nallocs++;
	*bsize = need;
	return start + 8;
}

static void m_free(struct model *m, uint64_t payload, uint64_t size)
{
	uint64_t b = payload - 8, start = b, end = b + size;
	size_t i = m_lower_addr(m, b);

	m->used_bytes -= size;
	m->nallocs--;
	if (i < m->n && m->by_addr[i].off == end) {
		struct mblk nb = m->by_addr[i];

		m_remove(m, nb.off, nb.size);
		end += nb.size;
	}
	if (i > 0 && m->by_addr[i - 1].off + m->by_addr[i - 1].size == b) {
		struct mblk pb = m->by_addr[i - 1];

		m_remove(m, pb.off, pb.size);
		start = pb.off;
	}
	m_insert(m, start, end - start);
}

/* ---- the small tier ---- */

/*
 * A chunk-aligned block of @bsize bytes for a run: its block offset, 0 when
 * nothing fits (the library grows), or UINT64_MAX when the fit lies above
 * the run map's reach.
 */
static uint64_t m_alloc_chunked(struct model *m, uint64_t bsize,
				uint64_t *got)
{
	uint64_t req = bsize + RUN_CHUNK + BLK_MIN, b, bs, start, tail;
	size_t i = m_fit(m, req);

	if (i == m->n)
		return 0;
	b = m->by_size[i].off;
	bs = m->by_size[i].size;
	start = ((b - 8 + RUN_CHUNK - 1) & ~(uint64_t)(RUN_CHUNK - 1)) + 8;
	if (start != b && start - b < BLK_MIN)
		start += RUN_CHUNK;
	if (start - 8 + bsize > m->map_end)
		return UINT64_MAX;
	m_remove(m, b, bs);
	if (start > b)
		m_insert(m, b, start - b);
	tail = b + bs - (start + bsize);
	if (tail >= BLK_MIN)
		m_insert(m, start + bsize, tail);
	else
		bsize += tail;
	*got = bsize;
	return start;
}

static void m_list_push(struct model *m, struct mrun *run)
{
	run->state = RUN_LISTED;
	run->prev = NULL;
	run->next = m->head[run->cls];
	if (run->next)
		run->next->prev = run;
	m->head[run->cls] = run;
}

static void m_list_remove(struct model *m, struct mrun *run)
{
	if (run->prev)
		run->prev->next = run->next;
	else
		m->head[run->cls] = run->next;
	if (run->next)
		run->next->prev = run->prev;
	run->next = run->prev = NULL;
}

static struct mrun *m_run_of(const struct model *m, uint64_t off)
{
	for (size_t i = 0; i < m->nruns; i++) {
		const struct shmk_small_class *sc =
			&shmk__small_classes[m->runs[i]->cls];
		uint64_t r = m->runs[i]->r;

		if (off >= r && off < r - 16 + (uint64_t)sc->chunks * RUN_CHUNK)
			return m->runs[i];
	}
	return NULL;
}

static void m_free(struct model *m, uint64_t payload, uint64_t size);

static void m_run_release(struct model *m, struct mrun *run)
{
	const struct shmk_small_class *sc = &shmk__small_classes[run->cls];
	size_t i;

	if (run->state == RUN_LISTED)
		m_list_remove(m, run);
	if (m->cur[run->cls] == run)
		m->cur[run->cls] = NULL;
	m->run_bytes -= run->bsize;
	m->small_cached -= (uint64_t)sc->nslots * sc->size;
	/* m_free() takes an ordinary block */
	m->used_bytes += run->bsize;
	m->nallocs++;
	m_free(m, run->r, run->bsize);
	for (i = 0; m->runs[i] != run; i++)
		;
	m->runs[i] = m->runs[--m->nruns];
	free(run);
}

static bool m_run_empty(const struct mrun *run)
{
	const struct shmk_small_class *sc = &shmk__small_classes[run->cls];

	for (unsigned int w = 0; w < (sc->nslots + 63) / 64; w++)
		if (run->map[w] != (w == (sc->nslots - 1) / 64 ?
				    small_pad_bits(sc->nslots) : 0))
			return false;
	return true;
}

/*
 * The first free slot of @run from bitmap word @w on, wrapping around
 * (the lowest one in that word): its index, or -1 when the run is full.
 */
static int64_t m_run_take(struct mrun *run, unsigned int *w)
{
	unsigned int words = (shmk__small_classes[run->cls].nslots + 63) / 64;
	unsigned int k = *w < words ? *w : 0;

	for (unsigned int n = 0; n < words; n++) {
		if (run->map[k] != ~0ULL) {
			unsigned int b = (unsigned int)__builtin_ctzll(~run->map[k]);

			run->map[k] |= 1ULL << b;
			*w = k;
			return (int64_t)k * 64 + b;
		}
		if (++k == words)
			k = 0;
	}
	return -1;
}

/*
 * A small request: the payload offset and the slot size, 0 when the
 * library must grow first (then call again with @grown), or -1 when the
 * page heap serves it (no run can be had). The thread's current run of
 * the class serves it, from the thread's hint; a full one is let go
 * (RUN_FULL) for the head of the class's list, or a new run.
 */
static int64_t m_small_alloc(struct model *m, uint64_t n, bool grown,
			     uint64_t *usable)
{
	unsigned int c = small_class(n);
	const struct shmk_small_class *sc = &shmk__small_classes[c];
	struct mrun *run = m->cur[c];
	int64_t i = -1;

	if (run)
		i = m_run_take(run, &m->hint[c]);
	if (i < 0) {
		uint64_t bsize = 0, b = 0;

		if (!m->head[c]) {
			b = m_alloc_chunked(m, (uint64_t)sc->chunks * RUN_CHUNK,
					    &bsize);
			if (!b && !grown)
				return 0;
		}
		if (run) {
			run->state = RUN_FULL;
			run->nfreed = 0;
			m->cur[c] = NULL;
		}
		run = m->head[c];
		if (run) {
			m_list_remove(m, run);
		} else {
			if (!b || b == UINT64_MAX)
				return -1;
			CHECK(m->nruns < ARRAY_SIZE(m->runs));
			run = calloc(1, sizeof(*run));
			CHECK(run);
			run->r = b + 8;
			run->cls = c;
			run->bsize = bsize;
			if (sc->nslots % 64)
				run->map[sc->nslots / 64] =
					~0ULL << (sc->nslots % 64);
			m->runs[m->nruns++] = run;
			m->run_bytes += bsize;
			m->small_cached += (uint64_t)sc->nslots * sc->size;
		}
		run->state = RUN_OWNED;
		m->cur[c] = run;
		m->hint[c] = 0;
		i = m_run_take(run, &m->hint[c]);
		CHECK(i >= 0);
	}
	m->small_live++;
	m->small_used += sc->size;
	m->small_cached -= sc->size;
	*usable = sc->size;
	return (int64_t)(run->r + sc->first + (uint64_t)i * sc->size);
}

/*
 * Free an allocation of either tier (@size: the block size in the heap).
 * A slot of the thread's current run lowers its hint; a full run goes
 * back on its list at the eighth of its slots freed since; a run nobody
 * owns that empties goes back to the page heap.
 */
static void m_free_any(struct model *m, uint64_t off, uint64_t size)
{
	struct mrun *run = m_run_of(m, off);
	const struct shmk_small_class *sc;
	uint64_t i;

	if (!run) {
		m_free(m, off, size);
		return;
	}
	sc = &shmk__small_classes[run->cls];
	i = (off - run->r - sc->first) / sc->size;
	CHECK(run->map[i / 64] & (1ULL << (i % 64)));
	run->map[i / 64] &= ~(1ULL << (i % 64));
	m->small_live--;
	m->small_used -= sc->size;
	m->small_cached += sc->size;
	if (run->state == RUN_OWNED) {
		if (i / 64 < m->hint[run->cls])
			m->hint[run->cls] = (unsigned int)(i / 64);
	} else if (m_run_empty(run)) {
		m_run_release(m, run);
	} else if (run->state == RUN_FULL &&
		   ++run->nfreed >= (sc->nslots >= 16 ? sc->nslots / 8 : 1)) {
		m_list_push(m, run);
	}
}

static int m_run_cmp(const void *a, const void *b)
{
	uint64_t x = (*(struct mrun *const *)a)->r;
	uint64_t y = (*(struct mrun *const *)b)->r;

	return (x > y) - (x < y);
}

static bool m_run_has_free(const struct mrun *run)
{
	unsigned int words = (shmk__small_classes[run->cls].nslots + 63) / 64;

	for (unsigned int w = 0; w < words; w++)
		if (run->map[w] != ~0ULL)
			return true;
	return false;
}

/*
 * shmk_shrink() first gives back every empty run and lists again every
 * run let go full that has a free slot, in address order.
 */
static void m_trim(struct model *m)
{
	struct mrun *by_addr[ARRAY_SIZE(m->runs)];
	size_t n = m->nruns;

	memcpy(by_addr, m->runs, n * sizeof(*by_addr));
	qsort(by_addr, n, sizeof(*by_addr), m_run_cmp);
	for (size_t i = 0; i < n; i++) {
		struct mrun *run = by_addr[i];

		if (m_run_empty(run))
			m_run_release(m, run);
		else if (run->state == RUN_FULL && m_run_has_free(run))
			m_list_push(m, run);
	}
}

/* The figures shmk_stats() gives for the model's state. */
static uint64_t m_used(const struct model *m)
{
	return m->used_bytes + m->small_used;
}

static void m_destroy(struct model *m)
{
	free(m->by_addr);
	free(m->by_size);
	for (size_t i = 0; i < m->nruns; i++)
		free(m->runs[i]);
	memset(m, 0, sizeof(*m));
}

static uint64_t m_largest(const struct model *m)
{
	return m->n ? m->by_size[m->n - 1].size : 0;
}

struct m_cmp {
	const struct model *m;
	size_t i;
};

static int m_cmp_fn(uint64_t b, uint64_t w, void *arg)
{
	struct m_cmp *c = arg;

	if (blk_tag(w) == BLK_TAG_END || blk_used(w))
		return 0;
	if (c->i >= c->m->n || c->m->by_addr[c->i].off != b ||
	    c->m->by_addr[c->i].size != blk_size(w)) {
		fprintf(stderr, "free block %#llx+%llu not in the model\n",
			(unsigned long long)b,
			(unsigned long long)blk_size(w));
		return 1;
	}
	c->i++;
	return 0;
}

/* The library's free blocks are exactly the model's. */
static void m_compare(const struct model *m, const struct shmk *h)
{
	struct m_cmp c = { m, 0 };

	CHECK_OK(shmk__heap_walk(h, m_cmp_fn, &c));
	CHECK_EQ(c.i, m->n);
	CHECK_EQ(h->hdr->heap_end, m->heap_end);
}

#endif /* SHMK_TEST_MODEL_H */
