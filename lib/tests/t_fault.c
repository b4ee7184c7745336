/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Crash consistency, exhaustively: every allocator and directory operation
 * is run in a child that kills itself (SIGKILL) at its Nth fault point, for
 * every N the operation passes through (each step of the undo log, the
 * intent record, the commit, each side of the small tier's atomic bit
 * operations, each step of claiming a thread heap and of reaping a dead
 * one). The parent then takes the lock, which recovers, and requires:
 * shmk_check() passes, and the heap's allocated blocks are exactly those
 * before the operation or exactly those after it (after it, always, for a
 * page-heap free and a remove, which recovery redoes; a slot's free is done
 * once its atomic AND is, a message's once its atomic OR in the run's
 * xmap is); the directory agrees. Recovery itself is then killed at each of
 * its own fault points, and the next recovery must still get it right, and
 * count once. The reference run is a child too, so that each run starts
 * with a thread heap of its own. Last, the owner of a run is killed at
 * each fault point of the fold that takes back what other threads freed
 * through xmap: no slot is lost, none is handed out twice.
 */
#include <pthread.h>

#include "internal.h"
#include "page_heap.h"
#include "small.h"
#include "harness.h"

#define MAXB	2048
#define NBLK	40

enum op {
	OP_ALLOC_SMALL, OP_ALLOC_NEW_RUN, OP_ALLOC_FILLS_RUN, OP_ALLOC_LARGE,
	OP_ALLOC_GROW, OP_ALLOC_ALIGNED, OP_FREE_SLOT, OP_FREE_SLOT_FULL_RUN,
	OP_FREE_LAST_SLOT, OP_FREE_MSG, OP_MSG_KEEP, OP_MSG_TAKE, OP_GROW_FLUSH,
	OP_FREE_MERGE, OP_FREE_ALONE, OP_CREATE, OP_CREATE_REHASH, OP_REMOVE,
	OP_GROW, OP_SHRINK, NOPS
};

static const char *const op_names[NOPS] = {
	"alloc small", "alloc small, new run", "alloc small, run fills",
	"alloc large", "alloc with growth", "alloc aligned",
	"free slot", "free slot of a full run", "free slot, run released",
	"free message slot (xmap)", "free message block (kept)",
	"alloc message (a kept block)", "alloc with growth, cache flushed",
	"free with both neighbours free", "free alone", "create",
	"create with rehash", "remove", "grow", "shrink and trim",
};

/* Size classes of the small tier that setup() leaves in known states. */
#define FULL_CLASS_SIZE		8192	/* one run, full */
#define FILL_CLASS_SIZE		7168	/* one run, one slot free */
#define RELEASE_CLASS_SIZE	6144	/* a run with room, and one with a
					   single slot */
#define MSG_BIG			20000	/* a message of the page heap */

struct state {
	uint64_t heap_end;
	uint64_t blocks;		/* used blocks of the heap, runs too */
	size_t n;
	uint64_t off[MAXB], size[MAXB];
};

struct ctx {
	uint64_t merge, alone;		/* payload offsets to free */
	uint64_t slot, full_slot, last_slot;
	uint64_t msg;			/* a large message's payload */
	size_t big;			/* a size that needs growth */
};

static const char *seg;

static int snap_fn(uint64_t off, uint64_t size, void *arg)
{
	struct state *s = arg;

	CHECK(s->n < MAXB);
	s->off[s->n] = off;
	s->size[s->n++] = size;
	return 0;
}

static int blocks_fn(uint64_t b, uint64_t w, void *arg)
{
	(void)b;
	if (blk_tag(w) == BLK_TAG_USED)
		++*(uint64_t *)arg;
	return 0;
}

/* Every allocation of either tier, the heap's used blocks and its end. */
static void snapshot(struct shmk *h, struct state *s)
{
	s->n = 0;
	s->blocks = 0;
	s->heap_end = h->hdr->heap_end;
	CHECK_OK(shmk__alloc_walk(h, snap_fn, s));
	CHECK_OK(shmk__heap_walk(h, blocks_fn, &s->blocks));
}

