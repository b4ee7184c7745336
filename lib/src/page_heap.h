/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/* The page heap: block encoding and internals, shared with the checker. */
#ifndef SHMK_PAGE_HEAP_H
#define SHMK_PAGE_HEAP_H

#include "internal.h"

static inline uint64_t blk_tag(uint64_t w)
{
	return w >> BLK_TAG_SHIFT;
}

static inline uint64_t blk_size(uint64_t w)
{
	return w & BLK_SIZE_MASK;
}

static inline bool blk_used(uint64_t w)
{
	return w & BLK_F_USED;
}

static inline bool blk_prev_used(uint64_t w)
{
	return w & BLK_F_PREV_USED;
}

/* BLK_F_RUN, BLK_F_META or 0 (an ordinary block) for a used block. */
static inline uint64_t blk_kind(uint64_t w)
{
	return w & BLK_F_KIND;
}

static inline uint64_t blk_mk_used(uint64_t size, bool prev_used)
{
	return BLK_TAG_USED << BLK_TAG_SHIFT | size | BLK_F_USED |
	       (prev_used ? BLK_F_PREV_USED : 0);
}

static inline uint64_t blk_mk_free(uint64_t size, bool prev_used)
{
	return BLK_TAG_FREE << BLK_TAG_SHIFT | size |
	       (prev_used ? BLK_F_PREV_USED : 0);
}

static inline uint64_t blk_mk_end(bool prev_used)
{
	return BLK_TAG_END << BLK_TAG_SHIFT | BLK_F_USED |
	       (prev_used ? BLK_F_PREV_USED : 0);
}

static inline uint64_t blk_mk_foot(uint64_t size)
{
	return BLK_TAG_FOOT << BLK_TAG_SHIFT | size;
}

/* A well-formed header word of a used, free or end block. */
static inline bool blk_word_ok(uint64_t w)
{
	switch (blk_tag(w)) {
	case BLK_TAG_USED:
		return blk_used(w) && blk_size(w) >= BLK_MIN &&
		       (w & BLK_F_KIND) != BLK_F_KIND;
	case BLK_TAG_FREE:
		return !blk_used(w) && blk_size(w) >= BLK_MIN &&
		       !(w & 0xcULL);
	case BLK_TAG_END:
		return blk_used(w) && blk_size(w) == 0 && !(w & 0xcULL);
	default:
		return false;
	}
}

static inline unsigned int bin_index(uint64_t size)
{
	return (unsigned int)((size - BLK_MIN) / BLK_ALIGN);
}

static inline uint64_t bin_root(unsigned int i)
{
	return __builtin_offsetof(struct shmk_hdr, bins) + 8ULL * i;
}

/* The tree of free blocks of @size bytes, > BIN_MAX_SIZE. */
static inline unsigned int tree_index(uint64_t size)
{
	unsigned int e = 63 - (unsigned int)__builtin_clzll(size);
	unsigned int i = (e - TREE_MIN_SHIFT) * 8 +
			 (unsigned int)((size >> (e - 3)) & 7);

	return i < SHMK_NTREES ? i : SHMK_NTREES - 1;
}

/* The smallest size tree @i may hold (the first is above the bins). */
static inline uint64_t tree_min(unsigned int i)
{
	uint64_t m = (8ULL + i % 8) << (TREE_MIN_SHIFT + i / 8 - 3);

	return i ? m : BIN_MAX_SIZE + BLK_ALIGN;
}

/* The largest size tree @i may hold. */
static inline uint64_t tree_max(unsigned int i)
{
	return i < SHMK_NTREES - 1 ? tree_min(i + 1) - 1 : UINT64_MAX;
}

static inline uint64_t tree_root(unsigned int i)
{
	return __builtin_offsetof(struct shmk_hdr, trees) + 8ULL * i;
}

/*
 * Physical walk over [heap_start, heap_end), validating each header word
 * against the bounds (safe on torn or corrupt data). @fn gets each block
 * offset and header word and may stop the walk by returning nonzero.
 * Returns 0, @fn's value, or -EUCLEAN.
 */
typedef int (*shmk_blk_fn)(uint64_t blk, uint64_t word, void *arg);
int shmk__heap_walk(const struct shmk *h, shmk_blk_fn fn, void *arg);

/*
 * Allocate a block of at least @bsize bytes (a multiple of RUN_CHUNK) whose
 * header sits 8 bytes past a RUN_CHUNK boundary C, best fit, with
 * C + @bsize <= @below. Returns its block offset in *blk, or -ENOSPC when the fit lies
 * above @below (nothing changed but, perhaps, a growth), or -ENOMEM. The
 * payload's old contents are preserved for plain stores (tx.h).
 */
int shmk__heap_alloc_chunked(struct shmk *h, uint64_t bsize, uint64_t below,
			     uint64_t *blk);
/* Free the used block at @blk whatever its kind (the caller validated it). */
void shmk__heap_release(struct shmk *h, uint64_t blk);
/* Free the used block at @payload (shmk__heap_valid_used() said yes). */
void shmk__heap_free_valid(struct shmk *h, uint64_t payload);
/* Cut the free end of the heap at *new_end, or -EBUSY (see page_heap.c). */
int shmk__heap_cut(struct shmk *h, uint64_t *new_end);
/* Locked: the largest free block; bounded, so usable on forged links. */
uint64_t shmk__heap_largest(const struct shmk *h);

#endif /* SHMK_PAGE_HEAP_H */
