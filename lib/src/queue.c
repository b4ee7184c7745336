/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Zero-copy message queues (shmk_queue_open(3)). A message is a heap block
 * (shmk_msg_alloc()) written once by its sender; what crosses the queue is
 * its offset, 8 bytes, never its contents.
 *
 * A queue is the named object QUEUE_PREFIX + name:
 *
 *   struct queue_hdr   identity, the receiver's robust lock, the tail
 *                      hint (senders), the head (receiver), two futex words
 *   uint64_t slot[cap] one word per position modulo cap
 *
 * A slot word is  lap << 41 | full << 40 | payload offset >> 4, where the
 * lap of position p is p / cap (mod 2^23). Position p is free when its slot
 * reads EMPTY(lap(p)) and holds a message when it reads FULL(lap(p), off).
 * An all-zero slot array is an empty queue at position 0.
 *
 * The insert is one compare-and-swap of the slot word, EMPTY(lap(p)) ->
 * FULL(lap(p), off): the sender claims a position and publishes its message
 * in the same instruction. There is no separate reservation (no fetch_add
 * on a tail counter before the slot is written), so a sender killed at any
 * instruction either did the CAS (the message is queued, whole) or did not
 * (nothing is queued, the slot is untouched): no slot can be left reserved
 * but never written, which with a Vyukov-style fetch_add reservation would
 * stall the receiver at that position until it proved the sender dead.
 * Senders find the first free position from the tail hint, a lower bound
 * that each sender raises (CAS-max) after its CAS and that the scan walks
 * forward from: a sender killed before raising it costs the next sender one
 * more step. The claimed positions are always a prefix [0, T): a sender
 * CASes position p only after seeing every position from its hint (<= T)
 * to p taken. So the receiver consumes in order, never skips a hole, and
 * a sender's messages land at increasing positions: FIFO per sender.
 *
 * The receiver takes FULL(lap(p), off) at its head p, stores EMPTY(lap(p)
 * + 1) (the position p + cap is free), then head = p + 1. A receiver killed
 * between the two stores leaves a slot one lap ahead at the head: its
 * successor skips it (the message was the dead receiver's).
 *
 * Waiting: senders wait for room on send_futex, the receiver for a message
 * on recv_futex; FUTEX_WAIT without FUTEX_PRIVATE_FLAG (shared memory).
 * A sleeper sets its *_sleeping flag (after reading the futex word, before
 * looking at the slots once more); whoever makes progress clears the flag
 * with an exchange and only then bumps the word and calls FUTEX_WAKE, so a
 * message costs no system call unless someone sleeps. A waker killed
 * between its CAS and its wake would leave a sleeper asleep: sleeps are
 * therefore cut in slices of WAIT_SLICE_NS, after which the sleeper looks
 * again (and a sender checks that the receiver lives).
 *
 * The receiver's liveness: the receiver holds recv_lock, a robust,
 * process-shared lock (rlock.h), from shmk_queue_open() to
 * shmk_queue_close(). When
 * its thread dies the kernel's robust-futex handling clears the owner TID
 * in the lock word, on both backends, so a sender learns that the
 * receiver is gone from one load of a word that only changes when the
 * receiver changes (no system call and no /proc lookup per message, which
 * the client registries would cost). A new receiver takes the lock,
 * EOWNERDEAD tells it that it replaces a dead one, and it keeps what was
 * queued. Checking before the insert leaves a window: a receiver that dies
 * just after the check gets the message queued, kept for its successor.
 */
#include <limits.h>
#include <stddef.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "msg_cache.h"
#include "queue.h"

#define QUEUE_MAGIC		0x31455545554b4d53ULL	/* "SMKQUEUE1" */
#define QUEUE_DEFAULT_CAP	1024u
#define QUEUE_MAX_CAP		(1u << 20)
#define WAIT_SLICE_NS		100000000ULL		/* 100 ms */

#define SLOT_OFF_BITS		40
#define SLOT_FULL		(1ULL << SLOT_OFF_BITS)
#define SLOT_LAP_SHIFT		41
#define SLOT_LAP_MASK		((1ULL << 23) - 1)
#define SLOT_OFF_MASK		(SLOT_FULL - 1)

#define MSG_MAGIC		0x2147534du		/* "MSG!" */
#define MSG_HDR			16u

#define OPEN_FLAGS		(SHMK_QUEUE_RECV | SHMK_QUEUE_RECLAIM)
#define SEND_FLAGS		(SHMK_NONBLOCK)

struct msg_hdr {
	uint64_t size;			/* as asked of shmk_msg_alloc() */
	uint32_t refs;			/* receivers yet to free it */
	uint32_t magic;			/* MSG_MAGIC while allocated */
};

/*
 * Groups written by different parties are 64 bytes apart (a named object
 * is only 16-byte aligned, so each may straddle two cache lines).
 */
struct queue_hdr {
	uint64_t magic;			/* QUEUE_MAGIC once initialized */
	uint32_t capacity;
	uint32_t shift;			/* log2(capacity) */
	int32_t recv_pid;		/* informational */
	uint32_t recv_pidns;		/* recv_pid's pid namespace */
	/*
	 * Waiting: written only around a sleep. A message in flight reads
	 * both flags; beside tail and head (up to layout 5) that read
	 * pulled the other party's line over at every message.
	 */
	uint32_t send_futex;
	uint32_t send_sleeping;
	uint32_t recv_futex;
	uint32_t recv_sleeping;
	uint64_t pad1[3];

	/* 64: read by every send, changes only when the receiver does */
	struct shmk_rlock recv_lock;
	uint8_t pad2[64 - sizeof(struct shmk_rlock)];

	/* 128: senders */
	uint64_t tail;			/* hint: <= the first free position */
	uint64_t blocked;		/* sends that slept for room */
	uint64_t pad3[6];

	/* 192: the receiver */
	uint64_t head;
	uint64_t high_water;
	uint64_t pad4[6];

	/* 256 */
	uint64_t slot[];
};

_Static_assert(sizeof(struct msg_hdr) == MSG_HDR, "message header");
_Static_assert(sizeof(struct queue_hdr) == 256 &&
	       offsetof(struct queue_hdr, tail) == 128 &&
	       offsetof(struct queue_hdr, head) == 192, "queue header");

struct shmk_queue {
	struct shmk *h;
	struct queue_hdr *q;
	uint64_t mask;
	unsigned int shift;
	bool recv;
	uint64_t busy_poll_ns;
	struct shmk_rlock_hold recv_hold;	/* recv: recv_lock's (rlock.h) */
};

/* ---- slot words -------------------------------------------------------- */

static inline uint64_t lap_of(const struct shmk_queue *qu, uint64_t pos)
{
	return (pos >> qu->shift) & SLOT_LAP_MASK;
}

static inline uint64_t slot_lap(uint64_t w)
{
	return w >> SLOT_LAP_SHIFT;
}

static inline uint64_t mk_empty(uint64_t lap)
{
	return (lap & SLOT_LAP_MASK) << SLOT_LAP_SHIFT;
}

static inline uint64_t mk_full(uint64_t lap, uint64_t off)
{
	return mk_empty(lap) | SLOT_FULL | (off >> 4);
}

/* Slot lap relative to the lap wanted: 0 same, > 0 ahead, < 0 behind. */
static inline int64_t lap_diff(uint64_t have, uint64_t want)
{
	uint64_t d = (have - want) & SLOT_LAP_MASK;

	return d < (SLOT_LAP_MASK + 1) / 2 ? (int64_t)d
					   : (int64_t)d - (int64_t)(SLOT_LAP_MASK + 1);
}

/* ---- futexes and time -------------------------------------------------- */

static void futex_wait_until(uint32_t *w, uint32_t v, uint64_t abs_ns)
{
	struct timespec ts = { (time_t)(abs_ns / 1000000000ULL),
			       (long)(abs_ns % 1000000000ULL) };

	shmk__futex(w, FUTEX_WAIT_BITSET, v, &ts, FUTEX_BITSET_MATCH_ANY);
}

static void futex_wake_all(uint32_t *w)
{
	__atomic_fetch_add(w, 1, __ATOMIC_SEQ_CST);
	shmk__futex(w, FUTEX_WAKE, INT_MAX, NULL, 0);
}

static inline void wake_if_sleeping(uint32_t *sleeping, uint32_t *futex)
{
	if (__atomic_load_n(sleeping, __ATOMIC_SEQ_CST) &&
	    __atomic_exchange_n(sleeping, 0, __ATOMIC_SEQ_CST))
		futex_wake_all(futex);
}

static inline uint64_t now_ns(void)
{
	return shmk__clock_ns(CLOCK_MONOTONIC);
}

/*
 * One step of a sender's busy wait for room that started at @start: pause,
 * and once it has spun for SPIN_YIELD_NS, yield, so that on a machine with
 * more runnable threads than CPUs the receiver that would make room gets
 * the CPU rather than wait for our time slice to end (iceoryx's publishers
 * yield likewise). A busy receiver does not yield: its wait is the latency.
 */
#define SPIN_YIELD_NS		2000ULL

static void spin_step(uint64_t start, uint64_t now)
{
	if (now - start < SPIN_YIELD_NS)
		shmk__cpu_relax();
	else
		sched_yield();
}

/* ---- liveness ---------------------------------------------------------- */

/*
 * The receiver lives while its thread owns recv_lock: the lock word holds
 * the owner's TID, cleared by the kernel when that thread dies, and by the
 * receiver's unlock.
 */
static inline bool receiver_alive(const struct queue_hdr *q)
{
	return shmk__rlock_owner(&q->recv_lock) != 0;
}

/* Take recv_lock without waiting: 0, 1 (its owner died) or -errno. */
static int take_receiver(struct shmk_queue *qu)
{
	int r = shmk__rlock_lock(&qu->q->recv_lock, &qu->recv_hold, false);

	switch (r) {
	case 0:
		return 0;
	case EOWNERDEAD:
		shmk__rlock_consistent(&qu->q->recv_lock);
		return 1;
	case ETIMEDOUT:
	case EBUSY:
	case EDEADLK:
		return -EADDRINUSE;
	default:
		return -r;
	}
}

/* ---- messages ---------------------------------------------------------- */

static struct msg_hdr *msg_of(const struct shmk *h, const void *msg)
{
	const uint8_t *p = msg;
	struct msg_hdr *m;

	if (!h || !p || (uintptr_t)p % 16 ||
	    p < h->base + SHMK_HEAP_START + MSG_HDR + BLK_HDR ||
	    p >= h->base + READ_ONCE(h->hdr->heap_end) ||
	    !shmk__backed(h, (uint64_t)(p - h->base)))
		return NULL;
	m = (struct msg_hdr *)(uintptr_t)(p - MSG_HDR);
	if (READ_ONCE(m->magic) != MSG_MAGIC)
		return NULL;
	return m;
}

void *shmk_msg_alloc(struct shmk *h, size_t size)
{
	struct msg_hdr *m;

	if (!h)
		return shmk__fail_ptr(-EINVAL);
	if (size > SIZE_MAX - MSG_HDR)
		return shmk__fail_ptr(-ENOMEM);
	m = NULL;
	if (size + MSG_HDR > SMALL_MAX) {
		/* A large message's block, kept by the last one's free */
		uint64_t off = shmk__msg_take(h, size + MSG_HDR);

		if (off)
			m = (struct msg_hdr *)(h->base + off);
	}
	if (!m)
		m = shmk_alloc(h, size + MSG_HDR);
	if (!m)
		return NULL;
	m->size = size;
	m->refs = 1;
	m->magic = MSG_MAGIC;
	return (uint8_t *)m + MSG_HDR;
}

/* Drop one reference; the last one frees the block. */
static void msg_put(struct shmk *h, struct msg_hdr *m)
{
	uint32_t refs = __atomic_load_n(&m->refs, __ATOMIC_RELAXED);

	do {
		if (!refs)
			return;		/* freed already: ignore */
	} while (!__atomic_compare_exchange_n(&m->refs, &refs, refs - 1, true,
					      __ATOMIC_ACQ_REL,
					      __ATOMIC_RELAXED));
	if (refs == 1) {
		WRITE_ONCE(m->magic, 0);
		shmk__free_msg(h, m);
	}
}

void shmk_msg_free(struct shmk *h, void *msg)
{
	int saved = errno;
	struct msg_hdr *m = msg_of(h, msg);

	if (m && !h->rdonly)
		msg_put(h, m);
	errno = saved;
}

/* ---- open and close ---------------------------------------------------- */

static int queue_objname(struct shmk *h, const char *name, char *buf,
			 size_t n)
{
	char comm[17] = "";
	size_t len;

	if (!name) {
		name = h->client_name;
		if (!*name) {
			prctl(PR_GET_NAME, comm, 0, 0, 0);
			name = comm;
		}
	}
	len = strlen(name);
	if (!len || len + sizeof(QUEUE_PREFIX) > n)
		return -EINVAL;
	memcpy(buf, QUEUE_PREFIX, sizeof(QUEUE_PREFIX) - 1);
	memcpy(buf + sizeof(QUEUE_PREFIX) - 1, name, len + 1);
	return 0;
}

static size_t queue_bytes(uint32_t cap)
{
	return sizeof(struct queue_hdr) + (size_t)cap * sizeof(uint64_t);
}

/*
 * A queue object is all zeros when created (shmk_find_or_alloc()); the first
 * opener to see no magic initializes it under the segment lock, so that a
 * creator killed half way is finished by the next opener.
 */
/* A fresh, unowned receiver lock. */
static void init_recv_lock(struct queue_hdr *q)
{
	shmk__rlock_init(&q->recv_lock);
}

static int queue_init(struct shmk *h, struct queue_hdr *q, size_t bytes,
		      uint32_t want_cap)
{
	uint32_t cap;
	int r;

	if (__atomic_load_n(&q->magic, __ATOMIC_ACQUIRE) == QUEUE_MAGIC)
		return 0;
	r = shmk__lock(h);
	if (r)
		return r;
	if (q->magic == QUEUE_MAGIC)
		goto out;
	/* The capacity is what the object holds (a creator's opts). */
	cap = want_cap;
	while (cap > 1 && queue_bytes(cap) > bytes)
		cap >>= 1;
	if (queue_bytes(cap) > bytes) {
		r = -EUCLEAN;
		goto out;
	}
	memset(q, 0, queue_bytes(cap));
	q->capacity = cap;
	q->shift = (uint32_t)__builtin_ctz(cap);
	init_recv_lock(q);
	__atomic_store_n(&q->magic, QUEUE_MAGIC, __ATOMIC_RELEASE);
out:
	shmk__unlock(h);
	return r;
}

/*
 * A new session on the segment's bytes: an image just loaded, or a file
 * segment that nobody had open. No receiver of an earlier session lives,
 * but its lock word can still name its thread (the image was saved, or
 * the machine stopped, while it received), which would show a receiver
 * to the senders and keep every new one out (EADDRINUSE) for good: each
 * queue gets a fresh, unowned lock. The segment is this process's alone.
 */
static int new_session_fn(const char *name, void *ptr, size_t size,
			  void *arg)
{
	struct queue_hdr *q = ptr;

	(void)arg;
	if (strncmp(name, QUEUE_PREFIX, sizeof(QUEUE_PREFIX) - 1) ||
	    size < sizeof(*q) || q->magic != QUEUE_MAGIC)
		return 0;
	init_recv_lock(q);
	q->recv_pid = 0;
	q->recv_pidns = 0;
	q->send_sleeping = 0;
	q->recv_sleeping = 0;
	return 0;
}

void shmk__queue_new_session(struct shmk *h)
{
	shmk_foreach(h, new_session_fn, NULL);
}

/* The receiver's head: skip a position its dead predecessor had taken. */
static void fix_head(struct shmk_queue *qu)
{
	struct queue_hdr *q = qu->q;
	uint64_t p = q->head;
	uint64_t w = __atomic_load_n(&q->slot[p & qu->mask], __ATOMIC_ACQUIRE);

	if (lap_diff(slot_lap(w), lap_of(qu, p)) > 0)
		__atomic_store_n(&q->head, p + 1, __ATOMIC_RELEASE);
}

static int drain(struct shmk_queue *qu)
{
	int n = 0;
	void *m;
	size_t sz;

	while (shmk_recv(qu, &m, &sz, 0) == 0) {
		shmk_msg_free(qu->h, m);
		if (n < INT_MAX)
			n++;
	}
	return n;
}

int shmk_queue_open(struct shmk *h, const char *name, int flags,
		    const struct shmk_queue_opts *opts,
		    struct shmk_queue **out)
{
	SHMK_KEEP_ERRNO;
	char obj[SHMK_OBJ_NAME_MAX];
	struct shmk_queue *qu;
	struct queue_hdr *q;
	uint32_t cap = QUEUE_DEFAULT_CAP;
	size_t bytes = 0;
	int r, n = 0;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!h || (flags & ~OPEN_FLAGS))
		return -EINVAL;
	if (opts) {
		if (opts->flags || opts->reserved[0] || opts->reserved[1] ||
		    opts->reserved[2])
			return -EINVAL;
		if (opts->capacity) {
			cap = opts->capacity;
			if ((cap & (cap - 1)) || cap > QUEUE_MAX_CAP)
				return -EINVAL;
		}
	}
	if ((flags & OPEN_FLAGS) && h->rdonly)
		return -EPERM;
	r = queue_objname(h, name, obj, sizeof(obj));
	if (r)
		return r;
	q = shmk_find(h, obj, &bytes);
	if (!q && errno == ENOENT && (flags & SHMK_QUEUE_RECV))
		q = shmk_find_or_alloc(h, obj, queue_bytes(cap), NULL);
	if (!q)
		return -errno;
	if (!bytes)
		bytes = queue_bytes(cap);
	r = queue_init(h, q, bytes, QUEUE_MAX_CAP);
	if (r)
		return r;
	/*
	 * The handle keeps the geometry, checked once against the object
	 * (any client may have overwritten the header): every slot index
	 * stays inside it.
	 */
	cap = READ_ONCE(q->capacity);
	if (!cap || (cap & (cap - 1)) || cap > QUEUE_MAX_CAP ||
	    READ_ONCE(q->shift) != (uint32_t)__builtin_ctz(cap) ||
	    queue_bytes(cap) > bytes)
		return -EUCLEAN;
	qu = calloc(1, sizeof(*qu));
	if (!qu)
		return -ENOMEM;
	qu->h = h;
	qu->q = q;
	qu->shift = (uint32_t)__builtin_ctz(cap);
	qu->mask = cap - 1;
	qu->busy_poll_ns = opts ? opts->busy_poll_ns : 0;
	if (flags & OPEN_FLAGS) {
		r = take_receiver(qu);
		if (r < 0) {
			free(qu);
			return r;
		}
		qu->recv = true;
		__atomic_fetch_add(&h->recv_queues, 1, __ATOMIC_ACQ_REL);
		WRITE_ONCE(q->recv_pidns, shmk__ns_ino("pid"));
		WRITE_ONCE(q->recv_pid, (int32_t)getpid());
		fix_head(qu);
		if (flags & SHMK_QUEUE_RECLAIM)
			n = drain(qu);
		if (!(flags & SHMK_QUEUE_RECV)) {
			shmk_queue_close(qu);
			return n;
		}
	}
	*out = qu;
	return n;
}

