/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * A hostile or corrupted segment (issue 15, item 5): any client with write
 * access can overwrite the metadata. The library must then fail with
 * EUCLEAN, never crash, hang or write outside the segment; an operation
 * that finds corruption half way leaves the metadata as it found it (its
 * transaction is rolled back), so that putting the word back makes the
 * segment check clean again. Each case is a crash that make fuzz-lib
 * (fuzz/lib/hostile.c) found, on a fresh segment.
 */
#include <linux/futex.h>
#include <linux/shmk.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "page_heap.h"
#include "queue.h"
#include "rbtree.h"
#include "small.h"
#include "tx.h"
#include "harness.h"

static const char *seg;
static void *live[64], *big;
static int nlive;

/* A fresh segment: blocks of both tiers, free blocks in bins and the tree. */
static struct shmk *fresh(void)
{
	struct shmk *h;

	shmk_unlink(seg);
	h = test_open(seg, SHMK_CREATE | SHMK_EXCL, 1 << 20, 16 << 20);
	nlive = 0;
	for (int i = 0; i < 48; i++) {
		void *p = shmk_alloc(h, (size_t[]){ 24, 200, 3000, 9000, 20000,
						    1100 }[i % 6]);

		CHECK(p);
		if (i % 3 == 1)
			shmk_free(h, p);
		else
			live[nlive++] = p;
	}
	big = shmk_alloc(h, 50000);
	CHECK(big);
	CHECK(shmk_find_or_alloc(h, "named", 100, NULL));
	CHECK_OK(shmk_check(h));
	return h;
}

static void done(struct shmk *h)
{
	CHECK_OK(shmk_close(h));
	shmk_unlink(seg);
}

/* An operation returning a pointer failed with EUCLEAN. */
#define CHECK_EUCLEAN_PTR(expr)	CHECK_NULL_ERRNO((expr), EUCLEAN)

/* The root of the last free tree that is not empty (above the bins). */
static uint64_t *large_root(struct shmk *h)
{
	for (unsigned int i = SHMK_NTREES; i-- > 0;)
		if (h->hdr->tree_map[i / 64] & (1ULL << (i % 64)))
			return &h->hdr->trees[i];
	CHECK(!"a free tree");
	return NULL;
}

/* The root block of that tree. */
static uint64_t large_free(struct shmk *h)
{
	CHECK(*large_root(h));
	return *large_root(h);
}

/*
 * Page heap, a tree root: an offset outside the heap, a misaligned one, a
 * used block, and a node that is its own left child (a loop). Each used to
 * crash (SIGSEGV, UBSan misaligned load) or hang a large alloc.
 */
static void tree_roots(void)
{
	static const uint64_t bad[] = {
		0x5b67536000e0ULL, 0x10074ULL, 1ULL << 40, 8,
		UINT64_MAX - 7,		/* n + BLK_MIN wrapped */
	};
	struct shmk *h;
	uint64_t saved, l, r;

	for (size_t i = 0; i < ARRAY_SIZE(bad) + 2; i++) {
		h = fresh();
		saved = large_free(h);
		l = *shmk__w(h, saved + NODE_LEFT);
		r = *shmk__w(h, saved + NODE_RIGHT);
		if (i < ARRAY_SIZE(bad)) {
			*large_root(h) = bad[i];
		} else if (i == ARRAY_SIZE(bad)) {	/* a used block */
			*large_root(h) = shmk_off(h, big) - BLK_HDR;
		} else {	/* a loop: the root its own children */
			*shmk__w(h, saved + NODE_LEFT) = saved;
			*shmk__w(h, saved + NODE_RIGHT) = saved;
		}
		CHECK_EUCLEAN_PTR(shmk_alloc(h, 100000));
		CHECK_ERR(shmk_check(h), EUCLEAN);
		*large_root(h) = saved;
		*shmk__w(h, saved + NODE_LEFT) = l;
		*shmk__w(h, saved + NODE_RIGHT) = r;
		/* Nothing changed by the failed alloc: clean again. */
		CHECK_OK(shmk_check(h));
		CHECK(shmk_alloc(h, 100000));
		CHECK_OK(shmk_check(h));
		done(h);
	}
}

/*
 * Page heap, the bitmaps of the bins and trees and a root in the wrong
 * tree: a bit set over an empty bin or tree (the search must not take
 * "nothing there" for "grow"), and the large block's tree moved under an
 * earlier root (taking the block out of its own tree must not overwrite
 * that tree's root, which would lose every block in it).
 */
