// SPDX-License-Identifier: GPL-2.0
/*
 * shmk with 2 MiB pages. Segments live on the module's huge=within_size
 * tmpfs mount: every 2 MiB of the active size is one huge folio when memory
 * allows, and every peer maps it with one PMD. Checked here with real
 * processes: /proc/PID/smaps of every peer after a grow, zero peer faults,
 * the 4 KiB modes (SHMK_ATTACH_SMALL_PAGES and huge_pages=0), a shrink into
 * the middle of a huge folio, futexes across processes, mremap and fork of
 * a huge mapping, and a grow that finds no free 2 MiB block.
 *
 * The tests set huge_pages=1 themselves (and put back what they found), so
 * that they run in the suite's small-page pass too. They are skipped only
 * when the kernel has no transparent huge pages.
 */
#include <linux/futex.h>
#include <sys/syscall.h>

#include "shmk_test.h"

#define HPAGE		MiB(2)
#define NPEERS		3
#define GROW_TO		MiB(128)
#define MAX_SIZE	MiB(512)

/* A field of the smaps entry of @pid's mapping at @addr, in kB; or -1. */
static long smaps_kb(pid_t pid, const void *addr, const char *field)
{
	unsigned long lo, hi, want = (unsigned long)addr;
	size_t flen = strlen(field);
	char path[64], line[512];
	bool in = false;
	long val = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			if (in)
				break;
			in = lo == want;
			continue;
		}
		if (in && !strncmp(line, field, flen) && line[flen] == ':') {
			val = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return val;
}

static long pmd_mapped_kb(pid_t pid, const void *addr)
{
	return smaps_kb(pid, addr, "ShmemPmdMapped");
}

/* The module's huge_pages parameter (a bool: "Y" or "N"), or -1. */
static int huge_param(void)
{
	char c = 0;
	FILE *f = fopen(SHMK_PARAM_DIR "/huge_pages", "re");

	if (!f)
		return -1;
	if (fscanf(f, " %c", &c) != 1)
		c = 0;
	fclose(f);
	return c == 'Y' ? 1 : c == 'N' ? 0 : -1;
}

static bool thp_supported(void)
{
	return !access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK);
}

static __u64 huge_size(int fd)
{
	struct shmk_info info;

	if (shmk_get_info(fd, &info))
		return ~0ULL;
	return info.huge_size;
}

static __u32 seg_flags(int fd)
{
	struct shmk_info info;

	if (shmk_get_info(fd, &info))
		return ~0U;
	return info.seg_flags;
}

/* What the peers report to the parent. */
struct peer_report {
	long faults;		/* minor faults writing the grown range */
	long pmd_kb;		/* ShmemPmdMapped of its mapping after that */
	long bad;		/* pages that did not read back */
	int aligned;		/* its mapping was 2 MiB aligned */
};

struct huge_shared {
	char name[SHMK_NAME_MAX];
	__u64 from, to;		/* the grown range */
	struct peer_report rep[NPEERS];
};

/*
 * Memory compaction would undo the fragmentation that one test makes: the
 * proactive kind, and the kind kswapd and kcompactd do when fragmentation
 * events boost the watermarks. The test turns both off; the teardown puts
 * back what it found (-1: nothing to put back).
 */
#define PROACTIVE	"/proc/sys/vm/compaction_proactiveness"
#define BOOST		"/proc/sys/vm/watermark_boost_factor"
static long long saved_proactive = -1, saved_boost = -1;

FIXTURE(huge) {
	int ctl;
	long saved_param;
	struct shmk_barrier b;
	struct huge_shared *sh;
	pid_t pids[NPEERS];
};

FIXTURE_SETUP(huge)
{
	if (!thp_supported())
		SKIP(return, "the kernel has no transparent huge pages");
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	self->saved_param = huge_param();
	ASSERT_LE(0, self->saved_param);
	ASSERT_EQ(0, shmk_set_param("huge_pages", 1));
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	ASSERT_EQ(0, shmk_barrier_init(&self->b));
	shmk_probe_setup();
}

