/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Red-black trees linked by offset (see rbtree.h); CLRS, without sentinel.
 *
 * Any client may have written the links (a hostile or broken one): every
 * node is checked before it is read or written (a free block's header,
 * inside the heap, 8 mod 16), and every walk is bounded by RB_MAX_DEPTH steps, more
 * than a red-black tree of the largest heap is high. A bad node or a walk
 * too long marks the operation corrupt (shmk__corrupt()): it reads 0 from
 * then on, writes nothing more, and its transaction is rolled back.
 */
#include "rbtree.h"
#include "tx.h"

/* 2 log2(2^47 / BLK_MIN) < 90: a longer walk is a loop. */
#define RB_MAX_DEPTH	128

/* A node's word, inside the heap's checked end (node_ok()): read as is. */
static inline uint64_t node_word(const struct shmk *h, uint64_t n, uint64_t f)
{
	return *(const uint64_t *)(h->base + n + f);
}

/*
 * A free block's header, below the heap's end as checked at this lock
 * (h->heap_ok, never the header's): the node's fields are its links.
 */
static inline bool node_ok(const struct shmk *h, uint64_t n)
{
	if (likely(n % BLK_ALIGN == 8 && n > SHMK_HEAP_START &&
		   n <= h->heap_ok - BLK_MIN &&
		   node_word(h, n, 0) >> BLK_TAG_SHIFT == BLK_TAG_FREE))
		return true;
	return shmk__corrupt(h);
}

static inline uint64_t link_of(const struct shmk *h, uint64_t n, uint64_t f)
{
	return node_ok(h, n) ? node_word(h, n, f) : 0;
}

#define left(n)		link_of(h, (n), NODE_LEFT)
#define right(n)	link_of(h, (n), NODE_RIGHT)
#define parent(n)	(link_of(h, (n), NODE_PARENT) & ~RB_BLACK)
#define is_black(n)	(!(n) || (link_of(h, (n), NODE_PARENT) & RB_BLACK))
#define is_red(n)	(!is_black(n))
#define key(n)		(node_ok(h, (n)) ? shmk__rb_key(h, (n)) : 0)
#define less(a, b)	shmk__rb_key_less(key(a), (a), key(b), (b))

static inline void set_link(struct shmk *h, uint64_t n, uint64_t f,
			    uint64_t v)
{
	if (node_ok(h, n))
		shmk__tx_set_at(h, (uint64_t *)(h->base + n + f), n + f, v);
}

static inline void set_left(struct shmk *h, uint64_t n, uint64_t v)
{
	set_link(h, n, NODE_LEFT, v);
}

static inline void set_right(struct shmk *h, uint64_t n, uint64_t v)
{
	set_link(h, n, NODE_RIGHT, v);
}

static inline void set_parent(struct shmk *h, uint64_t n, uint64_t p)
{
	set_link(h, n, NODE_PARENT, p | (link_of(h, n, NODE_PARENT) & RB_BLACK));
}

static inline void set_color(struct shmk *h, uint64_t n, uint64_t black)
{
	set_link(h, n, NODE_PARENT,
		 (link_of(h, n, NODE_PARENT) & ~RB_BLACK) | black);
}

#define set_black(n)	set_color(h, (n), RB_BLACK)
#define set_red(n)	set_color(h, (n), 0)

/*
 * Make @new take @old's place under @p (or as the root: of this tree, or a
 * client put @old under another root, and this one must not be lost).
 */
static inline __attribute__((always_inline)) void
replace_child(struct shmk *h, uint64_t root, uint64_t p, uint64_t old,
	      uint64_t new)
{
	if (!p && shmk__rd(h, root) != old)
		shmk__corrupt(h);
	else if (!p)
		shmk__tx_set(h, root, new);
	else if (left(p) == old)
		set_left(h, p, new);
	else
		set_right(h, p, new);
}

static void rotate_left(struct shmk *h, uint64_t root, uint64_t x)
{
	uint64_t y = right(x), yl = left(y), p = parent(x);

	set_right(h, x, yl);
	if (yl)
		set_parent(h, yl, x);
	set_parent(h, y, p);
	replace_child(h, root, p, x, y);
	set_left(h, y, x);
	set_parent(h, x, y);
}

