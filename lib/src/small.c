/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The small tier: requests up to SMALL_MAX bytes go to 32 size classes
 * (16 to 128 bytes in steps of 16, then four classes per doubling up to
 * 8 KiB). A class keeps its slots in runs: 64 KiB blocks of the page heap
 * (256 KiB above 1 KiB slots), each with a header, a bitmap of allocated
 * slots and a summary word of the bitmap words that have a clear bit
 * (layout.h). The run map says exactly, for any offset, whether it lies
 * in a run, so a free is validated exactly: the slot is found by a
 * reciprocal multiply and its bit must be set (a double free finds it
 * clear and is refused).
 *
 * Policy: a request takes the lowest free slot of the first run on its
 * class's list of runs with a free slot; a run that gains a free slot goes
 * to the head of that list, a run that fills leaves it; a run that becomes
 * empty goes back to the page heap (which coalesces it) unless it is the
 * only run on the list. A new run is the best fit for a chunk-aligned
 * block, as low as possible; runs lie in the first RUN_MAP_MAX chunks
 * (2 GiB) of the segment, and a small request that cannot get a run there
 * is served by the page heap.
 *
 * Every write is undo-logged inside the caller's transaction, under the
 * segment lock (tx.h): a crash anywhere is rolled back exactly. The
 * counters in the header are derived and recounted from the bitmaps.
 */
#include <stdlib.h>
#include <string.h>

#include "page_heap.h"
#include "small.h"
#include "tx.h"

#define RECIP(size)	(((1ULL << RUN_RECIP_SHIFT) + (size) - 1) / (size))

const struct shmk_small_class shmk__small_classes[SHMK_NCLASSES] = {
	{ 16, 1, 4059, 576, RECIP(16) }, { 32, 1, 2037, 320, RECIP(32) },
	{ 48, 1, 1360, 240, RECIP(48) }, { 64, 1, 1020, 192, RECIP(64) },
	{ 80, 1, 816, 176, RECIP(80) }, { 96, 1, 680, 160, RECIP(96) },
	{ 112, 1, 583, 144, RECIP(112) }, { 128, 1, 510, 128, RECIP(128) },
	{ 160, 1, 408, 128, RECIP(160) }, { 192, 1, 340, 112, RECIP(192) },
	{ 224, 1, 292, 112, RECIP(224) }, { 256, 1, 255, 96, RECIP(256) },
	{ 320, 1, 204, 96, RECIP(320) }, { 384, 1, 170, 96, RECIP(384) },
	{ 448, 1, 146, 96, RECIP(448) }, { 512, 1, 127, 80, RECIP(512) },
	{ 640, 1, 102, 80, RECIP(640) }, { 768, 1, 85, 80, RECIP(768) },
	{ 896, 1, 73, 80, RECIP(896) }, { 1024, 1, 63, 80, RECIP(1024) },
	{ 1280, 4, 204, 96, RECIP(1280) }, { 1536, 4, 170, 96, RECIP(1536) },
	{ 1792, 4, 146, 96, RECIP(1792) }, { 2048, 4, 127, 80, RECIP(2048) },
	{ 2560, 4, 102, 80, RECIP(2560) }, { 3072, 4, 85, 80, RECIP(3072) },
	{ 3584, 4, 73, 80, RECIP(3584) }, { 4096, 4, 63, 80, RECIP(4096) },
	{ 5120, 4, 51, 80, RECIP(5120) }, { 6144, 4, 42, 80, RECIP(6144) },
	{ 7168, 4, 36, 80, RECIP(7168) }, { 8192, 4, 31, 80, RECIP(8192) },
};

#define RUN_OFF(r, field) \
	((r) + (uint64_t)__builtin_offsetof(struct shmk_run, field))

static struct shmk_run *run_at(const struct shmk *h, uint64_t r)
{
	return (struct shmk_run *)(h->base + r);
}

/* The map's bytes for the chunks of the run at @r: each 1 + its index. */
static void map_mark(struct shmk *h, uint64_t r, uint32_t chunks, bool set)
{
	uint64_t first = h->hdr->run_map + ((r - 2 * BLK_HDR) >> RUN_CHUNK_SHIFT);

	for (uint32_t i = 0; i < chunks; i++) {
		uint64_t at = first + i, word = at & ~7ULL;
		uint64_t v = shmk__rd(h, word);
		unsigned int sh = (unsigned int)(at - word) * 8;

		v &= ~(0xffULL << sh);
		if (set)
			v |= (uint64_t)(i + 1) << sh;
		shmk__tx_set(h, word, v);
	}
}