static void tree_bitmaps(void)
{
	struct shmk *h = fresh();
	uint64_t size = shmk_size(h), *root = large_root(h), r = *root;
	unsigned int t = tree_index(shmk__blk_size_for(100000));
	unsigned int j = (unsigned int)(root - h->hdr->trees), b = 36;

	/* 500 bytes aligned to 64: a page-heap block of 624 at least, bin 36 */
	CHECK(t + 1 < j && !h->hdr->trees[t] && !h->hdr->trees[t + 1]);
	CHECK(!h->hdr->bins[b]);
	h->hdr->tree_map[(t + 1) / 64] |= 1ULL << ((t + 1) % 64);
	CHECK_EUCLEAN_PTR(shmk_alloc(h, 100000));
	CHECK_EQ(shmk_size(h), size);
	CHECK_ERR(shmk_check(h), EUCLEAN);
	h->hdr->tree_map[(t + 1) / 64] &= ~(1ULL << ((t + 1) % 64));
	h->hdr->bin_map |= 1ULL << b;
	CHECK_EUCLEAN_PTR(shmk_alloc_aligned(h, 500, 64));
	CHECK_ERR(shmk_check(h), EUCLEAN);
	h->hdr->bin_map &= ~(1ULL << b);
	CHECK_OK(shmk_check(h));

	*root = 0;
	h->hdr->tree_map[j / 64] &= ~(1ULL << (j % 64));
	h->hdr->trees[t] = r;
	h->hdr->tree_map[t / 64] |= 1ULL << (t % 64);
	CHECK_EUCLEAN_PTR(shmk_alloc(h, 100000));
	CHECK_ERR(shmk_check(h), EUCLEAN);
	h->hdr->trees[t] = 0;
	h->hdr->tree_map[t / 64] &= ~(1ULL << (t % 64));
	*root = r;
	h->hdr->tree_map[j / 64] |= 1ULL << (j % 64);
	CHECK_OK(shmk_check(h));
	CHECK(shmk_alloc(h, 100000));
	CHECK_OK(shmk_check(h));
	done(h);
}

/*
 * Page heap, the largest bin's tree naming a used block (alloc_aligned
 * takes blocks of the page heap: its request, 968 bytes aligned to 32,
 * needs a block of exactly BIN_MAX_SIZE); a link into the reservation past
 * the segment's memory.
 */
static void bin_links(void)
{
	struct shmk *h = fresh();
	uint64_t map = h->hdr->bin_map, n = h->hdr->bins[SHMK_NBINS - 1];
	uint64_t saved, b, bs;

	h->hdr->bin_map = 1ULL << (SHMK_NBINS - 1);
	h->hdr->bins[SHMK_NBINS - 1] = shmk_off(h, big) - BLK_HDR;
	CHECK_EUCLEAN_PTR(shmk_alloc_aligned(h, 968, 32));
	h->hdr->bin_map = map;
	h->hdr->bins[SHMK_NBINS - 1] = n;
	CHECK_OK(shmk_check(h));
	/*
	 * A link into the reservation past the segment's memory: SIGBUS.
	 * The request, 16 bytes more than the free block, in its tree: the
	 * search goes right.
	 */
	b = large_free(h);
	bs = blk_size(*shmk__w(h, b));
	CHECK_EQ(tree_index(bs + BLK_ALIGN), tree_index(bs));
	saved = *shmk__w(h, b + NODE_RIGHT);
	*shmk__w(h, b + NODE_RIGHT) = (8 << 20) + 8;
	CHECK_EUCLEAN_PTR(shmk_alloc(h, bs));
	*shmk__w(h, b + NODE_RIGHT) = saved;
	CHECK_OK(shmk_check(h));
	done(h);
}

/*
 * Page heap, a footer: a free of the block after a free one reads the
 * footer to find it; a forged one named a block anywhere.
 */
static void footers(void)
{
	struct shmk *h = fresh();
	void *a = shmk_alloc(h, 20000), *b = shmk_alloc(h, 20000),
	     *c = shmk_alloc(h, 20000);
	uint64_t f, saved;

	CHECK(a && b && c);
	shmk_free(h, a);
	f = shmk_off(h, b) - BLK_HDR - 8;	/* a's footer */
	saved = *shmk__w(h, f);
	CHECK_EQ(saved >> BLK_TAG_SHIFT, BLK_TAG_FOOT);
	*shmk__w(h, f) = BLK_TAG_FOOT << BLK_TAG_SHIFT | (f & ~15ULL) << 1;
	shmk_free(h, b);
	CHECK_ERR(shmk_check(h), EUCLEAN);
	*shmk__w(h, f) = saved;
	CHECK_OK(shmk_check(h));
	CHECK_EQ(shmk_usable_size(h, b), 20000 + BLK_HDR);
	shmk_free(h, b);
	CHECK_OK(shmk_check(h));
	done(h);
}

