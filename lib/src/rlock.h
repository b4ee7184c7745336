/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * A robust, process-shared lock for memory that other, untrusted clients
 * can write (rlock.c). It replaces pthread's robust mutex there: glibc
 * links a robust mutex into its owner's list through pointers stored in
 * the mutex itself, and pthread_mutex_unlock() writes through the two it
 * reads back, so a client that overwrote them while another process held
 * the mutex chose where that process wrote.
 */
#ifndef SHMK_RLOCK_H
#define SHMK_RLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * In shared memory. The kernel's robust-futex list passes through @next,
 * with the futex word at @next + futex_offset, glibc's offset for its own
 * mutexes (one offset serves a thread's whole list). glibc may write
 * @glibc_prev (the previous-entry slot of its doubly linked view of the
 * list); nothing here reads it.
 */
struct shmk_rlock {
	uint32_t word;		/* owner tid | FUTEX_WAITERS | FUTEX_OWNER_DIED */
	uint32_t state;		/* RLOCK_* */
	uint64_t spare[2];
	uint64_t glibc_prev;
	uint64_t next;		/* the owner's robust list, as the kernel reads it */
};

#define RLOCK_CONSISTENT	0u
#define RLOCK_INCONSISTENT	1u	/* taken after its owner died */
#define RLOCK_NOTRECOVERABLE	2u

/*
 * In the holder's own memory, one per lock that a thread holds: the
 * thread's chain of held rlocks, which keeps every list link that this
 * code writes known without reading it back from shared memory. Owned by
 * one thread: a lock held long (a queue's receiver) has one in its handle,
 * the others take one of the thread's own (NULL @hold).
 */
struct shmk_rlock_hold {
	struct shmk_rlock_hold *prev, *next;
	struct shmk_rlock *lock;
	pid_t tid;
};

void shmk__rlock_init(struct shmk_rlock *l);
/*
 * 0, EOWNERDEAD (taken: its owner died), ENOTRECOVERABLE (not taken),
 * EBUSY (@wait false and held, or @hold in use), EDEADLK (this thread
 * holds it), ENOLCK (@hold NULL and the thread holds as many rlocks of its
 * own holds as it has), or ENOTSUP (the thread has no robust list of
 * glibc's layout). @hold NULL: one of the thread's own.
 */
int shmk__rlock_lock(struct shmk_rlock *l, struct shmk_rlock_hold *hold,
		     bool wait);
void shmk__rlock_consistent(struct shmk_rlock *l);
/* 0, or EPERM: this thread does not hold it (through @hold, if given). */
int shmk__rlock_unlock(struct shmk_rlock *l, struct shmk_rlock_hold *hold);

/* The owner's thread id in its pid namespace, 0 when free. */
static inline uint32_t shmk__rlock_owner(const struct shmk_rlock *l)
{
	return __atomic_load_n(&l->word, __ATOMIC_ACQUIRE) & 0x3fffffffu;
}

#endif /* SHMK_RLOCK_H */
