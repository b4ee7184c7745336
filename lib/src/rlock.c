/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The robust lock of memory that other clients can write (rlock.h).
 *
 * The word follows the kernel's robust-futex protocol: the owner's thread
 * id, FUTEX_WAITERS while someone sleeps on it, FUTEX_OWNER_DIED once the
 * kernel found its owner dead. The kernel finds a dead thread's locks by
 * walking the list that glibc registered for the thread (set_robust_list)
 * and marks every word that still holds the thread's id. glibc's robust
 * mutexes sit in that list at its head; this code keeps the locks it takes
 * at its tail, in the order taken:
 *
 *   head -> glibc's mutexes, newest first -> rlock -> rlock -> head
 *
 * glibc only ever inserts at the head and unlinks its own mutexes, so the
 * link of an rlock that it could change is never one that this code
 * follows; this code writes the links of its own locks and of the last
 * glibc entry from what it knows (struct shmk_rlock_hold, in the holder's
 * memory), and follows only glibc's links, in the thread's own memory. A
 * client that overwrites an rlock's link can mislead only the kernel's walk
 * at the owner's death, which reads user memory with the care it takes for
 * every process, and changes only words that hold the dead thread's id.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rlock.h"
#include "internal.h"

#define RLOCK_SLICE_NS		10000000L
/* The kernel gives up on a robust list after as many entries. */
#define RLOCK_WALK_MAX		2048

_Static_assert(sizeof(struct shmk_rlock) == 40 &&
	       offsetof(struct shmk_rlock, next) == 32,
	       "the kernel's view of an rlock: futex word 32 bytes before the link");

/* initial-exec, as small.c's: 32 more bytes of static TLS. */
static __thread __attribute__((tls_model("initial-exec"))) struct {
	struct robust_list_head *head;	/* NULL: not looked up yet */
	pid_t tid;
	struct shmk_rlock_hold *last;	/* the last rlock taken */
} rt;

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* glibc gives the child a fresh robust list; the child holds nothing. */
static void rlock_atfork_child(void)
{
	memset(&rt, 0, sizeof(rt));
}

static void rlock_atfork(void)
{
	pthread_atfork(NULL, NULL, rlock_atfork_child);
}

static int rlock_thread(void)
{
	struct robust_list_head *head;
	size_t len;

	if (likely(rt.head))
		return 0;
	pthread_once(&atfork_once, rlock_atfork);
	if (syscall(SYS_get_robust_list, 0, &head, &len) || !head ||
	    len != sizeof(*head) ||
	    head->futex_offset != -(long)offsetof(struct shmk_rlock, next))
		return ENOTSUP;
	rt.tid = (pid_t)syscall(SYS_gettid);
	rt.head = head;
	return 0;
}

static uintptr_t entry_of(const struct shmk_rlock *l)
{
	return (uintptr_t)&l->next;
}

/*
 * The link that points at @target: the head's, or a glibc entry's. Only
 * glibc's entries, in this thread's memory, are followed.
 */
static uintptr_t *link_to(uintptr_t target)
{
	uintptr_t *p = (uintptr_t *)&rt.head->list;

	for (int i = 0; i < RLOCK_WALK_MAX; i++) {
		uintptr_t nx = *p & ~1UL;

		if (nx == target)
			return p;
		if (nx == (uintptr_t)rt.head)
			return NULL;
		p = (uintptr_t *)nx;
	}
	return NULL;
}