/* heap_end past the memory behind the segment: SIGBUS when followed. */
static void heap_end(void)
{
	struct shmk *h = fresh();
	uint64_t saved = h->hdr->heap_end;

	h->hdr->heap_end = 12 << 20;
	CHECK_EUCLEAN_PTR(shmk_alloc(h, 100000));
	CHECK_EUCLEAN_PTR(shmk_find_or_alloc(h, "x", 10, NULL));
	CHECK_ERR(shmk_check(h), EUCLEAN);
	h->hdr->heap_end = saved;
	CHECK_OK(shmk_check(h));
	done(h);
}

/* The current thread heap of the calling thread (it allocated a slot). */
static struct shmk_theap *my_theap(struct shmk *h)
{
	struct shmk_theap *t = (struct shmk_theap *)(h->base + h->hdr->theaps);

	for (unsigned int i = 0; i < SHMK_THEAPS; i++)
		if (t[i].owner && t[i].run[small_class(24)])
			return &t[i];
	return NULL;
}

struct thread_alloc {
	struct shmk *h;
	size_t size;
	void *p;
	int err;
};

static void *thread_alloc_fn(void *arg)
{
	struct thread_alloc *a = arg;

	errno = 0;
	a->p = shmk_alloc(a->h, a->size);
	a->err = errno;
	return NULL;
}

/* shmk_alloc() in a new thread: no thread heap of its own yet. */
static struct thread_alloc in_thread(struct shmk *h, size_t size)
{
	struct thread_alloc a = { h, size, NULL, 0 };
	pthread_t t;

	CHECK_OK(pthread_create(&t, NULL, thread_alloc_fn, &a));
	CHECK_OK(pthread_join(t, NULL));
	return a;
}

/*
 * The small tier: a thread heap's current run (the lock-free fast path
 * took a slot of it: an atomic OR anywhere), the thread heap table's
 * offset, a class's list of runs, the run map's offset (overflowing).
 */
static void small_tier(void)
{
	static const uint64_t bad[] = {
		0x10074ULL, 1ULL << 40, (8 << 20) + 2 * BLK_HDR,
		0 - RUN_CHUNK + 2 * BLK_HDR,	/* the run's end wrapped */
	};
	unsigned int c = small_class(24);
	struct thread_alloc a;
	struct shmk_theap *th;
	uint64_t saved, saved2;
	struct shmk *h;
	void *p;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		h = fresh();
		th = my_theap(h);
		CHECK(th);
		saved = th->run[c];
		th->run[c] = bad[i];
		p = shmk_alloc(h, 24);	/* the locked path serves it */
		CHECK(p);
		CHECK_ERR(shmk_check(h), EUCLEAN);
		th->run[c] = saved;
		shmk_free(h, p);
		CHECK_OK(shmk_check(h));
		done(h);
	}

	/* The table, then the list a thread without a heap takes from. */
	h = fresh();
	saved = h->hdr->theaps;
	h->hdr->theaps = 1ULL << 40;
	a = in_thread(h, 24);
	CHECK(a.p);
	shmk_free(h, a.p);
	h->hdr->theaps = 0 - 64 * 512;	/* the table's end wrapped */
	a = in_thread(h, 24);
	CHECK(a.p);
	shmk_free(h, a.p);
	saved2 = h->hdr->runs[c];
	h->hdr->runs[c] = (8 << 20) + 2 * BLK_HDR;
	a = in_thread(h, 24);
	CHECK(!a.p && a.err == EUCLEAN);
	h->hdr->runs[c] = saved2;
	h->hdr->theaps = saved;
	CHECK_OK(shmk_check(h));
	done(h);

	/* map + len overflowing: UBSan's pointer overflow, a wild read. */
	h = fresh();
	saved = h->hdr->run_map;
	h->hdr->run_map = UINT64_MAX - 4096;
	shmk_free(h, live[0]);		/* a slot: refused */
	CHECK(shmk_alloc(h, 24));
	h->hdr->run_map = saved;
	CHECK_OK(shmk_check(h));
	CHECK_EQ(shmk_usable_size(h, live[0]), 32);
	done(h);
}

/*
 * A run's bitmaps: a padding bit of map cleared (the slot past the run's
 * end must not be handed out), a padding bit of xmap set (the run must
 * not look as if it had room, else the locked path loops), a header's
 * slot count rewritten (a read-only client's statistics stay in bounds).
 */