FIXTURE_TEARDOWN(huge)
{
	if (!thp_supported())
		return;
	shmk_kill_children(NPEERS, self->pids);
	shmk_barrier_destroy(&self->b);
	shmk_set_param("huge_pages", self->saved_param);
	if (saved_proactive >= 0)
		sysfs_write_ll(PROACTIVE, saved_proactive);
	if (saved_boost >= 0)
		sysfs_write_ll(BOOST, saved_boost);
	munmap(self->sh, sizeof(*self->sh));
	shmk_cleanup();
	close(self->ctl);
}

/*
 * Write a word into every page of [from, to), in the slot of writer @idx
 * (so that writers in several processes do not overwrite each other), and
 * read it back. Returns the pages that did not read back.
 */
static __attribute__((noinline))
long write_range(char *p, __u64 from, __u64 to, int idx)
{
	long bad = 0;
	__u64 off;

	for (off = from; off < to; off += page_size())
		((volatile __u64 *)(p + off))[idx] = off ^ (__u64)idx;
	for (off = from; off < to; off += page_size())
		bad += ((volatile __u64 *)(p + off))[idx] != (off ^ (__u64)idx);
	return bad;
}

struct peer_args {
	struct shmk_barrier *b;
	struct huge_shared *sh;
};

/*
 * A peer: attach, map the whole reservation at an address the kernel
 * picks, wait for the grow, then write every new page, counting faults,
 * and report what smaps says of its mapping.
 */
static int peer(int idx, void *arg)
{
	struct peer_args *a = arg;
	struct huge_shared *sh = a->sh;
	struct peer_report *r = &sh->rep[idx];
	long f0;
	char *p;
	int fd;

	fd = shmk_open_simple(sh->name, 0, NULL);
	if (fd < 0)
		return 1;
	p = shmk_map(fd, MAX_SIZE, PROT_READ | PROT_WRITE);
	if (p == MAP_FAILED)
		return 2;
	r->aligned = !((uintptr_t)p % HPAGE);
	write_range(p, 0, page_size(), idx + 1);	/* warm the code */
	if (shmk_barrier_arrive(a->b) < 0)
		return 3;
	f0 = minflt();
	r->bad = write_range(p, sh->from, sh->to, idx + 1);
	r->faults = minflt() - f0;
	r->pmd_kb = pmd_mapped_kb(getpid(), p);
	return 0;
}

/*
 * Create @name (@flags added to CREATE|EXCL) at 2 MiB, start the peers,
 * grow to @to once they are mapped, and wait for their reports. The
 * creator's own mapping is returned in *@pp.
 */
static int grow_with_peers(struct __test_metadata *_metadata,
			   FIXTURE_DATA(huge) *self, __u32 flags, __u64 to,
			   char **pp)
{
	struct peer_args pa = { &self->b, self->sh };
	struct huge_shared *sh = self->sh;
	int fd;

	SHMK_NAME(sh->name, "grow");
	fd = shmk_attach_opts(self->ctl, sh->name,
			      SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL | flags,
			      0600, HPAGE, MAX_SIZE, NULL, NULL);
	if (fd < 0)
		return fd;
	*pp = shmk_map(fd, MAX_SIZE, PROT_READ | PROT_WRITE);
	if (*pp == MAP_FAILED)
		return -errno;
	sh->from = HPAGE;
	sh->to = to;
	if (shmk_fork_children(NPEERS, self->pids, &self->b, peer, &pa))
		return -ECHILD;
	if (shmk_barrier_wait(&self->b, NPEERS, 30000))
		return -ETIMEDOUT;
	if (shmk_grow(fd, to, 0, NULL))
		return -EIO;
	if (shmk_barrier_release(&self->b, NPEERS, 0))
		return -EPIPE;
	if (shmk_wait_children(NPEERS, self->pids, 120000))
		return -ECHILD;
	memset(self->pids, 0, sizeof(self->pids));
	return fd;
}