static long futex(uint32_t *uaddr, int op, uint32_t val,
		  const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

/*
 * Take the word. A robust futex can lose a wakeup (the woken waiter is
 * killed before it takes the lock and another thread takes it on the fast
 * path; the waiters bit went with the dead one), so a waiter sleeps in
 * slices and looks at the word again.
 */
static int acquire(struct shmk_rlock *l, bool wait)
{
	static const struct timespec slice = { 0, RLOCK_SLICE_NS };
	uint32_t tid = (uint32_t)rt.tid, extra = 0;
	uint32_t w = __atomic_load_n(&l->word, __ATOMIC_RELAXED);

	for (;;) {
		if (!(w & FUTEX_TID_MASK)) {
			/* Free, or its owner died: FUTEX_OWNER_DIED goes. */
			uint32_t nw = tid | (w & FUTEX_WAITERS) | extra;

			if (__atomic_compare_exchange_n(&l->word, &w, nw, false,
							__ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED))
				return (w & FUTEX_OWNER_DIED) ? EOWNERDEAD : 0;
			continue;
		}
		if ((w & FUTEX_TID_MASK) == tid)
			return EDEADLK;
		if (!wait)
			return EBUSY;
		if (!(w & FUTEX_WAITERS)) {
			if (!__atomic_compare_exchange_n(&l->word, &w,
							 w | FUTEX_WAITERS,
							 false, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED))
				continue;
			w |= FUTEX_WAITERS;
		}
		futex(&l->word, FUTEX_WAIT, w, &slice);
		/* Others may sleep too: whoever takes it after us wakes. */
		extra = FUTEX_WAITERS;
		w = __atomic_load_n(&l->word, __ATOMIC_RELAXED);
	}
}

static void release(struct shmk_rlock *l)
{
	uint32_t w = __atomic_exchange_n(&l->word, 0, __ATOMIC_RELEASE);

	if (w & FUTEX_WAITERS)
		futex(&l->word, FUTEX_WAKE, 1, NULL);
}

void shmk__rlock_init(struct shmk_rlock *l)
{
	memset(l, 0, sizeof(*l));
}

int shmk__rlock_lock(struct shmk_rlock *l, struct shmk_rlock_hold *hold,
		     bool wait)
{
	uintptr_t e = entry_of(l), *pred;
	int r = rlock_thread();

	if (r)
		return r;
	/* The kernel looks at the pending entry too if we die half way. */
	__atomic_store_n(&rt.head->list_op_pending, (void *)e,
			 __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	r = acquire(l, wait);
	if (r && r != EOWNERDEAD)
		goto out;
	if (r == EOWNERDEAD)
		WRITE_ONCE(l->state, RLOCK_INCONSISTENT);
	/* At the tail: after our last rlock, else after glibc's last entry. */
	pred = rt.last ? (uintptr_t *)entry_of(rt.last->lock) :
			 link_to((uintptr_t)rt.head);
	WRITE_ONCE(l->next, (uintptr_t)rt.head);
	if (pred) {
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		WRITE_ONCE(*pred, e);
	}
	hold->lock = l;
	hold->tid = rt.tid;
	hold->next = NULL;
	hold->prev = rt.last;
	if (rt.last)
		rt.last->next = hold;
	rt.last = hold;
	if (r == 0 && READ_ONCE(l->state) == RLOCK_NOTRECOVERABLE) {
		shmk__rlock_unlock(l, hold);
		return ENOTRECOVERABLE;
	}
out:
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&rt.head->list_op_pending, NULL, __ATOMIC_RELAXED);
	return r;
}

void shmk__rlock_consistent(struct shmk_rlock *l)
{
	WRITE_ONCE(l->state, RLOCK_CONSISTENT);
}

int shmk__rlock_unlock(struct shmk_rlock *l, struct shmk_rlock_hold *hold)
{
	uintptr_t e = entry_of(l), succ, *pred;

	if (!rt.head || hold->lock != l || hold->tid != rt.tid)
		return EPERM;
	__atomic_store_n(&rt.head->list_op_pending, (void *)e,
			 __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	succ = hold->next ? entry_of(hold->next->lock) : (uintptr_t)rt.head;
	pred = hold->prev ? (uintptr_t *)entry_of(hold->prev->lock) :
			    link_to(e);
	if (pred)
		WRITE_ONCE(*pred, succ);
	if (hold->prev)
		hold->prev->next = hold->next;
	if (hold->next)
		hold->next->prev = hold->prev;
	else
		rt.last = hold->prev;
	hold->lock = NULL;
	if (READ_ONCE(l->state) == RLOCK_INCONSISTENT)
		WRITE_ONCE(l->state, RLOCK_NOTRECOVERABLE);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (shmk__rlock_owner(l) == (uint32_t)rt.tid)
		release(l);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&rt.head->list_op_pending, NULL, __ATOMIC_RELAXED);
	return 0;
}