static void run_bitmaps(void)
{
	const struct shmk_small_class *sc =
		&shmk__small_classes[small_class(SMALL_MAX)];
	void *p[64], *q;
	struct shmk_run *run;
	struct shmk_stats st;
	uint64_t r, pad = small_pad_bits(sc->nslots), saved;
	struct thread_alloc t[3], a2;
	struct shmk *h = fresh();

	for (uint32_t i = 0; i < sc->nslots; i++)
		CHECK(p[i] = shmk_alloc(h, SMALL_MAX));
	r = small_run_of(h, shmk_off(h, p[0]));
	CHECK(r && r == small_run_of(h, shmk_off(h, p[sc->nslots - 1])));
	run = (struct shmk_run *)(h->base + r);
	run->map[0] &= ~(1ULL << 63);		/* a padding bit */
	CHECK(q = shmk_alloc(h, SMALL_MAX));
	CHECK(small_run_of(h, shmk_off(h, q)) != r);
	CHECK_EQ(shmk_usable_size(h, q), SMALL_MAX);
	shmk_free(h, q);
	run->map[0] |= pad;
	CHECK_OK(shmk_check(h));

	/*
	 * xmap's padding, on a listed run that a thread without a heap (the
	 * table moved) fills: the locked path must not keep taking it.
	 */
	CHECK(q = shmk_alloc(h, SMALL_MAX));	/* the full run goes */
	shmk_free(h, p[5]);			/* listed at 31 / 8 free */
	shmk_free(h, p[6]);
	CHECK_EQ(run->state, RUN_FULL);
	shmk_free(h, p[7]);
	CHECK_EQ(run->state, RUN_LISTED);
	small_xmap(run)[0] |= 1ULL << 63;
	saved = h->hdr->theaps;
	h->hdr->theaps = 1ULL << 40;
	for (int i = 0; i < 3; i++) {
		t[i] = in_thread(h, SMALL_MAX);
		CHECK(t[i].p && small_run_of(h, shmk_off(h, t[i].p)) == r);
	}
	a2 = in_thread(h, SMALL_MAX);		/* returns, whatever it got */
	CHECK(a2.p || a2.err == EUCLEAN);
	h->hdr->theaps = saved;
	CHECK_ERR(shmk_check(h), EUCLEAN);
	small_xmap(run)[0] &= ~pad;
	CHECK_OK(shmk_check(h));
	for (int i = 0; i < 3; i++)
		shmk_free(h, t[i].p);
	shmk_free(h, a2.p);
	shmk_free(h, q);

	/* nslots rewritten: statistics read the class's bitmap only */
	run->nslots = 0xffffff00u;
	CHECK(shmk_stats(h, &st) == 0 || errno == EUCLEAN);
	run->nslots = sc->nslots;
	CHECK_OK(shmk_check(h));
	done(h);
}

/*
 * The message cache: an entry naming a free block, a slot, memory past
 * the heap, or a block whose end lies past the backed memory. No message
 * allocation takes any; a recovery drops them (before, a junk entry made
 * every later locker get ENOTRECOVERABLE).
 */
static int die_in_tx(void *arg)
{
	struct shmk *h;

	(void)arg;
	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	shmk__fault_countdown = 3;
	shmk_alloc(h, 50000);
	return 0;
}

static void message_cache(void)
{
	struct shmk *h = fresh();
	uint64_t *c = h->hdr->msg_cache, b, he = h->hdr->heap_end, w;
	uint8_t *m, *n;

	CHECK(m = shmk_msg_alloc(h, 50000));
	CHECK(n = shmk_msg_alloc(h, 50000));
	b = shmk_off(h, m) - 16;		/* the block's payload */
	shmk_msg_free(h, m);
	CHECK_EQ(c[0], b);
	c[1] = b;				/* twice */
	c[2] = shmk_off(h, live[0]);		/* a slot */
	c[3] = he + 4096;			/* past the heap */
	c[4] = b + 16;				/* inside a block */
	CHECK_ERR(shmk_check(h), EUCLEAN);
	/* The block's header says it ends past the backed memory */
	w = shmk__rd(h, b - BLK_HDR);
	*(uint64_t *)(h->base + b - BLK_HDR) = blk_mk_used(he - b + 4096, true);
	CHECK(shmk_msg_alloc(h, 50000) != m);
	*(uint64_t *)(h->base + b - BLK_HDR) = w;
	CHECK_EQ(test_wait(test_fork(die_in_tx, NULL)), 128 + SIGKILL);
	CHECK_OK(shmk_check(h));		/* recovered: entries dropped */
	CHECK(!c[1] && !c[2] && !c[3] && !c[4]);
	CHECK_EQ(c[0], b);
	shmk_msg_free(h, n);
	CHECK_OK(shmk_check(h));
	done(h);
}

