/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The page heap (tier 0 of the allocator; alloc.c is its front end):
 * boundary-tagged blocks in the segment (layout.h), free
 * blocks indexed by size for best fit with ties to the lowest address:
 *
 *  - blocks up to BIN_MAX_SIZE sit in exact-size bins, each a tree ordered
 *    by address, with a bitmap of the bins that are not empty: a small
 *    request takes the first set bit at or above its bin and that bin's
 *    leftmost block, without searching (the fast path);
 *  - larger blocks sit in a tree per eighth of an octave of sizes, keyed by
 *    (size, address), with a bitmap of the trees that are not empty: the
 *    best fit is the lower bound in the request's tree, else the first
 *    block of the next tree that is not empty. Small trees keep the walks
 *    short and their nodes few: each node is a free block's first bytes,
 *    anywhere in the heap.
 *
 * The boundary tags (a header word and, in free blocks, a footer) index all
 * blocks by address: a freed block finds both physical neighbours in O(1)
 * and coalesces with every free one at once, so free blocks are never
 * adjacent. Alloc and free are O(log n) in the number of free blocks.
 *
 * Requests of up to SMALL_MAX bytes go to the small tier first (small.c),
 * whose runs are blocks of this heap, flagged BLK_F_RUN.
 *
 * When nothing fits, the heap grows through the backend (every peer sees
 * the new memory) up to the segment's max size. All metadata writes go
 * through the undo log (tx.h); the caller holds the lock inside a
 * transaction.
 */
#include <string.h>

#include "page_heap.h"
#include "rbtree.h"
#include "tx.h"

#define GROW_MIN_STEP	(256u << 10)

uint64_t shmk__blk_size_for(uint64_t size)
{
	uint64_t n;

	if (size > (1ULL << 46))
		return UINT64_MAX;
	n = ALIGN_UP(size + BLK_HDR, (uint64_t)BLK_ALIGN);
	return n < BLK_MIN ? BLK_MIN : n;
}

/* ---- checks on what any client may have written -------------------------- */

/*
 * The free block at @b, of at least @need bytes, inside the heap (its
 * successor's header too); else the operation is corrupt (shmk__corrupt()).
 * Cheap: the checks that keep the heap's writes inside the heap, on the
 * block that a tree or a footer named.
 */
static bool free_blk_ok(const struct shmk *h, uint64_t b, uint64_t need)
{
	uint64_t he = h->heap_ok, w;

	if (b % BLK_ALIGN != 8 || b <= SHMK_HEAP_START || b > he - BLK_MIN)
		return shmk__corrupt(h);
	w = shmk__rd(h, b);
	if (blk_tag(w) != BLK_TAG_FREE || !blk_word_ok(w) ||
	    blk_size(w) < need || blk_size(w) > he - 8 - b)
		return shmk__corrupt(h);
	return true;
}

/* The free block that ends where @b starts, by its footer; 0 if corrupt. */
static uint64_t free_before(const struct shmk *h, uint64_t b)
{
	uint64_t f = shmk__rd(h, b - 8), ps = blk_size(f);

	if (blk_tag(f) != BLK_TAG_FOOT || ps < BLK_MIN ||
	    ps > b - SHMK_HEAP_START - 8 || !free_blk_ok(h, b - ps, ps) ||
	    blk_size(shmk__rd(h, b - ps)) != ps)
		return shmk__corrupt(h);
	return b - ps;
}

/* ---- the free-block index ---------------------------------------------- */

static void index_insert(struct shmk *h, uint64_t b, uint64_t size)
{
	struct shmk_hdr *hd = h->hdr;

	if (size <= BIN_MAX_SIZE) {
		unsigned int i = bin_index(size);

		tx_set_hdr(h, bin_map, hd->bin_map | 1ULL << i);
		shmk__rb_insert(h, bin_root(i), b);
	} else {
		unsigned int i = tree_index(size);

		tx_set_hdr(h, tree_map[i / 64],
			   hd->tree_map[i / 64] | 1ULL << (i % 64));
		shmk__rb_insert(h, tree_root(i), b);
	}
}

