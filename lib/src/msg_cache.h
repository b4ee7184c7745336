/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The message cache (msg_cache.c): page-heap blocks freed as messages,
 * kept whole for the next message of about their size.
 */
#ifndef SHMK_MSG_CACHE_H
#define SHMK_MSG_CACHE_H

#include "internal.h"

/* Lock-free: keep the message block at @payload; false when full. */
bool shmk__msg_park(struct shmk *h, uint64_t payload);
/* Lock-free: a kept block for @need payload bytes, now the caller's; or 0. */
uint64_t shmk__msg_take(struct shmk *h, uint64_t need);
/* Whether the block at @payload is kept (so not allocated). */
bool shmk__msg_parked(const struct shmk *h, uint64_t payload);
/* Lock-free, for shmk_stats(): the kept blocks' bytes and their count. */
void shmk__msg_usage(const struct shmk *h, uint64_t *bytes, uint64_t *n);

/* Whether any block is kept (a hint: entries change without the lock). */
bool shmk__msg_any(const struct shmk *h);

/*
 * Locked, in a transaction of its own (TX_FREE_KEPT): give every kept
 * block back to the page heap. The entries stay
 * claimed until the commit or the rollback settles them
 * (shmk__msg_settle()).
 */
void shmk__msg_flush(struct shmk *h);
/* Locked: after the commit (@done) or the rollback of a flush. */
void shmk__msg_settle(struct shmk *h, bool done);
/* Recovery: drop entries that name no used block of the page heap. */
void shmk__msg_repair(struct shmk *h);
/* shmk_check(): each entry a used block of the page heap, once. */
int shmk__msg_check(const struct shmk *h);

#endif /* SHMK_MSG_CACHE_H */
