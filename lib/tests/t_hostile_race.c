/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * A client with write access changes the segment while another holds the
 * lock, between the holder's check of a word and its use (an audit found
 * each of these; every one crashed the holder, or wrote outside the
 * segment, before its fix):
 *
 *  - the undo log's count in tx_state raised to the log's end: abort;
 *  - the thread heap table moved to the holder's private memory: run
 *    offsets and pids written there;
 *  - heap_end raised past the backing memory, during a growth or with the
 *    free trees' roots past it: SIGSEGV, SIGBUS;
 *  - the size in a freed block's header: a footer written up to 2^47
 *    bytes away;
 *  - the directory's size, while a name is made: a control byte and an
 *    offset written anywhere;
 *
 * and two without a race: a directory size whose table wraps past 2^64,
 * read by shmk_save() (SIGBUS), and a message's recorded size past its
 * block (or its block's size past the heap), handed to the receiver by
 * shmk_recv().
 *
 * Each flipper thread plays the other client; the operations must end in
 * success or an error, never a fault, and leave the segment checkable.
 */
#include <pthread.h>

#include "internal.h"
#include "page_heap.h"
#include "small.h"
#include "harness.h"

static const char *seg;
static struct shmk *H;
static volatile int stop;
static long rounds;

static struct shmk *fresh(size_t max)
{
	shmk_unlink(seg);
	return test_open(seg, SHMK_CREATE | SHMK_EXCL, 1 << 20, max);
}

static void done(struct shmk *h)
{
	CHECK_OK(shmk_close(h));
	shmk_unlink(seg);
}

static void run_flipper(void *(*fn)(void *), pthread_t *t)
{
	stop = 0;
	CHECK_OK(pthread_create(t, NULL, fn, NULL));
}

static void end_flipper(pthread_t t)
{
	stop = 1;
	CHECK_OK(pthread_join(t, NULL));
}

/* @rounds page-heap allocations freed again; how many were made. */
static long large_rounds(void)
{
	long ok = 0;

	for (long n = 0; n < rounds; n++) {
		void *p = shmk_alloc(H, 100000);

		if (p) {
			ok++;
			shmk_free(H, p);
		}
	}
	return ok;
}

static bool in_tx(void)
{
	return __atomic_load_n(&H->hdr->seq, __ATOMIC_ACQUIRE) & 1;
}

/* ---- the undo log's count ----------------------------------------------- */

static void *raise_log_count(void *arg)
{
	(void)arg;
	while (!stop) {
		uint64_t st = READ_ONCE(H->hdr->tx_state);

		if (in_tx() && st)
			__atomic_compare_exchange_n(&H->hdr->tx_state, &st,
				(st & TX_OP_MASK) |
				(uint64_t)SHMK_LOG_CAP << TX_COUNT_SHIFT,
				false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void log_count(void)
{
	pthread_t t;
	long ok;

	H = fresh(16 << 20);
	run_flipper(raise_log_count, &t);
	ok = large_rounds();
	end_flipper(t);
	printf("# log count raised: %ld of %ld allocations made\n", ok, rounds);
	/* The flipper's last write may stand: the next lock rolls it back. */
	CHECK_OK(shmk_check(H));
	done(H);
}

/* ---- the thread heap table ---------------------------------------------- */

static uint64_t table_at, private_at;

static void *move_theaps(void *arg)
{
	(void)arg;
	while (!stop) {
		WRITE_ONCE(H->hdr->theaps, private_at);
		for (int i = 0; i < 40; i++)
			shmk__cpu_relax();
		WRITE_ONCE(H->hdr->theaps, table_at);
		for (int i = 0; i < 40; i++)
			shmk__cpu_relax();
	}
	WRITE_ONCE(H->hdr->theaps, table_at);
	return NULL;
}

static void *small_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 4; i++) {
		void *p = shmk_alloc(H, 24 + 16 * (size_t)i);

		if (p)
			shmk_free(H, p);
	}
	return NULL;
}

static void theaps(void)
{
	const size_t len = 2 * SHMK_THEAPS * sizeof(struct shmk_theap);
	uint8_t *priv = aligned_alloc(4096, len);
	pthread_t t;

	CHECK(priv);
	memset(priv, 0, len);
	H = fresh(16 << 20);
	CHECK(shmk_alloc(H, 24));
	table_at = H->hdr->theaps;
	private_at = (uint64_t)((uintptr_t)priv - (uintptr_t)H->base);
	run_flipper(move_theaps, &t);
	for (long n = 0; n < rounds / 10; n++) {
		pthread_t w;

		CHECK_OK(pthread_create(&w, NULL, small_worker, NULL));
		CHECK_OK(pthread_join(w, NULL));
	}
	end_flipper(t);
	for (size_t i = 0; i < len; i++)
		CHECK_EQ(priv[i], 0);
	CHECK_OK(shmk_check(H));
	done(H);
	free(priv);
}

/* ---- heap_end ------------------------------------------------------------ */

static uint64_t forged_end;

/*
 * Compare-and-swap both ways: a plain store could put back an end older
 * than the one the holder committed meanwhile (a heap cut short, which
 * no check can tell from a real one).
 */
static void *raise_heap_end(void *arg)
{
	uint64_t good = READ_ONCE(H->hdr->heap_end);

	(void)arg;
	while (!stop) {
		uint64_t v = READ_ONCE(H->hdr->heap_end), f = forged_end;

		if (in_tx()) {
			if (v != forged_end &&
			    __atomic_compare_exchange_n(&H->hdr->heap_end, &v,
							forged_end, false,
							__ATOMIC_RELAXED,
							__ATOMIC_RELAXED))
				good = v;
		} else if (v == forged_end) {
			__atomic_compare_exchange_n(&H->hdr->heap_end, &f,
						    good, false,
						    __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
		}
	}
	if (READ_ONCE(H->hdr->heap_end) == forged_end)
		WRITE_ONCE(H->hdr->heap_end, good);
	return NULL;
}

/* Grow and shrink while heap_end is 2^47 inside each transaction. */
static void heap_end_growth(void)
{
	long ok = 0;
	pthread_t t;

	H = fresh(64 << 20);
	forged_end = 1ULL << 47;
	run_flipper(raise_heap_end, &t);
	for (long n = 0; n < rounds / 4; n++) {
		uint64_t e = READ_ONCE(H->hdr->heap_end);

		if (e == forged_end)
			continue;
		ok += !(e + (64 << 10) <= (60u << 20) ?
			shmk_grow(H, e + (64 << 10)) : shmk_shrink(H, 0));
	}
	end_flipper(t);
	printf("# heap end raised during growth: %ld of %ld resizes done\n",
	       ok, rounds / 4);
	CHECK_OK(shmk_check(H));
	done(H);
}

/* Every free tree's root 8 MiB in, past the 1 MiB of memory. */
static void heap_end_roots(void)
{
	uint64_t trees[SHMK_NTREES], map[SHMK_NTREES / 64];
	pthread_t t;
	long ok;

	H = fresh(64 << 20);
	forged_end = 64 << 20;
	memcpy(trees, H->hdr->trees, sizeof(trees));
	memcpy(map, H->hdr->tree_map, sizeof(map));
	for (unsigned int i = 0; i < SHMK_NTREES; i++)
		H->hdr->trees[i] = (8 << 20) + 8;
	memset(H->hdr->tree_map, 0xff, sizeof(map));
	run_flipper(raise_heap_end, &t);
	ok = large_rounds();
	end_flipper(t);
	printf("# heap end raised over forged roots: %ld of %ld allocations made\n",
	       ok, rounds);
	memcpy(H->hdr->trees, trees, sizeof(trees));
	memcpy(H->hdr->tree_map, map, sizeof(map));
	CHECK_OK(shmk_check(H));
	done(H);
}

/* ---- a freed block's size ------------------------------------------------ */

static uint64_t *target;
static uint64_t target_was;
/*
 * The flipper acts only while armed, and says when it is inside: the main
 * thread disarms, then waits for it to be out, so that no forged header
 * lands after the free (on a block allocated again, say), however long the
 * flipper is preempted (a VM).
 */
static int armed, busy;

static void *resize_freed(void *arg)
{
	(void)arg;
	while (!stop) {
		__atomic_store_n(&busy, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&armed, __ATOMIC_SEQ_CST)) {
			uint64_t *w = target, o = target_was;
			uint64_t forged = (o & ~BLK_SIZE_MASK) |
					  ((1ULL << 47) - 16);

			if (__atomic_compare_exchange_n(w, &o, forged, false,
							__ATOMIC_SEQ_CST,
							__ATOMIC_SEQ_CST)) {
				for (int i = 0; i < 20; i++)
					shmk__cpu_relax();
				__atomic_compare_exchange_n(w, &forged,
							    target_was, false,
							    __ATOMIC_SEQ_CST,
							    __ATOMIC_SEQ_CST);
			}
		}
		__atomic_store_n(&busy, 0, __ATOMIC_SEQ_CST);
		for (int i = 0; i < 20; i++)
			shmk__cpu_relax();
	}
	return NULL;
}

static void freed_size(void)
{
	long undone = 0;
	pthread_t t;

	H = fresh(256 << 20);
	run_flipper(resize_freed, &t);
	for (long n = 0; n < rounds * 10; n++) {
		uint8_t *p = shmk_alloc(H, 20000);
		struct shmk_stats st;
		uint64_t *w;

		CHECK(p);
		w = (uint64_t *)(void *)(p - BLK_HDR);
		target_was = *w;
		target = w;
		__atomic_store_n(&armed, 1, __ATOMIC_SEQ_CST);
		shmk_free(H, p);
		__atomic_store_n(&armed, 0, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&busy, __ATOMIC_SEQ_CST))
			shmk__cpu_relax();
		/* A free undone as corrupt left the block allocated. */
		CHECK_OK(shmk_stats(H, &st));
		if (st.live_allocs) {
			CHECK_EQ(st.live_allocs, 1);
			*w = target_was;
			undone++;
			shmk_free(H, p);
		}
	}
	printf("# a freed block's size changed: %ld of %ld frees undone\n",
	       undone, rounds * 10);
	end_flipper(t);
	CHECK_OK(shmk_check(H));
	done(H);
}

/* ---- the directory's size ------------------------------------------------ */

/*
 * dir_cap set to 2^40 whenever dir_seq is odd (which anyone can watch):
 * the writer wrote the control byte and offset through the table and size
 * it read again after its check, anywhere in the address space.
 */
static void *raise_dir_cap(void *arg)
{
	uint64_t cap = READ_ONCE(H->hdr->dir_cap);

	(void)arg;
	while (!stop) {
		if (__atomic_load_n(&H->hdr->dir_seq, __ATOMIC_ACQUIRE) & 1)
			WRITE_ONCE(H->hdr->dir_cap, 1ULL << 40);
		else if (READ_ONCE(H->hdr->dir_cap) != cap)
			WRITE_ONCE(H->hdr->dir_cap, cap);
	}
	WRITE_ONCE(H->hdr->dir_cap, cap);
	return NULL;
}

static void dir_size(void)
{
	int made = 0;
	pthread_t t;

	H = fresh(16 << 20);
	run_flipper(raise_dir_cap, &t);
	/* One name at a time: no rehash, whose new size the flipper undoes. */
	for (int i = 0; i < 200; i++) {
		char name[32];
		void *p;

		snprintf(name, sizeof(name), "big%d", i);
		errno = 0;
		p = shmk_find_or_alloc(H, name, 1 << 20, NULL);
		CHECK(p || errno == EUCLEAN);
		made += p != NULL;
		/*
		 * Undone as corrupt some of the time, never half done; the
		 * flipper may be off the CPU with the size changed.
		 */
		for (int k = 0, r = -EUCLEAN; p && r; k++) {
			r = shmk_remove(H, name);
			CHECK(r == 0 || (r == -EUCLEAN && k < 20000));
			if (r)
				usleep(100);
		}
	}
	end_flipper(t);
	printf("# %d of 200 names made while the table's size was changed under them\n",
	       made);
	CHECK_OK(shmk_check(H));
	done(H);
}

/* ---- without a race ------------------------------------------------------ */

static void save_wrapped_directory(void)
{
	char path[64];
	uint64_t cap;

	H = fresh(16 << 20);
	cap = H->hdr->dir_cap;
	snprintf(path, sizeof(path), "/tmp/shmk-t-race-%d.img", (int)getpid());
	/* dir_table + dir_cap * 5 wraps past 2^64 */
	H->hdr->dir_cap = 0x3333333333330000ULL;
	CHECK_ERR(shmk_save(H, path), EUCLEAN);
	H->hdr->dir_cap = cap;
	CHECK_OK(shmk_save(H, path));
	unlink(path);
	done(H);
}

static void recv_forged_size(void)
{
	struct shmk_queue *rx, *tx;
	size_t size;
	void *m, *got;

	H = fresh(16 << 20);
	CHECK(shmk_queue_open(H, "q", SHMK_QUEUE_RECV, NULL, &rx) >= 0);
	CHECK(shmk_queue_open(H, "q", 0, NULL, &tx) >= 0);
	for (int big = 0; big < 2; big++) {
		m = shmk_msg_alloc(H, big ? 100000 : 100);
		CHECK(m);
		*(uint64_t *)(void *)((uint8_t *)m - 16) = 1ULL << 40;
		CHECK_OK(shmk_send(tx, m, 0));
		CHECK_ERR(shmk_recv(rx, &got, &size, 0), EUCLEAN);
		/* Without a size asked, the message is handed over. */
		m = shmk_msg_alloc(H, 100);
		CHECK(m);
		*(uint64_t *)(void *)((uint8_t *)m - 16) = 1ULL << 40;
		CHECK_OK(shmk_send(tx, m, 0));
		CHECK_OK(shmk_recv(rx, &got, NULL, 0));
		CHECK(got == m);
		*(uint64_t *)(void *)((uint8_t *)m - 16) = 100;
		shmk_msg_free(H, got);
	}
	/* A large one's block header says 2^40 bytes too (its own check). */
	m = shmk_msg_alloc(H, 100000);
	CHECK(m);
	*(uint64_t *)(void *)((uint8_t *)m - 16) = 1ULL << 39;
	{
		uint64_t *bh = (uint64_t *)(void *)((uint8_t *)m - 16 - BLK_HDR);

		*bh = (*bh & ~BLK_SIZE_MASK) | 1ULL << 40;
	}
	CHECK_OK(shmk_send(tx, m, 0));
	CHECK_ERR(shmk_recv(rx, &got, &size, 0), EUCLEAN);
	CHECK_OK(shmk_queue_close(tx));
	CHECK_OK(shmk_queue_close(rx));
	done(H);
}

int main(void)
{
	seg = test_name("race");
	rounds = test_small() ? 2000 : 20000;
	log_count();
	theaps();
	heap_end_growth();
	heap_end_roots();
	freed_size();
	dir_size();
	save_wrapped_directory();
	recv_forged_size();
	test_pass("hostile_race");
	return 0;
}