static bool same_blocks(const struct state *a, const struct state *b)
{
	return a->n == b->n && a->blocks == b->blocks &&
	       !memcmp(a->off, b->off, a->n * sizeof(a->off[0])) &&
	       !memcmp(a->size, b->size, a->n * sizeof(a->size[0]));
}

static struct shmk *fresh(void)
{
	shmk_unlink(seg);
	return test_open(seg, SHMK_CREATE | SHMK_EXCL, 1 << 20, 8 << 20);
}

/* In a child: claim a thread heap, leave runs in it, die. */
static int dead_heap(void *arg)
{
	struct shmk *h;
	void *p[4];

	(void)arg;
	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	for (int i = 0; i < 3; i++)
		CHECK(p[i] = shmk_alloc(h, 100));
	CHECK(p[3] = shmk_alloc(h, 200));
	shmk_free(h, p[1]);
	shmk_free(h, p[3]);	/* an empty current run */
	return 0;
}

static void setup(struct shmk *h, enum op op, struct ctx *c)
{
	uint64_t blk[NBLK];
	struct shmk_stats st;
	char name[32];
	void *x, *y, *z;
	int nnames = op == OP_CREATE_REHASH ? 56 : 10;

	const struct shmk_small_class *full = &shmk__small_classes[
		small_class(FULL_CLASS_SIZE)];
	const struct shmk_small_class *fill = &shmk__small_classes[
		small_class(FILL_CLASS_SIZE)];
	const struct shmk_small_class *rel = &shmk__small_classes[
		small_class(RELEASE_CLASS_SIZE)];
	uint64_t first = 0;
	void *small[40];

	/* Page-heap blocks, every other one freed: holes between blocks */
	for (int i = 0; i < NBLK; i++) {
		void *p = shmk_alloc(h, SMALL_MAX + 64 + (size_t)(i * 397) % 3000);

		CHECK(p);
		blk[i] = shmk_off(h, p);
	}
	x = shmk_alloc(h, SMALL_MAX + 200);
	y = shmk_alloc(h, SMALL_MAX + 300);
	z = shmk_alloc(h, SMALL_MAX + 400);
	CHECK(x && y && z);
	for (int i = 1; i < NBLK; i += 2)
		shmk_free(h, shmk_ptr(h, blk[i]));
	c->merge = blk[2];
	c->alone = shmk_off(h, y);
	/* Small slots: a 100-byte class with a few, and a hole */
	for (int i = 0; i < 6; i++)
		CHECK(small[i] = shmk_alloc(h, 100));
	shmk_free(h, small[2]);
	c->slot = shmk_off(h, small[4]);
	/* A class with one full run */
	for (uint32_t i = 0; i < full->nslots; i++) {
		void *p = shmk_alloc(h, FULL_CLASS_SIZE);

		CHECK(p);
		if (i == 7)
			c->full_slot = shmk_off(h, p);
	}
	/* A class with one free slot */
	for (uint32_t i = 0; i + 1 < fill->nslots; i++)
		CHECK(shmk_alloc(h, FILL_CLASS_SIZE));
	/* Runs A and B full, C with one slot; then a slot of A freed */
	for (uint32_t i = 0; i <= 2 * rel->nslots; i++) {
		void *p = shmk_alloc(h, RELEASE_CLASS_SIZE);

		CHECK(p);
		if (!i)
			first = shmk_off(h, p);
		c->last_slot = shmk_off(h, p);
	}
	shmk_free(h, shmk_ptr(h, first));
	/* A class with one empty run, for the trim */
	CHECK(x = shmk_alloc(h, 50));
	shmk_free(h, x);
	/* A dead thread heap, with runs to list and to release, for the trim */
	CHECK_EQ(test_wait(test_fork(dead_heap, NULL)), 0);
	for (int i = 0; i < nnames; i++) {
		snprintf(name, sizeof(name), "obj-%d", i);
		CHECK(shmk_find_or_alloc(h, name, 100 + (size_t)i, NULL));
	}
	/* Large messages: one to free, one or two kept (the message cache) */
	if (op == OP_MSG_KEEP || op == OP_MSG_TAKE || op == OP_GROW_FLUSH) {
		void *m1 = shmk_msg_alloc(h, MSG_BIG), *m2, *m3;

		m2 = shmk_msg_alloc(h, MSG_BIG);
		m3 = shmk_msg_alloc(h, MSG_BIG);
		CHECK(m1 && m2 && m3);
		c->msg = shmk_off(h, m1);
		shmk_msg_free(h, m2);
		if (op != OP_MSG_KEEP)
			shmk_msg_free(h, m1);
	}
	CHECK_OK(shmk_stats(h, &st));
	c->big = st.largest_free + 4096;
	CHECK_OK(shmk_check(h));
}