static void rotate_right(struct shmk *h, uint64_t root, uint64_t x)
{
	uint64_t y = left(x), yr = right(y), p = parent(x);

	set_left(h, x, yr);
	if (yr)
		set_parent(h, yr, x);
	set_parent(h, y, p);
	replace_child(h, root, p, x, y);
	set_right(h, y, x);
	set_parent(h, x, y);
}

void shmk__rb_insert(struct shmk *h, uint64_t root, uint64_t z)
{
	uint64_t y = 0, x = shmk__rd(h, root);
	int steps = 0;

	while (x) {
		y = x;
		x = less(z, x) ? left(x) : right(x);
		if (++steps > RB_MAX_DEPTH || h->corrupt) {
			shmk__corrupt(h);
			return;
		}
	}
	if (!node_ok(h, z))
		return;
	shmk__tx_set(h, z + NODE_PARENT, y);	/* red */
	set_left(h, z, 0);
	set_right(h, z, 0);
	if (!y)
		shmk__tx_set(h, root, z);
	else if (less(z, y))
		set_left(h, y, z);
	else
		set_right(h, y, z);

	for (uint64_t p; (p = parent(z)) && is_red(p);) {
		uint64_t g = parent(p);	/* exists: a red node is not the root */

		if (++steps > 2 * RB_MAX_DEPTH || h->corrupt) {
			shmk__corrupt(h);
			return;
		}

		if (p == left(g)) {
			uint64_t u = right(g);

			if (is_red(u)) {
				set_black(p);
				set_black(u);
				set_red(g);
				z = g;
				continue;
			}
			if (z == right(p)) {
				z = p;
				rotate_left(h, root, z);
				p = parent(z);
			}
			set_black(p);
			set_red(g);
			rotate_right(h, root, g);
		} else {
			uint64_t u = left(g);

			if (is_red(u)) {
				set_black(p);
				set_black(u);
				set_red(g);
				z = g;
				continue;
			}
			if (z == left(p)) {
				z = p;
				rotate_right(h, root, z);
				p = parent(z);
			}
			set_black(p);
			set_red(g);
			rotate_left(h, root, g);
		}
	}
	x = shmk__rd(h, root);
	if (x)
		set_black(x);
}

static void transplant(struct shmk *h, uint64_t root, uint64_t u, uint64_t v)
{
	uint64_t p = parent(u);

	replace_child(h, root, p, u, v);
	if (v)
		set_parent(h, v, p);
}

static void erase_fixup(struct shmk *h, uint64_t root, uint64_t x,
			uint64_t xp)
{
	for (int steps = 0; x != shmk__rd(h, root) && is_black(x); steps++) {
		if (steps > RB_MAX_DEPTH || h->corrupt || !xp) {
			shmk__corrupt(h);
			return;
		}
		if (x == left(xp)) {
			uint64_t w = right(xp);

			if (is_red(w)) {
				set_black(w);
				set_red(xp);
				rotate_left(h, root, xp);
				w = right(xp);
			}
			if (is_black(left(w)) && is_black(right(w))) {
				set_red(w);
				x = xp;
				xp = parent(x);
				continue;
			}
			if (is_black(right(w))) {
				set_black(left(w));
				set_red(w);
				rotate_right(h, root, w);
				w = right(xp);
			}
			set_color(h, w, is_black(xp) ? RB_BLACK : 0);
			set_black(xp);
			set_black(right(w));
			rotate_left(h, root, xp);
		} else {
			uint64_t w = left(xp);

			if (is_red(w)) {
				set_black(w);
				set_red(xp);
				rotate_right(h, root, xp);
				w = left(xp);
			}
			if (is_black(left(w)) && is_black(right(w))) {
				set_red(w);
				x = xp;
				xp = parent(x);
				continue;
			}
			if (is_black(left(w))) {
				set_black(right(w));
				set_red(w);
				rotate_left(h, root, w);
				w = left(xp);
			}
			set_color(h, w, is_black(xp) ? RB_BLACK : 0);
			set_black(xp);
			set_black(left(w));
			rotate_right(h, root, xp);
		}
		x = shmk__rd(h, root);
		break;
	}
	if (x)
		set_black(x);
}