/*
 * Recovery: a transaction left in the header with undo-log entries for
 * places the library never logs (past the segment's memory: SIGBUS; the
 * lock, while the recovering thread holds it; the magic). They are
 * skipped; the rest of the rollback and recovery go on.
 */
static void undo_log(void)
{
	static const uint64_t bad[] = {
		(8 << 20) + 64, 64, 0, SHMK_LOG_OFF, UINT64_MAX - 7,
	};
	struct shmk_stats st;
	struct shmk *h;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		h = fresh();
		h->log[0].off = bad[i];
		h->log[0].old = 0x5a5a5a5a5a5a5a5aULL;
		h->log[1].off = HDR_OFF(dir_tombs);	/* a real one */
		h->log[1].old = h->hdr->dir_tombs;
		h->hdr->dir_tombs = 7;
		h->hdr->tx_state = 2ULL << TX_COUNT_SHIFT | TX_ALLOC;
		CHECK(shmk_alloc(h, 100000));	/* recovers first */
		CHECK_OK(shmk_check(h));
		CHECK_OK(shmk_stats(h, &st));
		CHECK_EQ(st.recoveries, 1);
		CHECK_EQ(h->hdr->magic, SHMK_HDR_MAGIC);
		done(h);
	}
}

static int count_fn(const char *name, void *ptr, size_t size, void *arg)
{
	(void)name;
	(void)ptr;
	(void)size;
	(void)arg;
	return 0;
}

/*
 * The directory's counts and table: a huge dir_count had the growth of a
 * new table double its size until cap * 16 wrapped to 0 (a block of
 * nothing, then slots written far past it); a table straddling the heap's
 * end was copied from past it (SIGBUS).
 */
static void directory(void)
{
	struct shmk *h = fresh();
	uint64_t count = h->hdr->dir_count, table = h->hdr->dir_table;

	h->hdr->dir_count = 1ULL << 61;
	CHECK_EUCLEAN_PTR(shmk_find_or_alloc(h, "new", 10, NULL));
	h->hdr->dir_count = count;
	CHECK_OK(shmk_check(h));
	h->hdr->dir_table = h->hdr->heap_end - 160;	/* 320 bytes */
	h->hdr->dir_count = 60;
	CHECK_EUCLEAN_PTR(shmk_find_or_alloc(h, "new", 10, NULL));
	CHECK_EUCLEAN_PTR(shmk_find(h, "named", NULL));
	h->hdr->dir_table = table;
	/*
	 * Every full slot's offset at the top of its reach, far past the
	 * heap's end, and a control byte that is neither full, EMPTY nor
	 * DELETED.
	 */
	for (uint64_t i = 0; i < h->hdr->dir_cap; i++) {
		uint32_t *offs = (uint32_t *)(h->base + table + h->hdr->dir_cap);
		uint8_t *ctrl = (uint8_t *)h->base + table;

		if (ctrl[i] & 0x80) {
			uint8_t c = ctrl[i];

			ctrl[i] = 0x81;
			CHECK_ERR(shmk_check(h), EUCLEAN);
			ctrl[i] = c;
		} else {
			uint32_t o = offs[i];

			offs[i] = UINT32_MAX;
			CHECK_ERR(shmk_foreach(h, count_fn, NULL), EUCLEAN);
			CHECK_ERR(shmk_check(h), EUCLEAN);
			offs[i] = o;
		}
	}
	h->hdr->dir_count = count;
	CHECK_OK(shmk_check(h));
	/* An object's size past its block: the caller would read past it. */
	{
		size_t size;
		uint8_t *o = shmk_find(h, "named", &size);
		struct shmk_dir_entry *de;

		CHECK(o && size == 100);
		de = (struct shmk_dir_entry *)(o - 32);	/* "named": delta 32 */
		CHECK_EQ(de->magic, DIR_ENTRY_MAGIC ^ (shmk_off(h, de) / 16));
		de->size = 1ULL << 40;
		CHECK_EUCLEAN_PTR(shmk_find(h, "named", &size));
		CHECK_ERR(shmk_foreach(h, count_fn, NULL), EUCLEAN);
		CHECK_EUCLEAN_PTR(shmk_find_or_alloc(h, "named", 10, NULL));
		de->size = 100;
	}
	CHECK_OK(shmk_check(h));
	CHECK(shmk_find_or_alloc(h, "new", 10, NULL));
	CHECK(shmk_find(h, "named", NULL));
	CHECK_OK(shmk_check(h));
	done(h);
}

/*
 * The published statistics: a buffer whose seq a client left odd had
 * shmk_stats() spin for good; it publishes anew under the lock.
 */
