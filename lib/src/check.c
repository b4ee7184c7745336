/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * shmk_check(): walk and cross-check all allocator and directory metadata.
 *
 *  - header: magic, layout version, sizes, guard word, no transaction left;
 *  - heap: the physical chain tiles [heap_start, heap_end) exactly, every
 *    header is well formed, neighbour flags agree, free blocks have their
 *    footer and are never adjacent, the counters match;
 *  - free index: every tree is a red-black tree ordered by (size, address),
 *    bins hold their size only, the bitmap matches, and the trees together
 *    hold exactly the free blocks of the chain, each once;
 *  - small tier: see shmk__small_check();
 *  - message cache: each entry a used block of the page heap, once;
 *  - directory: the table is a live block, each entry is a live block with
 *    its magic, name, hash, guard and object inside it, each name is found
 *    by a probe at its own slot, and the counts match.
 *
 * Everything is bounds-checked, so a read-only client may run it lock-free
 * on data that changes underneath (recovery.c retries).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "msg_cache.h"
#include "page_heap.h"
#include "rbtree.h"
#include "small.h"

#define bad(h, what, at)	((void)(h), shmk__check_bad((what), (at)))

struct chk {
	const struct shmk *h;
	uint64_t *free_off;		/* free blocks, ascending */
	uint8_t *seen;
	size_t nfree, cap, indexed;
	uint64_t used, free_bytes, nalloc;
	bool prev_used;
};

int shmk__check_bad(const char *what, uint64_t at)
{
	static int debug = -1;

	if (debug < 0)
		debug = getenv("SHMK_DEBUG") != NULL;
	if (debug)
		fprintf(stderr, "libshmk: check: %s (at %#llx)\n", what,
			(unsigned long long)at);
	return -EUCLEAN;
}

static int walk_blk(uint64_t b, uint64_t w, void *arg)
{
	struct chk *c = arg;
	uint64_t size = blk_size(w);

	if (blk_prev_used(w) != c->prev_used)
		return bad(c->h, "neighbour flag", b);
	if (blk_tag(w) == BLK_TAG_END)
		return 0;
	if (blk_used(w)) {
		c->used += size;
		c->nalloc++;
		c->prev_used = true;
		return 0;
	}
	if (!c->prev_used)
		return bad(c->h, "adjacent free blocks", b);
	if (READ_ONCE(*shmk__w(c->h, b + size - 8)) != blk_mk_foot(size))
		return bad(c->h, "footer", b);
	if (c->nfree == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		void *p = realloc(c->free_off, cap * sizeof(*c->free_off));

		if (!p)
			return -ENOMEM;
		c->free_off = p;
		c->cap = cap;
	}
	c->free_off[c->nfree++] = b;
	c->free_bytes += size;
	c->prev_used = false;
	return 0;
}

static ssize_t free_index(const struct chk *c, uint64_t b)
{
	size_t lo = 0, hi = c->nfree;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->free_off[mid] < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->nfree && c->free_off[lo] == b ? (ssize_t)lo : -1;
}

/*
 * Check the subtree at @n: links, order within (lo, hi), sizes within
 * [smin, smax], colors; *bh gets its black height.
 */
