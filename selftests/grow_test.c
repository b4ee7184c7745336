// SPDX-License-Identifier: GPL-2.0
/*
 * shmk grow and shrink across processes: eager grows reach every peer's
 * page tables before the ioctl returns (zero minor faults), lazy grows
 * fault, shrinks cut the range everywhere (its data is gone: reads there
 * see zeros, writes raise SIGBUS) and leave the rest alone, and concurrent
 * resizes keep data and generations consistent.
 */
#include "shmk_test.h"

#define NPEERS		4
#define NWRITERS	(NPEERS + 1)	/* the peers and the grower */
#define GROWER		NPEERS		/* writer index of the parent */

#define INIT_SIZE	MiB(1)
#define GROWN_SIZE	MiB(17)
#define MAX_SIZE	MiB(32)

enum { TOUCH_WRITE, TOUCH_CHECK };

struct peer_result {
	long flt_init;		/* faults touching the initial range */
	long flt_write;		/* faults writing the grown range */
	long flt_check;		/* faults reading it back */
};

struct grow_shared {
	struct peer_result res[NWRITERS];
};

struct grow_args {
	char name[SHMK_NAME_MAX];
	struct shmk_barrier *b;
	struct grow_shared *sh;
	bool lazy;
	__u64 init, grown, cut;
};

FIXTURE(grow) {
	int ctl;
	int fd;
	char *p;
	size_t plen;		/* length of the mapping at p */
	char name[SHMK_NAME_MAX];
	pid_t pids[NPEERS];
	struct shmk_barrier b;
	struct grow_shared *sh;
	struct grow_args ga;
};

FIXTURE_SETUP(grow)
{
	shmk_barrier_clear(&self->b);
	self->fd = -1;
	self->p = MAP_FAILED;
	self->plen = MAX_SIZE;
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	SHMK_NAME(self->name, "grow");
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	ASSERT_EQ(0, shmk_barrier_init(&self->b));
	strcpy(self->ga.name, self->name);
	self->ga.b = &self->b;
	self->ga.sh = self->sh;
	shmk_probe_setup();
}

FIXTURE_TEARDOWN(grow)
{
	shmk_kill_children(NPEERS, self->pids);
	shmk_barrier_destroy(&self->b);
	if (self->p != MAP_FAILED)
		munmap(self->p, self->plen);
	if (self->fd >= 0)
		close(self->fd);
	shmk_cleanup();
	close(self->ctl);
}

static bool page_is_zero(const char *page)
{
	const volatile __u64 *w = (const volatile __u64 *)page;
	size_t k;

	for (k = 0; k < page_size() / sizeof(__u64); k++)
		if (w[k])
			return false;
	return true;
}

static inline __u64 word_val(size_t pg, int writer)
{
	return ((__u64)pg << 8) | (__u64)(writer + 1);
}

/*
 * TOUCH_WRITE: check that pages [first, first + n) are still zero where
 * nobody writes, then store this writer's word in each.
 * TOUCH_CHECK: check every writer's word in each page.
 * Returns the number of bad words. Kept out of line and called once
 * before any measured run, so that measuring touches no new code page.
 */
static __attribute__((noinline))
long touch_pages(char *base, size_t first, size_t n, int writer, int mode)
{
	size_t words = page_size() / sizeof(__u64);
	long bad = 0;
	size_t k;
	int j;

	for (k = first; k < first + n; k++) {
		volatile __u64 *w = (volatile __u64 *)(base + k * page_size());

		if (mode == TOUCH_WRITE) {
			if (w[0] || w[writer + 1] || w[words - 1])
				bad++;
			w[writer + 1] = word_val(k, writer);
			continue;
		}
		for (j = 0; j < NWRITERS; j++)
			if (w[j + 1] != word_val(k, j))
				bad++;
	}
	return bad;
}

/*
 * One writer's part of a grow round, shared by the peers and the grower:
 * phase 1 write, barrier, phase 2 check. Fault counts go to @res.
 */
static long measure(char *p, size_t first, size_t n, int writer, int mode,
		    long *bad)
{
	long f0, f1;

	f0 = minflt();
	*bad = touch_pages(p, first, n, writer, mode);
	f1 = minflt();
	return f1 - f0;
}

/* Warm up the measured code on page 0 of the initial range. */
static void warm_up(char *p, int writer)
{
	long bad;

	measure(p, 0, 1, writer, TOUCH_WRITE, &bad);
	measure(p, 0, 1, writer, TOUCH_CHECK, &bad);
}

static int peer_main(int idx, void *arg)
{
	struct grow_args *ga = arg;
	struct peer_result *res = &ga->sh->res[idx];
	size_t init_pg = ga->init / page_size();
	size_t new_pg = (ga->grown - ga->init) / page_size();
	long bad;
	char *p;
	int fd;

	shmk_probe_setup();
	fd = shmk_open_simple(ga->name, 0, NULL);
	CHK(fd >= 0);
	p = shmk_map(fd, MAX_SIZE, PROT_READ | PROT_WRITE);
	CHK(p != MAP_FAILED);

	/* The active part was mapped by MAP_POPULATE. */
	warm_up(p, idx);
	res->flt_init = measure(p, 1, init_pg - 1, idx, TOUCH_WRITE, &bad);
	CHK_EQ(0, bad);
	CHK_EQ(0, res->flt_init);
	/* Nothing beyond the active size yet. */
	CHK_EQ(SIGBUS, shmk_probe_read(p + ga->init));

	CHK(shmk_barrier_arrive(ga->b) >= 0);
	/* The grower has grown the segment. */

	res->flt_write = measure(p, init_pg, new_pg, idx, TOUCH_WRITE, &bad);
	CHK_EQ(0, bad);
	if (!ga->lazy)
		CHK_EQ(0, res->flt_write);

	CHK(shmk_barrier_arrive(ga->b) >= 0);
	/* Every writer has written every new page. */

	res->flt_check = measure(p, init_pg, new_pg, idx, TOUCH_CHECK, &bad);
	CHK_EQ(0, bad);
	if (!ga->lazy)
		CHK_EQ(0, res->flt_check);
	CHK_EQ(SIGBUS, shmk_probe_read(p + ga->grown));
	CHK_EQ(SIGBUS, shmk_probe_read(p + MAX_SIZE - 1));

	munmap(p, MAX_SIZE);
	close(fd);
	return 0;
}