static void published_stats(void)
{
	struct shmk *h = fresh();
	struct shmk_stats st;
	uint64_t idx = h->hdr->pub_idx % SHMK_PUB_BUFS;

	h->hdr->pub[idx].seq |= 1;
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.named_objects, 1);
	CHECK_OK(shmk_check(h));
	done(h);
}

/* A queue's header (queue.c): capacity, log2 of it, the slots. */
#define Q_CAPACITY	8
#define Q_SHIFT		12
#define Q_SLOTS		256

/*
 * A queue's geometry (a shift of 200: UBSan; a capacity that is no power
 * of two, or larger than its object: slots read past it), then slots
 * laps ahead of the receiver (it skipped them one by one: 2^22 laps of
 * 1024 slots, a hang).
 */
static void queues(void)
{
	static const uint32_t bad[][2] = {	/* capacity, shift */
		{ 1024, 200 }, { 24, 4 }, { 1U << 31, 31 }, { 1U << 20, 20 },
	};
	struct shmk_queue *q, *rq;
	uint8_t *obj;
	size_t size;
	struct shmk *h;
	void *m;

	for (size_t i = 0; i <= ARRAY_SIZE(bad); i++) {
		h = fresh();
		CHECK(shmk_queue_open(h, "q", SHMK_QUEUE_RECV, NULL, &rq) >= 0);
		CHECK_OK(shmk_queue_close(rq));
		obj = shmk_find(h, "shmk.queue/q", &size);
		CHECK(obj);
		if (i < ARRAY_SIZE(bad)) {
			memcpy(obj + Q_CAPACITY, &bad[i][0], 4);
			memcpy(obj + Q_SHIFT, &bad[i][1], 4);
			CHECK_ERR(shmk_queue_open(h, "q", 0, NULL, &q), EUCLEAN);
			done(h);
			continue;
		}
		/* Every slot of the 1024 almost half the 2^23 laps ahead. */
		for (unsigned int s = 0; s < 1024; s++) {
			uint64_t w = ((1ULL << 22) - 1) << 41 | 1ULL << 40 |
				     0x1230;

			memcpy(obj + Q_SLOTS + 8 * s, &w, 8);
		}
		CHECK(shmk_queue_open(h, "q", SHMK_QUEUE_RECV, NULL, &rq) >= 0);
		CHECK_ERR(shmk_recv(rq, &m, &size, 0), EUCLEAN);
		/* A sender walked them all too. */
		CHECK_OK(shmk_queue_open(h, "q", 0, NULL, &q));
		m = shmk_msg_alloc(h, 10);
		CHECK(m);
		CHECK_ERR(shmk_send(q, m, SHMK_NONBLOCK), EUCLEAN);
		shmk_msg_free(h, m);
		CHECK_OK(shmk_queue_close(q));
		CHECK_OK(shmk_queue_close(rq));
		done(h);
	}
}

/*
 * An operation that found corruption left its flag set; a recovery right
 * after, which must rebuild the free index, then inserted nothing (every
 * tree insert bails out on the flag) and left the segment unrecoverable.
 */
static void stale_flag(void)
{
	struct shmk *h = fresh();
	uint64_t *root = large_root(h);

	*root = 0x10074;
	CHECK_EUCLEAN_PTR(shmk_alloc(h, 100000));
	/* A dead writer's transaction, and an index that lost its tree. */
	*root = 0;
	h->hdr->tx_state = TX_ALLOC;
	CHECK(shmk_alloc(h, 100000));
	CHECK_OK(shmk_check(h));
	CHECK(*large_root(h));
	CHECK_EQ(h->hdr->recoveries >> 1, 1);
	done(h);
}

/*
 * The thread heap a thread caches: a client moved the table into memory a
 * growth added, the thread followed it there, then the table went back and
 * the memory went away (the file cut back to its old size, as a copy of
 * the segment would restore it). The fast path still followed the cached
 * heap: SIGBUS; also when the table is moved back to where that memory
 * was.
 */
