/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The segment lock: a robust, process-shared mutex in the header, used
 * through the POSIX API only. This file depends on nothing else of the
 * library: what to do when the lock's owner died is recovery.c's business,
 * which builds shmk__lock() on shmk__lock_raw().
 */
#include <pthread.h>
#include <time.h>

#include "internal.h"

#define LOCK_SLICE_NS		10000000L

int shmk__init_lock(struct shmk *h)
{
	pthread_mutexattr_t a;
	int r = pthread_mutexattr_init(&a);

	if (r)
		return -r;
	r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!r)
		r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!r)
		r = pthread_mutex_init(&h->hdr->lock, &a);
	pthread_mutexattr_destroy(&a);
	return -r;
}

/*
 * pthread_mutex_lock(), but never asleep for good. A robust futex can lose
 * a wakeup: the unlocker wakes waiter A, A is killed before it takes the
 * lock, and C takes it meanwhile on the fast path; the kernel re-wakes only
 * when A dies with the futex unowned, so waiter B sleeps on, even after C
 * unlocks or dies (the waiters bit went with A). Waiting in slices of
 * LOCK_SLICE_NS makes B look at the lock word again.
 */
static int mutex_lock(pthread_mutex_t *m)
{
	/*
	 * The first attempt is a clocklock whose deadline has passed: a
	 * trylock that, unlike glibc's pthread_mutex_trylock(), gives back a
	 * mutex that it finds not recoverable (trylock takes it and returns
	 * ENOTRECOVERABLE still holding it). Only the public API is used.
	 */
	static const struct timespec expired = { 0, 0 };
	struct timespec ts;
	int r = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &expired);

	while (r == ETIMEDOUT) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += LOCK_SLICE_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		r = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
	}
	return r;
}

/*
 * Take the lock: 0, EOWNERDEAD (taken; its owner died, the metadata may be
 * half changed), ENOTRECOVERABLE, or another positive errno value.
 */
int shmk__lock_raw(struct shmk *h)
{
	if (unlikely(__atomic_load_n(&h->hdr->unrecoverable, __ATOMIC_ACQUIRE)))
		return ENOTRECOVERABLE;
	return mutex_lock(&h->hdr->lock);
}

/* The metadata is whole again: EOWNERDEAD is over. */
void shmk__lock_consistent(struct shmk *h)
{
	pthread_mutex_consistent(&h->hdr->lock);
}

void shmk__unlock(struct shmk *h)
{
	pthread_mutex_unlock(&h->hdr->lock);
}

int shmk__writable(const struct shmk *h)
{
	return h->rdonly ? -EPERM : 0;
}
