/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The message cache: up to SHMK_MSG_CACHE blocks of the page heap that
 * were messages (shmk_msg_free() of a message larger than the small tier
 * serves, by its last reference), kept whole in the segment header for the
 * next shmk_msg_alloc() of about their size. A sender and a receiver that
 * pass large messages back and forth then hand the same blocks over
 * without the segment lock, as the small tier does for small ones.
 *
 * An entry is 0 (empty) or the payload offset of a used block of the page
 * heap that nobody owns. Parking a block is one compare-and-swap of an
 * empty entry, taking one is one compare-and-swap of the entry back to
 * empty: killed before it, nothing happened; after it, the block is kept,
 * or is the taker's (the block in flight, the one loss allowed). A kept
 * block counts as cached in shmk_stats(), not as allocated; shmk_free()
 * refuses it.
 *
 * Kept blocks go back to the page heap in a transaction of their own,
 * under the lock, when a shmk_alloc() finds no free block that fits
 * (before it grows the heap), and at shmk_shrink(). A flush claims an
 * entry first (MSG_CACHE_FLUSH, which parkers and takers leave alone),
 * frees the block, and empties the entry after its transaction commits,
 * or restores it after a rollback; recovery does the same for a flusher
 * that died, and drops entries that name no used block (recovery.c).
 */
#include "msg_cache.h"
#include "page_heap.h"
#include "small.h"

#define MSG_CACHE_FLUSH		1ULL

/*
 * The size of the page-heap block whose payload is @e, if it is a used
 * block in memory that is there (a client may have written the entry, the
 * header or heap_end); or 0.
 */
static uint64_t kept_size(const struct shmk *h, uint64_t e)
{
	uint64_t he = READ_ONCE(h->hdr->heap_end), w, bs;

	if (e % BLK_ALIGN || e < SHMK_HEAP_START + 16 || e >= he ||
	    he > h->map_size || !shmk__backed(h, e) || small_run_of(h, e))
		return 0;
	w = READ_ONCE(*(const uint64_t *)(h->base + e - BLK_HDR));
	bs = blk_size(w);
	if (blk_tag(w) != BLK_TAG_USED || !blk_word_ok(w) || blk_kind(w) ||
	    bs < BLK_MIN || bs > he - 8 - (e - BLK_HDR) ||
	    !shmk__backed(h, e - BLK_HDR + bs))
		return 0;
	return bs;
}

/* Whether a kept block of @bs bytes serves @need payload bytes. */
static bool kept_fits(uint64_t bs, uint64_t need)
{
	return bs >= need + BLK_HDR && bs - BLK_HDR - need <= need / 4;
}