static void do_op(struct shmk *h, enum op op, const struct ctx *c)
{
	switch (op) {
	case OP_ALLOC_SMALL:
		shmk_alloc(h, 100);
		break;
	case OP_ALLOC_NEW_RUN:
		shmk_alloc(h, 3000);
		break;
	case OP_ALLOC_FILLS_RUN:
		shmk_alloc(h, FILL_CLASS_SIZE);
		break;
	case OP_FREE_SLOT:
		shmk_free(h, shmk_ptr(h, c->slot));
		break;
	case OP_FREE_SLOT_FULL_RUN:
		shmk_free(h, shmk_ptr(h, c->full_slot));
		break;
	case OP_FREE_LAST_SLOT:
		shmk_free(h, shmk_ptr(h, c->last_slot));
		break;
	case OP_FREE_MSG:
		/* A slot of the parent's current run: through its xmap */
		shmk__free_msg(h, shmk_ptr(h, c->slot));
		break;
	case OP_MSG_KEEP:
		shmk_msg_free(h, shmk_ptr(h, c->msg));
		break;
	case OP_MSG_TAKE:
		shmk_msg_alloc(h, MSG_BIG);
		break;
	case OP_GROW_FLUSH:
		shmk_alloc(h, c->big);
		break;
	case OP_ALLOC_LARGE:
		shmk_alloc(h, 20000);
		break;
	case OP_ALLOC_GROW:
		shmk_alloc(h, c->big);
		break;
	case OP_ALLOC_ALIGNED:
		shmk_alloc_aligned(h, 500, 4096);
		break;
	case OP_FREE_MERGE:
		shmk_free(h, shmk_ptr(h, c->merge));
		break;
	case OP_FREE_ALONE:
		shmk_free(h, shmk_ptr(h, c->alone));
		break;
	case OP_CREATE:
	case OP_CREATE_REHASH:
		shmk_find_or_alloc(h, "the-new-one", 1000, NULL);
		break;
	case OP_REMOVE:
		shmk_remove(h, "obj-5");
		break;
	case OP_GROW:
		shmk_grow(h, shmk_size(h) + (256 << 10));
		break;
	case OP_SHRINK:
		shmk_shrink(h, shmk_size(h) - (256 << 10));
		break;
	case NOPS:
		break;
	}
}

struct child_arg {
	enum op op;
	const struct ctx *c;
	long countdown;
	long *hits;	/* shared: fault points the child passed */
};

/* Open, arm the fault, run the op (or, with NOPS, only the recovery). */
static int child(void *arg)
{
	struct child_arg *a = arg;
	struct shmk *h;

	shmk__fault_hits = 0;
	shmk__fault_countdown = a->op == NOPS ? a->countdown : 0;
	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	if (a->hits)
		*a->hits = shmk__fault_hits;
	if (a->op == NOPS)
		return 0;
	shmk__fault_hits = 0;
	shmk__fault_countdown = a->countdown;
	do_op(h, a->op, a->c);
	if (a->hits)
		*a->hits = shmk__fault_hits;
	return 0;
}