/* Create the test's segment, @size of @max, and map all of @max. */
static void grow_create(struct __test_metadata *_metadata,
			FIXTURE_DATA(grow) *self, __u64 size, __u64 max,
			struct shmk_info *info)
{
	self->fd = shmk_create(self->ctl, self->name, size, max);
	ASSERT_LE(0, self->fd);
	self->plen = max;
	self->p = shmk_map(self->fd, max, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->p);
	ASSERT_EQ(0, shmk_get_info(self->fd, info));
}

static void grow_round(struct __test_metadata *_metadata,
		       FIXTURE_DATA(grow) *self, bool lazy)
{
	size_t init_pg = INIT_SIZE / page_size();
	size_t new_pg = (GROWN_SIZE - INIT_SIZE) / page_size();
	struct peer_result *res = &self->sh->res[GROWER];
	struct shmk_info info0, info;
	long long pages0;
	struct shmk_resize r;
	long bad;
	int i;

	grow_create(_metadata, self, INIT_SIZE, MAX_SIZE, &info0);

	self->ga.lazy = lazy;
	self->ga.init = INIT_SIZE;
	self->ga.grown = GROWN_SIZE;
	ASSERT_EQ(0, shmk_fork_children(NPEERS, self->pids, &self->b,
					peer_main, &self->ga));
	ASSERT_EQ(0, shmk_barrier_wait(&self->b, NPEERS, 30000));

	warm_up(self->p, GROWER);
	res->flt_init = measure(self->p, 1, init_pg - 1, GROWER, TOUCH_WRITE,
				&bad);
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, res->flt_init);
	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	ASSERT_EQ(NPEERS + 1, (int)info.nr_clients);

	pages0 = shmk_counter("pages");
	ASSERT_EQ(0, shmk_grow(self->fd, GROWN_SIZE,
			       lazy ? SHMK_GROW_LAZY : 0, &r));
	EXPECT_EQ(INIT_SIZE, r.old_size);
	EXPECT_EQ(GROWN_SIZE, r.new_size);
	EXPECT_EQ(info0.generation + 1, r.generation);
	EXPECT_EQ(pages0 + (long long)new_pg, shmk_counter("pages"));
	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	EXPECT_EQ(GROWN_SIZE, info.size);
	EXPECT_EQ(r.generation, info.generation);

	ASSERT_EQ(0, shmk_barrier_release(&self->b, NPEERS, 1));
	res->flt_write = measure(self->p, init_pg, new_pg, GROWER,
				 TOUCH_WRITE, &bad);
	EXPECT_EQ(0, bad);
	ASSERT_EQ(0, shmk_barrier_wait(&self->b, NPEERS, 30000));
	ASSERT_EQ(0, shmk_barrier_release(&self->b, NPEERS, 2));
	res->flt_check = measure(self->p, init_pg, new_pg, GROWER,
				 TOUCH_CHECK, &bad);
	EXPECT_EQ(0, bad);

	EXPECT_EQ(0, shmk_wait_children(NPEERS, self->pids, 30000));
	memset(self->pids, 0, sizeof(self->pids));

	for (i = 0; i < NWRITERS; i++) {
		TH_LOG("%s writer %d: minflt init %ld, write %ld, check %ld",
		       lazy ? "lazy" : "eager", i, self->sh->res[i].flt_init,
		       self->sh->res[i].flt_write, self->sh->res[i].flt_check);
		if (lazy) {
			EXPECT_LT(0, self->sh->res[i].flt_write);
		} else {
			EXPECT_EQ(0, self->sh->res[i].flt_write +
				     self->sh->res[i].flt_check);
		}
	}
}

/* Eager: 1 MiB -> 17 MiB, every peer touches all 4096 new pages. */
TEST_F_TIMEOUT(grow, eager_no_faults, 120)
{
	grow_round(_metadata, self, false);
}

/* Lazy: the same, but peers do take minor faults. */
TEST_F_TIMEOUT(grow, lazy_faults, 120)
{
	grow_round(_metadata, self, true);
}

static int shrink_peer(int idx, void *arg)
{
	struct grow_args *ga = arg;
	size_t all_pg = ga->init / page_size();
	size_t cut_pg = ga->cut / page_size();
	long bad;
	size_t k;
	char *p;
	int fd;

	shmk_probe_setup();
	fd = shmk_open_simple(ga->name, 0, NULL);
	CHK(fd >= 0);
	p = shmk_map(fd, MAX_SIZE, PROT_READ | PROT_WRITE);
	CHK(p != MAP_FAILED);
	CHK_EQ(0, touch_pages(p, 0, all_pg, idx, TOUCH_WRITE));

	CHK(shmk_barrier_arrive(ga->b) >= 0);
	/*
	 * Shrunk to ga->cut: above it, a write raises SIGBUS and a read
	 * sees zeros (the data is gone); beyond the old size, both raise
	 * SIGBUS.
	 */
	for (k = cut_pg; k < all_pg; k++) {
		CHK_EQ(SIGBUS, shmk_probe_write(p + k * page_size() + 8, 1));
		CHK_EQ(0, shmk_probe_read(p + k * page_size()));
		CHK(page_is_zero(p + k * page_size()));
	}
	CHK_EQ(SIGBUS, shmk_probe_read(p + ga->init));
	CHK_EQ(0, touch_pages(p, 0, cut_pg, idx, TOUCH_CHECK));

	CHK(shmk_barrier_arrive(ga->b) >= 0);
	/*
	 * Grown back: fresh zero pages above, installed in place of the
	 * zero page that the reads mapped (no faults), old data below.
	 */

	warm_up(p, idx);
	CHK_EQ(0, measure(p, cut_pg, all_pg - cut_pg, idx, TOUCH_WRITE,
			  &bad));
	CHK_EQ(0, bad);
	CHK_EQ(0, touch_pages(p, 1, cut_pg - 1, idx, TOUCH_CHECK));

	munmap(p, MAX_SIZE);
	close(fd);
	return 0;
}