static int node_check(struct chk *c, uint64_t n, uint64_t parent, uint64_t lo,
		      uint64_t hi, uint64_t smin, uint64_t smax, int depth,
		      int *bh)
{
	const struct shmk *h = c->h;
	uint64_t pc, size, l, r;
	int bl, br, ret;
	ssize_t i;

	if (!n) {
		*bh = 1;
		return 0;
	}
	if (depth > 128)
		return bad(h, "tree too deep", n);
	i = free_index(c, n);
	if (i < 0 || c->seen[i])
		return bad(h, "tree node is not a free block, or twice", n);
	c->seen[i] = 1;
	c->indexed++;
	pc = READ_ONCE(*shmk__w(h, n + NODE_PARENT));
	if ((pc & ~RB_BLACK) != parent)
		return bad(h, "parent link", n);
	size = blk_size(shmk__rd(h, n));
	if (size < smin || size > smax)
		return bad(h, "block in the wrong tree", n);
	if ((lo && !shmk__rb_less(h, lo, n)) || (hi && !shmk__rb_less(h, n, hi)))
		return bad(h, "tree order", n);
	l = READ_ONCE(*shmk__w(h, n + NODE_LEFT));
	r = READ_ONCE(*shmk__w(h, n + NODE_RIGHT));
	ret = node_check(c, l, n, lo, n, smin, smax, depth + 1, &bl);
	if (!ret)
		ret = node_check(c, r, n, n, hi, smin, smax, depth + 1, &br);
	if (ret)
		return ret;
	if (bl != br)
		return bad(h, "black height", n);
	if (!(pc & RB_BLACK) &&
	    ((l && !(shmk__rd(h, l + NODE_PARENT) & RB_BLACK)) ||
	     (r && !(shmk__rd(h, r + NODE_PARENT) & RB_BLACK))))
		return bad(h, "red node with a red child", n);
	*bh = bl + ((pc & RB_BLACK) ? 1 : 0);
	return 0;
}

static int tree_check(struct chk *c, uint64_t root, uint64_t smin,
		      uint64_t smax)
{
	int bh, r = node_check(c, root, 0, 0, 0, smin, smax, 0, &bh);

	if (!r && root && !(shmk__rd(c->h, root + NODE_PARENT) & RB_BLACK))
		r = bad(c->h, "red root", root);
	return r;
}

static int index_check(struct chk *c)
{
	const struct shmk_hdr *hd = c->h->hdr;
	uint64_t map = READ_ONCE(hd->bin_map);
	int r;

	c->seen = calloc(c->nfree ? c->nfree : 1, 1);
	if (!c->seen)
		return -ENOMEM;
	for (unsigned int i = 0; i < SHMK_NBINS; i++) {
		uint64_t root = READ_ONCE(hd->bins[i]);
		uint64_t size = BLK_MIN + i * BLK_ALIGN;

		if (!!root != !!(map & (1ULL << i)))
			return bad(c->h, "bin bitmap", i);
		if ((r = tree_check(c, root, size, size)))
			return r;
	}
	for (unsigned int i = 0; i < SHMK_NTREES; i++) {
		uint64_t root = READ_ONCE(hd->trees[i]);

		map = READ_ONCE(hd->tree_map[i / 64]);
		if (!!root != !!(map & (1ULL << (i % 64))))
			return bad(c->h, "tree bitmap", i);
		if ((r = tree_check(c, root, tree_min(i), tree_max(i))))
			return r;
	}
	if (c->indexed != c->nfree)
		return bad(c->h, "free blocks missing from the index",
			   c->nfree - c->indexed);
	return 0;
}

static int dir_check(const struct shmk *h, uint64_t *ninternal)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t table = READ_ONCE(hd->dir_table), cap = READ_ONCE(hd->dir_cap);
	uint64_t he = READ_ONCE(hd->heap_end), live = 0, tombs = 0;
	const uint32_t *offs;
	const uint8_t *ctrl;

	if (!dir_table_ok(h, table, cap, he) ||
	    shmk__heap_valid_used(h, table) ||
	    blk_size(shmk__rd(h, table - BLK_HDR)) - BLK_HDR <
	    dir_table_bytes(cap))
		return bad(h, "directory table", table);
	ctrl = h->base + table;
	offs = (const void *)(h->base + DIR_OFFS(table, cap));
	for (uint64_t i = 0; i < cap; i++) {
		uint64_t e, delta, usable, hash, size;
		uint8_t c = READ_ONCE(ctrl[i]);
		const struct shmk_dir_entry *de;
		struct dir_probe pr;
		int len;

		if (c == DIR_CTRL_EMPTY)
			continue;
		if (c == DIR_CTRL_DELETED) {
			tombs++;
			continue;
		}
		if (c & 0x80)
			return bad(h, "directory control byte", i);
		live++;
		e = (uint64_t)READ_ONCE(offs[i]) * BLK_ALIGN;
		len = dir_entry_check(h, e, he);
		if (len < 0 || shmk__heap_valid_used(h, e))
			return bad(h, "directory entry", e);
		de = (const void *)(h->base + e);
		delta = dir_obj_delta((uint64_t)len);
		usable = blk_size(READ_ONCE(*shmk__w(h, e - BLK_HDR)));
		size = READ_ONCE(de->size);
		if (usable < BLK_HDR + delta || usable > he - e ||
		    size > usable - BLK_HDR - delta)
			return bad(h, "named object outside its block", e);
		if (shmk__rd(h, e + delta - 8) != DIR_OBJ_GUARD)
			return bad(h, "named object guard", e);
		if (strnlen(de->name, (size_t)len + 1) != (size_t)len)
			return bad(h, "entry name", e);
		hash = shmk__dir_hash(de->name, (size_t)len);
		if (c != dir_tag(hash))
			return bad(h, "entry hash", e);
		if (shmk__dir_probe(h, de->name, (size_t)len, hash, &pr) ||
		    pr.slot != i)
			return bad(h, "entry unreachable or duplicate", e);
	}
	if (live != READ_ONCE(hd->dir_count) || tombs != READ_ONCE(hd->dir_tombs))
		return bad(h, "directory counts", live);
	*ninternal = live + 1;
	return 0;
}

