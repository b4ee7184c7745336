/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Crash-consistent metadata updates.
 *
 * Every change to allocator or directory metadata happens inside a
 * transaction, with the segment lock held:
 *
 *   tx_begin(op, arg)   seq becomes odd; the intent (op, arg) is recorded
 *   tx_set(off, val)    the old value goes to the undo log first, then the
 *                       log count is bumped, then the word is written
 *   tx_commit()         the record is cleared in one store (the commit
 *                       point), then seq becomes even again
 *
 * A process that dies anywhere in between leaves a record that the next
 * lock holder (who gets EOWNERDEAD) rolls back from the log, newest entry
 * first, which restores the state before the operation exactly. The intent
 * then says whether to redo the operation (free, remove) or to leave it
 * undone (alloc, create). See lock.c.
 *
 * Only program order matters: the dead process's stores are all visible to
 * the recovering one (the robust-futex handover orders them), so compiler
 * barriers suffice between the steps.
 *
 * Writes that need no undo entry are plain stores: they go to memory that
 * was dead before the transaction (the inside of a block allocated in the
 * same transaction, whose free-tree links were preserved with tx_keep()), or
 * to derived counters that recovery recomputes.
 */
#ifndef SHMK_TX_H
#define SHMK_TX_H

#include "internal.h"

void shmk__tx_overflow(void) __attribute__((noreturn, cold));

static inline void shmk__tx_log(struct shmk *h, uint64_t off, uint64_t old)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t st = h->tx_state;
	uint64_t n = st >> TX_COUNT_SHIFT;

	/* A bug of the library's: no operation logs this many words. */
	if (unlikely(n >= SHMK_LOG_CAP))
		shmk__tx_overflow();
	h->log[n].off = off;
	h->log[n].old = old;
	barrier();
	SHMK_FAULT_POINT();
	h->tx_state = st + (1ULL << TX_COUNT_SHIFT);
	WRITE_ONCE(hd->tx_state, h->tx_state);
	barrier();
	SHMK_FAULT_POINT();
}

/*
 * Write the metadata word at @p (offset @off), undoably: a word the caller
 * checked to lie inside the heap.
 */
static inline void shmk__tx_set_at(struct shmk *h, uint64_t *p, uint64_t off,
				   uint64_t val)
{
	uint64_t old = *p;

	if (old == val)
		return;
	if (likely(!h->tx_nolog))
		shmk__tx_log(h, off, old);
	WRITE_ONCE(*p, val);
	barrier();
}

/* Write a metadata word, undoably. */
static inline void shmk__tx_set(struct shmk *h, uint64_t off, uint64_t val)
{
	shmk__tx_set_at(h, shmk__w(h, off), off, val);
}

/* Record a word's value so that a rollback restores it after plain writes. */
static inline void shmk__tx_keep(struct shmk *h, uint64_t off)
{
	if (likely(!h->tx_nolog))
		shmk__tx_log(h, off, shmk__rd(h, off));
}

/* Header fields by name. */
#define HDR_OFF(field)	((uint64_t)__builtin_offsetof(struct shmk_hdr, field))
#define tx_set_hdr(h, field, val) shmk__tx_set((h), HDR_OFF(field), (val))

#endif /* SHMK_TX_H */