TEST_F_TIMEOUT(grow, shrink_cuts, 120)
{
	const __u64 size = MiB(4), cut = MiB(2);
	size_t all_pg = size / page_size(), cut_pg = cut / page_size();
	struct shmk_info info0, info;
	long long pages0;
	struct shmk_resize r;
	size_t k;

	grow_create(_metadata, self, size, MAX_SIZE, &info0);
	self->ga.init = size;
	self->ga.cut = cut;

	ASSERT_EQ(0, shmk_fork_children(NPEERS, self->pids, &self->b,
					shrink_peer, &self->ga));
	EXPECT_EQ(0, touch_pages(self->p, 0, all_pg, GROWER, TOUCH_WRITE));
	ASSERT_EQ(0, shmk_barrier_wait(&self->b, NPEERS, 30000));
	EXPECT_EQ(0, touch_pages(self->p, 0, all_pg, GROWER, TOUCH_CHECK));

	pages0 = shmk_counter("pages");
	ASSERT_EQ(0, shmk_shrink(self->fd, cut, &r));
	EXPECT_EQ(size, r.old_size);
	EXPECT_EQ(cut, r.new_size);
	EXPECT_EQ(info0.generation + 1, r.generation);
	EXPECT_EQ(pages0 - (long long)(all_pg - cut_pg),
		  shmk_counter("pages"));
	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	EXPECT_EQ(cut, info.size);

	for (k = cut_pg; k < all_pg; k++) {
		ASSERT_EQ(0, shmk_probe_read(self->p + k * page_size()));
		ASSERT_TRUE(page_is_zero(self->p + k * page_size()));
	}
	EXPECT_EQ(0, touch_pages(self->p, 0, cut_pg, GROWER, TOUCH_CHECK));

	ASSERT_EQ(0, shmk_barrier_release(&self->b, NPEERS, 1));
	ASSERT_EQ(0, shmk_barrier_wait(&self->b, NPEERS, 30000));

	ASSERT_EQ(0, shmk_grow(self->fd, size, 0, &r));
	EXPECT_EQ(cut, r.old_size);
	EXPECT_EQ(size, r.new_size);
	EXPECT_EQ(info0.generation + 2, r.generation);
	EXPECT_EQ(pages0, shmk_counter("pages"));
	ASSERT_EQ(0, shmk_barrier_release(&self->b, NPEERS, 2));
	/* The cut range came back as zeroes, not as the old data. */
	EXPECT_EQ(0, touch_pages(self->p, cut_pg, all_pg - cut_pg, GROWER,
				 TOUCH_WRITE));

	EXPECT_EQ(0, shmk_wait_children(NPEERS, self->pids, 30000));
	memset(self->pids, 0, sizeof(self->pids));
	/*
	 * Every page holds every writer's word for that page: had a zero
	 * page stayed mapped anywhere, the writes to it would have gone to
	 * one page shared by all offsets.
	 */
	EXPECT_EQ(0, touch_pages(self->p, 0, all_pg, GROWER, TOUCH_CHECK));
}

/*
 * A reader (read-only handle) that reads a cut range maps the zero page
 * there; the next grow replaces it with the new pages in every mapping, an
 * eager grow without a fault, a lazy one at the reader's next fault.
 */
/* A child's read-only attach and mapping of the segment, or NULL. */
static const char *map_reader(const struct grow_args *ga)
{
	void *p;
	int fd;

	shmk_probe_setup();
	fd = shmk_open_simple(ga->name, SHMK_ATTACH_RDONLY, NULL);
	if (fd < 0)
		return NULL;
	p = shmk_map(fd, MAX_SIZE, PROT_READ);
	return p == MAP_FAILED ? NULL : p;
}

static int hole_reader(int idx, void *arg)
{
	struct grow_args *ga = arg;
	const char *p = map_reader(ga);
	size_t pg = page_size(), k;
	int pfd[2], mem;
	long f0;

	(void)idx;
	CHK(p);
	for (k = 0; k < ga->init / pg; k++)
		CHK_EQ(word_val(k, GROWER), *(const volatile __u64 *)(p + k * pg));

	CHK(shmk_barrier_arrive(ga->b) >= 0);
	/*
	 * Cut to ga->cut, from ga->init: loads see zeros above, SIGBUS past
	 * init; the kernel's own accesses fault there (EFAULT).
	 */
	CHK(pipe(pfd) == 0);
	CHK_EQ(-1, write(pfd[1], p + ga->cut, 1));
	CHK_EQ(EFAULT, errno);
	for (k = ga->cut / pg; k < ga->init / pg; k++) {
		CHK_EQ(0, shmk_probe_read(p + k * pg));
		CHK(page_is_zero(p + k * pg));
	}
	CHK_EQ(SIGBUS, shmk_probe_read(p + ga->init));
	CHK_EQ(SIGSEGV, shmk_probe_write((char *)p + ga->cut, 1));
	/* Nor does a forced write (ptrace's path) reach the zero page. */
	mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	CHK(mem >= 0);
	CHK_EQ(-1, pwrite(mem, "x", 1, (off_t)(uintptr_t)(p + ga->cut)));
	close(mem);
	CHK(page_is_zero(p + ga->cut));

	CHK(shmk_barrier_arrive(ga->b) >= 0);
	/* Grown back to ga->init, and the grower wrote every page. */
	f0 = minflt();
	for (k = ga->cut / pg; k < ga->init / pg; k++)
		CHK_EQ(word_val(k, GROWER),
		       *(const volatile __u64 *)(p + k * pg));
	if (!ga->lazy)
		CHK_EQ(0, minflt() - f0);
	return 0;
}