int shmk__check_locked(const struct shmk *h, bool quiescent)
{
	const struct shmk_hdr *hd = h->hdr;
	struct chk c = { .h = h, .prev_used = true };
	uint64_t he = READ_ONCE(hd->heap_end), st = READ_ONCE(hd->tx_state);
	uint64_t ninternal = 0;
	int r;

	if (READ_ONCE(hd->magic) != SHMK_HDR_MAGIC ||
	    hd->version != SHMK_LAYOUT_VERSION ||
	    hd->hdr_size != SHMK_HEAP_START || hd->max_size != h->map_size)
		return bad(h, "header identity", 0);
	if (quiescent ? st != 0 || (READ_ONCE(hd->seq) & 1) ||
			    (READ_ONCE(hd->dir_seq) & 1)
		      : (st >> TX_COUNT_SHIFT) != 0)
		return bad(h, "unfinished transaction", st);
	if (READ_ONCE(hd->heap_start) != SHMK_HEAP_START || he > h->map_size ||
	    he % h->page_size || he <= SHMK_HEAP_START)
		return bad(h, "heap bounds", he);
	if (shmk__rd(h, SHMK_HEAP_START) != BLK_GUARD)
		return bad(h, "heap guard", SHMK_HEAP_START);

	r = shmk__heap_walk(h, walk_blk, &c);
	if (r == -EUCLEAN)
		r = bad(h, "block chain", 0);
	if (!r)
		r = index_check(&c);
	if (!r && (c.used != READ_ONCE(hd->used_bytes) ||
		   c.free_bytes != READ_ONCE(hd->free_bytes) ||
		   c.nfree != READ_ONCE(hd->free_blocks) ||
		   c.nalloc != READ_ONCE(hd->nallocs)))
		r = bad(h, "counters", 0);
	if (!r && c.used + c.free_bytes + 16 != he - SHMK_HEAP_START)
		r = bad(h, "bytes do not add up", 0);
	if (!r)
		r = shmk__small_check(h);
	if (!r)
		r = shmk__msg_check(h);
	if (!r)
		r = dir_check(h, &ninternal);
	if (!r && ninternal > c.nalloc)
		r = bad(h, "more named objects than blocks", ninternal);
	free(c.free_off);
	free(c.seen);
	return r;
}

static int check_read(struct shmk *h, void *arg)
{
	(void)arg;
	/* The heap's end as a lock would check it (h->heap_ok). */
	if (shmk__heap_bounds(h))
		return -EUCLEAN;
	return shmk__check_locked(h, true);
}

int shmk_check(struct shmk *h)
{
	SHMK_KEEP_ERRNO;
	int r;

	if (!h)
		return -EINVAL;
	if (h->rdonly)
		return shmk__read(h, &h->hdr->seq, check_read, NULL);
	r = shmk__lock(h);
	if (r)
		return r;
	r = shmk__check_locked(h, true);
	shmk__unlock(h);
	return r;
}
