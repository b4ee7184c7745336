/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/* Red-black trees linked by offset (see rbtree.h); CLRS, without sentinel. */
#include "rbtree.h"
#include "tx.h"

#define left(n)		shmk__rb_left(h, (n))
#define right(n)	shmk__rb_right(h, (n))
#define parent(n)	shmk__rb_parent(h, (n))
#define is_black(n)	shmk__rb_is_black(h, (n))
#define is_red(n)	(!is_black(n))

static inline void set_left(struct shmk *h, uint64_t n, uint64_t v)
{
	shmk__tx_set(h, n + NODE_LEFT, v);
}

static inline void set_right(struct shmk *h, uint64_t n, uint64_t v)
{
	shmk__tx_set(h, n + NODE_RIGHT, v);
}

static inline void set_parent(struct shmk *h, uint64_t n, uint64_t p)
{
	uint64_t w = shmk__rd(h, n + NODE_PARENT);

	shmk__tx_set(h, n + NODE_PARENT, p | (w & RB_BLACK));
}

static inline void set_color(struct shmk *h, uint64_t n, uint64_t black)
{
	uint64_t w = shmk__rd(h, n + NODE_PARENT);

	shmk__tx_set(h, n + NODE_PARENT, (w & ~RB_BLACK) | black);
}

#define set_black(n)	set_color(h, (n), RB_BLACK)
#define set_red(n)	set_color(h, (n), 0)

/* Make @new take @old's place under @p (or as the root). */
static void replace_child(struct shmk *h, uint64_t root, uint64_t p,
			  uint64_t old, uint64_t new)
{
	if (!p)
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

	while (x) {
		y = x;
		x = shmk__rb_less(h, z, x) ? left(x) : right(x);
	}
	shmk__tx_set(h, z + NODE_PARENT, y);	/* red */
	set_left(h, z, 0);
	set_right(h, z, 0);
	if (!y)
		shmk__tx_set(h, root, z);
	else if (shmk__rb_less(h, z, y))
		set_left(h, y, z);
	else
		set_right(h, y, z);

	for (uint64_t p; (p = parent(z)) && is_red(p);) {
		uint64_t g = parent(p);	/* exists: a red node is not the root */

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
	set_black(shmk__rd(h, root));
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
	while (x != shmk__rd(h, root) && is_black(x)) {
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

		while (left(y))
			y = left(y);
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
	uint64_t pc = shmk__rd(h, old + NODE_PARENT), l = left(old),
		 r = right(old);

	shmk__tx_set(h, new + NODE_PARENT, pc);
	set_left(h, new, l);
	set_right(h, new, r);
	replace_child(h, root, pc & ~RB_BLACK, old, new);
	if (l)
		set_parent(h, l, new);
	if (r)
		set_parent(h, r, new);
}

uint64_t shmk__rb_prev(const struct shmk *h, uint64_t n)
{
	uint64_t p;

	if (left(n)) {
		for (n = left(n); right(n);)
			n = right(n);
		return n;
	}
	while ((p = parent(n)) && n == left(p))
		n = p;
	return p;
}

uint64_t shmk__rb_next(const struct shmk *h, uint64_t n)
{
	uint64_t p;

	if (right(n)) {
		for (n = right(n); left(n);)
			n = left(n);
		return n;
	}
	while ((p = parent(n)) && n == right(p))
		n = p;
	return p;
}

uint64_t shmk__rb_first(const struct shmk *h, uint64_t root)
{
	uint64_t n = shmk__rd(h, root);

	if (n)
		while (left(n))
			n = left(n);
	return n;
}

uint64_t shmk__rb_lower_bound(const struct shmk *h, uint64_t root,
			      uint64_t size)
{
	uint64_t n = shmk__rd(h, root), best = 0;

	while (n) {
		if (shmk__rb_key(h, n) >= size) {
			best = n;
			n = left(n);
		} else {
			n = right(n);
		}
	}
	return best;
}