/*
 * After a grow, every peer maps the new range with PMDs (as many as the
 * segment has huge folios), takes no fault writing it, and INFO reports
 * the huge part. mmap() without an address picked 2 MiB-aligned places.
 */
TEST_F_TIMEOUT(huge, peers_pmd_mapped, 300)
{
	__u64 huge;
	char *p;
	int fd, i;

	fd = grow_with_peers(_metadata, self, 0, GROW_TO, &p);
	ASSERT_LE(0, fd);
	ASSERT_EQ(SHMK_SEG_HUGE_PAGES, seg_flags(fd));
	ASSERT_EQ(0ULL, (uintptr_t)p % HPAGE);
	huge = huge_size(fd);
	TH_LOG("huge: %llu of %llu MiB", (unsigned long long)huge >> 20,
	       (unsigned long long)GROW_TO >> 20);
	/* A freshly booted VM has free 2 MiB blocks to spare. */
	ASSERT_LE(GROW_TO / 2, huge);
	ASSERT_GE(GROW_TO, huge);
	ASSERT_EQ((long)(huge >> 10), pmd_mapped_kb(getpid(), p));
	for (i = 0; i < NPEERS; i++) {
		struct peer_report *r = &self->sh->rep[i];

		EXPECT_EQ(1, r->aligned);
		EXPECT_EQ(0, r->bad);
		EXPECT_EQ(0, r->faults);
		EXPECT_EQ((long)(huge >> 10), r->pmd_kb);
	}
	ASSERT_EQ(0, write_range(p, 0, GROW_TO, 0));
	munmap(p, MAX_SIZE);
	close(fd);
}

/* SHMK_ATTACH_SMALL_PAGES: no huge folio, and still no peer fault. */
TEST_F_TIMEOUT(huge, small_pages_flag, 300)
{
	char *p;
	int fd, i;

	fd = grow_with_peers(_metadata, self, SHMK_ATTACH_SMALL_PAGES, GROW_TO,
			     &p);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0U, seg_flags(fd));
	ASSERT_EQ(0ULL, huge_size(fd));
	ASSERT_EQ(0, pmd_mapped_kb(getpid(), p));
	for (i = 0; i < NPEERS; i++) {
		EXPECT_EQ(0, self->sh->rep[i].bad);
		EXPECT_EQ(0, self->sh->rep[i].faults);
		EXPECT_EQ(0, self->sh->rep[i].pmd_kb);
	}
	munmap(p, MAX_SIZE);
	close(fd);
}

/*
 * huge_pages=0 makes new segments small; existing ones keep their pages.
 * SMALL_PAGES means nothing without CREATE.
 */
TEST_F(huge, module_parameter)
{
	char a[SHMK_NAME_MAX], b[SHMK_NAME_MAX];
	int fa, fb;

	SHMK_NAME(a, "a");
	SHMK_NAME(b, "b");
	fa = shmk_create(self->ctl, a, HPAGE, MAX_SIZE);
	ASSERT_LE(0, fa);
	ASSERT_EQ(0, shmk_set_param("huge_pages", 0));
	fb = shmk_create(self->ctl, b, HPAGE, MAX_SIZE);
	ASSERT_LE(0, fb);
	ASSERT_EQ(SHMK_SEG_HUGE_PAGES, seg_flags(fa));
	ASSERT_EQ(0U, seg_flags(fb));
	ASSERT_EQ(0, shmk_grow(fa, MiB(8), 0, NULL));
	ASSERT_EQ(0, shmk_grow(fb, MiB(8), 0, NULL));
	ASSERT_LT(0ULL, huge_size(fa));
	ASSERT_EQ(0ULL, huge_size(fb));
	ASSERT_EQ(-EINVAL, shmk_open(self->ctl, a, SHMK_ATTACH_SMALL_PAGES,
				     NULL));
	close(fa);
	close(fb);
}

/*
 * A shrink that cuts a huge folio in two: what lies below the cut stays,
 * in this process and in a peer; what lies past it is gone (writes raise
 * SIGBUS, reads see zeroes); grown back, it reads as zeroes.
 */