static int run_child(enum op op, const struct ctx *c, long countdown,
		     long *hits)
{
	struct child_arg a = { op, c, countdown, hits };

	return test_wait(test_fork(child, &a));
}

/* After recovery: the state before or after the op, as the op allows. */
static void verify(struct shmk *h, enum op op, const struct state *pre,
		   const struct state *post, long k)
{
	struct state now;
	bool is_pre, is_post;
	size_t sz;

	CHECK_OK(shmk_check(h));
	snapshot(h, &now);
	is_pre = same_blocks(&now, pre);
	is_post = same_blocks(&now, post);
	/*
	 * A small alloc killed between taking a new run (committed) and
	 * taking its slot: the allocations before, and one more run.
	 */
	if (!is_pre && !is_post && (op == OP_ALLOC_SMALL ||
				    op == OP_ALLOC_NEW_RUN ||
				    op == OP_ALLOC_FILLS_RUN)) {
		struct state p1 = *pre;

		p1.blocks++;
		is_pre = same_blocks(&now, &p1);
	}
	/*
	 * An alloc killed after the flush of the message cache (a
	 * transaction of its own) committed: the two kept blocks went back.
	 */
	if (!is_pre && !is_post && op == OP_GROW_FLUSH) {
		struct state p1 = *pre;

		p1.blocks -= 2;
		is_pre = same_blocks(&now, &p1);
	}
	if (!is_pre && !is_post) {
		fprintf(stderr, "%s, fault %ld: %zu blocks, neither the %zu "
			"before nor the %zu after\n", op_names[op], k, now.n,
			pre->n, post->n);
		test_fail();
	}
	switch (op) {
	case OP_FREE_SLOT:
	case OP_FREE_SLOT_FULL_RUN:
	case OP_FREE_LAST_SLOT:
	case OP_FREE_MSG:
	case OP_MSG_KEEP:
		/* Lock-free: done once the atomic AND is, else not begun. */
		CHECK(now.heap_end == post->heap_end);
		break;
	case OP_FREE_MERGE:
	case OP_FREE_ALONE:
	case OP_REMOVE:
		/* Redone by recovery: never lost. */
		CHECK(is_post);
		CHECK(now.heap_end == post->heap_end);
		break;
	case OP_GROW:
	case OP_SHRINK:
	case OP_ALLOC_NEW_RUN:
	case OP_ALLOC_GROW:
	case OP_GROW_FLUSH:
		CHECK(now.heap_end == pre->heap_end ||
		      now.heap_end == post->heap_end);
		break;
	default:
		CHECK(now.heap_end == pre->heap_end);
		break;
	}
	if (op == OP_REMOVE)
		CHECK_NULL_ERRNO(shmk_find(h, "obj-5", &sz), ENOENT);
	if (op == OP_CREATE || op == OP_CREATE_REHASH)
		CHECK(!!shmk_find(h, "the-new-one", &sz) == is_post);
	CHECK(shmk_find(h, "obj-9", &sz) && sz == 109);
}

/* Fold (below): one class, a run of its own; the owner's live slots. */
#define FOLD_SIZE	5120
struct fold_arg {
	long countdown;
	long hits;
	uint64_t live[64];	/* the owner's slots still allocated */
	uint32_t nlive;
};

static struct shmk *fold_h;