static void list_push(struct shmk *h, unsigned int c, uint64_t r)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t head = hd->runs[c];

	shmk__tx_set(h, RUN_OFF(r, next), head);
	shmk__tx_set(h, RUN_OFF(r, prev), 0);
	if (head)
		shmk__tx_set(h, RUN_OFF(head, prev), r);
	tx_set_hdr(h, runs[c], r);
}

static void list_remove(struct shmk *h, unsigned int c, uint64_t r)
{
	const struct shmk_run *run = run_at(h, r);
	uint64_t next = run->next, prev = run->prev;

	if (prev)
		shmk__tx_set(h, RUN_OFF(prev, next), next);
	else
		tx_set_hdr(h, runs[c], next);
	if (next)
		shmk__tx_set(h, RUN_OFF(next, prev), prev);
	shmk__tx_set(h, RUN_OFF(r, next), 0);
	shmk__tx_set(h, RUN_OFF(r, prev), 0);
}

int shmk__small_init(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t len = h->map_size >> RUN_CHUNK_SHIFT, p;
	int r;

	if (len > RUN_MAP_MAX)
		len = RUN_MAP_MAX;
	len = ALIGN_UP(len, (uint64_t)BLK_ALIGN);
	r = shmk__heap_alloc(h, len, BLK_ALIGN, false, &p);
	if (r)
		return r;
	memset(h->base + p, 0, len);
	shmk__tx_set(h, p - BLK_HDR, shmk__rd(h, p - BLK_HDR) | BLK_F_META);
	tx_set_hdr(h, run_map, p);
	tx_set_hdr(h, run_map_len, len);
	memset(hd->runs, 0, sizeof(hd->runs));
	hd->run_blocks = 1;
	hd->run_bytes = blk_size(shmk__rd(h, p - BLK_HDR));
	hd->small_live = hd->small_used = hd->small_cached = 0;
	return 0;
}

/* A new, empty run of class @c at the head of its list; -ENOSPC: none. */
static int run_new(struct shmk *h, unsigned int c, uint64_t *rp)
{
	const struct shmk_small_class *sc = &shmk__small_classes[c];
	struct shmk_hdr *hd = h->hdr;
	uint64_t blk, r, words = (sc->nslots + 63) / 64;
	struct shmk_run *run;
	int e;

	e = shmk__heap_alloc_chunked(h, (uint64_t)sc->chunks * RUN_CHUNK,
				     hd->run_map_len << RUN_CHUNK_SHIFT, &blk);
	if (e)
		return e;
	shmk__tx_set(h, blk, shmk__rd(h, blk) | BLK_F_RUN);
	r = blk + BLK_HDR;
	/* Plain stores: a block allocated in this transaction (tx.h). */
	run = run_at(h, r);
	run->magic = RUN_MAGIC ^ r;
	run->cls = c;
	run->nslots = sc->nslots;
	run->slot_size = sc->size;
	run->first = sc->first;
	run->recip = small_recip(sc->size);
	run->nfree = sc->nslots;
	run->next = run->prev = 0;
	run->summary = words == 64 ? ~0ULL : (1ULL << words) - 1;
	memset(run->map, 0, words * 8);
	run->map[words - 1] = small_pad_bits(sc->nslots);
	map_mark(h, r, sc->chunks, true);
	list_push(h, c, r);
	hd->run_blocks++;
	hd->run_bytes += blk_size(shmk__rd(h, blk));
	hd->small_cached += (uint64_t)sc->nslots * sc->size;
	*rp = r;
	return 0;
}

int shmk__small_alloc(struct shmk *h, uint64_t size, uint64_t *payload)
{
	struct shmk_hdr *hd = h->hdr;
	unsigned int c = small_class(size), w, b;
	uint64_t r = hd->runs[c], m, slot, sz;
	struct shmk_run *run;
	int e;

	if (!r && (e = run_new(h, c, &r)))
		return e;
	run = run_at(h, r);
	w = (unsigned int)__builtin_ctzll(run->summary);
	m = run->map[w];
	b = (unsigned int)__builtin_ctzll(~m);
	m |= 1ULL << b;
	shmk__tx_set(h, RUN_OFF(r, map[w]), m);
	if (m == ~0ULL)
		shmk__tx_set(h, RUN_OFF(r, summary), run->summary & ~(1ULL << w));
	shmk__tx_set(h, RUN_OFF(r, nfree), run->nfree - 1);
	if (!run->nfree)
		list_remove(h, c, r);
	slot = (uint64_t)w * 64 + b;
	sz = run->slot_size;
	hd->small_live++;
	hd->small_used += sz;
	hd->small_cached -= sz;
	*payload = r + run->first + slot * sz;
	return 0;
}