static void index_remove(struct shmk *h, uint64_t b, uint64_t size)
{
	struct shmk_hdr *hd = h->hdr;

	if (size <= BIN_MAX_SIZE) {
		unsigned int i = bin_index(size);

		shmk__rb_erase(h, bin_root(i), b);
		if (!hd->bins[i])
			tx_set_hdr(h, bin_map, hd->bin_map & ~(1ULL << i));
	} else {
		unsigned int i = tree_index(size);

		shmk__rb_erase(h, tree_root(i), b);
		if (!hd->trees[i])
			tx_set_hdr(h, tree_map[i / 64],
				   hd->tree_map[i / 64] & ~(1ULL << (i % 64)));
	}
}

/* Make [b, b + size) a free, indexed block. */
static void put_free(struct shmk *h, uint64_t b, uint64_t size, bool prev_used)
{
	/* Sizes come from headers a client may have changed since checked. */
	if (b <= SHMK_HEAP_START || b > h->heap_ok - 8 - BLK_MIN ||
	    size < BLK_MIN || size > h->heap_ok - 8 - b) {
		shmk__corrupt(h);
		return;
	}
	shmk__tx_set(h, b, blk_mk_free(size, prev_used));
	shmk__tx_set(h, b + size - 8, blk_mk_foot(size));
	index_insert(h, b, size);
	h->hdr->free_bytes += size;
	h->hdr->free_blocks++;
	h->free_index_changed = true;
}

/* Take the free block b out of the index (its header stays as it is). */
static void take_free(struct shmk *h, uint64_t b, uint64_t size)
{
	index_remove(h, b, size);
	h->hdr->free_bytes -= size;
	h->hdr->free_blocks--;
	h->free_index_changed = true;
}

/*
 * The indexed free block b (bs bytes) becomes [nb, nb + ns). When both
 * sizes belong to one tree, it keeps its node's place if its new key
 * still sorts between its neighbours' (a split or a merge that stays in
 * the size class): a few link writes instead of an erase and an insert.
 * nb's node must not overlap b's unless nb == b.
 */
static void reindex(struct shmk *h, uint64_t b, uint64_t bs, uint64_t nb,
		    uint64_t ns, bool prev_used)
{
	if (nb <= SHMK_HEAP_START || nb > h->heap_ok - 8 - BLK_MIN ||
	    ns < BLK_MIN || ns > h->heap_ok - 8 - nb) {
		shmk__corrupt(h);
		return;
	}
	if (bs > BIN_MAX_SIZE && ns > BIN_MAX_SIZE &&
	    tree_index(bs) == tree_index(ns)) {
		bool up = shmk__rb_key_less(bs, b, ns, nb);
		uint64_t o = up ? shmk__rb_next(h, b) : shmk__rb_prev(h, b);

		if (!o || (up ? shmk__rb_key_less(ns, nb, shmk__rb_key(h, o), o)
			      : shmk__rb_key_less(shmk__rb_key(h, o), o, ns, nb))) {
			shmk__tx_set(h, nb, blk_mk_free(ns, prev_used));
			shmk__tx_set(h, nb + ns - 8, blk_mk_foot(ns));
			if (nb != b)
				shmk__rb_replace(h, tree_root(tree_index(bs)),
						 b, nb);
			h->hdr->free_bytes += ns - bs;
			h->free_index_changed = true;
			return;
		}
	}
	take_free(h, b, bs);
	put_free(h, nb, ns, prev_used);
}

static void set_prev_used(struct shmk *h, uint64_t b, bool used)
{
	uint64_t w = shmk__rd(h, b);

	shmk__tx_set(h, b, used ? w | BLK_F_PREV_USED : w & ~BLK_F_PREV_USED);
}

/* The first tree from @i on that is not empty, or SHMK_NTREES. */
static unsigned int tree_next(const struct shmk_hdr *hd, unsigned int i)
{
	for (unsigned int w = i / 64; w < SHMK_NTREES / 64; w++) {
		uint64_t m = hd->tree_map[w];

		if (w == i / 64)
			m &= ~0ULL << (i % 64);
		if (m)
			return w * 64 + (unsigned int)__builtin_ctzll(m);
	}
	return SHMK_NTREES;
}