/* Another thread: free every other slot through the owner's xmap. */
static void *fold_freer(void *arg)
{
	struct fold_arg *a = arg;
	const struct shmk_small_class *sc =
		&shmk__small_classes[small_class(FOLD_SIZE)];
	uint64_t r = small_run_of(fold_h, a->live[0]);

	for (uint32_t i = 0; i < a->nlive; i += 2) {
		shmk__free_msg(fold_h, shmk_ptr(fold_h, a->live[i]));
		CHECK(small_xmap((const void *)(fold_h->base + r))[0] &
		      1ULL << ((a->live[i] - r - sc->first) / sc->size));
	}
	return NULL;
}

/*
 * In a child: fill a run, have another thread free half of it through
 * xmap, then allocate once more (the fold), dying at fault point
 * @countdown of that allocation.
 */
static int fold_owner(void *arg)
{
	struct fold_arg *a = arg;
	const struct shmk_small_class *sc =
		&shmk__small_classes[small_class(FOLD_SIZE)];
	uint32_t n = 0;
	pthread_t t;
	void *p;

	if (shmk_open(seg, 0, NULL, &fold_h))
		return 2;
	for (uint32_t i = 0; i < sc->nslots; i++) {
		CHECK(p = shmk_alloc(fold_h, FOLD_SIZE));
		a->live[i] = shmk_off(fold_h, p);
		CHECK(small_run_of(fold_h, a->live[i]) ==
		      small_run_of(fold_h, a->live[0]));
	}
	a->nlive = sc->nslots;
	CHECK_OK(pthread_create(&t, NULL, fold_freer, a));
	CHECK_OK(pthread_join(t, NULL));
	for (uint32_t i = 1; i < a->nlive; i += 2)
		a->live[n++] = a->live[i];
	a->nlive = n;
	shmk__fault_hits = 0;
	shmk__fault_countdown = a->countdown;
	CHECK(p = shmk_alloc(fold_h, FOLD_SIZE));
	a->hits = shmk__fault_hits;
	a->live[a->nlive++] = shmk_off(fold_h, p);
	return 0;
}

/*
 * The owner killed at each fault point of its fold: afterwards the heap
 * checks, the owner's slots are those before the allocation or one more,
 * and, its heap reaped, every other slot of the run is handed out once.
 */
static long fold_kills(void)
{
	const struct shmk_small_class *sc =
		&shmk__small_classes[small_class(FOLD_SIZE)];
	struct fold_arg *a = test_shared(sizeof(*a));
	long n;

	CHECK(sc->nslots <= 64);
	shmk_close(fresh());
	a->countdown = 0;
	CHECK_EQ(test_wait(test_fork(fold_owner, a)), 0);
	n = a->hits;
	CHECK(n >= 4);		/* both ANDs of the fold, the slot's OR */
	for (long k = 1; k <= n; k++) {
		struct shmk *h = fresh();
		struct shmk_stats st;
		uint64_t got[64];
		uint32_t before;

		memset(a, 0, sizeof(*a));
		a->countdown = k;
		CHECK_EQ(test_wait(test_fork(fold_owner, a)), 128 + SIGKILL);
		before = a->nlive;
		CHECK_EQ(before, sc->nslots / 2);
		CHECK_OK(shmk_check(h));
		CHECK_OK(shmk_stats(h, &st));
		CHECK(st.live_allocs == before || st.live_allocs == before + 1);
		if (st.live_allocs == before + 1)
			before++;	/* the slot was taken: in flight */
		/* Reap the dead owner (which folds), then take the rest */
		CHECK_OK(shmk_shrink(h, shmk_size(h)));
		CHECK_OK(shmk_check(h));
		for (uint32_t i = 0; i < sc->nslots - before; i++) {
			void *p = shmk_alloc(h, FOLD_SIZE);

			CHECK(p);
			got[i] = shmk_off(h, p);
			CHECK(small_run_of(h, got[i]) ==
			      small_run_of(h, a->live[0]));
			for (uint32_t j = 0; j < a->nlive; j++)
				CHECK(got[i] != a->live[j]);
			for (uint32_t j = 0; j < i; j++)
				CHECK(got[i] != got[j]);
		}
		/* the run is full now: the next slot is elsewhere */
		CHECK(got[0] = shmk_off(h, shmk_alloc(h, FOLD_SIZE)));
		CHECK(small_run_of(h, got[0]) != small_run_of(h, a->live[0]));
		CHECK_OK(shmk_check(h));
		CHECK_OK(shmk_stats(h, &st));
		CHECK_EQ(st.live_allocs, (uint64_t)sc->nslots + 1);
		CHECK_OK(shmk_close(h));
	}
	return n;
}

