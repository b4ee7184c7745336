/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * A set of heap block offsets for the crash tests' accounting: collect the
 * allocated blocks with shmk__alloc_walk(h, blocks_walk_fn, &set), sort
 * them with blocks_sort(), then look offsets up with blocks_has().
 */
#ifndef SHMK_TEST_BLOCKS_H
#define SHMK_TEST_BLOCKS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"

struct blocks {
	uint64_t *off;
	size_t n, cap;
};

static inline void blocks_add(struct blocks *b, uint64_t off)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 4096;
		b->off = realloc(b->off, b->cap * sizeof(*b->off));
		CHECK(b->off);
	}
	b->off[b->n++] = off;
}

static inline int blocks_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static inline void blocks_sort(struct blocks *b)
{
	qsort(b->off, b->n, sizeof(*b->off), blocks_cmp);
}

/* After blocks_sort(). */
static inline bool blocks_has(const struct blocks *b, uint64_t off)
{
	return bsearch(&off, b->off, b->n, sizeof(off), blocks_cmp) != NULL;
}

/* shmk__alloc_walk()'s callback: every allocated block into @arg. */
static inline int blocks_walk_fn(uint64_t off, uint64_t size, void *arg)
{
	(void)size;
	blocks_add(arg, off);
	return 0;
}

#endif