/* The first block of the tree at @root, which its bitmap says is not empty. */
static uint64_t first_of(const struct shmk *h, uint64_t root)
{
	uint64_t b = shmk__rb_first(h, root);

	if (!b && !h->corrupt)
		shmk__corrupt(h);
	return b;
}

/* The best fit for a block of @need bytes, or 0. */
static uint64_t find_fit(const struct shmk *h, uint64_t need)
{
	const struct shmk_hdr *hd = h->hdr;
	unsigned int i = 0;

	if (need <= BIN_MAX_SIZE) {
		uint64_t m = hd->bin_map & (~0ULL << bin_index(need));

		if (m)
			return first_of(h, bin_root(__builtin_ctzll(m)));
	} else {
		uint64_t b;

		i = tree_index(need);
		if (hd->trees[i]) {
			b = shmk__rb_lower_bound(h, tree_root(i), need);
			if (b || h->corrupt)
				return b;
		}
		if (++i == SHMK_NTREES)
			return 0;
	}
	i = tree_next(hd, i);
	return i < SHMK_NTREES ? first_of(h, tree_root(i)) : 0;
}

/*
 * Allocate [start, start + need) out of the free block b, returning the
 * payload offset. start - b is 0 or at least BLK_MIN; the front and a tail
 * of at least BLK_MIN stay free. With @preserve, b's tree links and footer
 * go to the undo log, so that the caller may fill the payload with plain
 * stores inside the transaction.
 */
static uint64_t carve(struct shmk *h, uint64_t b, uint64_t start,
		      uint64_t need, bool preserve)
{
	uint64_t w = shmk__rd(h, b), bs = blk_size(w), end = b + bs, tail;
	bool prev_used = blk_prev_used(w);

	/* The block free_blk_ok() checked, unless a client wrote since. */
	if (bs < need + (start - b) || bs > h->heap_ok - 8 - b) {
		shmk__corrupt(h);
		return start + BLK_HDR;
	}
	if (preserve) {
		shmk__tx_keep(h, b + NODE_PARENT);
		shmk__tx_keep(h, b + NODE_LEFT);
		shmk__tx_keep(h, b + NODE_RIGHT);
		shmk__tx_keep(h, end - 8);
	}
	tail = end - (start + need);
	if (start == b && tail >= BLK_MIN) {
		/* The front goes: the rest takes b's place in the index. */
		reindex(h, b, bs, start + need, tail, true);
		shmk__tx_set(h, start, blk_mk_used(need, prev_used));
		h->hdr->used_bytes += need;
		h->hdr->nallocs++;
		return start + BLK_HDR;
	}
	take_free(h, b, bs);
	if (start > b) {
		put_free(h, b, start - b, prev_used);
		prev_used = false;
	}
	if (tail >= BLK_MIN) {
		shmk__tx_set(h, start, blk_mk_used(need, prev_used));
		put_free(h, start + need, tail, true);
	} else {
		need += tail;
		shmk__tx_set(h, start, blk_mk_used(need, prev_used));
		set_prev_used(h, end, true);
	}
	h->hdr->used_bytes += need;
	h->hdr->nallocs++;
	return start + BLK_HDR;
}

/* Grow the heap to [heap_start, new_end): the backend already did. */
int shmk__heap_extend(struct shmk *h, uint64_t new_end)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t end = h->heap_ok, s = end - 8, add, w = shmk__rd(h, s);
	bool last_used = blk_prev_used(w);

	if (new_end <= end)
		return 0;
	if (blk_tag(w) != BLK_TAG_END) {
		shmk__corrupt(h);
		return -EUCLEAN;
	}
	if (new_end > h->map_size || new_end % BLK_ALIGN)
		return -EINVAL;
	add = new_end - end;
	shmk__tx_set(h, new_end - 8, blk_mk_end(false));
	tx_set_hdr(h, heap_end, new_end);
	h->heap_ok = new_end;	/* the backend grew it: the caller checked */
	if (new_end > hd->seg_size)
		tx_set_hdr(h, seg_size, new_end);
	if (!last_used) {
		uint64_t l = free_before(h, s), ls;

		if (!l)
			return -EUCLEAN;
		ls = blk_size(shmk__rd(h, l));
		reindex(h, l, ls, l, ls + add, blk_prev_used(shmk__rd(h, l)));
	} else {
		put_free(h, s, add, true);
	}
	return shmk__tx_bad(h) ? -EUCLEAN : 0;
}