TEST_F_TIMEOUT(huge, shrink_inside_folio, 120)
{
	const __u64 cut = MiB(3) + 4 * KiB(4), full = MiB(8);
	char name[SHMK_NAME_MAX];
	char *p, *q;
	__u64 off;
	int fd, fd2;

	SHMK_NAME(name, "cut");
	fd = shmk_create(self->ctl, name, full, MAX_SIZE);
	ASSERT_LE(0, fd);
	fd2 = shmk_open(self->ctl, name, 0, NULL);
	ASSERT_LE(0, fd2);
	p = shmk_map(fd, MAX_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	q = shmk_map(fd2, MAX_SIZE, PROT_READ);
	ASSERT_NE(MAP_FAILED, q);
	ASSERT_EQ(full, huge_size(fd));
	ASSERT_EQ((long)(full >> 10), pmd_mapped_kb(getpid(), q));
	memset(p, 0x5a, full);

	ASSERT_EQ(0, shmk_shrink(fd, cut, NULL));
	/* The first folio is whole; the one the cut fell in is not. */
	ASSERT_EQ(HPAGE, huge_size(fd));
	for (off = 0; off < cut; off += 512)
		ASSERT_EQ(0x5a, q[off]);
	ASSERT_EQ(SIGBUS, shmk_probe_write(p + cut, 1));
	ASSERT_EQ(0, shmk_probe_read(p + cut));
	ASSERT_EQ(0, p[cut + 1]);
	ASSERT_EQ(0, shmk_probe_read(q + cut));
	ASSERT_EQ(0, q[MiB(4)]);
	ASSERT_EQ(SIGBUS, shmk_probe_read(q + full));

	ASSERT_EQ(0, shmk_grow(fd, full, 0, NULL));
	for (off = 0; off < full; off += 512)
		ASSERT_EQ(off < cut ? 0x5a : 0, q[off]);
	/* Past the split folio, 2 MiB pages again. */
	ASSERT_EQ(HPAGE + MiB(4), huge_size(fd));
	munmap(p, MAX_SIZE);
	munmap(q, MAX_SIZE);
	close(fd);
	close(fd2);
}

static int futex_op(__u32 *uaddr, int op, __u32 val)
{
	struct timespec ts = { .tv_sec = 10 };

	return syscall(SYS_futex, uaddr, op, val,
		       op == FUTEX_WAIT ? &ts : NULL, NULL, 0);
}

/*
 * A shared futex inside a huge folio, mapped at different addresses in two
 * processes: the waker reaches the waiter (futex keys on the shmem inode
 * and offset, whatever the page size).
 */
TEST_F_TIMEOUT(huge, futex_across_processes, 60)
{
	char name[SHMK_NAME_MAX];
	__u32 *word;
	int fd, status, i;
	pid_t pid;
	char *p;

	SHMK_NAME(name, "futex");
	fd = shmk_create(self->ctl, name, MiB(4), MAX_SIZE);
	ASSERT_LE(0, fd);
	p = shmk_map(fd, MAX_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(MiB(4), huge_size(fd));
	word = (__u32 *)(p + MiB(3) + 64);
	*word = 0;
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		__u32 *w;
		char *c;
		int cfd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		cfd = shmk_open_simple(name, 0, NULL);
		if (cfd < 0)
			_exit(1);
		/* Another address: keep the parent's out of reach. */
		if (mmap(p, MAX_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
			 MAP_FIXED_NOREPLACE, -1, 0) != p)
			_exit(5);
		c = shmk_map(cfd, MAX_SIZE, PROT_READ | PROT_WRITE);
		if (c == MAP_FAILED || c == p)
			_exit(2);
		w = (__u32 *)(c + MiB(3) + 64);
		__atomic_store_n(w, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(w, __ATOMIC_SEQ_CST) == 1)
			if (futex_op(w, FUTEX_WAIT, 1) && errno == ETIMEDOUT)
				_exit(3);
		_exit(__atomic_load_n(w, __ATOMIC_SEQ_CST) == 2 ? 0 : 4);
	}
	while (__atomic_load_n(word, __ATOMIC_SEQ_CST) != 1) {
		ASSERT_EQ(0, waitpid(pid, &status, WNOHANG));
		usleep(1000);
	}
	/* Wake until the child has been woken (it may not wait yet). */
	__atomic_store_n(word, 2, __ATOMIC_SEQ_CST);
	for (i = 0; i < 10000; i++) {
		futex_op(word, FUTEX_WAKE, 1);
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(1000);
	}
	if (i == 10000)
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	munmap(p, MAX_SIZE);
	close(fd);
}

/*
 * mremap() moves a huge mapping to another 2 MiB-aligned place: the data
 * moves with it, and a later grow reaches it there, PMD mapped. fork()
 * leaves it out of the child (the child attaches for itself).
 */
TEST_F_TIMEOUT(huge, mremap_and_fork, 120)
{
	char name[SHMK_NAME_MAX];
	char *p, *area, *q;
	int fd, status;
	long f0;
	pid_t pid;

	SHMK_NAME(name, "mremap");
	fd = shmk_create(self->ctl, name, MiB(4), MAX_SIZE);
	ASSERT_LE(0, fd);
	p = shmk_map(fd, MAX_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x11, MiB(4));
	/* A 2 MiB-aligned hole to move to. */
	area = mmap(NULL, MAX_SIZE + HPAGE, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	area = (char *)(((uintptr_t)area + HPAGE - 1) & ~(uintptr_t)(HPAGE - 1));
	q = mremap(p, MAX_SIZE, MAX_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, area);
	ASSERT_EQ(area, q);
	ASSERT_EQ(0x11, q[MiB(4) - 1]);
	ASSERT_EQ(0, shmk_grow(fd, MiB(16), 0, NULL));
	/* Fault in write_range()'s own code first: count the segment only. */
	write_range(q, 0, page_size(), 1);
	f0 = minflt();
	ASSERT_EQ(0, write_range(q, MiB(4), MiB(16), 0));
	ASSERT_EQ(0, minflt() - f0);
	ASSERT_EQ((long)(huge_size(fd) >> 10), pmd_mapped_kb(getpid(), q));
	ASSERT_LE(MiB(12), huge_size(fd));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(shmk_probe_read(q) == SIGSEGV ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	munmap(q, MAX_SIZE);
	close(fd);
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/*
 * MADV_COLLAPSE installs a PMD itself (set_huge_pmd()), without the fault
 * path that refuses a kicked client or a process that is not the client.
 * Segment mappings are VM_DONTEXPAND, which keeps khugepaged and
 * MADV_COLLAPSE off them: a child that inherited a mapping through
 * MADV_DOFORK cannot map the segment that way, and neither can the client.
 */
TEST_F_TIMEOUT(huge, collapse_refused, 60)
{
	char name[SHMK_NAME_MAX];
	int fd, status;
	pid_t pid;
	char *p;

	SHMK_NAME(name, "collapse");
	fd = shmk_create(self->ctl, name, MiB(4), MAX_SIZE);
	ASSERT_LE(0, fd);
	p = shmk_map(fd, MAX_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x42, MiB(4));
	ASSERT_EQ(-1, madvise(p, MiB(4), MADV_COLLAPSE));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, madvise(p, MAX_SIZE, MADV_DOFORK));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int ret = madvise(p, MiB(4), MADV_COLLAPSE);

		if (ret != -1 || errno != EINVAL)
			_exit(1);
		if (pmd_mapped_kb(getpid(), p) != 0)
			_exit(2);
		_exit(shmk_probe_read(p) == SIGBUS ? 0 : 3);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	munmap(p, MAX_SIZE);
	close(fd);
}

/* A value from /proc/meminfo or /proc/sys/vm, in KiB; -1 if absent. */
static long meminfo_kb(const char *key)
{
	char line[128];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) &&
		    line[strlen(key)] == ':') {
			v = strtol(line + strlen(key) + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * A child that leaves every free 2 MiB block split in two: it takes free
 * memory in 4 KiB pages, all but a reserve that keeps the kernel above its
 * watermarks (no reclaim, no OOM killer), then gives back every other
 * page. Says how much it fragmented on @ready, then waits to be
 * killed. Returns its pid, or -1.
 */
static pid_t fragmenter(int ready)
{
	long free_kb = meminfo_kb("MemFree");
	long min_kb = sysfs_read_ll("/proc/sys/vm/min_free_kbytes");
	pid_t pid;

	if (free_kb < 0 || min_kb < 0)
		return -1;
	pid = fork();
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	{
		/*
		 * The kernel keeps min_free_kbytes (and a quarter more, its
		 * low and high watermarks) for itself; 64 MiB more keep the
		 * kernel's own allocations meanwhile (a debug kernel makes
		 * many) from reaching them.
		 */
		size_t len = ((size_t)free_kb - (size_t)min_kb * 5 / 4) * 1024 -
			     MiB(64);
		size_t off;
		char *m;

		if ((long)len <= 0)
			_exit(1);
		m = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED)
			_exit(2);
		madvise(m, len, MADV_NOHUGEPAGE);
		for (off = 0; off < len; off += page_size())
			m[off] = 1;
		for (off = 0; off < len; off += 2 * page_size())
			madvise(m + off, page_size(), MADV_DONTNEED);
		if (write(ready, &len, sizeof(len)) != sizeof(len))
			_exit(3);
		for (;;)
			pause();
	}
}

/*
 * With free memory in 4 KiB pieces, a grow takes small pages where it
 * finds no 2 MiB block, and still succeeds and maps every page in every
 * peer.
 */
TEST_F_TIMEOUT(huge, fragmented_memory_falls_back, 600)
{
	size_t len = 0;
	int fd, i, pfd[2], status;
	long long val;
	pid_t frag;
	__u64 huge;
	char *p;

	val = sysfs_read_ll(PROACTIVE);
	if (val > 0 && !sysfs_write_ll(PROACTIVE, 0))
		saved_proactive = val;
	val = sysfs_read_ll(BOOST);
	if (val > 0 && !sysfs_write_ll(BOOST, 0))
		saved_boost = val;
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	frag = fragmenter(pfd[1]);
	ASSERT_LT(0, frag);
	close(pfd[1]);
	ASSERT_EQ((ssize_t)sizeof(len), read(pfd[0], &len, sizeof(len)))
		TH_LOG("the fragmenter died: %d",
		       waitpid(frag, &status, 0) == frag ? status : -1);
	close(pfd[0]);
	fd = grow_with_peers(_metadata, self, 0, MAX_SIZE, &p);
	kill(frag, SIGKILL);
	waitpid(frag, &status, 0);
	ASSERT_LE(0, fd);
	huge = huge_size(fd);
	TH_LOG("huge: %llu of %llu MiB with %zu MiB fragmented",
	       (unsigned long long)huge >> 20,
	       (unsigned long long)MAX_SIZE >> 20, len >> 20);
	/*
	 * 2 MiB pages came only from what the fragmenter left whole (the
	 * kernel's reserve and 64 MiB, about 120 MiB in the VM) and from
	 * what compaction made meanwhile: most of the grow is 4 KiB pages.
	 */
	ASSERT_GT(MAX_SIZE / 2, huge);
	/*
	 * Every page was mapped in every peer. Here, unlike on an idle
	 * machine, kcompactd may migrate a page between the grow and the
	 * peer's write, which costs that peer a fault: a handful at most.
	 */
	for (i = 0; i < NPEERS; i++) {
		EXPECT_EQ(0, self->sh->rep[i].bad);
		EXPECT_GE(16, self->sh->rep[i].faults);
		EXPECT_GE((long)(huge >> 10), self->sh->rep[i].pmd_kb);
	}
	ASSERT_EQ(0, write_range(p, 0, MAX_SIZE, 0));
	munmap(p, MAX_SIZE);
	close(fd);
}

TEST_HARNESS_MAIN