/* A child that inherited the writer's mapping (MADV_DOFORK). */
static int dofork_loader(int idx, void *arg)
{
	const char *p = arg;

	(void)idx;
	shmk_probe_setup();
	return shmk_probe_read(p) == SIGBUS ? 0 : 1;
}

/* A read-only client's load in a cut range where a writer stored. */
static int scratch_reader(int idx, void *arg)
{
	struct grow_args *ga = arg;
	const char *p = map_reader(ga);

	(void)idx;
	CHK(p);
	CHK_EQ(0, shmk_probe_read(p + ga->init - 1));
	CHK(page_is_zero(p + ga->init - page_size()));
	return 0;
}

static void hole_round(struct __test_metadata *_metadata,
		       FIXTURE_DATA(grow) *self, bool lazy)
{
	const __u64 size = MiB(4), cut = MiB(1) + 3 * page_size();
	size_t pg = page_size(), k;
	struct shmk_info info;
	pid_t child;
	char *q;

	grow_create(_metadata, self, size, MAX_SIZE, &info);
	for (k = 0; k < size / pg; k++)
		*(__u64 *)(self->p + k * pg) = word_val(k, GROWER);
	self->ga.init = size;
	self->ga.cut = cut;
	self->ga.lazy = lazy;
	ASSERT_EQ(0, shmk_fork_children(1, self->pids, &self->b, hole_reader,
					&self->ga));
	ASSERT_EQ(0, shmk_barrier_wait(&self->b, 1, 30000));
	ASSERT_EQ(0, shmk_shrink(self->fd, cut, NULL));
	ASSERT_EQ(0, shmk_barrier_release(&self->b, 1, 1));
	ASSERT_EQ(0, shmk_barrier_wait(&self->b, 1, 30000));

	ASSERT_EQ(0, shmk_grow(self->fd, size, lazy ? SHMK_GROW_LAZY : 0,
			       NULL));
	for (k = cut / pg; k < size / pg; k++) {
		ASSERT_TRUE(page_is_zero(self->p + k * pg));
		*(__u64 *)(self->p + k * pg) = word_val(k, GROWER);
	}
	ASSERT_EQ(0, shmk_barrier_release(&self->b, 1, 2));
	EXPECT_EQ(0, shmk_wait_children(1, self->pids, 30000));
	memset(self->pids, 0, sizeof(self->pids));

	/*
	 * A new cut: a first store there raises SIGBUS, a load sees zeros
	 * and maps the writers' scratch page, writable: what a store then
	 * leaves there reaches neither a read-only client nor the next grow.
	 */
	ASSERT_EQ(0, shmk_shrink(self->fd, cut, NULL));
	EXPECT_EQ(SIGBUS, shmk_probe_write(self->p + size - 1, 1));
	for (k = cut / pg; k < size / pg; k++)
		ASSERT_TRUE(page_is_zero(self->p + k * pg));
	EXPECT_EQ(0, shmk_probe_write(self->p + size - 1, 1));
	EXPECT_EQ(1, self->p[size - 1]);
	/* A writer's read-only mapping loads from the same page. */
	q = shmk_map(self->fd, MAX_SIZE, PROT_READ);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0, shmk_probe_read(q + size - 1));
	EXPECT_EQ(1, q[size - 1]);
	EXPECT_EQ(SIGSEGV, shmk_probe_write(q + size - 1, 2));
	/* A child that inherits the mapping is no client: SIGBUS there. */
	ASSERT_EQ(0, madvise(self->p, MAX_SIZE, MADV_DOFORK));
	child = shmk_fork(NULL, dofork_loader, 0, self->p + size - 1);
	ASSERT_EQ(0, madvise(self->p, MAX_SIZE, MADV_DONTFORK));
	ASSERT_LT(0, child);
	EXPECT_EQ(0, shmk_wait(child, 30000));
	ASSERT_EQ(0, shmk_fork_children(1, self->pids, NULL, scratch_reader,
					&self->ga));
	EXPECT_EQ(0, shmk_wait_children(1, self->pids, 30000));
	memset(self->pids, 0, sizeof(self->pids));
	ASSERT_EQ(0, shmk_grow(self->fd, size, lazy ? SHMK_GROW_LAZY : 0,
			       NULL));
	EXPECT_TRUE(page_is_zero(self->p + size - pg));
	EXPECT_TRUE(page_is_zero(q + size - pg));
	/* The grow cleared the writers' page: a new cut reads zeros. */
	ASSERT_EQ(0, shmk_shrink(self->fd, cut, NULL));
	EXPECT_TRUE(page_is_zero(self->p + size - pg));
	munmap(q, MAX_SIZE);
}

TEST_F_TIMEOUT(grow, cut_reads_zero, 60)
{
	hole_round(_metadata, self, false);
}

TEST_F_TIMEOUT(grow, cut_reads_zero_lazy, 60)
{
	hole_round(_metadata, self, true);
}