/* Grow the segment so that a block of @need bytes fits. */
static int grow_for(struct shmk *h, uint64_t need)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t end = h->heap_ok, avail = 0, min_end, want, step;
	int r;

	if (blk_tag(shmk__rd(h, end - 8)) != BLK_TAG_END) {
		shmk__corrupt(h);
		return -EUCLEAN;
	}
	if (!blk_prev_used(shmk__rd(h, end - 8)))
		avail = blk_size(shmk__rd(h, end - 16));
	min_end = end + (need > avail ? need - avail : 0);
	min_end = ALIGN_UP(min_end, (uint64_t)h->page_size);
	if (min_end <= end)
		min_end = end + h->page_size;
	if (min_end > h->map_size || min_end < end)
		return -ENOMEM;
	step = end / 4 > GROW_MIN_STEP ? end / 4 : GROW_MIN_STEP;
	want = ALIGN_UP(end + step, (uint64_t)h->page_size);
	if (want < min_end)
		want = min_end;
	if (want > h->map_size)
		want = h->map_size;
	hd->grow_target = want;
	r = h->be->resize(h, want);
	if (r && want > min_end) {
		want = min_end;
		hd->grow_target = want;
		r = h->be->resize(h, want);
	}
	if (r)
		return -ENOMEM;
	hd->grows++;
	return shmk__heap_extend(h, want);
}

/* The best free block of at least @need bytes, growing the heap if none. */
static int fit_or_grow(struct shmk *h, uint64_t need, uint64_t *blk)
{
	int r;

	*blk = find_fit(h, need);
	if (*blk)
		return free_blk_ok(h, *blk, need) ? 0 : -EUCLEAN;
	if (h->corrupt)
		return -EUCLEAN;
	r = grow_for(h, need);
	if (r)
		return r;
	*blk = find_fit(h, need);
	if (*blk)
		return free_blk_ok(h, *blk, need) ? 0 : -EUCLEAN;
	return shmk__tx_bad(h) ? -EUCLEAN : -ENOMEM;
}

/*
 * The free block a request of @size bytes aligned to @align needs: room
 * for the block (*need bytes) at any such alignment inside it. 0 when no
 * segment could hold it.
 */
static uint64_t request_size(const struct shmk *h, uint64_t size,
			     uint64_t align, uint64_t *need)
{
	*need = shmk__blk_size_for(size);
	if (*need > h->map_size || align > h->map_size)
		return 0;
	return align > BLK_ALIGN ? *need + align + BLK_MIN : *need;
}

bool shmk__heap_fits(const struct shmk *h, uint64_t size, uint64_t align)
{
	uint64_t need, req = request_size(h, size, align, &need);

	return req && find_fit(h, req) != 0;
}

int shmk__heap_alloc(struct shmk *h, uint64_t size, uint64_t align,
		     bool preserve, uint64_t *payload)
{
	uint64_t need, req = request_size(h, size, align, &need), b, start;
	int r;

	if (!req)
		return -ENOMEM;
	r = fit_or_grow(h, req, &b);
	if (r)
		return r;
	start = b;
	if (align > BLK_ALIGN) {
		uint64_t p = ALIGN_UP(b + BLK_HDR, align);

		if (p - BLK_HDR != b && p - BLK_HDR - b < BLK_MIN)
			p += align;
		start = p - BLK_HDR;
	}
	*payload = carve(h, b, start, need, preserve);
	return shmk__tx_bad(h) ? -EUCLEAN : 0;
}

int shmk__heap_alloc_chunked(struct shmk *h, uint64_t bsize, uint64_t below,
			     uint64_t *blk)
{
	uint64_t req = bsize + RUN_CHUNK + BLK_MIN, b, start;
	int r;

	r = fit_or_grow(h, req, &b);
	if (r)
		return r;
	start = ALIGN_UP(b - BLK_HDR, (uint64_t)RUN_CHUNK) + BLK_HDR;
	if (start != b && start - b < BLK_MIN)
		start += RUN_CHUNK;
	if (start - BLK_HDR + bsize > below)
		return -ENOSPC;
	*blk = carve(h, b, start, bsize, true) - BLK_HDR;
	return shmk__tx_bad(h) ? -EUCLEAN : 0;
}