/* Give the empty run at @r back to the page heap. */
static void run_release(struct shmk *h, uint64_t r)
{
	struct shmk_run *run = run_at(h, r);
	struct shmk_hdr *hd = h->hdr;
	uint64_t blk = r - BLK_HDR;
	unsigned int c = run->cls;

	list_remove(h, c, r);
	map_mark(h, r, shmk__small_classes[c].chunks, false);
	hd->run_blocks--;
	hd->run_bytes -= blk_size(shmk__rd(h, blk));
	hd->small_cached -= (uint64_t)run->nslots * run->slot_size;
	shmk__heap_release(h, blk);
}

void shmk__small_free(struct shmk *h, uint64_t r, uint64_t i)
{
	struct shmk_run *run = run_at(h, r);
	struct shmk_hdr *hd = h->hdr;
	unsigned int w = (unsigned int)(i / 64);
	uint64_t bit = 1ULL << (i % 64), m = run->map[w], sz;

	shmk__tx_set(h, RUN_OFF(r, map[w]), m & ~bit);
	if (m == ~0ULL)
		shmk__tx_set(h, RUN_OFF(r, summary), run->summary | 1ULL << w);
	shmk__tx_set(h, RUN_OFF(r, nfree), run->nfree + 1);
	if (run->nfree == 1)
		list_push(h, run->cls, r);
	sz = run->slot_size;
	hd->small_live--;
	hd->small_used -= sz;
	hd->small_cached += sz;
	if (run->nfree == run->nslots && (run->next || run->prev))
		run_release(h, r);
}

void shmk__small_trim(struct shmk *h)
{
	for (unsigned int c = 0; c < SHMK_NCLASSES; c++) {
		uint64_t r = h->hdr->runs[c];

		while (r) {
			const struct shmk_run *run = run_at(h, r);
			uint64_t next = run->next;

			if (run->nfree == run->nslots)
				run_release(h, r);
			r = next;
		}
	}
}

/* ---- walking, recounting, rebuilding, checking ------------------------- */

struct alloc_walk {
	const struct shmk *h;
	shmk_alloc_fn fn;
	void *arg;
};

static int alloc_walk_fn(uint64_t b, uint64_t w, void *arg)
{
	const struct alloc_walk *aw = arg;
	const struct shmk_run *run;
	uint64_t r = b + BLK_HDR;
	int ret;

	if (blk_tag(w) != BLK_TAG_USED)
		return 0;
	if (!blk_kind(w))
		return aw->fn(r, blk_size(w) - BLK_HDR, aw->arg);
	if (blk_kind(w) != BLK_F_RUN)
		return 0;
	run = small_run_ok(aw->h, r);
	if (!run)
		return -EUCLEAN;
	for (uint64_t i = 0; i < run->nslots; i++)
		if (small_slot_used(run, i) &&
		    (ret = aw->fn(r + run->first + i * run->slot_size,
				  run->slot_size, aw->arg)))
			return ret;
	return 0;
}

int shmk__alloc_walk(const struct shmk *h, shmk_alloc_fn fn, void *arg)
{
	struct alloc_walk aw = { h, fn, arg };

	return shmk__heap_walk(h, alloc_walk_fn, &aw);
}

struct small_count {
	const struct shmk *h;
	uint64_t blocks, bytes, live, used, cached, nmeta, map_chunks;
	uint64_t *runs;			/* for the checker: runs, ascending */
	size_t nruns, cap;
	bool bad;
};

static uint64_t run_used_slots(const struct shmk_run *run)
{
	uint64_t words = (run->nslots + 63) / 64, n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(READ_ONCE(run->map[i]));
	return n - (uint64_t)__builtin_popcountll(small_pad_bits(run->nslots));
}

