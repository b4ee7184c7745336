/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The small tier: requests up to SMALL_MAX bytes go to 32 size classes
 * (16 to 128 bytes in steps of 16, then four classes per doubling up to
 * 8 KiB). A class keeps its slots in runs: 64 KiB blocks of the page heap
 * (256 KiB above 1 KiB slots), each with a header and a bitmap of allocated
 * slots (layout.h). The run map says exactly, for any offset, whether it
 * lies in a run, so a free is validated exactly: the slot is found by a
 * reciprocal multiply and its bit must be set (a double free finds it
 * clear and is refused).
 *
 * The fast path takes no lock and writes no log. Each thread claims a
 * thread heap in the segment (struct shmk_theap, owner tag tid + start
 * time) holding its current run of each class. An alloc takes the first
 * free slot of the current run from the thread's hint (the lowest free
 * slot when the run's frees come from the same thread) and commits with
 * one atomic OR; a free, from any thread or process, commits with one
 * atomic AND. A process killed before the atomic did nothing; after it,
 * an alloc's slot is the block in flight (the one loss allowed) and a
 * free is done. Nothing else on the fast path is shared or counted: used
 * and cached bytes are derived from the bitmaps (shmk__small_usage()).
 *
 * Under the lock, as tier-0 transactions (tx.h), runs change hands: a
 * thread whose current run is full lets it go (RUN_FULL) and takes the
 * head of its class's list of runs with a free slot (RUN_LISTED), or a new
 * run (the best fit for a chunk-aligned block, as low as possible, in the
 * first RUN_MAP_MAX chunks; failing that the page heap serves the
 * request). A run let go full goes back on the list when an eighth of
 * its slots came free (run_relist_at()): one lock per run's worth of
 * allocations rather than one per slot, at the price of up to an eighth
 * of a full run's slots waiting (counted as cached). A free that empties
 * a run nobody owns gives it back to the page heap, which coalesces it.
 * A thread's current run stays when empty. A thread heap whose owner
 * died is reaped when a thread needs a heap and none is free, and by
 * shmk_shrink(): its empty runs go back to the page heap, the rest to the
 * lists. Only a thread in the owner's pid and time namespaces can tell
 * that the owner died (its tag is a tid and a start time as that
 * namespace's /proc shows them): a heap claimed from another container
 * is never reaped here, and stays claimed until a thread of its own
 * namespaces reaps it (at most SHMK_THEAPS heaps; the locked path serves
 * threads that find none free). Threads that get no heap (SHMK_THEAPS
 * live ones have them) allocate from the lists under the lock.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "msg_cache.h"
#include "page_heap.h"
#include "small.h"
#include "tx.h"

#define RECIP(size)	(((1ULL << RUN_RECIP_SHIFT) + (size) - 1) / (size))

/* A run let go full is listed again after this many frees into it. */
static inline uint64_t run_relist_at(const struct shmk_small_class *sc)
{
	return sc->nslots >= 16 ? sc->nslots / 8 : 1;
}

/*
 * { size, chunks, nslots, first, xmap, recip }: after the 64-byte header,
 * map; xmap from the next cache line (a run's header is 16 bytes past a
 * 64 KiB boundary); slot 0 from the cache line after xmap; as many slots
 * as fit.
 */
const struct shmk_small_class shmk__small_classes[SHMK_NCLASSES] = {
	{ 16, 1, 4024, 1136, 624, RECIP(16) },
	{ 32, 1, 2028, 624, 368, RECIP(32) },
	{ 48, 1, 1356, 432, 240, RECIP(48) },
	{ 64, 1, 1018, 368, 240, RECIP(64) },
	{ 80, 1, 815, 304, 176, RECIP(80) },
	{ 96, 1, 679, 304, 176, RECIP(96) },
	{ 112, 1, 582, 304, 176, RECIP(112) },
	{ 128, 1, 510, 240, 176, RECIP(128) },
	{ 160, 1, 408, 240, 176, RECIP(160) },
	{ 192, 1, 340, 176, 112, RECIP(192) },
	{ 224, 1, 291, 176, 112, RECIP(224) },
	{ 256, 1, 255, 176, 112, RECIP(256) },
	{ 320, 1, 204, 176, 112, RECIP(320) },
	{ 384, 1, 170, 176, 112, RECIP(384) },
	{ 448, 1, 145, 176, 112, RECIP(448) },
	{ 512, 1, 127, 176, 112, RECIP(512) },
	{ 640, 1, 102, 176, 112, RECIP(640) },
	{ 768, 1, 85, 176, 112, RECIP(768) },
	{ 896, 1, 72, 176, 112, RECIP(896) },
	{ 1024, 1, 63, 176, 112, RECIP(1024) },
	{ 1280, 4, 204, 176, 112, RECIP(1280) },
	{ 1536, 4, 170, 176, 112, RECIP(1536) },
	{ 1792, 4, 146, 176, 112, RECIP(1792) },
	{ 2048, 4, 127, 176, 112, RECIP(2048) },
	{ 2560, 4, 102, 176, 112, RECIP(2560) },
	{ 3072, 4, 85, 176, 112, RECIP(3072) },
	{ 3584, 4, 73, 176, 112, RECIP(3584) },
	{ 4096, 4, 63, 176, 112, RECIP(4096) },
	{ 5120, 4, 51, 176, 112, RECIP(5120) },
	{ 6144, 4, 42, 176, 112, RECIP(6144) },
	{ 7168, 4, 36, 176, 112, RECIP(7168) },
	{ 8192, 4, 31, 176, 112, RECIP(8192) },
};

#define RUN_OFF(r, field) \
	((r) + (uint64_t)__builtin_offsetof(struct shmk_run, field))
/*
 * The thread heap table is where the handle's copy of its offset says:
 * theaps_ok() checks the header's before it copies it, and nothing reads
 * the header's again to form an address (a client may change it between).
 */
#define TH_OFF(h, i, field) \
	(READ_ONCE((h)->theaps) + (uint64_t)(i) * sizeof(struct shmk_theap) + \
	 (uint64_t)__builtin_offsetof(struct shmk_theap, field))

static struct shmk_run *run_at(const struct shmk *h, uint64_t r)
{
	return (struct shmk_run *)(h->base + r);
}

static struct shmk_theap *theap_at(const struct shmk *h, unsigned int i)
{
	return (struct shmk_theap *)(h->base + READ_ONCE(h->theaps)) + i;
}

/* A checked run's class, from the table (small_run_cls()). */
static const struct shmk_small_class *run_class(const struct shmk_run *run)
{
	return &shmk__small_classes[small_run_cls(run)];
}

static unsigned int run_words(const struct shmk_run *run)
{
	return (run_class(run)->nslots + 63) / 64;
}

/*
 * The run at @r, named by a list, a thread heap or the fast path, is a run
 * of class @c inside the segment's memory (a client may have overwritten
 * the name): cheap, enough for the bitmap's atomics to stay in the run.
 */
static inline uint64_t run_end(uint64_t r, unsigned int c)
{
	return r - 2 * BLK_HDR +
	       (uint64_t)shmk__small_classes[c].chunks * RUN_CHUNK;
}

static inline bool run_usable(const struct shmk *h, uint64_t r, unsigned int c)
{
	if (r % RUN_CHUNK != 2 * BLK_HDR || r < SHMK_HEAP_START ||
	    r > h->map_size || !shmk__backed(h, run_end(r, c)))
		return false;
	return READ_ONCE(run_at(h, r)->magic) == (RUN_MAGIC ^ r) &&
	       READ_ONCE(run_at(h, r)->cls) == c;
}

/*
 * The thread heap table lies inside the segment's memory: then the handle
 * keeps the offset checked, for theap_at() and TH_OFF().
 */
static bool theaps_ok(const struct shmk *h)
{
	uint64_t t = READ_ONCE(h->hdr->theaps);

	if (t % 64 || t <= SHMK_HEAP_START || t >= h->map_size ||
	    !shmk__backed(h, t + SHMK_THEAPS * sizeof(struct shmk_theap)))
		return false;
	if (READ_ONCE(h->theaps) != t)
		WRITE_ONCE(((struct shmk *)h)->theaps, t);
	return true;
}

/* The value of bitmap word @w of an empty run: its padding bits. */
static uint64_t run_word_empty(const struct shmk_run *run, unsigned int w)
{
	return w == run_words(run) - 1 ?
	       small_pad_bits(run_class(run)->nslots) : 0;
}

/*
 * Bitmap word @w's allocated slots: set in map, not freed through xmap
 * (whose padding bits say nothing).
 */
static uint64_t run_word_used(const struct shmk_run *run, unsigned int w)
{
	uint64_t m = __atomic_load_n(&run->map[w], __ATOMIC_ACQUIRE);
	uint64_t x = __atomic_load_n(&small_xmap(run)[w], __ATOMIC_ACQUIRE);

	return m & ~(x & ~run_word_empty(run, w));
}

static bool run_has_free(const struct shmk_run *run)
{
	for (unsigned int w = 0; w < run_words(run); w++)
		if (run_word_used(run, w) != ~0ULL)
			return true;
	return false;
}

static bool run_empty(const struct shmk_run *run)
{
	for (unsigned int w = 0; w < run_words(run); w++)
		if (run_word_used(run, w) != run_word_empty(run, w))
			return false;
	return true;
}

/*
 * Fold the run's remote frees into its allocation bitmap: whatever xmap
 * holds is cleared in map, then in xmap. Only the run's owner (lock-free,
 * on its current run) or a thread that holds the lock (on a run that has
 * no live owner) folds, so that no slot is allocated between the two
 * ANDs by anyone but the folder. A folder killed between them leaves bits
 * set in xmap over free slots; the next fold clears them, and one comes
 * before anyone allocates from the run again (the owner is dead: its heap
 * is reaped, which folds). True when a slot came back.
 */
static bool run_fold(struct shmk_run *run)
{
	const struct shmk_small_class *sc = run_class(run);
	unsigned int words = (sc->nslots + 63) / 64;
	uint64_t *x = (uint64_t *)((uint8_t *)run + sc->xmap), seen = 0;
	bool any = false;

	for (unsigned int w = 0; w < words; w++)	/* mostly all clear */
		seen |= __atomic_load_n(&x[w], __ATOMIC_RELAXED);
	if (!seen)
		return false;
	for (unsigned int w = 0; w < words; w++) {
		uint64_t f = __atomic_load_n(&x[w], __ATOMIC_ACQUIRE);

		if (w == words - 1)	/* never the padding bits */
			f &= ~small_pad_bits(sc->nslots);
		if (!f)
			continue;
		SHMK_FAULT_POINT();
		__atomic_fetch_and(&run->map[w], ~f, __ATOMIC_ACQ_REL);
		SHMK_FAULT_POINT();
		__atomic_fetch_and(&x[w], ~f, __ATOMIC_ACQ_REL);
		any = true;
	}
	return any;
}

/* ---- thread identity ---------------------------------------------------- */

#define TAG_NONE	1ULL	/* no /proc: this thread gets no heap */

/*
 * The thread's tag and its heap in the handle it used last. initial-exec:
 * no __tls_get_addr() call on the fast path of the shared library (48
 * bytes of static TLS, which a dlopen() finds in glibc's surplus).
 */
#define TLS __thread __attribute__((tls_model("initial-exec")))

static TLS uint64_t my_tag;
static TLS uint64_t my_ns;
static TLS struct {
	const struct shmk *h;
	const uint8_t *base;
	uint64_t ctime;
	uint64_t theaps;	/* the table's offset when th was found */
	uint64_t need;		/* end of the table and of every vrun[] run */
	struct shmk_theap *th;
	unsigned int idx;
	/*
	 * Per class, the current run that run_usable() passed last, as
	 * r >> RUN_CHUNK_SHIFT (0: none): the fast path checks a run once,
	 * not at every allocation. What passed stays true while th->run[c]
	 * names the same run in the same handle: the class table, not the
	 * run's header, gives the bitmap's size, and tc_valid() checks that
	 * the memory behind the run is still there (need).
	 */
	uint32_t vrun[SHMK_NCLASSES];
} tc;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_child(void)
{
	my_tag = 0;
	my_ns = 0;
	memset(&tc, 0, sizeof(tc));
}

static void atfork_init(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

/* The start time and state of task @tid: 0, or -errno. */
static int task_stat(pid_t tid, uint64_t *start, char *state)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	p += 2;
	*state = *p;
	for (int i = 3; i < 22; i++) {		/* to field 22: starttime */
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	*start = strtoull(p, NULL, 10);
	return 0;
}

/*
 * This thread's tag and namespaces, once per thread (and again in a forked
 * child, which may be in a new pid namespace). No pid namespace to name
 * means no heap: the tag could not be told from another container's. A
 * kernel without time namespaces (before 5.6) has one time for all.
 */
static void self_init(void)
{
	pid_t tid;
	uint64_t start;
	uint32_t pidns;
	char state;

	if (my_tag)
		return;
	pthread_once(&atfork_once, atfork_init);
	tid = (pid_t)syscall(SYS_gettid);
	pidns = shmk__ns_ino("pid");
	if (tid <= 0 || !pidns || task_stat(tid, &start, &state)) {
		my_tag = TAG_NONE;
		return;
	}
	my_ns = (uint64_t)pidns << 32 | shmk__ns_ino("time");
	my_tag = (uint64_t)(uint32_t)tid << 32 | (start & 0xffffffffULL);
}

static inline bool theap_mine(const struct shmk_theap *th)
{
	return READ_ONCE(th->owner) == my_tag && READ_ONCE(th->ns) == my_ns;
}

/*
 * Whether the owner tagged @tag lives: its tid names a task with that
 * start time, not a zombie. When /proc cannot tell, it lives (a heap
 * reaped from under a live owner would be used by two threads).
 */
static bool tag_alive(uint64_t tag)
{
	uint64_t start;
	char state;
	int r = task_stat((pid_t)(tag >> 32), &start, &state);

	if (r == -ENOENT || r == -ESRCH)
		return false;
	if (r)
		return true;
	if (state == 'Z' || state == 'X')
		return false;
	return (start & 0xffffffffULL) == (tag & 0xffffffffULL);
}

/* ---- runs changing hands (locked, inside a transaction) ----------------- */

/* The map's bytes for the chunks of the run at @r: each 1 + its index. */
static void map_mark(struct shmk *h, uint64_t r, uint32_t chunks, bool set)
{
	uint64_t map = h->hdr->run_map, len = h->hdr->run_map_len;
	uint64_t idx = (r - 2 * BLK_HDR) >> RUN_CHUNK_SHIFT, first = map + idx;

	if (map % 8 || map < SHMK_HEAP_START || map > h->map_size ||
	    len > RUN_MAP_MAX ||
	    idx + chunks > len || !shmk__backed(h, ALIGN_UP(map + len, 8ULL))) {
		shmk__corrupt(h);
		return;
	}
	for (uint32_t i = 0; i < chunks; i++) {
		uint64_t at = first + i, word = at & ~7ULL;
		uint64_t v = shmk__rd(h, word);
		unsigned int sh = (unsigned int)(at - word) * 8;

		v &= ~(0xffULL << sh);
		if (set)
			v |= (uint64_t)(i + 1) << sh;
		shmk__tx_set(h, word, v);
	}
}

static void list_push(struct shmk *h, unsigned int c, uint64_t r)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t head = hd->runs[c];

	if (head && !run_usable(h, head, c)) {
		shmk__corrupt(h);
		return;
	}
	shmk__tx_set(h, RUN_OFF(r, next), head);
	shmk__tx_set(h, RUN_OFF(r, prev), 0);
	if (head)
		shmk__tx_set(h, RUN_OFF(head, prev), r);
	tx_set_hdr(h, runs[c], r);
	shmk__tx_set(h, RUN_OFF(r, state), RUN_LISTED);
}

static void list_remove(struct shmk *h, unsigned int c, uint64_t r)
{
	const struct shmk_run *run = run_at(h, r);
	uint64_t next = run->next, prev = run->prev;

	if ((prev && !run_usable(h, prev, c)) ||
	    (next && !run_usable(h, next, c))) {
		shmk__corrupt(h);
		return;
	}
	if (prev)
		shmk__tx_set(h, RUN_OFF(prev, next), next);
	else
		tx_set_hdr(h, runs[c], next);
	if (next)
		shmk__tx_set(h, RUN_OFF(next, prev), prev);
	shmk__tx_set(h, RUN_OFF(r, next), 0);
	shmk__tx_set(h, RUN_OFF(r, prev), 0);
}

int shmk__small_init(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t len = small_map_len(h->map_size), p;
	int r;

	r = shmk__heap_alloc(h, small_meta_bytes(h->map_size), BLK_ALIGN,
			     false, &p);
	if (r)
		return r;
	memset(h->base + p, 0, small_meta_bytes(h->map_size));
	shmk__tx_set(h, p - BLK_HDR, shmk__rd(h, p - BLK_HDR) | BLK_F_META);
	tx_set_hdr(h, run_map, p);
	tx_set_hdr(h, run_map_len, len);
	tx_set_hdr(h, theaps, ALIGN_UP(p + len, (uint64_t)64));
	memset(hd->runs, 0, sizeof(hd->runs));
	hd->run_blocks = 1;
	hd->run_bytes = blk_size(shmk__rd(h, p - BLK_HDR));
	hd->small_bytes = 0;
	return 0;
}

/* A new, empty run of class @c in @state (listed if RUN_LISTED). */
static int run_new(struct shmk *h, unsigned int c, uint64_t state,
		   uint64_t *rp)
{
	const struct shmk_small_class *sc = &shmk__small_classes[c];
	struct shmk_hdr *hd = h->hdr;
	uint64_t blk, r, words = (sc->nslots + 63) / 64;
	struct shmk_run *run;
	int e;

	e = shmk__heap_alloc_chunked(h, (uint64_t)sc->chunks * RUN_CHUNK,
				     hd->run_map_len << RUN_CHUNK_SHIFT, &blk);
	if (e)
		return e;
	shmk__tx_set(h, blk, shmk__rd(h, blk) | BLK_F_RUN);
	r = blk + BLK_HDR;
	/* Plain stores: a block allocated in this transaction (tx.h). */
	run = run_at(h, r);
	run->magic = RUN_MAGIC ^ r;
	run->cls = c;
	run->nslots = sc->nslots;
	run->slot_size = sc->size;
	run->first = sc->first;
	run->recip = small_recip(sc->size);
	run->state = state;
	run->next = run->prev = 0;
	run->nfreed = 0;
	memset(run->map, 0, words * 8);
	run->map[words - 1] = small_pad_bits(sc->nslots);
	memset(small_xmap(run), 0, words * 8);
	map_mark(h, r, sc->chunks, true);
	if (state == RUN_LISTED)
		list_push(h, c, r);
	hd->run_blocks++;
	hd->run_bytes += blk_size(shmk__rd(h, blk));
	hd->small_bytes += (uint64_t)sc->nslots * sc->size;
	*rp = r;
	return 0;
}

/* Give the empty run at @r, of class @c, back to the page heap. */
static void run_release(struct shmk *h, uint64_t r, unsigned int c)
{
	const struct shmk_small_class *sc = &shmk__small_classes[c];
	struct shmk_run *run = run_at(h, r);
	struct shmk_hdr *hd = h->hdr;
	uint64_t blk = r - BLK_HDR;

	if (run->state == RUN_LISTED)
		list_remove(h, c, r);
	map_mark(h, r, sc->chunks, false);
	hd->run_blocks--;
	hd->run_bytes -= blk_size(shmk__rd(h, blk));
	hd->small_bytes -= (uint64_t)sc->nslots * sc->size;
	shmk__heap_release(h, blk);
}

/* Let the run at @r go full: no free counted yet, then the state. */
static void run_mark_full(struct shmk *h, uint64_t r)
{
	__atomic_store_n(&run_at(h, r)->nfreed, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	shmk__tx_set(h, RUN_OFF(r, state), RUN_FULL);
}

/*
 * The run at @r has no free slot for its allocator: mark it RUN_FULL, then
 * look at its bitmap again. A free that cleared a bit before the mark sees
 * the old state and leaves the run alone; it is caught here (the atomic
 * AND and this store are ordered against each other's loads), and the run
 * keeps its state: true. Otherwise the next free puts it on the list.
 */
static bool run_retire(struct shmk *h, uint64_t r)
{
	struct shmk_run *run = run_at(h, r);
	uint64_t old = run->state;

	run_mark_full(h, r);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (run_has_free(run)) {
		shmk__tx_set(h, RUN_OFF(r, state), old);
		return true;
	}
	return false;
}

/*
 * After a free into a run nobody owns (or at a trim): a RUN_FULL run with
 * a free slot goes back on its list, an empty one back to the page heap.
 */
static void run_settle(struct shmk *h, uint64_t r)
{
	struct shmk_run *run = run_at(h, r);
	uint64_t st = run->state, w;
	unsigned int c;

	/* Released since (its header may outlive it): nothing to settle */
	if (small_run_of(h, r) != r)
		return;
	w = shmk__rd(h, r - BLK_HDR);
	if (!small_run_ok(h, r) || blk_tag(w) != BLK_TAG_USED ||
	    blk_kind(w) != BLK_F_RUN) {
		shmk__corrupt(h);
		return;
	}
	c = small_run_cls(run);
	if (st != RUN_FULL && st != RUN_LISTED)
		return;
	run_fold(run);
	if (run_empty(run))
		run_release(h, r, c);
	else if (st == RUN_FULL && run_has_free(run))
		list_push(h, c, r);
}

/* Take a free slot of the run at @r from word @w on: its offset, or 0. */
static inline uint64_t slot_take(const struct shmk *h, uint64_t r,
				 const struct shmk_small_class *sc,
				 unsigned int w, unsigned int *wp)
{
	struct shmk_run *run = run_at(h, r);
	unsigned int words = (sc->nslots + 63) / 64;

	if (w >= words)
		w = 0;
	for (unsigned int n = 0; n < words; n++) {
		uint64_t m = __atomic_load_n(&run->map[w], __ATOMIC_RELAXED);

		while (m != ~0ULL) {
			unsigned int b = (unsigned int)__builtin_ctzll(~m);
			uint64_t bit = 1ULL << b;

			/* A padding bit a client cleared: the run is full */
			if (unlikely((uint64_t)w * 64 + b >= sc->nslots))
				break;

			SHMK_FAULT_POINT();
			m = __atomic_fetch_or(&run->map[w], bit,
					      __ATOMIC_ACQ_REL);
			SHMK_FAULT_POINT();
			if (likely(!(m & bit))) {
				*wp = w;
				return r + sc->first +
				       ((uint64_t)w * 64 + b) * sc->size;
			}
		}
		if (++w == words)
			w = 0;
	}
	return 0;
}

/* Locked: a slot from the class's list (threads without a heap). */
int shmk__small_alloc(struct shmk *h, uint64_t size, uint64_t *payload)
{
	unsigned int c = small_class(size), w;
	const struct shmk_small_class *sc = &shmk__small_classes[c];
	struct shmk_hdr *hd = h->hdr;
	uint64_t r, p, kept = 0;
	int e;

	for (unsigned int n = 0;; n++) {
		r = hd->runs[c];
		if (!r && (e = run_new(h, c, RUN_LISTED, &r)))
			return e;
		/*
		 * A list longer than the map has chunks is a loop; a run kept
		 * for a free slot it then has not is corrupt (both would
		 * fill the undo log).
		 */
		if (n > RUN_MAP_MAX || !run_usable(h, r, c) || h->corrupt ||
		    r == kept) {
			shmk__corrupt(h);
			return -EUCLEAN;
		}
		run_fold(run_at(h, r));	/* no bit left over a free slot */
		p = slot_take(h, r, sc, 0, &w);
		if (p) {
			*payload = p;
			return 0;
		}
		if (!run_retire(h, r))
			list_remove(h, c, r);
		else
			kept = r;	/* a free came: its slot, next round */
	}
}

/* A dead owner's thread heap @i: its runs go back, it becomes free. */
static void theap_reap(struct shmk *h, unsigned int i)
{
	const struct shmk_theap *th = theap_at(h, i);

	for (unsigned int c = 0; c < SHMK_NCLASSES; c++) {
		uint64_t r = th->run[c];

		if (!r)
			continue;
		if (!run_usable(h, r, c)) {
			shmk__corrupt(h);
			return;
		}
		shmk__tx_set(h, TH_OFF(h, i, run[c]), 0);
		SHMK_FAULT_POINT();
		/*
		 * Owned no more, then settled, which folds first: a remote
		 * free that still saw the run owned is folded here, one that
		 * did not folds under the lock (shmk__small_free()).
		 */
		run_mark_full(h, r);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		run_settle(h, r);
	}
	shmk__tx_set(h, TH_OFF(h, i, owner), 0);
}

/*
 * Reap every thread heap whose owner died, among those claimed in this
 * thread's namespaces; each is a transaction.
 */
static void theap_reap_dead(struct shmk *h)
{
	self_init();
	if (my_tag == TAG_NONE || !theaps_ok(h))
		return;
	for (unsigned int i = 0; i < SHMK_THEAPS; i++) {
		const struct shmk_theap *th = theap_at(h, i);
		uint64_t o = th->owner;

		if (o && th->ns == my_ns && o != my_tag && !tag_alive(o)) {
			shmk__tx_begin(h, TX_SMALL, i);
			theap_reap(h, i);
			shmk__tx_commit(h);
		}
	}
}

/* Locked: a thread heap for this thread, claimed; -1 when none is free. */
static int theap_claim(struct shmk *h)
{
	int free_i = -1;

	if (!theaps_ok(h))
		return -1;
	for (int pass = 0; pass < 2 && free_i < 0; pass++) {
		if (pass)
			theap_reap_dead(h);
		for (unsigned int i = 0; i < SHMK_THEAPS; i++) {
			uint64_t o = theap_at(h, i)->owner;

			if (theap_mine(theap_at(h, i)))
				return (int)i;
			if (!o && free_i < 0)
				free_i = (int)i;
		}
	}
	if (free_i < 0)
		return -1;
	shmk__tx_begin(h, TX_SMALL, (uint64_t)free_i);
	shmk__tx_set(h, TH_OFF(h, free_i, ns), my_ns);
	shmk__tx_set(h, TH_OFF(h, free_i, owner), my_tag);
	theap_at(h, (unsigned int)free_i)->pid = (uint32_t)getpid();
	shmk__tx_commit(h);
	return free_i;
}

static struct shmk_theap *theap_slow(struct shmk *h)
{
	const struct shmk_hdr *hd = h->hdr;
	int i = -1;

	self_init();
	if (my_tag == TAG_NONE || !theaps_ok(h))
		return NULL;
	for (unsigned int k = 0; k < SHMK_THEAPS && i < 0; k++)
		if (theap_mine(theap_at(h, k)))
			i = (int)k;
	if (i < 0) {
		if (shmk__lock(h))
			return NULL;
		i = theap_claim(h);
		shmk__unlock(h);
		if (i < 0)
			return NULL;
	}
	tc.h = h;
	tc.base = h->base;
	tc.ctime = hd->ctime_ns;
	/* One copy for both: another thread may store another one. */
	tc.theaps = READ_ONCE(h->theaps);
	tc.th = (struct shmk_theap *)(h->base + tc.theaps) + i;
	tc.idx = (unsigned int)i;
	tc.need = tc.theaps + SHMK_THEAPS * sizeof(struct shmk_theap);
	memset(tc.vrun, 0, sizeof(tc.vrun));
	return tc.th;
}

/*
 * The cached heap may be followed: same handle, and the table where it was
 * found and the runs in vrun[] inside memory known to be there (a client
 * that moved the table may have had th point at memory that a shrink took
 * away since).
 */
static inline bool tc_valid(const struct shmk *h)
{
	return tc.h == h && tc.base == h->base &&
	       tc.theaps == READ_ONCE(h->hdr->theaps) &&
	       tc.need <= READ_ONCE(h->backed);
}

/* This thread's heap in @h, or NULL (then the locked path serves it). */
static inline struct shmk_theap *theap_get(struct shmk *h)
{
	if (likely(tc_valid(h) && tc.ctime == h->hdr->ctime_ns &&
		   READ_ONCE(tc.th->owner) == my_tag))
		return tc.th;
	return theap_slow(h);
}

/*
 * Locked, in a transaction: a current run of class @c with a free slot for
 * thread heap @i. The full one goes (unless a free just came), the head of
 * the class's list or a new run comes.
 */
static int theap_refill(struct shmk *h, unsigned int i, unsigned int c)
{
	const struct shmk_theap *th = theap_at(h, i);
	uint64_t r = th->run[c];
	int e;

	if (r) {
		if (!run_usable(h, r, c)) {
			shmk__corrupt(h);
			return -EUCLEAN;
		}
		if (run_retire(h, r))
			return 0;
		shmk__tx_set(h, TH_OFF(h, i, run[c]), 0);
	}
	r = h->hdr->runs[c];
	if (r) {
		if (!run_usable(h, r, c)) {
			shmk__corrupt(h);
			return -EUCLEAN;
		}
		list_remove(h, c, r);
		run_fold(run_at(h, r));	/* no bit left over a free slot */
		shmk__tx_set(h, RUN_OFF(r, state),
			     RUN_OWNED | (uint64_t)i << RUN_OWNER_SHIFT);
	} else if ((e = run_new(h, c, RUN_OWNED |
				(uint64_t)i << RUN_OWNER_SHIFT, &r))) {
		return e;
	}
	shmk__tx_set(h, TH_OFF(h, i, run[c]), r);
	theap_at(h, i)->hint[c] = 0;
	return shmk__tx_bad(h) ? -EUCLEAN : 0;
}

static int refill(struct shmk *h, struct shmk_theap *th, unsigned int c)
{
	unsigned int i = tc.idx;
	int e = shmk__lock(h);

	if (e)
		return e;
	/* The table may have moved (a client wrote theaps): ours no more. */
	if (!theaps_ok(h) || theap_at(h, i) != th || !theap_mine(th)) {
		shmk__unlock(h);
		return -ESTALE;
	}
	shmk__tx_begin(h, TX_SMALL, c);
	e = theap_refill(h, i, c);
	shmk__tx_commit(h);
	shmk__unlock(h);
	return e;
}

/*
 * The fast path's rest: the current run, checked and remembered, then
 * refills. Out of line, so that the common case saves few registers.
 */
static __attribute__((noinline)) uint64_t
small_alloc_slow(struct shmk *h, struct shmk_theap *th, unsigned int c)
{
	const struct shmk_small_class *sc = &shmk__small_classes[c];
	unsigned int w;

	for (int tries = 0; tries < 4; tries++) {
		uint64_t r = READ_ONCE(th->run[c]), p;

		if (r) {
			/* Overwritten: the locked path finds out. */
			if (!run_usable(h, r, c))
				return 0;
			if (run_end(r, c) > tc.need)
				tc.need = run_end(r, c);
			tc.vrun[c] = (uint32_t)(r >> RUN_CHUNK_SHIFT);
			p = slot_take(h, r, sc, th->hint[c], &w);
			/* What other threads freed comes back when none is left */
			if (!p && run_fold(run_at(h, r)))
				p = slot_take(h, r, sc, 0, &w);
			if (p) {
				th->hint[c] = (uint8_t)w;
				return p;
			}
		}
		if (refill(h, th, c))
			return 0;
	}
	return 0;
}

/*
 * The fast path: a slot of class small_class(@size) for this thread, with
 * no lock; 0 when the locked path must serve the request (no thread heap,
 * no run to be had, an error: it finds out which).
 */
uint64_t shmk__small_alloc_fast(struct shmk *h, uint64_t size)
{
	unsigned int c = small_class(size), w;
	struct shmk_theap *th;
	uint64_t r, p;

	if (unlikely(READ_ONCE(h->hdr->unrecoverable)))
		return 0;
	th = theap_get(h);
	if (unlikely(!th))
		return 0;
	r = READ_ONCE(th->run[c]);
	/* A run checked before (run offsets are 2 * BLK_HDR past a chunk). */
	if (likely(r == ((uint64_t)tc.vrun[c] << RUN_CHUNK_SHIFT) +
		   2 * BLK_HDR && tc.vrun[c])) {
		p = slot_take(h, r, &shmk__small_classes[c], th->hint[c], &w);
		if (likely(p)) {
			th->hint[c] = (uint8_t)w;
			return p;
		}
	}
	return small_alloc_slow(h, th, c);
}

/*
 * A message's slot in another thread's current run: one atomic OR in the
 * run's xmap, a cache line that the owner's allocations do not touch until
 * they need the slot back (run_fold()). The caller vouches that the slot
 * is allocated: only its map bit could tell, and reading that line would
 * take it from the owner at every message. A run whose owner let it go
 * before it could see the bit (a retire or a reap: both mark the run, then
 * fold) is folded and settled here, under the lock.
 */
static int small_free_remote(struct shmk *h, uint64_t r, struct shmk_run *run,
			     uint64_t *x, uint64_t bit)
{
	uint64_t old, st;
	int saved;

	SHMK_FAULT_POINT();
	old = __atomic_fetch_or(x, bit, __ATOMIC_SEQ_CST);
	SHMK_FAULT_POINT();
	if (unlikely(old & bit))
		return -EINVAL;
	st = __atomic_load_n(&run->state, __ATOMIC_SEQ_CST);
	if ((st & RUN_STATE_MASK) == RUN_OWNED)
		return 0;
	saved = errno;
	if (!shmk__lock(h)) {
		shmk__tx_begin(h, TX_SMALL, r);
		run_settle(h, r);	/* folds, unless owned again */
		shmk__tx_commit(h);
		shmk__unlock(h);
	}
	errno = saved;
	return 0;
}

/*
 * Free the slot at @off of the run at @r (small_run_of()): one atomic AND
 * (or OR, small_free_remote()), then, when the run has no owner, settle
 * it under the lock. -EINVAL, and nothing done, for an offset that is not
 * an allocated slot (inside one, a double free, a corrupt run).
 */
int shmk__small_free(struct shmk *h, uint64_t r, uint64_t off,
		     unsigned int flags)
{
	struct shmk_run *run = run_at(h, r);
	uint32_t cls = READ_ONCE(run->cls);
	const struct shmk_small_class *sc;
	uint64_t bit, old, st, d, i, n, *x;
	unsigned int w;

	/*
	 * The run map said @r starts a run: its magic and class suffice, the
	 * class table gives the rest (what small_run_ok() checks against).
	 */
	if (unlikely(cls >= SHMK_NCLASSES ||
		     READ_ONCE(run->magic) != (RUN_MAGIC ^ r)))
		return -EINVAL;
	sc = &shmk__small_classes[cls];
	if (unlikely(off < r + sc->first))
		return -EINVAL;
	d = off - r - sc->first;
	i = (d * sc->recip) >> RUN_RECIP_SHIFT;
	if (unlikely(i >= sc->nslots || i * sc->size != d))
		return -EINVAL;
	w = (unsigned int)(i / 64);
	bit = 1ULL << (i % 64);
	/* A message, lock-free, in another thread's current run: xmap */
	if ((flags & (SMALL_FREE_REMOTE | SMALL_FREE_LOCKED)) ==
	    SMALL_FREE_REMOTE) {
		st = __atomic_load_n(&run->state, __ATOMIC_RELAXED);
		x = (uint64_t *)((uint8_t *)run + sc->xmap) + w;
		if ((st & RUN_STATE_MASK) == RUN_OWNED &&
		    !(tc_valid(h) && st >> RUN_OWNER_SHIFT == tc.idx))
			return small_free_remote(h, r, run, x, bit);
	}
	/*
	 * A free into a run let go full counts while its slot still keeps
	 * the run from being given back (after the AND, another free could
	 * empty and release it first): n, or 0 when the run was not full.
	 */
	st = __atomic_load_n(&run->state, __ATOMIC_RELAXED);
	n = st == RUN_FULL ? __atomic_add_fetch(&run->nfreed, 1,
						  __ATOMIC_RELAXED) : 0;
	/*
	 * map alone says whether the slot is allocated: a slot pending in
	 * xmap is a message's, whose block no caller of shmk_free() was
	 * given (reading xmap here would cost every free a cache line).
	 */
	SHMK_FAULT_POINT();
	old = __atomic_fetch_and(&run->map[w], ~bit, __ATOMIC_SEQ_CST);
	SHMK_FAULT_POINT();
	if (unlikely(!(old & bit)))
		return -EINVAL;
	st = __atomic_load_n(&run->state, __ATOMIC_SEQ_CST);
	if ((st & RUN_STATE_MASK) == RUN_OWNED) {
		/* Our own run (a hint: a stale record's costs nothing). */
		if (tc_valid(h) && st >> RUN_OWNER_SHIFT == tc.idx &&
		    w < tc.th->hint[cls])
			tc.th->hint[cls] = (uint8_t)w;
		return 0;
	}
	/*
	 * A run nobody owns is settled under the lock when this free empties
	 * it, or (one let go full) made it worth listing again; a run let go
	 * full since the count was taken, too (a rare race with its owner).
	 */
	if (st != RUN_FULL && st != RUN_LISTED)
		return 0;
	if ((st == RUN_LISTED || (n && n < run_relist_at(sc))) &&
	    ((old & ~bit) != run_word_empty(run, w) || !run_empty(run)))
		return 0;
	if (flags & SMALL_FREE_LOCKED) {
		run_settle(h, r);
	} else {
		int saved = errno;

		if (!shmk__lock(h)) {
			shmk__tx_begin(h, TX_SMALL, r);
			run_settle(h, r);
			shmk__tx_commit(h);
			shmk__unlock(h);
		}
		errno = saved;
	}
	return 0;
}

/* shmk_shrink(): every empty run that may go goes back to the page heap. */
struct run_list {
	uint64_t *r;
	size_t n, cap;
};

static int collect_fn(uint64_t b, uint64_t w, void *arg)
{
	struct run_list *l = arg;

	if (blk_tag(w) != BLK_TAG_USED || blk_kind(w) != BLK_F_RUN)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		uint64_t *p = realloc(l->r, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->r = p;
		l->cap = cap;
	}
	l->r[l->n++] = b + BLK_HDR;
	return 0;
}

void shmk__small_trim(struct shmk *h)
{
	struct run_list l = { 0 };
	int mine = -1;

	theap_reap_dead(h);
	if (tc.h == h && tc.base == h->base && tc.ctime == h->hdr->ctime_ns &&
	    theaps_ok(h) && theap_at(h, tc.idx) == tc.th && theap_mine(tc.th))
		mine = (int)tc.idx;
	if (shmk__heap_walk(h, collect_fn, &l)) {
		free(l.r);
		return;
	}
	for (size_t k = 0; k < l.n; k++) {
		uint64_t r = l.r[k], st;
		struct shmk_run *run = run_at(h, r);

		if (!small_run_ok(h, r))
			continue;
		st = run->state;
		shmk__tx_begin(h, TX_SMALL, r);
		if (mine >= 0 && st == (RUN_OWNED | (uint64_t)mine
						  << RUN_OWNER_SHIFT)) {
			unsigned int c = small_run_cls(run);

			if (run_empty(run)) {
				shmk__tx_set(h, TH_OFF(h, mine, run[c]), 0);
				shmk__tx_set(h, RUN_OFF(r, state), RUN_FULL);
				run_release(h, r, c);
			}
		} else {
			run_settle(h, r);
		}
		shmk__tx_commit(h);
	}
	free(l.r);
}

/* ---- walking, recounting, rebuilding, checking ------------------------- */

struct alloc_walk {
	const struct shmk *h;
	shmk_alloc_fn fn;
	void *arg;
};

static int alloc_walk_fn(uint64_t b, uint64_t w, void *arg)
{
	const struct alloc_walk *aw = arg;
	const struct shmk_small_class *sc;
	const struct shmk_run *run;
	uint64_t r = b + BLK_HDR;
	int ret;

	if (blk_tag(w) != BLK_TAG_USED)
		return 0;
	if (!blk_kind(w))
		return shmk__msg_parked(aw->h, r) ? 0 :
		       aw->fn(r, blk_size(w) - BLK_HDR, aw->arg);
	if (blk_kind(w) != BLK_F_RUN)
		return 0;
	run = small_run_ok(aw->h, r);
	if (!run)
		return -EUCLEAN;
	sc = run_class(run);
	for (uint64_t i = 0; i < sc->nslots; i++)
		if (small_slot_used(run, i) &&
		    (ret = aw->fn(r + sc->first + i * sc->size, sc->size,
				  aw->arg)))
			return ret;
	return 0;
}

int shmk__alloc_walk(const struct shmk *h, shmk_alloc_fn fn, void *arg)
{
	struct alloc_walk aw = { h, fn, arg };

	return shmk__heap_walk(h, alloc_walk_fn, &aw);
}

struct small_count {
	const struct shmk *h;
	uint64_t blocks, bytes, slot_bytes, nmeta, map_chunks;
	uint64_t *runs;			/* for the checker: runs, ascending */
	size_t nruns, cap;
	bool bad;
};

static uint64_t run_used_slots(const struct shmk_run *run)
{
	uint64_t n = 0;

	for (unsigned int w = 0; w < run_words(run); w++)
		n += (uint64_t)__builtin_popcountll(run_word_used(run, w) &
						    ~run_word_empty(run, w));
	return n;
}

static int count_fn(uint64_t b, uint64_t w, void *arg)
{
	struct small_count *sc = arg;
	const struct shmk_small_class *k;
	const struct shmk_run *run;

	if (blk_tag(w) != BLK_TAG_USED || !blk_kind(w))
		return 0;
	sc->blocks++;
	sc->bytes += blk_size(w);
	if (blk_kind(w) == BLK_F_META) {
		sc->nmeta++;
		return 0;
	}
	run = small_run_ok(sc->h, b + BLK_HDR);
	k = run ? run_class(run) : NULL;
	if (!run || b % RUN_CHUNK != BLK_HDR ||
	    blk_size(w) < (uint64_t)k->chunks * RUN_CHUNK) {
		sc->bad = true;
		return 0;
	}
	sc->slot_bytes += (uint64_t)k->nslots * k->size;
	sc->map_chunks += k->chunks;
	if (sc->runs) {
		if (sc->nruns == sc->cap) {
			sc->bad = true;
			return 0;
		}
		sc->runs[sc->nruns++] = b + BLK_HDR;
	}
	return 0;
}

void shmk__small_recount(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	struct small_count sc = { .h = h };

	if (shmk__heap_walk(h, count_fn, &sc) || sc.bad)
		return;
	hd->run_blocks = sc.blocks;
	hd->run_bytes = sc.bytes;
	hd->small_bytes = sc.slot_bytes;
}

/*
 * Lock-free, for shmk_stats(): the bytes and the number of allocated slots
 * of every run the run map names below @heap_end, each run's bitmap read
 * word by word (atomically). Bounded and bounds-checked: safe while the
 * runs change underneath.
 */
void shmk__small_usage(const struct shmk *h, uint64_t heap_end,
		       uint64_t *used, uint64_t *live)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t map = READ_ONCE(hd->run_map), len = READ_ONCE(hd->run_map_len);
	uint64_t n = heap_end >> RUN_CHUNK_SHIFT, u = 0, l = 0;

	if (n > len)
		n = len;
	if (!map || map > h->map_size || n > h->map_size - map ||
	    !shmk__backed(h, map + n))
		n = 0;
	for (uint64_t idx = 0; idx < n; idx++) {
		const struct shmk_run *run;
		uint64_t r, k;

		if (idx % 8 == 0 && idx + 8 <= n &&
		    !READ_ONCE(*(const uint64_t *)(h->base + map + idx))) {
			idx += 7;
			continue;
		}
		if (READ_ONCE(h->base[map + idx]) != 1)
			continue;
		r = (idx << RUN_CHUNK_SHIFT) + 2 * BLK_HDR;
		run = small_run_ok(h, r);
		if (!run)
			continue;
		k = run_used_slots(run);
		if (k > run->nslots)
			continue;
		u += k * run->slot_size;
		l += k;
	}
	*used = u;
	*live = l;
}

/* The thread heap whose current run @r (of class @c) is, or -1. */
static int run_owner(const struct shmk *h, uint64_t r, uint64_t st,
		     unsigned int c)
{
	uint64_t i = st >> RUN_OWNER_SHIFT;

	if ((st & RUN_STATE_MASK) != RUN_OWNED || i >= SHMK_THEAPS ||
	    !theap_at(h, (unsigned int)i)->owner ||
	    theap_at(h, (unsigned int)i)->run[c] != r)
		return -1;
	return (int)i;
}

static int rebuild_fn(uint64_t b, uint64_t w, void *arg)
{
	struct shmk *h = arg;
	const struct shmk_small_class *sc;
	struct shmk_run *run;
	uint64_t words, r = b + BLK_HDR;
	unsigned int c;

	if (blk_tag(w) != BLK_TAG_USED || blk_kind(w) != BLK_F_RUN)
		return 0;
	if (!small_run_ok(h, r) || b % RUN_CHUNK != BLK_HDR ||
	    (r - 2 * BLK_HDR) >> RUN_CHUNK_SHIFT >= h->hdr->run_map_len)
		return -EUCLEAN;
	run = run_at(h, r);
	c = small_run_cls(run);
	sc = &shmk__small_classes[c];
	words = (sc->nslots + 63) / 64;
	run->map[words - 1] |= small_pad_bits(sc->nslots);
	small_xmap(run)[words - 1] &= ~small_pad_bits(sc->nslots);
	run->next = run->prev = 0;
	map_mark(h, r, sc->chunks, true);
	if (run_owner(h, r, run->state, c) >= 0)
		return 0;
	run_fold(run);
	if (run_has_free(run))
		list_push(h, c, r);
	else
		run_mark_full(h, r);
	return 0;
}

/*
 * Repair (the undo log off, see recovery.c): the run map, the lists and the
 * thread heaps' runs, from the runs themselves. A run stays the current run
 * of a thread heap when both say so; any other run goes to its list, or is
 * full. Runs are found by the block chain; the map must be a live block of
 * its proper size.
 */
int shmk__small_rebuild(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t map = hd->run_map, len = hd->run_map_len, w;

	if (map % BLK_ALIGN || map < SHMK_HEAP_START + 16 ||
	    len != small_map_len(h->map_size) || !theaps_ok(h) ||
	    h->theaps != ALIGN_UP(map + len, (uint64_t)64) ||
	    map + small_meta_bytes(h->map_size) > hd->heap_end)
		return -EUCLEAN;
	w = shmk__rd(h, map - BLK_HDR);
	if (blk_tag(w) != BLK_TAG_USED || blk_kind(w) != BLK_F_META ||
	    blk_size(w) < small_meta_bytes(h->map_size) + BLK_HDR)
		return -EUCLEAN;
	memset(h->base + map, 0, len);
	memset(hd->runs, 0, sizeof(hd->runs));
	if (shmk__heap_walk(h, rebuild_fn, h))
		return -EUCLEAN;
	for (unsigned int i = 0; i < SHMK_THEAPS; i++) {
		struct shmk_theap *th = theap_at(h, i);

		for (unsigned int c = 0; c < SHMK_NCLASSES; c++) {
			uint64_t r = th->run[c];

			if (r && (!th->owner || r % RUN_CHUNK != 2 * BLK_HDR ||
				  !small_run_ok(h, r) ||
				  run_at(h, r)->cls != c ||
				  run_at(h, r)->state !=
				  (RUN_OWNED | (uint64_t)i << RUN_OWNER_SHIFT)))
				th->run[c] = 0;
		}
	}
	shmk__small_recount(h);
	return 0;
}

#define bad(what, at)	shmk__check_bad((what), (at))

static int find_run(const struct small_count *sc, uint64_t r)
{
	size_t lo = 0, hi = sc->nruns;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sc->runs[mid] < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sc->nruns && sc->runs[lo] == r ? (int)lo : -1;
}

static int run_check(const struct shmk *h, uint64_t r)
{
	const struct shmk_run *run = small_run_ok(h, r);
	const struct shmk_hdr *hd = h->hdr;
	const struct shmk_small_class *sc;
	uint64_t words, idx, map = READ_ONCE(hd->run_map), st, pad;
	unsigned int c;

	if (!run)
		return bad("run header", r);
	c = small_run_cls(run);
	sc = &shmk__small_classes[c];
	words = (sc->nslots + 63) / 64;
	pad = small_pad_bits(sc->nslots);
	if ((READ_ONCE(run->map[words - 1]) & pad) != pad)
		return bad("run bitmap padding", r);
	if (READ_ONCE(small_xmap(run)[words - 1]) & pad)
		return bad("run remote-free bitmap padding", r);
	st = READ_ONCE(run->state);
	if (st != RUN_LISTED && st != RUN_FULL &&
	    run_owner(h, r, st, c) < 0)
		return bad("run state, or its thread heap", r);
	idx = (r - 2 * BLK_HDR) >> RUN_CHUNK_SHIFT;
	for (uint32_t i = 0; i < sc->chunks; i++)
		if (idx + i >= READ_ONCE(hd->run_map_len) ||
		    READ_ONCE(h->base[map + idx + i]) != i + 1)
			return bad("run map", r);
	return 0;
}

/*
 * The small tier's part of shmk_check(): the run map is the one BLK_F_META
 * block, with the thread heap table after it, and marks exactly the runs'
 * chunks; every run header and bitmap is consistent; each class's list
 * holds exactly its RUN_LISTED runs, each once, doubly linked; each thread
 * heap's current runs are runs of their classes that say so, and only a
 * claimed heap has them; the counters are exact. Bitmaps change under the
 * check (the fast path takes no lock); nothing checked here depends on
 * their contents but the padding bits, which nothing clears.
 */
int shmk__small_check(const struct shmk *h)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t map = READ_ONCE(hd->run_map), len = READ_ONCE(hd->run_map_len);
	uint64_t marked = 0, w, listed = 0, nlisted = 0, nowned = 0, owned = 0;
	uint64_t he = READ_ONCE(hd->heap_end);
	struct small_count sc = { .h = h };
	uint8_t *seen = NULL;
	int r;

	/* A forged end would size the table below (ENOMEM is no verdict). */
	if (!shmk__heap_end_ok(h, he))
		return bad("heap end", he);
	if (len != small_map_len(h->map_size) || map % BLK_ALIGN ||
	    map < SHMK_HEAP_START + 16 ||
	    map + small_meta_bytes(h->map_size) > he || !theaps_ok(h) ||
	    READ_ONCE(h->theaps) != ALIGN_UP(map + len, (uint64_t)64))
		return bad("run map bounds", map);
	w = READ_ONCE(*shmk__w(h, map - BLK_HDR));
	if (blk_tag(w) != BLK_TAG_USED || blk_kind(w) != BLK_F_META ||
	    blk_size(w) < small_meta_bytes(h->map_size) + BLK_HDR)
		return bad("run map block", map);
	sc.cap = (size_t)((he >> RUN_CHUNK_SHIFT) + 1);
	sc.runs = calloc(sc.cap, sizeof(*sc.runs));
	seen = calloc(sc.cap, 1);
	r = -ENOMEM;
	if (!sc.runs || !seen)
		goto out;
	r = shmk__heap_walk(h, count_fn, &sc);
	if (r == -EUCLEAN || (!r && sc.bad))
		r = bad("run block", 0);
	if (r)
		goto out;
	if (sc.nmeta != 1) {
		r = bad("run map blocks", sc.nmeta);
		goto out;
	}
	for (size_t i = 0; i < sc.nruns; i++) {
		uint64_t st;

		if ((r = run_check(h, sc.runs[i])))
			goto out;
		st = READ_ONCE(run_at(h, sc.runs[i])->state);
		if (st == RUN_LISTED)
			nlisted++;
		else if ((st & RUN_STATE_MASK) == RUN_OWNED)
			nowned++;
	}
	for (uint64_t i = 0; i < len; i++)
		if (READ_ONCE(h->base[map + i]))
			marked++;
	if (marked != sc.map_chunks) {
		r = bad("run map marks chunks of no run", marked);
		goto out;
	}
	for (unsigned int c = 0; c < SHMK_NCLASSES; c++) {
		uint64_t n = READ_ONCE(hd->runs[c]), prev = 0;

		while (n) {
			const struct shmk_run *run;
			int i = find_run(&sc, n);

			if (i < 0 || seen[i]) {
				r = bad("run list: not a run, or twice", n);
				goto out;
			}
			seen[i] = 1;
			run = run_at(h, n);
			if (run->cls != c || READ_ONCE(run->state) != RUN_LISTED ||
			    READ_ONCE(run->prev) != prev) {
				r = bad("run list entry", n);
				goto out;
			}
			listed++;
			prev = n;
			n = READ_ONCE(run->next);
		}
	}
	if (listed != nlisted) {
		r = bad("listed runs missing from their list", listed);
		goto out;
	}
	for (unsigned int i = 0; i < SHMK_THEAPS; i++) {
		const struct shmk_theap *th = theap_at(h, i);
		uint64_t o = READ_ONCE(th->owner);

		for (unsigned int c = 0; c < SHMK_NCLASSES; c++) {
			uint64_t n = READ_ONCE(th->run[c]);

			if (!n)
				continue;
			if (!o || find_run(&sc, n) < 0 ||
			    run_at(h, n)->cls != c ||
			    READ_ONCE(run_at(h, n)->state) !=
			    (RUN_OWNED | (uint64_t)i << RUN_OWNER_SHIFT)) {
				r = bad("thread heap run", n);
				goto out;
			}
			owned++;
		}
	}
	if (owned != nowned) {
		r = bad("owned runs no thread heap has", owned);
		goto out;
	}
	if (sc.blocks != READ_ONCE(hd->run_blocks) ||
	    sc.bytes != READ_ONCE(hd->run_bytes) ||
	    sc.slot_bytes != READ_ONCE(hd->small_bytes))
		r = bad("small tier counters", 0);
out:
	free(sc.runs);
	free(seen);
	return r;
}