int shmk__heap_valid_used(const struct shmk *h, uint64_t payload)
{
	uint64_t b = payload - BLK_HDR, w, nw, he = h->heap_ok;

	if (payload % BLK_ALIGN || payload < SHMK_HEAP_START + 16 ||
	    payload > he)
		return -EINVAL;
	w = shmk__rd(h, b);
	if (blk_tag(w) != BLK_TAG_USED || !blk_word_ok(w) || blk_kind(w) ||
	    blk_size(w) > he - 8 - b)
		return -EINVAL;
	nw = shmk__rd(h, b + blk_size(w));
	if (!blk_word_ok(nw) || !blk_prev_used(nw))
		return -EINVAL;
	return 0;
}

/*
 * Free the used block at payload (valid: shmk__heap_valid_used()). It
 * coalesces with both free neighbours at once; the headers of absorbed
 * blocks are cleared, so that a stale pointer to them is refused later.
 */
void shmk__heap_free_valid(struct shmk *h, uint64_t payload)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t b = payload - BLK_HDR, w = shmk__rd(h, b), bs = blk_size(w);
	uint64_t n, nw, ns, p, ps;
	bool prev_free, next_free;

	/* As shmk__heap_valid_used() saw it, unless a client wrote since. */
	if (bs < BLK_MIN || bs > h->heap_ok - 8 - b) {
		shmk__corrupt(h);
		return;
	}
	n = b + bs;
	nw = shmk__rd(h, n);
	ns = blk_size(nw);
	prev_free = !blk_prev_used(w);
	next_free = !blk_used(nw);
	p = prev_free ? free_before(h, b) : 0;
	if ((prev_free && !p) || (next_free && !free_blk_ok(h, n, 0)))
		return;
	hd->used_bytes -= bs;
	hd->nallocs--;
	if (!next_free)
		set_prev_used(h, n, false);
	if (prev_free) {
		ps = blk_size(shmk__rd(h, p));

		if (next_free) {
			take_free(h, n, ns);
			shmk__tx_set(h, n, 0);
		} else {
			ns = 0;
		}
		shmk__tx_set(h, b, 0);
		reindex(h, p, ps, p, ps + bs + ns,
			blk_prev_used(shmk__rd(h, p)));
	} else if (next_free) {
		reindex(h, n, ns, b, bs + ns, true);
		shmk__tx_set(h, n, 0);
	} else {
		put_free(h, b, bs, true);
	}
}

void shmk__heap_release(struct shmk *h, uint64_t blk)
{
	uint64_t w = shmk__rd(h, blk);

	shmk__tx_set(h, blk, w & ~BLK_F_KIND);
	if (shmk__heap_valid_used(h, blk + BLK_HDR)) {
		shmk__corrupt(h);
		return;
	}
	shmk__heap_free_valid(h, blk + BLK_HDR);
}

int shmk__heap_free(struct shmk *h, uint64_t payload)
{
	int r = shmk__heap_valid_used(h, payload);

	if (!r)
		shmk__heap_free_valid(h, payload);
	return !r && shmk__tx_bad(h) ? -EUCLEAN : r;
}

/*
 * Cut the free end of the heap so that it ends at *new_end (page aligned,
 * moved up by a page when the rest of the last free block would be too
 * small to stand alone). -EBUSY when allocated memory lies above.
 */
int shmk__heap_cut(struct shmk *h, uint64_t *new_end)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t end = h->heap_ok, ne = *new_end, s = end - 8, ls, l, rem;
	bool pu;

	if (ne >= end)
		return 0;
	if (blk_tag(shmk__rd(h, s)) != BLK_TAG_END) {
		shmk__corrupt(h);
		return -EUCLEAN;
	}
	if (blk_prev_used(shmk__rd(h, s)))
		return -EBUSY;
	l = free_before(h, s);
	if (!l)
		return -EUCLEAN;
	ls = blk_size(shmk__rd(h, l));
	pu = blk_prev_used(shmk__rd(h, l));
	if (ne - 8 < l)
		return -EBUSY;
	rem = ne - 8 - l;
	if (rem && rem < BLK_MIN) {
		ne += h->page_size;
		rem += h->page_size;
		if (ne >= end) {
			*new_end = end;
			return 0;
		}
	}
	take_free(h, l, ls);
	if (rem)
		put_free(h, l, rem, pu);
	shmk__tx_set(h, ne - 8, blk_mk_end(rem ? false : pu));
	tx_set_hdr(h, heap_end, ne);
	h->heap_ok = ne;
	tx_set_hdr(h, seg_size, ne);
	hd->grow_target = ne;
	*new_end = ne;
	return shmk__tx_bad(h) ? -EUCLEAN : 0;
}