int shmk_queue_close(struct shmk_queue *qu)
{
	SHMK_KEEP_ERRNO;

	if (!qu)
		return -EINVAL;
	if (qu->recv) {
		int32_t pid = READ_ONCE(qu->q->recv_pid);
		int r;

		/* Only the thread that holds recv_lock can give it back. */
		WRITE_ONCE(qu->q->recv_pid, 0);
		r = shmk__rlock_unlock(&qu->q->recv_lock, &qu->recv_hold);
		if (r) {
			WRITE_ONCE(qu->q->recv_pid, pid);
			return -r;
		}
		__atomic_fetch_sub(&qu->h->recv_queues, 1, __ATOMIC_ACQ_REL);
		/* Senders waiting for room learn that nobody receives. */
		wake_if_sleeping(&qu->q->send_sleeping, &qu->q->send_futex);
	}
	free(qu);
	return 0;
}

/* ---- send -------------------------------------------------------------- */

/* Steps of one insert: a slot per position, laps of them only if overwritten. */
#define INSERT_MAX_LAPS		64

/* One attempt: 0 queued, -EAGAIN full, -EUCLEAN slots laps ahead. */
static int try_insert(struct shmk_queue *qu, uint64_t off)
{
	struct queue_hdr *q = qu->q;
	uint64_t p = __atomic_load_n(&q->tail, __ATOMIC_RELAXED), t;

	for (uint64_t steps = 0;; steps++) {
		uint64_t *s = &q->slot[p & qu->mask];

		/*
		 * Each step passes a slot taken or consumed at p's lap; a
		 * client that wrote every slot laps ahead would have the
		 * sender walk up to 2^23 laps.
		 */
		if (steps > INSERT_MAX_LAPS * (qu->mask + 1))
			return -EUCLEAN;
		uint64_t lap = lap_of(qu, p);
		uint64_t w = __atomic_load_n(s, __ATOMIC_ACQUIRE);
		int64_t d = lap_diff(slot_lap(w), lap);

		if (d == 0 && !(w & SLOT_FULL)) {
			if (__atomic_compare_exchange_n(s, &w, mk_full(lap, off),
							false, __ATOMIC_SEQ_CST,
							__ATOMIC_ACQUIRE))
				break;
			continue;	/* w reloaded: look again */
		}
		if (d < 0) {	/* position p - cap not consumed: full */
			t = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
			while (t < p && !__atomic_compare_exchange_n(
					&q->tail, &t, p, true,
					__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				;
			return -EAGAIN;
		}
		/* Taken at this lap, or consumed already: further on. */
		t = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
		p = t > p + 1 ? t : p + 1;
	}
	SHMK_FAULT_POINT();
	/* Raise the hint past p (a kill here costs others one step). */
	t = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
	while (t < p + 1 &&
	       !__atomic_compare_exchange_n(&q->tail, &t, p + 1, true,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	wake_if_sleeping(&q->recv_sleeping, &q->recv_futex);
	return 0;
}

/* Is position tail (or later) free? Then a sender may insert. */
static bool has_room(const struct shmk_queue *qu)
{
	const struct queue_hdr *q = qu->q;
	uint64_t p = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
	uint64_t w = __atomic_load_n(&q->slot[p & qu->mask], __ATOMIC_ACQUIRE);

	return lap_diff(slot_lap(w), lap_of(qu, p)) >= 0;
}

static int send_one(struct shmk_queue *qu, uint64_t off, int flags)
{
	struct queue_hdr *q = qu->q;
	uint64_t spin_start = 0, spin_end = 0, deadline;
	bool counted = false;

	for (;;) {
		uint32_t v;
		int r;

		if (!receiver_alive(q))
			return -ECONNRESET;
		r = try_insert(qu, off);
		if (r != -EAGAIN || (flags & SHMK_NONBLOCK))
			return r;
		if (qu->busy_poll_ns) {
			uint64_t now = now_ns();

			if (!spin_end) {
				spin_start = now;
				spin_end = qu->busy_poll_ns > UINT64_MAX - now ?
					   UINT64_MAX : now + qu->busy_poll_ns;
			}
			if (now < spin_end) {
				spin_step(spin_start, now);
				continue;
			}
		}
		if (!counted) {
			__atomic_fetch_add(&q->blocked, 1, __ATOMIC_RELAXED);
			counted = true;
		}
		v = __atomic_load_n(&q->send_futex, __ATOMIC_SEQ_CST);
		__atomic_store_n(&q->send_sleeping, 1, __ATOMIC_SEQ_CST);
		if (has_room(qu) || !receiver_alive(q))
			continue;
		deadline = now_ns() + WAIT_SLICE_NS;
		futex_wait_until(&q->send_futex, v, deadline);
	}
}

static int send_check(struct shmk_queue *qu, void *msg, int flags,
		      uint64_t *off)
{
	if (!qu || (flags & ~SEND_FLAGS) || !msg_of(qu->h, msg))
		return -EINVAL;
	*off = (uint64_t)((uint8_t *)msg - qu->h->base);
	if (*off >> (SLOT_OFF_BITS + 4))
		return -EINVAL;
	return 0;
}

int shmk_send(struct shmk_queue *qu, void *msg, int flags)
{
	SHMK_KEEP_ERRNO;
	uint64_t off;
	int r = send_check(qu, msg, flags, &off);

	return r ? r : send_one(qu, off, flags);
}

int shmk_broadcast(struct shmk_queue *const *qs, size_t n, void *msg,
		   int flags)
{
	SHMK_KEEP_ERRNO;
	struct msg_hdr *m;
	uint64_t off;
	size_t sent = 0;
	int r = 0;

	if (!qs || !n || n > INT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		r = send_check(qs[i], msg, flags, &off);
		if (r)
			return r;
		if (qs[i]->h != qs[0]->h)
			return -EINVAL;
	}
	m = msg_of(qs[0]->h, msg);
	if (READ_ONCE(m->refs) != 1)
		return -EINVAL;		/* sent already: not ours */
	/* One reference per queue, taken before the first can be freed. */
	__atomic_store_n(&m->refs, (uint32_t)n, __ATOMIC_RELEASE);
	for (size_t i = 0; i < n; i++) {
		int e = send_one(qs[i], off, flags);

		if (!e)
			sent++;
		else if (!r)
			r = e;
	}
	if (sent == n)
		return (int)sent;
	if (!sent) {
		__atomic_store_n(&m->refs, 1, __ATOMIC_RELEASE);
		return r;
	}
	/* Give back the references of the queues it did not reach. */
	if (__atomic_sub_fetch(&m->refs, (uint32_t)(n - sent),
			       __ATOMIC_ACQ_REL) == 0) {
		WRITE_ONCE(m->magic, 0);
		shmk__free_msg(qs[0]->h, m);
	}
	return (int)sent;
}

/* ---- receive ----------------------------------------------------------- */

/* One attempt: 0 and the offset, or -EAGAIN when empty. */
static int try_take(struct shmk_queue *qu, uint64_t *off)
{
	struct queue_hdr *q = qu->q;

	/* A full lap of slots ahead is no receiver's doing: a client's. */
	for (uint64_t skips = 0;; skips++) {
		uint64_t p = q->head, lap = lap_of(qu, p);

		if (skips > qu->mask)
			return -EUCLEAN;
		uint64_t *s = &q->slot[p & qu->mask];
		uint64_t w = __atomic_load_n(s, __ATOMIC_ACQUIRE), nw;
		int64_t d = lap_diff(slot_lap(w), lap);

		if (d > 0) {	/* taken by a receiver that died */
			__atomic_store_n(&q->head, p + 1, __ATOMIC_RELEASE);
			continue;
		}
		if (d < 0 || !(w & SLOT_FULL))
			return -EAGAIN;
		*off = (w & SLOT_OFF_MASK) << 4;
		SHMK_FAULT_POINT();
		/* Position p + cap is free: a store both frees and orders. */
		__atomic_store_n(s, mk_empty(lap + 1), __ATOMIC_SEQ_CST);
		__atomic_store_n(&q->head, p + 1, __ATOMIC_RELEASE);
		/* A backlog: sample the depth for the high-water mark. */
		nw = __atomic_load_n(&q->slot[(p + 1) & qu->mask],
				     __ATOMIC_RELAXED);
		if ((nw & SLOT_FULL) && slot_lap(nw) == lap_of(qu, p + 1)) {
			uint64_t t = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
			uint64_t depth = t > p + 1 ? t - p : 2;

			/* p + cap may be taken already: at most cap. */
			if (depth > qu->mask + 1)
				depth = qu->mask + 1;

			if (depth > q->high_water)
				WRITE_ONCE(q->high_water, depth);
		} else if (!q->high_water) {
			WRITE_ONCE(q->high_water, 1);
		}
		wake_if_sleeping(&q->send_sleeping, &q->send_futex);
		return 0;
	}
}

int shmk_recv(struct shmk_queue *qu, void **msg, size_t *size,
	      int64_t timeout_ns)
{
	SHMK_KEEP_ERRNO;
	struct queue_hdr *q;
	uint64_t off = 0, deadline = UINT64_MAX, spin_end = 0, now;
	const struct msg_hdr *m;
	int r;

	if (!qu || !msg || !qu->recv)
		return -EINVAL;
	q = qu->q;
	for (;;) {
		uint32_t v;

		r = try_take(qu, &off);
		if (!r)
			break;
		if (r == -EUCLEAN)
			return r;
		if (timeout_ns == 0)
			return -EAGAIN;
		now = now_ns();
		if (deadline == UINT64_MAX && timeout_ns > 0)
			deadline = (uint64_t)timeout_ns > UINT64_MAX - 1 - now ?
				   UINT64_MAX - 1 : now + (uint64_t)timeout_ns;
		if (now >= deadline)
			return -ETIMEDOUT;
		if (qu->busy_poll_ns) {
			if (!spin_end)
				spin_end = qu->busy_poll_ns > UINT64_MAX - now ?
					   UINT64_MAX : now + qu->busy_poll_ns;
			if (now < spin_end) {
				for (int i = 0; i < 64; i++) {
					uint64_t p = q->head;
					uint64_t w = __atomic_load_n(
						&q->slot[p & qu->mask],
						__ATOMIC_RELAXED);

					if (w & SLOT_FULL)
						break;
					shmk__cpu_relax();
				}
				continue;
			}
		}
		v = __atomic_load_n(&q->recv_futex, __ATOMIC_SEQ_CST);
		__atomic_store_n(&q->recv_sleeping, 1, __ATOMIC_SEQ_CST);
		r = try_take(qu, &off);
		if (!r)
			break;
		if (r == -EUCLEAN)
			return r;
		futex_wait_until(&q->recv_futex, v,
				 deadline - now > WAIT_SLICE_NS ?
				 now + WAIT_SLICE_NS : deadline);
	}
	m = msg_of(qu->h, qu->h->base + off);
	if (!m)
		return -EUCLEAN;	/* not a message: consumed, dropped */
	if (size) {
		/* The size a sender wrote, if its block holds it. */
		uint64_t sz = READ_ONCE(m->size);
		size_t room = shmk_usable_size(qu->h, m);

		if (room < MSG_HDR || sz > room - MSG_HDR)
			return -EUCLEAN;	/* consumed, dropped */
		*size = (size_t)sz;
	}
	*msg = qu->h->base + off;
	return 0;
}

/* ---- statistics -------------------------------------------------------- */

int shmk_queue_stats(struct shmk_queue *qu, struct shmk_queue_stats *st)
{
	SHMK_KEEP_ERRNO;
	const struct queue_hdr *q;
	uint64_t head, p;

	if (!qu || !st)
		return -EINVAL;
	q = qu->q;
	memset(st, 0, sizeof(*st));
	head = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE);
	/* The first free position: from the hint, past taken slots. */
	p = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
	if (p < head)
		p = head;
	for (uint64_t i = 0; i <= qu->mask; i++, p++) {
		uint64_t w = __atomic_load_n(&q->slot[p & qu->mask],
					     __ATOMIC_ACQUIRE);
		int64_t d = lap_diff(slot_lap(w), lap_of(qu, p));

		if (d < 0 || (d == 0 && !(w & SLOT_FULL)))
			break;
	}
	st->capacity = qu->mask + 1;
	st->sent = p;
	st->received = head;
	st->queued = p > head ? p - head : 0;
	st->high_water = READ_ONCE(q->high_water);
	st->senders_blocked = __atomic_load_n(&q->blocked, __ATOMIC_RELAXED);
	if (!receiver_alive(q))
		st->receiver_pid = 0;
	else if (READ_ONCE(q->recv_pidns) != shmk__ns_ino("pid"))
		st->receiver_pid = -1;	/* its pid means nothing here */
	else
		st->receiver_pid = READ_ONCE(q->recv_pid);
	return 0;
}