/* The reservation beyond the active size faults with SIGBUS. */
TEST_F(grow, beyond_size_sigbus)
{
	const __u64 size = MiB(1), max = MiB(4);
	struct shmk_resize r;
	char *p;

	self->fd = shmk_create(self->ctl, self->name, size, max);
	ASSERT_LE(0, self->fd);
	p = shmk_map(self->fd, max, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);

	EXPECT_EQ(0, shmk_probe_write(p + size - 1, 1));
	EXPECT_EQ(SIGBUS, shmk_probe_read(p + size));
	EXPECT_EQ(SIGBUS, shmk_probe_write(p + size, 1));
	EXPECT_EQ(SIGBUS, shmk_probe_read(p + size + MiB(1) + 123));
	EXPECT_EQ(SIGBUS, shmk_probe_read(p + max - 1));

	ASSERT_EQ(0, shmk_grow(self->fd, MiB(2), SHMK_GROW_LAZY, &r));
	EXPECT_EQ(0, shmk_probe_read(p + size));
	EXPECT_EQ(0, shmk_probe_write(p + MiB(2) - 1, 2));
	EXPECT_EQ(SIGBUS, shmk_probe_read(p + MiB(2)));
	EXPECT_EQ(1, p[size - 1]);
	EXPECT_EQ(2, p[MiB(2) - 1]);
	munmap(p, max);
}

/*
 * A grower SIGKILLed while a large eager grow is in flight, with the pages
 * being filled on several CPUs: the grow is undone or complete, never half
 * done. After each kill the size, the generation and the module's page
 * count agree, and the parent, still attached, sees exactly the pages
 * below the size. The kill comes later each round, so that rounds land at
 * different points of the grow.
 */
#define KILL_GROW	MiB(256)
#define KILL_ROUNDS	4

static int kill_grower(int idx, void *arg)
{
	struct grow_args *ga = arg;
	int fd = shmk_open_simple(ga->name, 0, "grower");

	(void)idx;
	if (fd < 0)
		return 1;
	if (shmk_barrier_arrive(ga->b) < 0)
		return 2;
	return shmk_grow(fd, INIT_SIZE + KILL_GROW, 0, NULL) ? 3 : 0;
}

TEST_F_TIMEOUT(grow, killed_grower, 300)
{
	const __u64 max = INIT_SIZE + KILL_GROW;
	long long pages0 = shmk_counter("pages"), pages;
	struct shmk_info info0, info;
	int round, undone = 0, status;
	__u64 gen;

	grow_create(_metadata, self, INIT_SIZE, max, &info0);
	gen = info0.generation;

	for (round = 0; round < KILL_ROUNDS; round++) {
		self->pids[0] = shmk_fork(&self->b, kill_grower, 0, &self->ga);
		ASSERT_LT(0, self->pids[0]);
		ASSERT_EQ(0, shmk_barrier_wait(&self->b, 1, 30000));
		ASSERT_EQ(0, shmk_barrier_release(&self->b, 1, 1));
		sleep_ms(20 + 60 * round);
		kill(self->pids[0], SIGKILL);
		ASSERT_EQ(self->pids[0], waitpid(self->pids[0], &status, 0));
		self->pids[0] = 0;
		/* Exited 0 when the grow was done before the signal. */
		ASSERT_TRUE((WIFSIGNALED(status) &&
			     WTERMSIG(status) == SIGKILL) ||
			    (WIFEXITED(status) && !WEXITSTATUS(status)));

		ASSERT_EQ(0, shmk_get_info(self->fd, &info));
		ASSERT_TRUE(info.size == INIT_SIZE || info.size == max)
			TH_LOG("round %d: size %llu", round,
			       (unsigned long long)info.size);
		pages = pages0 + (long long)(info.size / page_size());
		EXPECT_EQ(pages, shmk_counter("pages"));
		EXPECT_EQ(0, shmk_probe_read(self->p + info.size - 1));
		if (info.size == INIT_SIZE) {
			undone++;
			EXPECT_EQ(gen, info.generation);
			EXPECT_EQ(SIGBUS, shmk_probe_read(self->p + INIT_SIZE));
			continue;
		}
		/* Complete: zeroed, then shrunk back for the next round. */
		EXPECT_EQ(gen + 1, info.generation);
		EXPECT_EQ(0, self->p[max - 1]);
		ASSERT_EQ(0, shmk_shrink(self->fd, INIT_SIZE, NULL));
		gen += 2;
	}
	TH_LOG("%d of %d grows undone by the kill", undone, KILL_ROUNDS);
	close(self->fd);
	self->fd = -1;
	munmap(self->p, self->plen);
	self->p = MAP_FAILED;
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, self->name));
	EXPECT_EQ(pages0, shmk_counter("pages"));
}