void shmk__heap_init(struct shmk *h, uint64_t heap_end)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t hs = SHMK_HEAP_START;

	hd->heap_start = hs;
	hd->heap_end = heap_end;
	h->heap_ok = heap_end;
	hd->seg_size = heap_end;
	hd->grow_target = heap_end;
	*shmk__w(h, hs) = BLK_GUARD;
	*shmk__w(h, heap_end - 8) = blk_mk_end(false);
	put_free(h, hs + 8, heap_end - hs - 16, true);
}

/*
 * Under the lock, before an operation follows any offset: the heap's bounds
 * inside the memory that backs the segment (a hostile heap_end would have
 * it touch pages past the end: SIGBUS). A backend whose backing size costs
 * a system call is asked only when heap_end moved past what it said last
 * (a growth); its memory shrinks only by a client that cuts the file under
 * everyone's mappings. The kernel backend's segment can shrink through the
 * module (any writer's SHMK_IOC_SHRINK), so its status page is read again
 * at every lock: a forged heap_end above such a cut fails here.
 */
bool shmk__backed_slow(const struct shmk *h, uint64_t end)
{
	uint64_t b = h->be->backing_size(h);

	if (b > h->map_size)
		b = h->map_size;
	WRITE_ONCE(((struct shmk *)h)->backed, b);
	return end <= b;
}

/* Set by shmk__w_scratch(), read and cleared by shmk__tx_begin/commit(). */
__thread __attribute__((tls_model("initial-exec"))) bool shmk__oob;

uint64_t *shmk__w_scratch(void)
{
	static __thread __attribute__((tls_model("initial-exec")))
		uint64_t scratch;

	shmk__oob = true;
	scratch = 0;
	return &scratch;
}

int shmk__heap_bounds(struct shmk *h)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t he = READ_ONCE(hd->heap_end);

	if (h->be->backing_size_cheap)
		shmk__backed_slow(h, 0);
	if (likely(READ_ONCE(hd->heap_start) == SHMK_HEAP_START &&
		   shmk__heap_end_ok(h, he) &&
		   !(he & (h->page_size - 1)) &&
		   he >= SHMK_HEAP_START + h->page_size)) {
		h->heap_ok = he;
		return 0;
	}
	/* Nothing lies inside a heap this small: every check fails. */
	h->heap_ok = SHMK_HEAP_START + 16;
	return shmk__check_bad("heap bounds", he);
}

/* ---- walking, recounting, rebuilding ----------------------------------- */

int shmk__heap_walk(const struct shmk *h, shmk_blk_fn fn, void *arg)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t hs = READ_ONCE(hd->heap_start), he = READ_ONCE(hd->heap_end);
	uint64_t b, w;
	int r;

	if (hs != SHMK_HEAP_START || he > h->map_size || he % BLK_ALIGN ||
	    he < hs + 16 + BLK_MIN || he > h->be->backing_size(h))
		return -EUCLEAN;
	for (b = hs + 8; b < he - 8; b += blk_size(w)) {
		w = READ_ONCE(*shmk__w(h, b));
		if (!blk_word_ok(w) || blk_tag(w) == BLK_TAG_END ||
		    blk_size(w) > he - 8 - b)
			return -EUCLEAN;
		if (fn && (r = fn(b, w, arg)))
			return r;
	}
	w = READ_ONCE(*shmk__w(h, he - 8));
	if (b != he - 8 || blk_tag(w) != BLK_TAG_END || !blk_word_ok(w))
		return -EUCLEAN;
	return fn ? fn(b, w, arg) : 0;
}