static int count_fn(uint64_t b, uint64_t w, void *arg)
{
	struct small_count *sc = arg;
	const struct shmk_run *run;
	uint64_t used;

	if (blk_tag(w) != BLK_TAG_USED || !blk_kind(w))
		return 0;
	sc->blocks++;
	sc->bytes += blk_size(w);
	if (blk_kind(w) == BLK_F_META) {
		sc->nmeta++;
		return 0;
	}
	run = small_run_ok(sc->h, b + BLK_HDR);
	if (!run || b % RUN_CHUNK != BLK_HDR ||
	    blk_size(w) < (uint64_t)shmk__small_classes[run->cls].chunks *
			  RUN_CHUNK) {
		sc->bad = true;
		return 0;
	}
	used = run_used_slots(run);
	sc->live += used;
	sc->used += used * run->slot_size;
	sc->cached += (run->nslots - used) * run->slot_size;
	sc->map_chunks += shmk__small_classes[run->cls].chunks;
	if (sc->runs) {
		if (sc->nruns == sc->cap) {
			sc->bad = true;
			return 0;
		}
		sc->runs[sc->nruns++] = b + BLK_HDR;
	}
	return 0;
}

void shmk__small_recount(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	struct small_count sc = { .h = h };

	if (shmk__heap_walk(h, count_fn, &sc) || sc.bad)
		return;
	hd->run_blocks = sc.blocks;
	hd->run_bytes = sc.bytes;
	hd->small_live = sc.live;
	hd->small_used = sc.used;
	hd->small_cached = sc.cached;
}

static int rebuild_fn(uint64_t b, uint64_t w, void *arg)
{
	struct shmk *h = arg;
	struct shmk_run *run;
	uint64_t words, summary = 0, used, r = b + BLK_HDR;

	if (blk_tag(w) != BLK_TAG_USED || blk_kind(w) != BLK_F_RUN)
		return 0;
	if (!small_run_ok(h, r) || b % RUN_CHUNK != BLK_HDR ||
	    (r - 2 * BLK_HDR) >> RUN_CHUNK_SHIFT >= h->hdr->run_map_len)
		return -EUCLEAN;
	run = run_at(h, r);
	words = (run->nslots + 63) / 64;
	run->map[words - 1] |= small_pad_bits(run->nslots);
	for (uint64_t i = 0; i < words; i++)
		if (run->map[i] != ~0ULL)
			summary |= 1ULL << i;
	used = run_used_slots(run);
	run->summary = summary;
	run->nfree = run->nslots - used;
	run->next = run->prev = 0;
	map_mark(h, r, shmk__small_classes[run->cls].chunks, true);
	if (run->nfree)
		list_push(h, run->cls, r);
	return 0;
}

/*
 * Repair (the undo log off, see recovery.c): the run map, the lists, the
 * summaries and the free counts, from the runs' bitmaps. Runs are found by
 * the block chain; the map must be a live block of its proper size.
 */
int shmk__small_rebuild(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t map = hd->run_map, len = hd->run_map_len, w;

	if (map % BLK_ALIGN || map < SHMK_HEAP_START + 16 ||
	    map + len > hd->heap_end)
		return -EUCLEAN;
	w = shmk__rd(h, map - BLK_HDR);
	if (blk_tag(w) != BLK_TAG_USED || blk_kind(w) != BLK_F_META ||
	    blk_size(w) < len + BLK_HDR)
		return -EUCLEAN;
	memset(h->base + map, 0, len);
	memset(hd->runs, 0, sizeof(hd->runs));
	if (shmk__heap_walk(h, rebuild_fn, h))
		return -EUCLEAN;
	shmk__small_recount(h);
	return 0;
}

#define bad(what, at)	shmk__check_bad((what), (at))

static int find_run(const struct small_count *sc, uint64_t r)
{
	size_t lo = 0, hi = sc->nruns;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sc->runs[mid] < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sc->nruns && sc->runs[lo] == r ? (int)lo : -1;
}

