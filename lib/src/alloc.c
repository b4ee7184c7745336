/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The allocator's front end: shmk_alloc() and friends. A request of up to
 * SMALL_MAX bytes (alignment 16 at most) goes to the small tier (small.c),
 * lock-free from the calling thread's heap; anything else, or a small
 * request that cannot get a run, to the page heap (page_heap.c), one
 * transaction under the segment lock.
 */
#include <sched.h>
#include <string.h>

#include "msg_cache.h"
#include "page_heap.h"
#include "small.h"
#include "tx.h"

#define STATS_SPINS		64
#define STATS_TIMEOUT_NS	(5ULL * 1000000000ULL)

int shmk__free_locked(struct shmk *h, uint64_t payload)
{
	uint64_t run = small_run_of(h, payload);

	if (!run)
		return shmk__heap_free(h, payload);
	return shmk__small_free(h, run, payload, SMALL_FREE_LOCKED);
}

/* Locked: the message cache's blocks back to the page heap (msg_cache.c). */
static void flush_kept(struct shmk *h)
{
	shmk__tx_begin(h, TX_FREE_KEPT, 0);
	shmk__msg_flush(h);
	shmk__tx_commit(h);
}

static void *alloc_common(struct shmk *h, size_t size, size_t align)
{
	uint64_t p;
	int r;

	if (!h)
		return shmk__fail_ptr(-EINVAL);
	r = h->rdonly ? -EPERM : 0;	/* shmk__writable(), inline */
	if (likely(!r && size <= SMALL_MAX && align <= BLK_ALIGN)) {
		p = shmk__small_alloc_fast(h, size);
		if (likely(p))
			return h->base + p;
	}
	if (!r)
		r = shmk__lock(h);
	if (r)
		return shmk__fail_ptr(r);
	/* Kept message blocks go back before the heap would grow */
	if (unlikely(shmk__msg_any(h)) &&
	    (size > SMALL_MAX || align > BLK_ALIGN) &&
	    !shmk__heap_fits(h, size, align))
		flush_kept(h);
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

static inline void free_common(struct shmk *h, void *ptr,
			       unsigned int flags)
{
	uint8_t *p = ptr;
	uint64_t off, run;
	int saved;

	if (!h || !p || h->rdonly || p < h->base || p >= h->base + h->map_size)
		return;
	off = (uint64_t)(p - h->base);
	if (unlikely(READ_ONCE(h->hdr->unrecoverable)))
		return;
	run = small_run_of(h, off);
	if (run) {
		/* Lock-free; keeps errno even when it takes the lock. */
		shmk__small_free(h, run, off, flags);
		return;
	}
	/* A message's block: kept for the next message, if there is room */
	if ((flags & SMALL_FREE_REMOTE) && shmk__msg_park(h, off))
		return;
	saved = errno;
	if (shmk__lock(h))
		goto out;
	if (!shmk__heap_valid_used(h, off) && !shmk__msg_parked(h, off)) {
		shmk__tx_begin(h, TX_FREE, off);
		shmk__heap_free_valid(h, off);
		shmk__tx_commit(h);
	}
	shmk__unlock(h);
out:
	errno = saved;
}

void shmk_free(struct shmk *h, void *ptr)
{
	free_common(h, ptr, 0);
}

void shmk__free_msg(struct shmk *h, void *block)
{
	free_common(h, block, SMALL_FREE_REMOTE);
}

size_t shmk_usable_size(const struct shmk *h, const void *ptr)
{
	const uint8_t *p = ptr;
	uint64_t w, off, r, he;

	if (!h || !p || p < h->base + SHMK_HEAP_START + 16 ||
	    p >= h->base + h->map_size || (uintptr_t)p % BLK_ALIGN)
		return 0;
	off = (uint64_t)(p - h->base);
	r = small_run_of(h, off);
	if (r)
		return small_slot_of(h, r, off) >= 0 ?
		       ((const struct shmk_run *)(h->base + r))->slot_size : 0;
	he = READ_ONCE(h->hdr->heap_end);
	if (off > he || !shmk__heap_end_ok(h, he))
		return 0;
	w = READ_ONCE(*(const uint64_t *)(p - BLK_HDR));
	/* A size a client wrote stays inside the heap (shmk_recv() uses it). */
	if (blk_tag(w) != BLK_TAG_USED || !blk_word_ok(w) || blk_kind(w) ||
	    blk_size(w) > he - 8 - (off - BLK_HDR) || shmk__msg_parked(h, off))
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
	if (target > h->heap_ok) {
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
	old_end = h->heap_ok;
	if (shmk__msg_any(h))
		flush_kept(h);
	shmk__small_trim(h);
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

/*
 * After a commit, under the lock: publish the statistics into the buffer
 * readers are not reading (layout.h). The largest free block is looked up
 * again only when the page heap's free index changed since the last
 * publication (the small tier's fast path leaves it alone).
 */
void shmk__stats_publish(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t idx = hd->pub_idx, s;
	const struct shmk_pub_stats *cur = &hd->pub[idx % SHMK_PUB_BUFS];
	struct shmk_pub_stats *p = &hd->pub[(idx + 1) % SHMK_PUB_BUFS];
	uint64_t largest = h->free_index_changed ? shmk__heap_largest(h)
						 : cur->largest_free;

	s = p->seq | 1;		/* odd, even after a publisher that died */
	__atomic_store_n(&p->seq, s, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	p->seg_size = hd->seg_size;
	p->heap_end = hd->heap_end;
	p->used_bytes = hd->used_bytes;
	p->run_bytes = hd->run_bytes;
	p->small_bytes = hd->small_bytes;
	p->pad1 = 0;
	p->free_bytes = hd->free_bytes;
	p->free_blocks = hd->free_blocks;
	p->largest_free = largest;
	p->nallocs = hd->nallocs;
	p->pad2 = 0;
	p->run_blocks = hd->run_blocks;
	p->internal = hd->dir_count + (hd->dir_table ? 1 : 0);
	p->named = hd->dir_count;
	p->grows = hd->grows;
	p->recoveries = hd->recoveries >> 1;
	__atomic_store_n(&p->seq, s + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&hd->pub_idx, idx + 1, __ATOMIC_RELEASE);
	h->free_index_changed = false;
}

/* A copy of the published statistics; false if a publisher overtook us. */
static bool stats_copy(const struct shmk_hdr *hd, struct shmk_pub_stats *c)
{
	uint64_t idx = __atomic_load_n(&hd->pub_idx, __ATOMIC_ACQUIRE);
	const struct shmk_pub_stats *p = &hd->pub[idx % SHMK_PUB_BUFS];
	uint64_t s = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);

	if (s & 1)
		return false;
	c->seg_size = READ_ONCE(p->seg_size);
	c->heap_end = READ_ONCE(p->heap_end);
	c->used_bytes = READ_ONCE(p->used_bytes);
	c->run_bytes = READ_ONCE(p->run_bytes);
	c->small_bytes = READ_ONCE(p->small_bytes);
	c->free_bytes = READ_ONCE(p->free_bytes);
	c->free_blocks = READ_ONCE(p->free_blocks);
	c->largest_free = READ_ONCE(p->largest_free);
	c->nallocs = READ_ONCE(p->nallocs);
	c->run_blocks = READ_ONCE(p->run_blocks);
	c->internal = READ_ONCE(p->internal);
	c->named = READ_ONCE(p->named);
	c->grows = READ_ONCE(p->grows);
	c->recoveries = READ_ONCE(p->recoveries);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&p->seq, __ATOMIC_RELAXED) == s;
}

/*
 * The statistics as of the last commit: a copy of what its committer
 * published, so a reader never waits for writers (a storm of them, or
 * one preempted or killed inside a transaction). The small tier's slots
 * are counted from the runs' bitmaps (the fast path commits there and
 * publishes nothing), each bitmap word read atomically, and split the
 * published bytes of all slots: used + free + cached + overhead is the
 * heap size in every snapshot, and every figure is exact when nothing is
 * in flight. The client count is read just before: clients attach and
 * detach without changing the heap.
 */
int shmk_stats(struct shmk *h, struct shmk_stats *st)
{
	SHMK_KEEP_ERRNO;
	const struct shmk_hdr *hd;
	struct shmk_pub_stats c;
	uint64_t live, internal, sused = 0, slive = 0, deadline = 0;
	uint64_t kbytes, kept;
	uint64_t last_idx = UINT64_MAX;
	unsigned int i, stuck = 0;
	bool ok;
	int r;

	if (!h || !st)
		return -EINVAL;
	hd = h->hdr;
	r = h->be->clients(h, NULL, 0);
	memset(st, 0, sizeof(*st));
	st->clients = r > 0 ? (uint64_t)r : 0;
	for (i = 0;; i++) {
		uint64_t idx = __atomic_load_n(&hd->pub_idx, __ATOMIC_ACQUIRE);

		if (unlikely(__atomic_load_n(&hd->unrecoverable,
					     __ATOMIC_ACQUIRE)))
			return -ENOTRECOVERABLE;
		if (stats_copy(hd, &c)) {
			shmk__small_usage(h, c.heap_end, &sused, &slive);
			/* Runs made or released meanwhile: once more. */
			if (i >= 4 || __atomic_load_n(&hd->pub_idx,
						      __ATOMIC_ACQUIRE) == idx)
				break;
		} else {
			stuck = idx == last_idx ? stuck + 1 : 0;
			last_idx = idx;
		}
		if (stuck >= STATS_SPINS && !h->rdonly) {
			/*
			 * The newest buffer reads as being written, and no
			 * commit moved on: a publisher writes the buffer after
			 * it, never this one, so a client overwrote its seq.
			 * Publish anew and copy under the lock, where nobody
			 * publishes.
			 */
			if ((r = shmk__lock(h)))
				return r;
			shmk__stats_publish(h);
			ok = stats_copy(hd, &c);
			if (ok)
				shmk__small_usage(h, c.heap_end, &sused, &slive);
			shmk__unlock(h);
			if (!ok)
				return -EUCLEAN;
			break;
		}
		if (stuck >= STATS_SPINS) {
			/* A read-only client cannot publish: bounded, as reads. */
			if (!deadline)
				deadline = shmk__clock_ns(CLOCK_MONOTONIC) +
					   STATS_TIMEOUT_NS;
			else if (shmk__clock_ns(CLOCK_MONOTONIC) > deadline)
				return -EAGAIN;
		}
		if (i < 16)
			shmk__cpu_relax();
		else
			sched_yield();
	}
#ifdef SHMK_FAULT_INJECT
	shmk__read_attempts = i + 1;
#endif
	if (sused > c.small_bytes)
		sused = c.small_bytes;
	/* Kept message blocks: cached, not allocated (msg_cache.c) */
	shmk__msg_usage(h, &kbytes, &kept);
	if (kbytes > c.used_bytes - c.run_bytes || kept > c.nallocs)
		kbytes = kept = 0;
	live = c.nallocs - kept + slive;
	internal = c.internal + c.run_blocks;
	st->total_size = c.seg_size;
	st->max_size = h->map_size;
	st->heap_size = c.heap_end - SHMK_HEAP_START;
	st->used_bytes = c.used_bytes - c.run_bytes - kbytes + sused;
	st->free_bytes = c.free_bytes;
	st->cached_bytes = c.small_bytes - sused + kbytes;
	st->free_blocks = c.free_blocks;
	st->largest_free = c.largest_free;
	st->live_allocs = live >= internal ? live - internal : 0;
	st->named_objects = c.named;
	st->grows = c.grows;
	st->recoveries = c.recoveries;
	return 0;
}