struct counts {
	uint64_t used, free, nfree, nalloc;
};

static int count_blk(uint64_t b, uint64_t w, void *arg)
{
	struct counts *c = arg;

	(void)b;
	if (blk_tag(w) == BLK_TAG_END)
		return 0;
	if (blk_used(w)) {
		c->used += blk_size(w);
		c->nalloc++;
	} else {
		c->free += blk_size(w);
		c->nfree++;
	}
	return 0;
}

/* Recompute the derived counters (recovery: they are not logged). */
void shmk__heap_recount(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	struct counts c = { 0 };
	uint64_t map = 0;

	if (shmk__heap_walk(h, count_blk, &c) == 0) {
		hd->used_bytes = c.used;
		hd->free_bytes = c.free;
		hd->free_blocks = c.nfree;
		hd->nallocs = c.nalloc;
	}
	for (unsigned int i = 0; i < SHMK_NBINS; i++)
		if (hd->bins[i])
			map |= 1ULL << i;
	hd->bin_map = map;
	for (unsigned int w = 0; w < SHMK_NTREES / 64; w++) {
		map = 0;
		for (unsigned int i = 0; i < 64; i++)
			if (hd->trees[w * 64 + i])
				map |= 1ULL << i;
		hd->tree_map[w] = map;
	}
}

/*
 * Repair: rebuild the free index, the neighbour flags and the footers from
 * the physical chain of headers, coalescing adjacent free blocks. Runs with
 * the undo log off (h->tx_nolog); idempotent.
 */
int shmk__heap_rebuild(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t he = READ_ONCE(hd->heap_end), b, w, size, run = 0;
	bool prev_used = true, run_pu = true;

	/*
	 * The walk checks the chain; the loop below checks each word again
	 * as it reads it (a client may write meanwhile), so that it ends.
	 */
	if (shmk__heap_walk(h, NULL, NULL) || shmk__heap_bounds(h))
		return -EUCLEAN;
	he = h->heap_ok;
	memset(hd->trees, 0, sizeof(hd->trees));
	memset(hd->tree_map, 0, sizeof(hd->tree_map));
	memset(hd->bins, 0, sizeof(hd->bins));
	hd->bin_map = 0;
	hd->free_bytes = hd->free_blocks = 0;
	for (b = SHMK_HEAP_START + 8; b < he - 8; b += size) {
		w = READ_ONCE(*shmk__w(h, b));
		size = blk_size(w);
		if (!blk_word_ok(w) || blk_tag(w) == BLK_TAG_END ||
		    size > he - 8 - b)
			return -EUCLEAN;
		if (!blk_used(w)) {
			if (!run) {
				run = b;
				run_pu = prev_used;
			}
			prev_used = false;
			continue;
		}
		if (run) {
			put_free(h, run, b - run, run_pu);
			run = 0;
		}
		shmk__tx_set(h, b, blk_mk_used(size, prev_used) | blk_kind(w));
		prev_used = true;
	}
	if (run)
		put_free(h, run, he - 8 - run, run_pu);
	shmk__tx_set(h, he - 8, blk_mk_end(prev_used));
	shmk__heap_recount(h);
	return 0;
}

/*
 * Locked: the largest free block, bounded by the heap's checked end and by
 * 256 steps (a client may have written the links).
 */
uint64_t shmk__heap_largest(const struct shmk *h)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t he = h->heap_ok, n = 0, best = 0, m;

	for (unsigned int w = SHMK_NTREES / 64; w-- > 0 && !n;) {
		m = READ_ONCE(hd->tree_map[w]);
		if (m)
			n = READ_ONCE(hd->trees[w * 64 + 63 -
						(unsigned int)__builtin_clzll(m)]);
	}
	for (int i = 0; n && i < 256; i++) {
		if (n % BLK_ALIGN != 8 || n + 32 > he)
			return 0;
		best = n;
		n = READ_ONCE(*shmk__w(h, n + NODE_RIGHT));
	}
	if (best)
		return blk_size(READ_ONCE(*shmk__w(h, best)));
	m = READ_ONCE(hd->bin_map);
	return m ? BLK_MIN + (63 - __builtin_clzll(m)) * BLK_ALIGN : 0;
}