/* No-op resizes, EFBIG, and the generation counter. */
TEST_F(grow, noop_efbig_generation)
{
	const __u64 max = MiB(2);
	size_t pg = page_size();
	struct shmk_info info;
	struct shmk_resize r;
	__u64 gen;

	self->fd = shmk_create(self->ctl, self->name, MiB(1), max);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	gen = info.generation;

	/* Grow to <= current: success, nothing changes. */
	ASSERT_EQ(0, shmk_grow(self->fd, MiB(1), 0, &r));
	EXPECT_EQ(MiB(1), r.old_size);
	EXPECT_EQ(MiB(1), r.new_size);
	EXPECT_EQ(gen, r.generation);
	ASSERT_EQ(0, shmk_grow(self->fd, pg, SHMK_GROW_LAZY, &r));
	EXPECT_EQ(MiB(1), r.new_size);
	EXPECT_EQ(gen, r.generation);
	/* Shrink to >= current: likewise. */
	ASSERT_EQ(0, shmk_shrink(self->fd, MiB(1), &r));
	EXPECT_EQ(MiB(1), r.new_size);
	EXPECT_EQ(gen, r.generation);
	ASSERT_EQ(0, shmk_shrink(self->fd, max, &r));
	EXPECT_EQ(MiB(1), r.new_size);
	EXPECT_EQ(gen, r.generation);

	/* Beyond max_size. */
	EXPECT_EQ(-EFBIG, shmk_grow(self->fd, max + pg, 0, NULL));
	EXPECT_EQ(-EFBIG, shmk_grow(self->fd, max + pg, SHMK_GROW_LAZY, NULL));
	EXPECT_EQ(-EFBIG, shmk_grow(self->fd, MiB(1024), 0, NULL));
	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	EXPECT_EQ(MiB(1), info.size);
	EXPECT_EQ(gen, info.generation);

	/* Exactly max_size is fine; every real change bumps by one. */
	ASSERT_EQ(0, shmk_grow(self->fd, max, 0, &r));
	EXPECT_EQ(gen + 1, r.generation);
	ASSERT_EQ(0, shmk_shrink(self->fd, pg, &r));
	EXPECT_EQ(gen + 2, r.generation);
	EXPECT_EQ(pg, r.new_size);
	ASSERT_EQ(0, shmk_grow(self->fd, 2 * pg, SHMK_GROW_LAZY, &r));
	EXPECT_EQ(gen + 3, r.generation);
	ASSERT_EQ(0, shmk_grow(self->fd, 3 * pg, 0, &r));
	EXPECT_EQ(gen + 4, r.generation);
	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	EXPECT_EQ(gen + 4, info.generation);
	EXPECT_EQ(3 * pg, info.size);

	/* Shrink to zero is allowed by the ABI (size <= max_size). */
	ASSERT_EQ(0, shmk_shrink(self->fd, 0, &r));
	EXPECT_EQ(0u, r.new_size);
	EXPECT_EQ(gen + 5, r.generation);
	ASSERT_EQ(0, shmk_grow(self->fd, pg, 0, &r));
	EXPECT_EQ(gen + 6, r.generation);
}

/* ---- concurrent grows and shrinks -------------------------------- */

#define NCONC		4
#define CONC_SLOT	MiB(1)		/* each process owns one MiB */
#define CONC_FLOOR	(NCONC * CONC_SLOT)
#define CONC_MAX	MiB(16)
#define CONC_SECS	3

struct conc_shared {
	unsigned long changes[NCONC];	/* resizes that changed the size */
	unsigned long ops[NCONC];
	__u32 version[NCONC];		/* final pattern version */
};

struct conc_args {
	char name[SHMK_NAME_MAX];
	struct conc_shared *sh;
};

static inline __u64 conc_val(int idx, __u32 version, size_t word)
{
	return ((__u64)idx << 56) ^ ((__u64)version << 32) ^
	       (word * 0x9e3779b1ULL);
}

static void conc_fill(__u64 *slot, int idx, __u32 version)
{
	size_t i, n = CONC_SLOT / sizeof(__u64);

	for (i = 0; i < n; i++)
		slot[i] = conc_val(idx, version, i);
}

/* Number of wrong words: all of them, or @samples random ones. */
static long conc_check(const __u64 *slot, int idx, __u32 version,
		       __u64 *rnd, int samples)
{
	size_t i, n = CONC_SLOT / sizeof(__u64);
	long bad = 0;
	int s;

	if (!samples) {
		for (i = 0; i < n; i++)
			bad += slot[i] != conc_val(idx, version, i);
		return bad;
	}
	for (s = 0; s < samples; s++) {
		i = rnd_range(rnd, n);
		bad += slot[i] != conc_val(idx, version, i);
	}
	return bad;
}

static int conc_child(int idx, void *arg)
{
	struct conc_args *ca = arg;
	size_t pg = page_size();
	__u64 rnd = (__u64)getpid() * 2654435761ULL ^ now_ns(CLOCK_MONOTONIC);
	__u64 end = mono_ms() + CONC_SECS * 1000;
	__u64 npg = CONC_MAX / pg, floor_pg = CONC_FLOOR / pg, size;
	struct shmk_resize r;
	__u32 version = 1;
	__u64 *slot;
	char *p;
	int fd, ret, sig;

	shmk_probe_setup();
	fd = shmk_open_simple(ca->name, 0, NULL);
	CHK(fd >= 0);
	p = shmk_map(fd, CONC_MAX, PROT_READ | PROT_WRITE);
	CHK(p != MAP_FAILED);
	slot = (__u64 *)(p + idx * CONC_SLOT);
	conc_fill(slot, idx, version);

	while (mono_ms() < end) {
		size = (floor_pg + rnd_range(&rnd, npg - floor_pg + 1)) * pg;
		switch (rnd_range(&rnd, 5)) {
		case 0:
		case 1:
			ret = shmk_grow(fd, size, rnd_range(&rnd, 2) ?
					SHMK_GROW_LAZY : 0, &r);
			CHK_EQ(0, ret);
			CHK(r.new_size == (r.old_size > size ? r.old_size :
					   size));
			if (r.new_size != r.old_size)
				ca->sh->changes[idx]++;
			/* Touch the top; a racing shrink may cut it. */
			if (size > CONC_FLOOR) {
				sig = shmk_probe_write(p + size - 8, 1);
				CHK(sig == 0 || sig == SIGBUS);
			}
			break;
		case 2:
		case 3:
			ret = shmk_shrink(fd, size, &r);
			CHK_EQ(0, ret);
			CHK(r.new_size == (r.old_size < size ? r.old_size :
					   size));
			CHK(r.new_size >= CONC_FLOOR);
			if (r.new_size != r.old_size)
				ca->sh->changes[idx]++;
			break;
		default:
			CHK_EQ(0, conc_check(slot, idx, version, &rnd, 0));
			conc_fill(slot, idx, ++version);
			break;
		}
		CHK_EQ(0, conc_check(slot, idx, version, &rnd, 64));
		ca->sh->ops[idx]++;
	}
	CHK_EQ(0, conc_check(slot, idx, version, &rnd, 0));
	ca->sh->version[idx] = version;
	munmap(p, CONC_MAX);
	close(fd);
	return 0;
}

