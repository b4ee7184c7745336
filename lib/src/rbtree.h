/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Red-black trees of free blocks, in the segment, linked by offset.
 *
 * A node is a free block: its links live at NODE_PARENT (parent offset with
 * the color in bit 0; block offsets are 8 mod 16), NODE_LEFT and NODE_RIGHT.
 * The key is (block size, block offset), so the first node not below
 * (size, 0) is the best fit with ties to the lowest address. A tree's root
 * is a header word, named by its offset. Every write is undo-logged.
 */
#ifndef SHMK_RBTREE_H
#define SHMK_RBTREE_H

#include "internal.h"

#define RB_BLACK	1ULL

static inline uint64_t shmk__rb_left(const struct shmk *h, uint64_t n)
{
	return shmk__rd(h, n + NODE_LEFT);
}

static inline uint64_t shmk__rb_right(const struct shmk *h, uint64_t n)
{
	return shmk__rd(h, n + NODE_RIGHT);
}

static inline uint64_t shmk__rb_parent(const struct shmk *h, uint64_t n)
{
	return shmk__rd(h, n + NODE_PARENT) & ~RB_BLACK;
}

static inline bool shmk__rb_is_black(const struct shmk *h, uint64_t n)
{
	return !n || (shmk__rd(h, n + NODE_PARENT) & RB_BLACK);
}

static inline uint64_t shmk__rb_key(const struct shmk *h, uint64_t n)
{
	return shmk__rd(h, n) & BLK_SIZE_MASK;
}

/* The tree order: block a (size sa) before block b (size sb)? */
static inline bool shmk__rb_key_less(uint64_t sa, uint64_t a, uint64_t sb,
				     uint64_t b)
{
	return sa < sb || (sa == sb && a < b);
}

static inline bool shmk__rb_less(const struct shmk *h, uint64_t a, uint64_t b)
{
	return shmk__rb_key_less(shmk__rb_key(h, a), a, shmk__rb_key(h, b), b);
}

void shmk__rb_insert(struct shmk *h, uint64_t root, uint64_t node);
void shmk__rb_erase(struct shmk *h, uint64_t root, uint64_t node);
void shmk__rb_replace(struct shmk *h, uint64_t root, uint64_t old,
		      uint64_t new);
uint64_t shmk__rb_prev(const struct shmk *h, uint64_t n);
uint64_t shmk__rb_next(const struct shmk *h, uint64_t n);
uint64_t shmk__rb_first(const struct shmk *h, uint64_t root);
uint64_t shmk__rb_lower_bound(const struct shmk *h, uint64_t root,
			      uint64_t size);

#endif /* SHMK_RBTREE_H */
