/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Recovery, above the lock (lock.c), the page heap, the small tier, the
 * directory and the checker: shmk__lock(), and the lock-free reads that
 * fall back on it.
 *
 * When the lock's owner died, the next locker gets EOWNERDEAD and, before
 * it marks the lock consistent, brings the metadata back to a proven state:
 *
 *  1. roll the undo log back: the state before the dead operation (and
 *     give back, or empty, the message cache entries it was flushing, and
 *     drop the entries that name no used block);
 *  2. recompute the derived counters (the small tier's from its runs);
 *  3. validate everything with the shmk_check() walker; if that fails,
 *     rebuild the free index from the physical chain, and the small tier's
 *     lists, run map and thread heaps' runs from its runs, and validate
 *     again;
 *     if it still fails, leave the lock unrecoverable (every later locker
 *     gets ENOTRECOVERABLE) rather than hand out a corrupt heap;
 *  4. redo the dead operation when it was a free or a remove, so that no
 *     block is lost (an alloc or a create stays undone);
 *  5. adopt backing memory that a growth added before dying.
 *
 * Each step is idempotent, so a recovering process may itself die.
 *
 * Readers take no lock: they run a read function between two loads of a
 * sequence counter that writers keep odd while they change metadata, and
 * retry if it moved. Read functions bound every loop and check every offset,
 * so torn data costs a retry, never a fault.
 */
#include <sched.h>
#include <time.h>

#include "msg_cache.h"
#include "page_heap.h"
#include "small.h"
#include "tx.h"

#define READ_SPINS_BEFORE_LOCK	64
#define READ_TIMEOUT_NS		(5ULL * 1000000000ULL)

static void replay(struct shmk *h, enum shmk_tx_op op)
{
	struct shmk_hdr *hd = h->hdr;

	shmk__tx_begin(h, op, hd->tx_arg);
	if (op == TX_FREE) {
		shmk__free_locked(h, hd->tx_arg);
	} else {
		hd->tx_name[sizeof(hd->tx_name) - 1] = '\0';
		shmk__dir_remove_locked(h, hd->tx_name);
	}
	shmk__tx_commit(h);
}

/*
 * Adopt backing memory beyond the heap that a growth which died half way
 * had added: up to what it asked for (a shrink may leave the memfd
 * backend's file longer than the heap, see segment_memfd.c).
 */
static void adopt_backing(struct shmk *h)
{
	uint64_t size = h->be->backing_size(h);

	if (size > h->hdr->grow_target)
		size = h->hdr->grow_target;
	if (size > h->hdr->heap_end && size <= h->map_size &&
	    size % h->page_size == 0) {
		shmk__tx_begin(h, TX_GROW, size);
		shmk__heap_extend(h, size);
		shmk__tx_commit(h);
	}
}

static int recover(struct shmk *h, bool owner_dead)
{
	struct shmk_hdr *hd = h->hdr;
	enum shmk_tx_op op = hd->tx_state & TX_OP_MASK;
	int r;

	/*
	 * One count per recovery, however often it dies and is redone: the
	 * count and the running bit change in one store.
	 */
	if (!(hd->recoveries & 1))
		WRITE_ONCE(hd->recoveries, hd->recoveries + 3);
	barrier();
	h->corrupt = false;
	shmk__tx_rollback(h);
	/* The heap's end for what follows (its failure fails the check). */
	shmk__heap_bounds(h);
	/* A flush of the message cache: undone with its transaction, or done. */
	shmk__msg_settle(h, op == TX_NONE);
	shmk__msg_repair(h);
	shmk__heap_recount(h);
	shmk__small_recount(h);
	r = shmk__check_locked(h, false);
	if (r == -ENOMEM)
		r = 0;	/* no memory to walk: the rollback is exact anyway */
	if (r) {
		h->tx_nolog = true;
		r = shmk__heap_rebuild(h);
		if (!r)
			r = shmk__small_rebuild(h);
		h->tx_nolog = false;
		if (!r)
			r = shmk__check_locked(h, false);
	}
	if (r) {
		/* Without pthread_mutex_consistent: ENOTRECOVERABLE for all. */
		__atomic_store_n(&hd->unrecoverable, 1, __ATOMIC_RELEASE);
		shmk__unlock(h);
		return owner_dead ? -ENOTRECOVERABLE : -EUCLEAN;
	}
	h->free_index_changed = true;	/* republish all, largest too */
	if (op == TX_FREE || op == TX_DIR_REMOVE)
		replay(h, op);
	else
		shmk__tx_commit(h);
	adopt_backing(h);
	if (owner_dead)
		shmk__lock_consistent(h);
	barrier();
	WRITE_ONCE(hd->recoveries, hd->recoveries & ~1ULL);
	return 0;
}

int shmk__lock(struct shmk *h)
{
	int r = shmk__lock_raw(h);

	if (likely(r == 0 && h->hdr->tx_state == 0)) {
		r = 0;
	} else if (r == 0) {
		/* A holder vanished without the robust list noticing. */
		r = recover(h, false);
	} else if (r == EOWNERDEAD) {
		r = recover(h, true);
	} else {
		return -r;
	}
	/* Whatever a client wrote, nothing is followed outside the heap. */
	if (!r && unlikely(shmk__heap_bounds(h))) {
		shmk__unlock(h);
		r = -EUCLEAN;
	}
	return r;
}

int shmk__read(struct shmk *h, const uint64_t *seq, shmk_read_fn fn,
	       void *arg)
{
	uint64_t deadline = 0;

	for (unsigned int i = 0;; i++) {
		uint64_t s = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
		int r;

		if (unlikely(READ_ONCE(h->hdr->unrecoverable)))
			return -ENOTRECOVERABLE;
		if (!(s & 1)) {
			r = fn(h, arg);
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			if (__atomic_load_n(seq, __ATOMIC_RELAXED) == s)
				return r;
		}
		if (!h->rdonly && i >= READ_SPINS_BEFORE_LOCK) {
			/* A writer can take the lock (and recover if need be). */
			r = shmk__lock(h);
			if (r)
				return r;
			r = fn(h, arg);
			shmk__unlock(h);
			return r;
		}
		if (i < 16) {
			shmk__cpu_relax();
		} else if (i < 64) {
			sched_yield();
		} else {
			struct timespec ts = { 0, 100000 };

			if (!deadline)
				deadline = shmk__clock_ns(CLOCK_MONOTONIC) + READ_TIMEOUT_NS;
			else if (shmk__clock_ns(CLOCK_MONOTONIC) > deadline)
				return -EAGAIN;	/* no writer recovers it */
			nanosleep(&ts, NULL);
		}
	}
}