static void cached_theap(void)
{
	struct shmk *h = fresh();
	uint64_t old = h->hdr->heap_end, t = h->hdr->theaps, y;
	size_t table = SHMK_THEAPS * sizeof(struct shmk_theap);
	uint8_t *copy;
	void *p;

	/*
	 * The posix backend's file can be cut back under the mapping; the
	 * kernel backend's segment shrinks only through the module.
	 */
	if (strcmp(shmk_backend(h), "posix")) {
		printf("cached thread heap: the posix backend only\n");
		done(h);
		return;
	}
	copy = malloc(old);
	CHECK(copy);
	CHECK(shmk_alloc(h, 24));		/* the heap at t, cached */
	memcpy(copy, h->base, old);
	CHECK_OK(shmk_grow(h, old + (1 << 20)));
	y = old + 4096;
	memcpy(h->base + y, h->base + t, table);
	my_theap(h)->owner = 0;			/* not ours at t any more */
	h->hdr->theaps = y;
	CHECK(shmk_alloc(h, 24));		/* the heap at y, cached */
	memcpy(h->base, copy, old);		/* the table back at t */
	CHECK_OK(ftruncate(h->m.fd, (off_t)old));
	h->backed = 0;
	p = shmk_alloc(h, 24);
	CHECK(p);
	shmk_free(h, p);
	CHECK_OK(shmk_check(h));
	/* Once more, but the table back at y, where there is no memory now. */
	CHECK_OK(shmk_grow(h, old + (1 << 20)));
	my_theap(h)->owner = 0;
	h->hdr->theaps = y;
	CHECK(shmk_alloc(h, 24));		/* the heap at y, cached */
	memcpy(h->base, copy, old);
	CHECK_OK(ftruncate(h->m.fd, (off_t)old));
	h->backed = 0;
	h->hdr->theaps = y;
	p = shmk_alloc(h, 24);			/* by the locked path */
	shmk_free(h, p);
	h->hdr->theaps = t;
	CHECK_OK(shmk_check(h));
	free(copy);
	done(h);
}

/*
 * A writer shrinks a kernel segment through the module (SHMK_IOC_SHRINK,
 * as any writer may) and leaves heap_end where it was, above the cut. The
 * library had the backing size cached from the growth, so the heap's
 * bounds passed and the check walked into the unmapped pages: SIGBUS.
 */
static void shrunk_under(void)
{
	struct shmk *h = fresh();
	uint64_t old = h->hdr->heap_end, grown = old + (4 << 20);
	struct shmk_resize rs = { .size = old };

	if (strcmp(shmk_backend(h), "kernel")) {
		printf("shrunk under the heap: the kernel backend only\n");
		done(h);
		return;
	}
	CHECK_OK(shmk_grow(h, grown));
	CHECK(shmk_alloc(h, 100000));		/* bounds checked at grown */
	CHECK_OK(shmk_check(h));
	CHECK_OK(ioctl(h->k.fd, SHMK_IOC_SHRINK, &rs));
	CHECK(shmk_size(h) == old);
	CHECK(h->hdr->heap_end == grown);	/* the header says otherwise */
	CHECK_EUCLEAN_PTR(shmk_alloc(h, 100000));
	CHECK_EUCLEAN_PTR(shmk_find_or_alloc(h, "x", 10, NULL));
	CHECK_ERR(shmk_check(h), EUCLEAN);
	done(h);
}

/* Aim an rlock's list links, as a client can, at @victim. */
static void aim_links(struct shmk_rlock *l, uint64_t *victim)
{
	l->glibc_prev = (uintptr_t)&victim[0];
	l->next = (uintptr_t)&victim[2];
	l->spare[0] = (uintptr_t)&victim[1];
	l->spare[1] = (uintptr_t)&victim[3];
}

/*
 * The calling thread's robust list holds nothing but the library's
 * sentinel (an entry whose futex word, 32 bytes before it, is 0).
 */
static void list_is_idle(void)
{
	struct robust_list_head *head;
	uintptr_t e;
	size_t len;

	CHECK_OK(syscall(SYS_get_robust_list, 0, &head, &len));
	e = (uintptr_t)head->list.next & ~1UL;
	CHECK(e != (uintptr_t)head && !*(uint32_t *)(e - 32));
	CHECK((*(uintptr_t *)e & ~1UL) == (uintptr_t)head);
	CHECK(!head->list_op_pending);
}

/*
 * The segment lock and a receiver's lock, their list links overwritten by
 * a client while this thread holds them. They were pthread robust mutexes,
 * whose unlock read the links back and wrote through them: the client
 * chose where the holder wrote (and what: pointers it had planted). A
 * glibc robust mutex of the application's is held around them, and one
 * more taken after them, so that the thread's list mixes both kinds.
 */