TEST_F_TIMEOUT(grow, concurrent_resize, 120)
{
	struct shmk_info info0, info;
	unsigned long changes = 0, ops = 0;
	struct conc_shared *sh;
	struct conc_args ca;
	__u64 rnd = 1;
	int i;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	strcpy(ca.name, self->name);
	ca.sh = sh;

	grow_create(_metadata, self, CONC_FLOOR, CONC_MAX, &info0);

	ASSERT_EQ(0, shmk_fork_children(NCONC, self->pids, NULL, conc_child,
					&ca));
	EXPECT_EQ(0, shmk_wait_children(NCONC, self->pids,
					(CONC_SECS + 60) * 1000));
	memset(self->pids, 0, sizeof(self->pids));

	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	for (i = 0; i < NCONC; i++) {
		changes += sh->changes[i];
		ops += sh->ops[i];
		/* Verified through the parent's own mapping, too. */
		EXPECT_EQ(0, conc_check((__u64 *)(self->p + i * CONC_SLOT), i,
					sh->version[i], &rnd, 0))
			TH_LOG("slot %d", i);
	}
	TH_LOG("%lu operations, %lu size changes, generation %llu -> %llu",
	       ops, changes, (unsigned long long)info0.generation,
	       (unsigned long long)info.generation);
	EXPECT_LT(0ul, changes);
	EXPECT_EQ(info0.generation + changes, info.generation);
	EXPECT_LE(CONC_FLOOR, info.size);
	EXPECT_GE(CONC_MAX, info.size);
	EXPECT_EQ(1u, info.nr_clients);
	munmap(sh, sizeof(*sh));
}

/* ---- mmap() racing with shrink -------------------------------------- */

#define RACE_MAPPERS	3
#define RACE_FLOOR	MiB(1)
#define RACE_MAX	MiB(4)
#define RACE_SECS	3

struct race_shared {
	int stop;
	int go;			/* round the mappers may map in */
	int shrunk;		/* round whose shrink has returned */
	int done;		/* mappers finished with the current round */
	int bad;		/* accesses beyond the size that worked */
	unsigned long long bad_off;
	int rounds;
};

struct race_args {
	char name[SHMK_NAME_MAX];
	struct race_shared *sh;
};

/* Spin (yielding) until *@v >= @want or stop; false on stop/timeout. */
static bool race_wait(struct race_shared *sh, int *v, int want)
{
	__u64 end = mono_ms() + 30000;

	while (__atomic_load_n(v, __ATOMIC_ACQUIRE) < want) {
		if (__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE) ||
		    mono_ms() > end)
			return false;
		sched_yield();
	}
	return true;
}

static int race_mapper(int idx, void *arg)
{
	struct race_args *ra = arg;
	struct race_shared *sh = ra->sh;
	size_t pg = page_size(), npg = (RACE_MAX - RACE_FLOOR) / pg;
	__u64 rnd = (__u64)getpid() * 0x9e3779b97f4a7c15ULL;
	size_t probe[8], i;
	int round, fd;
	char *p;

	(void)idx;
	shmk_probe_setup();
	fd = shmk_open_simple(ra->name, 0, NULL);
	CHK(fd >= 0);
	for (round = 1; race_wait(sh, &sh->go, round); round++) {
		p = shmk_map(fd, RACE_MAX, PROT_READ | PROT_WRITE);
		CHK(p != MAP_FAILED);
		if (!race_wait(sh, &sh->shrunk, round))
			break;
		/*
		 * The segment is RACE_FLOOR long now and nobody grows it
		 * until this round ends: above, no page may be mapped (a
		 * write raises SIGBUS, a read then maps the zero page).
		 */
		probe[0] = 0;
		probe[1] = npg - 1;
		for (i = 2; i < 8; i++)
			probe[i] = rnd_range(&rnd, npg);
		for (i = 0; i < 16; i++) {
			size_t off = RACE_FLOOR + probe[i % 8] * pg;
			bool ok = i < 8 ?
				shmk_probe_write(p + off, 1) == SIGBUS :
				!shmk_probe_read(p + off) && !p[off];

			if (!ok &&
			    !__atomic_fetch_add(&sh->bad, 1, __ATOMIC_RELAXED))
				sh->bad_off = off;
		}
		CHK_EQ(0, shmk_probe_read(p + RACE_FLOOR - 1));
		munmap(p, RACE_MAX);
		__atomic_fetch_add(&sh->done, 1, __ATOMIC_RELEASE);
	}
	close(fd);
	return 0;
}

/*
 * mmap() with MAP_POPULATE racing with a shrink must leave no page of the
 * cut range mapped (the kernel would also report "Bad page cache").
 */
TEST_F_TIMEOUT(grow, mmap_shrink_race, 120)
{
	struct race_shared *sh;
	struct race_args ra;
	__u64 rnd = 99, end;
	int round;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	strcpy(ra.name, self->name);
	ra.sh = sh;
	self->fd = shmk_create(self->ctl, self->name, RACE_FLOOR, RACE_MAX);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, shmk_fork_children(RACE_MAPPERS, self->pids, NULL,
					race_mapper, &ra));

	end = mono_ms() + RACE_SECS * 1000;
	for (round = 1; mono_ms() < end; round++) {
		ASSERT_EQ(0, shmk_grow(self->fd, RACE_MAX, 0, NULL));
		__atomic_store_n(&sh->go, round, __ATOMIC_RELEASE);
		/* Land the shrink somewhere inside the mappers' mmap(). */
		if (rnd_range(&rnd, 4))
			usleep((useconds_t)rnd_range(&rnd, 3000));
		ASSERT_EQ(0, shmk_shrink(self->fd, RACE_FLOOR, NULL));
		__atomic_store_n(&sh->shrunk, round, __ATOMIC_RELEASE);
		ASSERT_TRUE(race_wait(sh, &sh->done, round * RACE_MAPPERS))
			TH_LOG("mappers stuck in round %d", round);
	}
	sh->rounds = round - 1;
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	EXPECT_EQ(0, shmk_wait_children(RACE_MAPPERS, self->pids, 30000));
	memset(self->pids, 0, sizeof(self->pids));
	TH_LOG("%d rounds", sh->rounds);
	EXPECT_EQ(0, sh->bad) TH_LOG("page at offset %#llx still mapped after the shrink",
				     sh->bad_off);
	munmap(sh, sizeof(*sh));
}