bool shmk__msg_park(struct shmk *h, uint64_t payload)
{
	uint64_t *c = h->hdr->msg_cache;

	/* Only what a message's allocation can take (shmk__msg_take()) */
	if (h->rdonly || READ_ONCE(h->hdr->unrecoverable) ||
	    kept_size(h, payload) <= SMALL_MAX + BLK_HDR)
		return false;
	for (unsigned int i = 0; i < SHMK_MSG_CACHE; i++) {
		uint64_t e = 0;

		if (__atomic_load_n(&c[i], __ATOMIC_RELAXED))
			continue;
		SHMK_FAULT_POINT();
		if (__atomic_compare_exchange_n(&c[i], &e, payload, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			SHMK_FAULT_POINT();
			return true;
		}
	}
	return false;
}

/*
 * A taken block that no longer fits: between the look and the swap it was
 * flushed, and its offset came back as another, smaller block (or a
 * client wrote the entry). It is the caller's now: freed, if a block.
 */
static void take_back(struct shmk *h, uint64_t e)
{
	int saved = errno;

	if (kept_size(h, e) && !shmk__lock(h)) {
		shmk__tx_begin(h, TX_FREE, e);
		shmk__heap_free(h, e);
		shmk__tx_commit(h);
		shmk__unlock(h);
	}
	errno = saved;
}

/*
 * A kept block serves a request of @need bytes when it holds them and
 * wastes at most a quarter more.
 */
uint64_t shmk__msg_take(struct shmk *h, uint64_t need)
{
	uint64_t *c = h->hdr->msg_cache;

	if (h->rdonly || READ_ONCE(h->hdr->unrecoverable))
		return 0;
	for (unsigned int i = 0; i < SHMK_MSG_CACHE; i++) {
		uint64_t e = __atomic_load_n(&c[i], __ATOMIC_ACQUIRE);

		if (!e || (e & MSG_CACHE_FLUSH) || !kept_fits(kept_size(h, e),
							       need))
			continue;
		SHMK_FAULT_POINT();
		if (!__atomic_compare_exchange_n(&c[i], &e, 0, false,
						 __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			continue;
		SHMK_FAULT_POINT();
		if (kept_fits(kept_size(h, e), need))
			return e;
		take_back(h, e);
	}
	return 0;
}

bool shmk__msg_any(const struct shmk *h)
{
	uint64_t any = 0;

	/* One cache line, read whole: no branch per entry. */
#pragma GCC unroll 8
	for (unsigned int i = 0; i < SHMK_MSG_CACHE; i++)
		any |= __atomic_load_n(&h->hdr->msg_cache[i], __ATOMIC_RELAXED);
	return any != 0;
}

bool shmk__msg_parked(const struct shmk *h, uint64_t payload)
{
	const uint64_t *c = h->hdr->msg_cache;
	bool hit = false;

#pragma GCC unroll 8
	for (unsigned int i = 0; i < SHMK_MSG_CACHE; i++)
		hit |= (__atomic_load_n(&c[i], __ATOMIC_ACQUIRE) &
			~MSG_CACHE_FLUSH) == payload;
	return hit;
}

void shmk__msg_usage(const struct shmk *h, uint64_t *bytes, uint64_t *n)
{
	const uint64_t *c = h->hdr->msg_cache;

	*bytes = *n = 0;
	for (unsigned int i = 0; i < SHMK_MSG_CACHE; i++) {
		uint64_t e = __atomic_load_n(&c[i], __ATOMIC_ACQUIRE);
		uint64_t bs = e ? kept_size(h, e & ~MSG_CACHE_FLUSH) : 0;

		if (bs) {
			*bytes += bs;
			(*n)++;
		}
	}
}

void shmk__msg_flush(struct shmk *h)
{
	uint64_t *c = h->hdr->msg_cache;

	for (unsigned int i = 0; i < SHMK_MSG_CACHE; i++) {
		uint64_t e = __atomic_load_n(&c[i], __ATOMIC_ACQUIRE);

		if (!e || (e & MSG_CACHE_FLUSH))
			continue;
		SHMK_FAULT_POINT();
		if (!__atomic_compare_exchange_n(&c[i], &e,
						 e | MSG_CACHE_FLUSH, false,
						 __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			continue;	/* taken meanwhile */
		h->msg_flushing = true;
		SHMK_FAULT_POINT();
		/* Not a used block (a client wrote the entry): it just goes. */
		if (kept_size(h, e) && !shmk__heap_valid_used(h, e))
			shmk__heap_free_valid(h, e);
	}
}

void shmk__msg_settle(struct shmk *h, bool done)
{
	uint64_t *c = h->hdr->msg_cache;

	for (unsigned int i = 0; i < SHMK_MSG_CACHE; i++) {
		uint64_t e = __atomic_load_n(&c[i], __ATOMIC_ACQUIRE);

		if (e & MSG_CACHE_FLUSH)
			__atomic_store_n(&c[i], done ? 0 : e & ~MSG_CACHE_FLUSH,
					 __ATOMIC_RELEASE);
	}
	h->msg_flushing = false;
}

void shmk__msg_repair(struct shmk *h)
{
	uint64_t *c = h->hdr->msg_cache;

	for (unsigned int i = 0; i < SHMK_MSG_CACHE; i++) {
		uint64_t e = __atomic_load_n(&c[i], __ATOMIC_ACQUIRE);
		bool dup = false;

		for (unsigned int j = 0; j < i; j++)
			dup |= __atomic_load_n(&c[j], __ATOMIC_ACQUIRE) == e;
		if (e && (dup || (e & MSG_CACHE_FLUSH) || !kept_size(h, e) ||
			  shmk__heap_valid_used(h, e)))
			__atomic_store_n(&c[i], 0, __ATOMIC_RELEASE);
	}
}

int shmk__msg_check(const struct shmk *h)
{
	const uint64_t *c = h->hdr->msg_cache;

	for (unsigned int i = 0; i < SHMK_MSG_CACHE; i++) {
		uint64_t e = __atomic_load_n(&c[i], __ATOMIC_ACQUIRE);

		if (!e)
			continue;
		/* kept_size(): bounded, for a read-only client's check too */
		if ((e & MSG_CACHE_FLUSH) || !kept_size(h, e))
			return shmk__check_bad("message cache entry", e);
		for (unsigned int j = 0; j < i; j++)
			if (__atomic_load_n(&c[j], __ATOMIC_ACQUIRE) == e)
				return shmk__check_bad("message cache: twice",
						       e);
	}
	return 0;
}