static void lock_links(void)
{
	static uint64_t victim[4];
	pthread_mutex_t outer, inner;
	pthread_mutexattr_t a;
	struct shmk_queue *rq;
	struct shmk *h = fresh();
	uint8_t *qp;
	size_t len;

	CHECK_OK(pthread_mutexattr_init(&a));
	CHECK_OK(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST));
	CHECK_OK(pthread_mutex_init(&outer, &a));
	CHECK_OK(pthread_mutex_init(&inner, &a));
	CHECK_OK(pthread_mutex_lock(&outer));
	CHECK_OK(shmk_queue_open(h, "links", SHMK_QUEUE_RECV, NULL, &rq));
	CHECK_OK(pthread_mutex_lock(&inner));
	qp = shmk_find(h, QUEUE_PREFIX "links", &len);
	CHECK(qp);

	CHECK_OK(shmk__lock_raw(h));
	aim_links(&h->hdr->lock, victim);
	shmk__unlock(h);
	CHECK(!victim[0] && !victim[1] && !victim[2] && !victim[3]);

	/* The receiver's lock sits at 64 in the queue's header. */
	aim_links((struct shmk_rlock *)(qp + 64), victim);
	CHECK_OK(pthread_mutex_unlock(&inner));
	CHECK_OK(shmk_queue_close(rq));
	CHECK(!victim[0] && !victim[1] && !victim[2] && !victim[3]);
	CHECK_OK(pthread_mutex_unlock(&outer));

	list_is_idle();
	CHECK_OK(shmk_queue_open(h, "links", SHMK_QUEUE_RECV, NULL, &rq));
	CHECK_OK(shmk_queue_close(rq));
	CHECK_OK(pthread_mutex_lock(&outer));
	CHECK_OK(pthread_mutex_unlock(&outer));
	list_is_idle();
	CHECK_OK(shmk_check(h));
	done(h);
}

struct two_holders {
	struct shmk *h;
	pthread_barrier_t b;
};

static void *holder_a(void *arg)
{
	struct two_holders *t = arg;

	CHECK_OK(shmk__lock_raw(t->h));
	pthread_barrier_wait(&t->b);	/* 1: A holds it */
	pthread_barrier_wait(&t->b);	/* 2: the word cleared, B holds it */
	shmk__unlock(t->h);
	pthread_barrier_wait(&t->b);	/* 3 */
	list_is_idle();
	return NULL;
}

static void *holder_b(void *arg)
{
	struct two_holders *t = arg;

	pthread_barrier_wait(&t->b);	/* 1 */
	t->h->hdr->lock.word = 0;	/* a client frees it under A */
	CHECK_OK(shmk__lock_raw(t->h));
	pthread_barrier_wait(&t->b);	/* 2 */
	pthread_barrier_wait(&t->b);	/* 3: A has let go */
	shmk__unlock(t->h);
	list_is_idle();
	return NULL;
}

/*
 * A client clears the lock word while thread A of a handle holds it, and
 * thread B of the same handle takes it. The segment lock's hold was the
 * handle's: B's lock relinked the hold A still had in its chain, and the
 * unlocks that followed wrote to address 0x20 or into glibc's list.
 * Each thread now keeps its own holds.
 */
static void shared_handle(void)
{
	struct two_holders t = { .h = fresh() };
	pthread_t a, b;

	CHECK_OK(pthread_barrier_init(&t.b, NULL, 2));
	CHECK_OK(pthread_create(&a, NULL, holder_a, &t));
	CHECK_OK(pthread_create(&b, NULL, holder_b, &t));
	CHECK_OK(pthread_join(a, NULL));
	CHECK_OK(pthread_join(b, NULL));
	pthread_barrier_destroy(&t.b);
	CHECK(!t.h->hdr->lock.word);
	CHECK(shmk_alloc(t.h, 100000));
	CHECK_OK(shmk_check(t.h));
	list_is_idle();
	done(t.h);
}

/*
 * A child of _Fork() (no atfork handler runs) takes the lock and dies
 * holding it. It took it under its parent's thread id, which the kernel
 * never marks at the child's death: the parent got EDEADLK for good.
 */
static void forked_holder(void)
{
	struct shmk *h = fresh();
	int status;
	pid_t pid;

	CHECK_OK(shmk__lock_raw(h));	/* this thread set up */
	shmk__unlock(h);
	pid = _Fork();
	CHECK(pid >= 0);
	if (!pid) {
		struct shmk *c;

		/* The segment is not mapped in a child (MADV_DONTFORK). */
		if (shmk_open(seg, 0, NULL, &c))
			_exit(2);
		_exit(shmk__lock_raw(c) ? 1 : 0);	/* dies holding it */
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && !WEXITSTATUS(status));
	CHECK_EQ(shmk__lock_raw(h), EOWNERDEAD);
	shmk__lock_consistent(h);
	shmk__unlock(h);
	CHECK_OK(shmk_check(h));
	list_is_idle();
	done(h);
}

int main(void)
{
	seg = test_name("hostile");
	tree_roots();
	tree_bitmaps();
	bin_links();
	footers();
	heap_end();
	small_tier();
	run_bitmaps();
	message_cache();
	undo_log();
	directory();
	published_stats();
	queues();
	stale_flag();
	cached_theap();
	shrunk_under();
	lock_links();
	shared_handle();
	forked_holder();
	printf("ok\n");
	return 0;
}
