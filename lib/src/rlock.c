/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The robust lock of memory that other clients can write (rlock.h).
 *
 * The word follows the kernel's robust-futex protocol: the owner's thread
 * id, FUTEX_WAITERS while someone sleeps on it, FUTEX_OWNER_DIED once the
 * kernel found its owner dead. The kernel finds a dead thread's locks by
 * walking the list that glibc registered for the thread (set_robust_list)
 * and marks every word that still holds the thread's id. glibc's robust
 * mutexes sit in that list at its head, where glibc inserts them; this code
 * keeps the rlocks a thread holds behind a sentinel of its own, in the
 * thread's TLS, linked in once after glibc's last entry:
 *
 *   head -> glibc's mutexes -> sentinel -> rlock (newest) -> ... -> head
 *
 * glibc never follows a link past its own entries: it reads the head and
 * its own mutexes, and writes only the sentinel's previous-entry slot.
 * This code never follows a link at all once the sentinel is in: it writes
 * the sentinel's link and its own rlocks' links from what the thread
 * recorded in its own memory (struct shmk_rlock_hold, one per lock held by
 * this thread), and reads none back from shared memory. A link a client
 * overwrites can only mislead the kernel's walk at the holder's death; the
 * newest rlock (the segment lock, during an operation) is the first one
 * after the sentinel, so a client of another segment cannot hide it.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rlock.h"
#include "internal.h"

#define RLOCK_SLICE_NS		10000000L
/* The kernel gives up on a robust list after as many entries. */
#define RLOCK_WALK_MAX		2048
/* Looks at a held word before announcing itself, and before sleeping. */
#define RLOCK_PAUSES		100
#define RLOCK_SPINS		400
/* Segment locks one thread can hold at once (their holds live in TLS). */
#define RLOCK_TLS_HOLDS		2

_Static_assert(sizeof(struct shmk_rlock) == 40 &&
	       offsetof(struct shmk_rlock, next) == 32,
	       "the kernel's view of an rlock: futex word 32 bytes before the link");

/* initial-exec, as small.c's: 128 bytes of static TLS. */
static __thread __attribute__((tls_model("initial-exec"))) struct {
	struct robust_list_head *head;	/* NULL: not set up in this thread */
	pid_t tid;
	struct shmk_rlock_hold *first;	/* the newest rlock held */
	struct shmk_rlock sentinel;	/* word 0: the kernel skips it */
	struct shmk_rlock_hold holds[RLOCK_TLS_HOLDS];
} rt;

/*
 * One byte in a MADV_WIPEONFORK page: 0 in a child of fork() (_Fork() and
 * clone() too, which run no atfork handler), where glibc gave the thread
 * a fresh robust list and the thread holds nothing.
 */
static volatile uint8_t *forked_marker;
static pthread_once_t marker_once = PTHREAD_ONCE_INIT;

static void marker_init(void)
{
	size_t len = (size_t)sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	if (madvise(p, len, MADV_WIPEONFORK)) {
		munmap(p, len);
		return;
	}
	forked_marker = p;
}

static uintptr_t entry_of(const struct shmk_rlock *l)
{
	return (uintptr_t)&l->next;
}

/*
 * Set up the thread: its robust list, of glibc's layout, and the sentinel
 * after glibc's last entry, found by following glibc's links (the thread
 * holds no rlock yet, so there is nothing else to follow).
 */
static int rlock_setup(void)
{
	struct robust_list_head *head;
	uintptr_t *p;
	size_t len;
	int i;

	pthread_once(&marker_once, marker_init);
	if (!forked_marker)
		return ENOTSUP;
	memset(&rt, 0, sizeof(rt));
	if (syscall(SYS_get_robust_list, 0, &head, &len) || !head ||
	    len != sizeof(*head) ||
	    head->futex_offset != -(long)offsetof(struct shmk_rlock, next))
		return ENOTSUP;
	p = (uintptr_t *)&head->list;
	for (i = 0; i < RLOCK_WALK_MAX; i++) {
		uintptr_t nx = *p & ~1UL;

		if (nx == (uintptr_t)head)
			break;
		p = (uintptr_t *)nx;
	}
	if (i == RLOCK_WALK_MAX)
		return ENOTSUP;
	rt.sentinel.next = (uintptr_t)head;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	WRITE_ONCE(*p, entry_of(&rt.sentinel));
	rt.tid = (pid_t)syscall(SYS_gettid);
	rt.head = head;
	*forked_marker = 1;
	return 0;
}

