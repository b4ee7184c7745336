/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The small tier's classes and the lookups that work without the lock
 * (bounded and bounds-checked, so safe on data that changes underneath).
 * Shared by the allocator, the checker and the tests.
 */
#ifndef SHMK_SMALL_H
#define SHMK_SMALL_H

#include "internal.h"

struct shmk_small_class {
	uint32_t size;		/* slot size */
	uint32_t chunks;	/* run size in RUN_CHUNKs */
	uint32_t nslots;
	uint32_t first;		/* slot 0, from the run's payload */
	uint32_t xmap;		/* the bitmap of remote frees, from there */
	uint64_t recip;		/* small_recip(size) */
};

extern const struct shmk_small_class shmk__small_classes[SHMK_NCLASSES];

/* The smallest class whose slots hold @n bytes (n <= SMALL_MAX). */
static inline unsigned int small_class(uint64_t n)
{
	unsigned int k;

	if (n <= 128)
		return n ? (unsigned int)((n + 15) / 16 - 1) : 0;
	k = 63 - (unsigned int)__builtin_clzll(n - 1);	/* 2^k < n <= 2^k+1 */
	return 8 + (k - 7) * 4 + (unsigned int)((n - 1 - (1ULL << k)) >> (k - 2));
}

static inline uint64_t small_recip(uint32_t size)
{
	return ((1ULL << RUN_RECIP_SHIFT) + size - 1) / size;
}

/*
 * The run whose chunks hold offset @off, by the run map: the run's payload
 * offset (its struct shmk_run), or 0 when @off lies in no run.
 */
static inline uint64_t small_run_of(const struct shmk *h, uint64_t off)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t map = READ_ONCE(hd->run_map), len = READ_ONCE(hd->run_map_len);
	uint64_t idx;
	unsigned int k;

	if (off < SHMK_HEAP_START + 16 || !map || map > h->map_size ||
	    len > h->map_size - map)
		return 0;
	idx = (off - BLK_HDR) >> RUN_CHUNK_SHIFT;
	if (idx >= len || !shmk__backed(h, map + idx + 1))
		return 0;
	k = READ_ONCE(h->base[map + idx]);
	if (!k || k > RUN_BIG_CHUNKS || k > idx + 1)
		return 0;
	/* The run's first chunk (its header) is memory, whatever was written. */
	idx -= k - 1;
	if (!idx || !shmk__backed(h, (idx + 1) << RUN_CHUNK_SHIFT))
		return 0;
	return (idx << RUN_CHUNK_SHIFT) + 2 * BLK_HDR;
}

/* A run header that agrees with its class and its place. */
static inline const struct shmk_run *small_run_ok(const struct shmk *h,
						  uint64_t r)
{
	const struct shmk_run *run;
	const struct shmk_small_class *sc;
	uint32_t cls;

	if (r % RUN_CHUNK != 2 * BLK_HDR || r < SHMK_HEAP_START ||
	    r > h->map_size || !shmk__backed(h, r - 2 * BLK_HDR + RUN_CHUNK))
		return NULL;
	run = (const void *)(h->base + r);
	cls = READ_ONCE(run->cls);
	if (cls >= SHMK_NCLASSES || READ_ONCE(run->magic) != (RUN_MAGIC ^ r))
		return NULL;
	sc = &shmk__small_classes[cls];
	if (READ_ONCE(run->slot_size) != sc->size ||
	    READ_ONCE(run->nslots) != sc->nslots ||
	    READ_ONCE(run->first) != sc->first ||
	    READ_ONCE(run->recip) != sc->recip ||
	    !shmk__backed(h, r - 2 * BLK_HDR +
			  (uint64_t)sc->chunks * RUN_CHUNK))
		return NULL;
	return run;
}

/*
 * The class of a run checked before, as an index in range whatever a
 * client wrote into its header since: every bound comes from the table.
 */
static inline unsigned int small_run_cls(const struct shmk_run *run)
{
	return READ_ONCE(run->cls) % SHMK_NCLASSES;
}

/* The slot index of @off in the run at @r (checked before), or -1. */
static inline int64_t small_slot(const struct shmk_run *run, uint64_t r,
				 uint64_t off)
{
	const struct shmk_small_class *sc =
		&shmk__small_classes[small_run_cls(run)];
	uint64_t first = r + sc->first, d, i;

	if (off < first)
		return -1;
	d = off - first;
	i = (d * sc->recip) >> RUN_RECIP_SHIFT;
	if (i >= sc->nslots || i * sc->size != d)
		return -1;
	return (int64_t)i;
}

