/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The segment lock: a robust, process-shared lock in the header (rlock.c;
 * not pthread's robust mutex, whose list links in the segment any writer
 * could aim). This file depends on nothing else of the library: what to
 * do when the lock's owner died is recovery.c's business, which builds
 * shmk__lock() on shmk__lock_raw().
 */
#include "internal.h"

int shmk__init_lock(struct shmk *h)
{
	shmk__rlock_init(&h->hdr->lock);
	return 0;
}

/*
 * Take the lock: 0, EOWNERDEAD (taken; its owner died, the metadata may be
 * half changed), ENOTRECOVERABLE, or another positive errno value.
 */
int shmk__lock_raw(struct shmk *h)
{
	if (unlikely(__atomic_load_n(&h->hdr->unrecoverable, __ATOMIC_ACQUIRE)))
		return ENOTRECOVERABLE;
	return shmk__rlock_lock(&h->hdr->lock, NULL, true);
}

/* The metadata is whole again: EOWNERDEAD is over. */
void shmk__lock_consistent(struct shmk *h)
{
	shmk__rlock_consistent(&h->hdr->lock);
}

void shmk__unlock(struct shmk *h)
{
	shmk__rlock_unlock(&h->hdr->lock, NULL);
}

int shmk__writable(const struct shmk *h)
{
	return h->rdonly ? -EPERM : 0;
}