static inline int rlock_thread(void)
{
	if (likely(rt.head && *forked_marker))
		return 0;
	return rlock_setup();
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
	static const struct timespec expired = { 0, 0 };
	uint32_t tid = (uint32_t)rt.tid, extra = 0;
	uint32_t w = __atomic_load_n(&l->word, __ATOMIC_RELAXED);
	unsigned int spins = 0, pauses = 0;

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
		if (pauses < RLOCK_PAUSES) {
			/* A short hold is cheaper to wait out than to sleep. */
			pauses++;
			shmk__cpu_relax();
			w = __atomic_load_n(&l->word, __ATOMIC_RELAXED);
			continue;
		}
		/*
		 * Then announce a waiter: the owner's unlock then wakes,
		 * and the word stays free for that system call, long enough
		 * for a spinning waiter to take it (the owner would take it
		 * back at once otherwise). Others may wait too: whoever
		 * takes it after us keeps the bit.
		 */
		if (!(w & FUTEX_WAITERS)) {
			if (!__atomic_compare_exchange_n(&l->word, &w,
							 w | FUTEX_WAITERS,
							 false, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED))
				continue;
			w |= FUTEX_WAITERS;
		}
		extra = FUTEX_WAITERS;
		/*
		 * A wait that has already timed out returns at once, with
		 * EAGAIN if the word moved: while it keeps moving, look
		 * again; sleep once it stands still.
		 */
		if (shmk__futex(&l->word, FUTEX_WAIT, w, &expired, 0) ==
		    -EAGAIN && spins++ < RLOCK_SPINS) {
			w = __atomic_load_n(&l->word, __ATOMIC_RELAXED);
			continue;
		}
		shmk__futex(&l->word, FUTEX_WAIT, w, &slice, 0);
		w = __atomic_load_n(&l->word, __ATOMIC_RELAXED);
	}
}

static void release(struct shmk_rlock *l)
{
	uint32_t w = __atomic_exchange_n(&l->word, 0, __ATOMIC_RELEASE);

	if (w & FUTEX_WAITERS)
		shmk__futex(&l->word, FUTEX_WAKE, 1, NULL, 0);
}

/* The hold of @l in this thread's chain (@hold itself, if given). */
static struct shmk_rlock_hold *held(const struct shmk_rlock *l,
				    const struct shmk_rlock_hold *hold)
{
	for (struct shmk_rlock_hold *c = rt.first; c; c = c->next)
		if (c->lock == l && (!hold || c == hold))
			return c;
	return NULL;
}

void shmk__rlock_init(struct shmk_rlock *l)
{
	memset(l, 0, sizeof(*l));
}

int shmk__rlock_lock(struct shmk_rlock *l, struct shmk_rlock_hold *hold,
		     bool wait)
{
	uintptr_t e = entry_of(l);
	int r = rlock_thread();

	if (r)
		return r;
	if (!hold) {
		for (int i = 0; i < RLOCK_TLS_HOLDS && !hold; i++)
			if (!rt.holds[i].lock)
				hold = &rt.holds[i];
		if (!hold)
			return ENOLCK;
	} else if (hold->lock && held(hold->lock, hold)) {
		return EBUSY;	/* this hold is in use */
	}
	/* The kernel looks at the pending entry too if we die half way. */
	__atomic_store_n(&rt.head->list_op_pending, (void *)e,
			 __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	r = acquire(l, wait);
	if (r && r != EOWNERDEAD)
		goto out;
	if (r == EOWNERDEAD && READ_ONCE(l->state) != RLOCK_NOTRECOVERABLE)
		WRITE_ONCE(l->state, RLOCK_INCONSISTENT);
	/* First after the sentinel: our links only, none read back. */
	WRITE_ONCE(l->next, rt.first ? entry_of(rt.first->lock) :
					(uintptr_t)rt.head);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	WRITE_ONCE(rt.sentinel.next, e);
	hold->lock = l;
	hold->tid = rt.tid;
	hold->prev = NULL;
	hold->next = rt.first;
	if (rt.first)
		rt.first->prev = hold;
	rt.first = hold;
	if (READ_ONCE(l->state) == RLOCK_NOTRECOVERABLE) {
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
	uintptr_t e = entry_of(l), succ;

	if (rlock_thread() || !(hold = held(l, hold)))
		return EPERM;
	__atomic_store_n(&rt.head->list_op_pending, (void *)e,
			 __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	succ = hold->next ? entry_of(hold->next->lock) : (uintptr_t)rt.head;
	if (hold->prev)
		WRITE_ONCE(hold->prev->lock->next, succ);
	else
		WRITE_ONCE(rt.sentinel.next, succ);
	if (hold->prev)
		hold->prev->next = hold->next;
	else
		rt.first = hold->next;
	if (hold->next)
		hold->next->prev = hold->prev;
	hold->lock = NULL;
	if (READ_ONCE(l->state) == RLOCK_INCONSISTENT)
		WRITE_ONCE(l->state, RLOCK_NOTRECOVERABLE);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	/* A client may have handed the word to another thread meanwhile. */
	if (shmk__rlock_owner(l) == (uint32_t)rt.tid)
		release(l);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&rt.head->list_op_pending, NULL, __ATOMIC_RELAXED);
	return 0;
}
