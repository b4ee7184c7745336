/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/* Transactions over segment metadata: begin, commit, rollback (see tx.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "msg_cache.h"
#include "tx.h"

void shmk__tx_overflow(void)
{
	/* Unreachable by construction: SHMK_LOG_CAP bounds every operation. */
	fputs("libshmk: undo log overflow\n", stderr);
	abort();
}

static void seq_make_odd(uint64_t *seq)
{
	uint64_t s = *seq;

	if (!(s & 1)) {
		__atomic_store_n(seq, s + 1, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_RELEASE);
	}
}

static void seq_make_even(uint64_t *seq)
{
	uint64_t s = *seq;

	if (s & 1)
		__atomic_store_n(seq, s + 1, __ATOMIC_RELEASE);
}

/* Save the derived counters, or put them back (@restore). */
static void tx_counters(struct shmk *h, bool restore)
{
	struct shmk_hdr *hd = h->hdr;
	__typeof__(h->tx_counters) *c = &h->tx_counters;

#define TX_COUNTER(f) do {			\
		if (restore)			\
			hd->f = c->f;		\
		else				\
			c->f = hd->f;		\
	} while (0)
	TX_COUNTER(used_bytes);
	TX_COUNTER(free_bytes);
	TX_COUNTER(free_blocks);
	TX_COUNTER(nallocs);
	TX_COUNTER(run_blocks);
	TX_COUNTER(run_bytes);
	TX_COUNTER(small_bytes);
#undef TX_COUNTER
}

void shmk__tx_begin(struct shmk *h, enum shmk_tx_op op, uint64_t arg)
{
	struct shmk_hdr *hd = h->hdr;

	h->corrupt = false;
	shmk__oob = false;
	tx_counters(h, false);
	h->tx_counted = true;
	seq_make_odd(&hd->seq);
	hd->tx_arg = arg;
	barrier();
	h->tx_state = (uint64_t)op;
	WRITE_ONCE(hd->tx_state, h->tx_state);
	barrier();
	SHMK_FAULT_POINT();
}

/* The directory is about to change: lock-free directory readers retry. */
void shmk__dir_changing(struct shmk *h)
{
	seq_make_odd(&h->hdr->dir_seq);
}

static void tx_rollback(struct shmk *h, uint64_t st);

void shmk__tx_commit(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	bool undone = h->corrupt || shmk__oob;

	/*
	 * An operation that found corrupt metadata, or reached outside the
	 * segment through it (shmk__w()), leaves things as they were.
	 */
	if (unlikely(undone)) {
		/* Our own count: a client may have changed the segment's. */
		tx_rollback(h, h->tx_state);
		/* The heap's end as the rollback left it (an extend, a cut). */
		shmk__heap_bounds(h);
		if (h->tx_counted)
			tx_counters(h, true);
		if (h->msg_flushing)
			shmk__msg_settle(h, false);
		h->corrupt = false;	/* the next one, untransacted too */
		shmk__oob = false;
	}
	barrier();
	SHMK_FAULT_POINT();
	h->tx_state = 0;
	WRITE_ONCE(hd->tx_state, 0);	/* the commit point */
	barrier();
	SHMK_FAULT_POINT();
	h->tx_counted = false;
	if (unlikely(h->msg_flushing))
		shmk__msg_settle(h, !undone);
	shmk__stats_publish(h);
	seq_make_even(&hd->dir_seq);
	seq_make_even(&hd->seq);
}

/*
 * Undo the logged writes that record @st counts, newest first, keeping
 * the intent (op) for the caller. Idempotent: a recovery that dies here
 * is simply redone.
 */
static void tx_rollback(struct shmk *h, uint64_t st)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t n = st >> TX_COUNT_SHIFT, backed;

	if (n > SHMK_LOG_CAP)
		n = SHMK_LOG_CAP;
	/*
	 * Only the header's allocator and directory words, and heap words,
	 * are ever logged: an entry for any other place (the lock, the
	 * identity, the log itself, memory past the segment's end) was
	 * written by another client, and is skipped.
	 */
	backed = n ? h->be->backing_size(h) : 0;
	if (backed > h->map_size)
		backed = h->map_size;
	while (n-- > 0) {
		uint64_t off = h->log[n].off;

		if (off % 8 == 0 && ((off >= HDR_OFF(heap_start) &&
				      off < HDR_OFF(used_bytes)) ||
				     (off >= SHMK_HEAP_START && off < backed &&
				      backed - off >= 8)))
			WRITE_ONCE(*shmk__w(h, off), h->log[n].old);
	}
	barrier();
	h->tx_state = st & TX_OP_MASK;
	WRITE_ONCE(hd->tx_state, h->tx_state);
	barrier();
}

/* Recovery: a dead holder's transaction, as the segment records it. */
void shmk__tx_rollback(struct shmk *h)
{
	tx_rollback(h, READ_ONCE(h->hdr->tx_state));
}

#ifdef SHMK_FAULT_INJECT
long shmk__fault_countdown;
long shmk__fault_hits;
unsigned int shmk__read_attempts;

void shmk__fault_point(void)
{
	shmk__fault_hits++;
	if (shmk__fault_countdown > 0 && --shmk__fault_countdown == 0)
		raise(SIGKILL);
}
#endif