static int run_check(const struct shmk *h, uint64_t r)
{
	const struct shmk_run *run = small_run_ok(h, r);
	const struct shmk_hdr *hd = h->hdr;
	uint64_t words, summary = 0, idx, map = READ_ONCE(hd->run_map);

	if (!run)
		return bad("run header", r);
	words = (run->nslots + 63) / 64;
	if ((READ_ONCE(run->map[words - 1]) & small_pad_bits(run->nslots)) !=
	    small_pad_bits(run->nslots))
		return bad("run bitmap padding", r);
	for (uint64_t i = 0; i < words; i++)
		if (READ_ONCE(run->map[i]) != ~0ULL)
			summary |= 1ULL << i;
	if (READ_ONCE(run->summary) != summary)
		return bad("run summary", r);
	if (READ_ONCE(run->nfree) != run->nslots - run_used_slots(run))
		return bad("run free count", r);
	idx = (r - 2 * BLK_HDR) >> RUN_CHUNK_SHIFT;
	for (uint32_t i = 0; i < shmk__small_classes[run->cls].chunks; i++)
		if (idx + i >= READ_ONCE(hd->run_map_len) ||
		    READ_ONCE(h->base[map + idx + i]) != i + 1)
			return bad("run map", r);
	return 0;
}

/*
 * The small tier's part of shmk_check(): the run map is the one BLK_F_META
 * block and marks exactly the runs' chunks; every run header and bitmap
 * is consistent; each class's list holds exactly its runs with a free
 * slot, each once, doubly linked; the counters are exact.
 */
int shmk__small_check(const struct shmk *h)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t map = READ_ONCE(hd->run_map), len = READ_ONCE(hd->run_map_len);
	uint64_t want = h->map_size >> RUN_CHUNK_SHIFT, marked = 0, w, listed = 0;
	uint64_t nfree_runs = 0, he = READ_ONCE(hd->heap_end);
	struct small_count sc = { .h = h };
	uint8_t *seen = NULL;
	int r;

	if (want > RUN_MAP_MAX)
		want = RUN_MAP_MAX;
	want = ALIGN_UP(want, (uint64_t)BLK_ALIGN);
	if (len != want || map % BLK_ALIGN || map < SHMK_HEAP_START + 16 ||
	    map + len > he)
		return bad("run map bounds", map);
	w = READ_ONCE(*shmk__w(h, map - BLK_HDR));
	if (blk_tag(w) != BLK_TAG_USED || blk_kind(w) != BLK_F_META ||
	    blk_size(w) < len + BLK_HDR)
		return bad("run map block", map);
	sc.cap = (size_t)((he >> RUN_CHUNK_SHIFT) + 1);
	sc.runs = calloc(sc.cap, sizeof(*sc.runs));
	seen = calloc(sc.cap, 1);
	r = -ENOMEM;
	if (!sc.runs || !seen)
		goto out;
	r = shmk__heap_walk(h, count_fn, &sc);
	if (r == -EUCLEAN || (!r && sc.bad))
		r = bad("run block", 0);
	if (r)
		goto out;
	if (sc.nmeta != 1) {
		r = bad("run map blocks", sc.nmeta);
		goto out;
	}
	for (size_t i = 0; i < sc.nruns; i++) {
		if ((r = run_check(h, sc.runs[i])))
			goto out;
		if (READ_ONCE(((const struct shmk_run *)
			       (h->base + sc.runs[i]))->nfree))
			nfree_runs++;
	}
	for (uint64_t i = 0; i < len; i++)
		if (READ_ONCE(h->base[map + i]))
			marked++;
	if (marked != sc.map_chunks) {
		r = bad("run map marks chunks of no run", marked);
		goto out;
	}
	for (unsigned int c = 0; c < SHMK_NCLASSES; c++) {
		uint64_t n = READ_ONCE(hd->runs[c]), prev = 0;

		while (n) {
			const struct shmk_run *run;
			int i = find_run(&sc, n);

			if (i < 0 || seen[i]) {
				r = bad("run list: not a run, or twice", n);
				goto out;
			}
			seen[i] = 1;
			run = (const void *)(h->base + n);
			if (run->cls != c || !READ_ONCE(run->nfree) ||
			    READ_ONCE(run->prev) != prev) {
				r = bad("run list entry", n);
				goto out;
			}
			listed++;
			prev = n;
			n = READ_ONCE(run->next);
		}
	}
	if (listed != nfree_runs) {
		r = bad("runs with a free slot missing from their list", listed);
		goto out;
	}
	if (sc.blocks != READ_ONCE(hd->run_blocks) ||
	    sc.bytes != READ_ONCE(hd->run_bytes) ||
	    sc.live != READ_ONCE(hd->small_live) ||
	    sc.used != READ_ONCE(hd->small_used) ||
	    sc.cached != READ_ONCE(hd->small_cached))
		r = bad("small tier counters", 0);
out:
	free(sc.runs);
	free(seen);
	return r;
}
