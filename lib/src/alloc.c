/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The allocator's front end: shmk_alloc() and friends. A request of up to
 * SMALL_MAX bytes (alignment 16 at most) goes to the small tier (small.c),
 * anything else, or a small request that cannot get a run, to the page heap
 * (page_heap.c). Each call is one transaction under the segment lock.
 */
#include <string.h>

#include "page_heap.h"
#include "small.h"
#include "tx.h"

int shmk__free_locked(struct shmk *h, uint64_t payload)
{
	uint64_t run = small_run_of(h, payload);
	int64_t i;

	if (!run)
		return shmk__heap_free(h, payload);
	i = small_slot_of(h, run, payload);
	if (i < 0)
		return -EINVAL;
	shmk__small_free(h, run, (uint64_t)i);
	return 0;
}

static void *alloc_common(struct shmk *h, size_t size, size_t align)
{
	uint64_t p;
	int r;

	if (!h)
		return shmk__fail_ptr(-EINVAL);
	r = shmk__writable(h);
	if (!r)
		r = shmk__lock(h);
	if (r)
		return shmk__fail_ptr(r);
	shmk__tx_begin(h, TX_ALLOC, size);
	r = -ENOSPC;
	if (size <= SMALL_MAX && align <= BLK_ALIGN)
		r = shmk__small_alloc(h, size, &p);
	if (r == -ENOSPC || r == -ENOMEM)	/* no run: a block will do */
		r = shmk__heap_alloc(h, size, align, false, &p);
	shmk__tx_commit(h);
	shmk__unlock(h);
	if (r)
		return shmk__fail_ptr(r);
	return h->base + p;
}

void *shmk_alloc(struct shmk *h, size_t size)
{
	return alloc_common(h, size, BLK_ALIGN);
}

void *shmk_alloc_aligned(struct shmk *h, size_t size, size_t align)
{
	if (!align || (align & (align - 1)))
		return shmk__fail_ptr(-EINVAL);
	return alloc_common(h, size, align < BLK_ALIGN ? BLK_ALIGN : align);
}

void shmk_free(struct shmk *h, void *ptr)
{
	uint8_t *p = ptr;
	uint64_t off, run;
	int saved = errno;

	if (!h || !p || h->rdonly || p < h->base || p >= h->base + h->map_size)
		return;
	off = (uint64_t)(p - h->base);
	if (shmk__lock(h))
		goto out;
	run = small_run_of(h, off);
	if (run) {
		int64_t i = small_slot_of(h, run, off);

		if (i >= 0) {
			shmk__tx_begin(h, TX_FREE, off);
			shmk__small_free(h, run, (uint64_t)i);
			shmk__tx_commit(h);
		}
	} else if (!shmk__heap_valid_used(h, off)) {
		shmk__tx_begin(h, TX_FREE, off);
		shmk__heap_free_valid(h, off);
		shmk__tx_commit(h);
	}
	shmk__unlock(h);
out:
	errno = saved;
}

size_t shmk_usable_size(const struct shmk *h, const void *ptr)
{
	const uint8_t *p = ptr;
	uint64_t w, off, r;

	if (!h || !p || p < h->base + SHMK_HEAP_START + 16 ||
	    p >= h->base + h->map_size || (uintptr_t)p % BLK_ALIGN)
		return 0;
	off = (uint64_t)(p - h->base);
	r = small_run_of(h, off);
	if (r)
		return small_slot_of(h, r, off) >= 0 ?
		       ((const struct shmk_run *)(h->base + r))->slot_size : 0;
	w = READ_ONCE(*(const uint64_t *)(p - BLK_HDR));
	if (blk_tag(w) != BLK_TAG_USED || !blk_word_ok(w) || blk_kind(w))
		return 0;
	return blk_size(w) - BLK_HDR;
}

int shmk_grow(struct shmk *h, size_t size)
{
	SHMK_KEEP_ERRNO;
	uint64_t target;
	int r;

	if (!h)
		return -EINVAL;
	if ((r = shmk__writable(h)))
		return r;
	if (size > h->map_size)
		return -EFBIG;
	target = ALIGN_UP((uint64_t)size, (uint64_t)h->page_size);
	if ((r = shmk__lock(h)))
		return r;
	if (target > h->hdr->heap_end) {
		shmk__tx_begin(h, TX_GROW, target);
		h->hdr->grow_target = target;
		r = h->be->resize(h, target);
		if (!r)
			r = shmk__heap_extend(h, target);
		shmk__tx_commit(h);
	}
	shmk__unlock(h);
	return r;
}

int shmk_shrink(struct shmk *h, size_t size)
{
	SHMK_KEEP_ERRNO;
	uint64_t target, floor, old_end;
	int r;

	if (!h)
		return -EINVAL;
	if ((r = shmk__writable(h)))
		return r;
	floor = SHMK_HEAP_START + h->page_size;
	target = ALIGN_UP((uint64_t)size, (uint64_t)h->page_size);
	if (target < floor)
		target = floor;
	if ((r = shmk__lock(h)))
		return r;
	old_end = h->hdr->heap_end;
	shmk__tx_begin(h, TX_SHRINK, target);
	shmk__small_trim(h);
	shmk__tx_commit(h);
	if (target < old_end) {
		shmk__tx_begin(h, TX_SHRINK, target);
		r = shmk__heap_cut(h, &target);
		shmk__tx_commit(h);
		/* Metadata first: a crash here leaves unused backing only. */
		if (!r && target < old_end)
			r = h->be->resize(h, target);
	}
	shmk__unlock(h);
	return r;
}

static int stats_read(struct shmk *h, void *arg)
{
	const struct shmk_hdr *hd = h->hdr;
	struct shmk_stats *st = arg;
	uint64_t named = READ_ONCE(hd->dir_count);
	uint64_t internal = named + (READ_ONCE(hd->dir_table) ? 1 : 0);
	uint64_t nallocs = READ_ONCE(hd->nallocs) + READ_ONCE(hd->small_live);

	internal += READ_ONCE(hd->run_blocks);
	int r;

	memset(st, 0, sizeof(*st));
	/* All inside the snapshot: the library's active size, the clients */
	st->total_size = READ_ONCE(hd->seg_size);
	r = h->be->clients(h, NULL, 0);
	st->clients = r > 0 ? (uint64_t)r : 0;
	st->max_size = h->map_size;
	st->heap_size = READ_ONCE(hd->heap_end) - READ_ONCE(hd->heap_start);
	st->used_bytes = READ_ONCE(hd->used_bytes) - READ_ONCE(hd->run_bytes) +
			 READ_ONCE(hd->small_used);
	st->free_bytes = READ_ONCE(hd->free_bytes);
	st->cached_bytes = READ_ONCE(hd->small_cached);
	st->free_blocks = READ_ONCE(hd->free_blocks);
	st->largest_free = shmk__heap_largest(h);
	st->live_allocs = nallocs >= internal ? nallocs - internal : 0;
	st->named_objects = named;
	st->grows = READ_ONCE(hd->grows);
	st->recoveries = READ_ONCE(hd->recoveries) >> 1;
	return 0;
}

int shmk_stats(struct shmk *h, struct shmk_stats *st)
{
	SHMK_KEEP_ERRNO;

	if (!h || !st)
		return -EINVAL;
	return shmk__read(h, &h->hdr->seq, stats_read, st);
}