int main(void)
{
	long *hits = test_shared(sizeof(long));
	long total = 0, recovery_total = 0;
	/* valgrind (small scale): every third point */
	const long stride = test_small() ? 3 : 1;

	seg = test_name("fault");
	for (int op = 0; op < NOPS; op++) {
		struct state pre, post;
		struct ctx c;
		struct shmk *h = fresh();
		uint64_t cap;
		long n;

		/* Reference: the states before and after, and the points. */
		setup(h, op, &c);
		snapshot(h, &pre);
		cap = h->hdr->dir_cap;
		CHECK_EQ(run_child(op, &c, 0, hits), 0);
		n = *hits;
		CHECK((op == OP_CREATE_REHASH) == (h->hdr->dir_cap != cap));
		snapshot(h, &post);
		CHECK_OK(shmk_check(h));
		CHECK(n > 0);
		CHECK(!same_blocks(&pre, &post) || pre.heap_end != post.heap_end);
		CHECK_OK(shmk_close(h));

		for (long k = 1; k <= n; k += stride) {
			struct shmk_stats st;
			bool in_tx;

			h = fresh();
			setup(h, op, &c);
			CHECK_EQ(run_child(op, &c, k, NULL), 128 + SIGKILL);
			/* Killed outside the lock: nothing to recover. */
			in_tx = h->hdr->tx_state != 0;
			verify(h, op, &pre, &post, k);
			CHECK_OK(shmk_stats(h, &st));
			CHECK(st.recoveries <= 1);
			CHECK(st.recoveries == 1 || !in_tx);
			CHECK_OK(shmk_close(h));
		}
		total += (n + stride - 1) / stride;

		/* Kill the recovery too, at each of its fault points. */
		if (op == OP_FREE_MERGE || op == OP_REMOVE ||
		    op == OP_CREATE_REHASH || op == OP_ALLOC_GROW ||
		    op == OP_GROW_FLUSH ||
		    op == OP_ALLOC_NEW_RUN || op == OP_FREE_LAST_SLOT) {
			long k = n / 2 + 1, m;

			h = fresh();
			setup(h, op, &c);
			CHECK_EQ(run_child(op, &c, k, NULL), 128 + SIGKILL);
			CHECK_EQ(run_child(NOPS, &c, 0, hits), 0);
			m = *hits;
			verify(h, op, &pre, &post, k);
			CHECK_OK(shmk_close(h));
			for (long j = 1; j <= m; j += stride) {
				struct shmk_stats st;

				h = fresh();
				setup(h, op, &c);
				CHECK_EQ(run_child(op, &c, k, NULL),
					 128 + SIGKILL);
				CHECK_EQ(run_child(NOPS, &c, j, NULL),
					 128 + SIGKILL);
				verify(h, op, &pre, &post, k);
				/* A recovery redone is one recovery. */
				CHECK_OK(shmk_stats(h, &st));
				CHECK_EQ(st.recoveries, 1);
				CHECK_OK(shmk_close(h));
			}
			recovery_total += (m + stride - 1) / stride;
		}
		printf("%-32s %3ld fault points\n", op_names[op], n);
	}
	printf("%-32s %3ld fault points\n", "fold of a run's xmap",
	       fold_kills());
	printf("%ld crashes inside operations, %ld inside recoveries\n", total,
	       recovery_total);
	test_pass("fault");
	return 0;
}