void shmk__rb_erase(struct shmk *h, uint64_t root, uint64_t z)
{
	uint64_t x, xp, zl = left(z), zr = right(z);
	bool removed_black = is_black(z);

	if (h->corrupt)
		return;

	if (!zl) {
		x = zr;
		xp = parent(z);
		transplant(h, root, z, x);
	} else if (!zr) {
		x = zl;
		xp = parent(z);
		transplant(h, root, z, x);
	} else {
		uint64_t y = zr;

		for (int steps = 0; left(y); y = left(y))
			if (++steps > RB_MAX_DEPTH) {
				shmk__corrupt(h);
				return;
			}
		removed_black = is_black(y);
		x = right(y);
		if (parent(y) == z) {
			xp = y;
		} else {
			xp = parent(y);
			transplant(h, root, y, x);
			set_right(h, y, zr);
			set_parent(h, zr, y);
		}
		transplant(h, root, z, y);
		set_left(h, y, zl);
		set_parent(h, zl, y);
		set_color(h, y, is_black(z) ? RB_BLACK : 0);
	}
	if (removed_black)
		erase_fixup(h, root, x, xp);
}

/* Put @new in @old's place: same links, same color; the order must hold. */
void shmk__rb_replace(struct shmk *h, uint64_t root, uint64_t old,
		      uint64_t new)
{
	uint64_t pc = link_of(h, old, NODE_PARENT), l = left(old),
		 r = right(old);

	set_link(h, new, NODE_PARENT, pc);
	set_left(h, new, l);
	set_right(h, new, r);
	replace_child(h, root, pc & ~RB_BLACK, old, new);
	if (l)
		set_parent(h, l, new);
	if (r)
		set_parent(h, r, new);
}

/* A walk of too many steps: 0, and the operation is corrupt. */
static uint64_t too_long(const struct shmk *h)
{
	shmk__corrupt(h);
	return 0;
}

uint64_t shmk__rb_prev(const struct shmk *h, uint64_t n)
{
	uint64_t p;
	int steps = 0;

	if (left(n)) {
		for (n = left(n); right(n); n = right(n))
			if (++steps > RB_MAX_DEPTH)
				return too_long(h);
		return shmk__tx_bad(h) ? 0 : n;
	}
	for (; (p = parent(n)) && n == left(p); n = p)
		if (++steps > RB_MAX_DEPTH)
			return too_long(h);
	return shmk__tx_bad(h) ? 0 : p;
}

uint64_t shmk__rb_next(const struct shmk *h, uint64_t n)
{
	uint64_t p;
	int steps = 0;

	if (right(n)) {
		for (n = right(n); left(n); n = left(n))
			if (++steps > RB_MAX_DEPTH)
				return too_long(h);
		return shmk__tx_bad(h) ? 0 : n;
	}
	for (; (p = parent(n)) && n == right(p); n = p)
		if (++steps > RB_MAX_DEPTH)
			return too_long(h);
	return shmk__tx_bad(h) ? 0 : p;
}

uint64_t shmk__rb_first(const struct shmk *h, uint64_t root)
{
	uint64_t n = shmk__rd(h, root);
	int steps = 0;

	for (; n && left(n); n = left(n))
		if (++steps > RB_MAX_DEPTH)
			return too_long(h);
	return shmk__tx_bad(h) ? 0 : n;
}

uint64_t shmk__rb_lower_bound(const struct shmk *h, uint64_t root,
			      uint64_t size)
{
	uint64_t n = shmk__rd(h, root), best = 0;

	for (int steps = 0; n; steps++) {
		if (steps > RB_MAX_DEPTH)
			return too_long(h);
		if (key(n) >= size) {
			best = n;
			n = left(n);
		} else {
			n = right(n);
		}
	}
	return shmk__tx_bad(h) ? 0 : best;
}