/*
 * The bitmap of slots freed by other threads (layout.h), of a run checked
 * before; inside its first chunk whatever its class now says.
 */
static inline uint64_t *small_xmap(const struct shmk_run *run)
{
	return (uint64_t *)((uintptr_t)run +
			    shmk__small_classes[small_run_cls(run)].xmap);
}

/* Allocated: set in map, not freed since through xmap. */
static inline bool small_slot_used(const struct shmk_run *run, uint64_t i)
{
	uint64_t bit = 1ULL << (i % 64);

	return READ_ONCE(run->map[i / 64]) & bit &&
	       !(READ_ONCE(small_xmap(run)[i / 64]) & bit);
}

/* Bits past nslots in the last bitmap word: set, so never handed out. */
static inline uint64_t small_pad_bits(uint32_t nslots)
{
	return nslots % 64 ? ~0ULL << (nslots % 64) : 0;
}

/*
 * The allocated slot at @off in the run at @r (small_run_of()): its index,
 * or -1 when @off is not an allocated slot (an interior pointer, a double
 * free, a corrupt run).
 */
static inline int64_t small_slot_of(const struct shmk *h, uint64_t r,
				    uint64_t off)
{
	const struct shmk_run *run = small_run_ok(h, r);
	int64_t i = run ? small_slot(run, r, off) : -1;

	return i >= 0 && small_slot_used(run, (uint64_t)i) ? i : -1;
}

/* The run map's length for a segment of at most @map_size bytes. */
static inline uint64_t small_map_len(uint64_t map_size)
{
	uint64_t len = map_size >> RUN_CHUNK_SHIFT;

	if (len > RUN_MAP_MAX)
		len = RUN_MAP_MAX;
	return ALIGN_UP(len, (uint64_t)BLK_ALIGN);
}

/* The request for the block of the run map and the thread heap table. */
static inline uint64_t small_meta_bytes(uint64_t map_size)
{
	return small_map_len(map_size) + 48 +
	       SHMK_THEAPS * sizeof(struct shmk_theap);
}

/* Lock-free (small.c): a slot for this thread, or 0 (take the lock). */
uint64_t shmk__small_alloc_fast(struct shmk *h, uint64_t size);
/* shmk__small_free()'s flags */
#define SMALL_FREE_LOCKED	1u	/* under the lock, inside a transaction */
#define SMALL_FREE_REMOTE	2u	/* a message: may go through xmap */

/*
 * Free the slot at @off of the run at @r (small_run_of()); -EINVAL (and
 * nothing done) if it is no allocated slot. Lock-free unless
 * SMALL_FREE_LOCKED. With SMALL_FREE_REMOTE, the caller guarantees that the
 * slot is allocated and freed once (a message's last reference): a slot of
 * another thread's current run is then freed in xmap, which its owner does
 * not read until it needs the slot.
 */
int shmk__small_free(struct shmk *h, uint64_t r, uint64_t off,
		     unsigned int flags);
/* Used slot bytes and their count, from the bitmaps (shmk_stats()). */
void shmk__small_usage(const struct shmk *h, uint64_t heap_end,
		       uint64_t *used, uint64_t *live);

/* Locked, inside a transaction (small.c). */
int shmk__small_init(struct shmk *h);
int shmk__small_alloc(struct shmk *h, uint64_t size, uint64_t *payload);
void shmk__small_recount(struct shmk *h);
/*
 * Locked, outside a transaction (each step is one): reap the thread heaps
 * of dead owners and give every empty run that may go back to the page heap.
 */
void shmk__small_trim(struct shmk *h);

/*
 * Every allocation of either tier, ascending by offset: @fn gets its offset and usable size (block size less the header, or the
 * slot size), internal blocks (the directory's) included, runs and the
 * run map not. For the tests; stops at @fn's first nonzero value.
 */
typedef int (*shmk_alloc_fn)(uint64_t off, uint64_t size, void *arg);
int shmk__alloc_walk(const struct shmk *h, shmk_alloc_fn fn, void *arg);
int shmk__small_rebuild(struct shmk *h);
int shmk__small_check(const struct shmk *h);

#endif /* SHMK_SMALL_H */