/*
 * Loads in the cut range racing with the grow that ends it: once a grow
 * has returned and the grower stamped the pages, every reader sees the
 * stamps, never the hole or scratch page a racing load mapped before the
 * grow. One read-only reader (hole page) and one writer (scratch page).
 */
struct hole_race {
	int cut;		/* 1 from a shrink's return to the grow */
	int round;		/* stamped and published by the grower */
	int acks;		/* readers done checking a round */
	int stop;
	int bad;
	int holes;		/* loads that saw a cut page */
};

static int hole_racer(int idx, void *arg)
{
	struct race_args *ra = arg;
	struct hole_race *hr = (struct hole_race *)ra->sh;
	size_t pg = page_size(), npg = (RACE_MAX - RACE_FLOOR) / pg, k;
	__u64 rnd = (__u64)(idx + 1) * 0x9e3779b97f4a7c15ULL;
	int fd, seen = 0, round;
	const char *p;

	fd = shmk_open_simple(ra->name, idx ? 0 : SHMK_ATTACH_RDONLY, NULL);
	CHK(fd >= 0);
	p = shmk_map(fd, RACE_MAX, idx ? PROT_READ | PROT_WRITE : PROT_READ);
	CHK(p != MAP_FAILED);
	while (!__atomic_load_n(&hr->stop, __ATOMIC_ACQUIRE)) {
		round = __atomic_load_n(&hr->round, __ATOMIC_ACQUIRE);
		if (round == seen) {
			const volatile __u64 *w = (const volatile __u64 *)
				(p + RACE_FLOOR + rnd_range(&rnd, npg) * pg);
			int cut = __atomic_load_n(&hr->cut, __ATOMIC_ACQUIRE);

			/* Zero, and cut all along: a hole or scratch page. */
			if (!*w && cut &&
			    __atomic_load_n(&hr->cut, __ATOMIC_ACQUIRE))
				__atomic_fetch_add(&hr->holes, 1,
						   __ATOMIC_RELAXED);
			continue;
		}
		for (k = 0; k < npg; k++) {
			const volatile __u64 *w = (const volatile __u64 *)
				(p + RACE_FLOOR + k * pg);

			if (*w != (__u64)round)
				__atomic_fetch_add(&hr->bad, 1,
						   __ATOMIC_RELAXED);
		}
		seen = round;
		__atomic_fetch_add(&hr->acks, 1, __ATOMIC_RELEASE);
	}
	return 0;
}

TEST_F_TIMEOUT(grow, hole_grow_race, 120)
{
	size_t pg = page_size(), k;
	struct hole_race *hr;
	struct race_args ra;
	__u64 end, rnd = 7;
	int round;

	hr = mmap(NULL, sizeof(*hr), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hr);
	strcpy(ra.name, self->name);
	ra.sh = (struct race_shared *)hr;
	self->fd = shmk_create(self->ctl, self->name, RACE_MAX, RACE_MAX);
	ASSERT_LE(0, self->fd);
	self->plen = RACE_MAX;
	self->p = shmk_map(self->fd, RACE_MAX, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->p);
	for (k = RACE_FLOOR / pg; k < RACE_MAX / pg; k++)
		*(__u64 *)(self->p + k * pg) = ~0ULL;
	ASSERT_EQ(0, shmk_fork_children(2, self->pids, NULL, hole_racer, &ra));

	end = mono_ms() + RACE_SECS * 1000;
	for (round = 1; mono_ms() < end; round++) {
		ASSERT_EQ(0, shmk_shrink(self->fd, RACE_FLOOR, NULL));
		__atomic_store_n(&hr->cut, 1, __ATOMIC_RELEASE);
		if (rnd_range(&rnd, 4))
			usleep((useconds_t)rnd_range(&rnd, 2000));
		__atomic_store_n(&hr->cut, 0, __ATOMIC_RELEASE);
		ASSERT_EQ(0, shmk_grow(self->fd, RACE_MAX,
				       round % 3 ? 0 : SHMK_GROW_LAZY, NULL));
		for (k = RACE_FLOOR / pg; k < RACE_MAX / pg; k++)
			*(volatile __u64 *)(self->p + k * pg) = (__u64)round;
		__atomic_store_n(&hr->round, round, __ATOMIC_RELEASE);
		while (__atomic_load_n(&hr->acks, __ATOMIC_ACQUIRE) <
		       2 * round) {
			ASSERT_LT(mono_ms(), end + 30000);
			sched_yield();
		}
	}
	__atomic_store_n(&hr->stop, 1, __ATOMIC_RELEASE);
	EXPECT_EQ(0, shmk_wait_children(2, self->pids, 30000));
	memset(self->pids, 0, sizeof(self->pids));
	TH_LOG("%d rounds, %d loads in a cut range", round - 1, hr->holes);
	EXPECT_EQ(0, hr->bad);
	EXPECT_LT(0, hr->holes);
	munmap(hr, sizeof(*hr));
}

TEST_HARNESS_MAIN
