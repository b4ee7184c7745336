// SPDX-License-Identifier: GPL-2.0
/*
 * shmk mmap rules: MAP_SHARED only, bounds, read-only clients, mremap,
 * split mappings that still follow grow and shrink, fork, and mapping at
 * the recorded base address from another process.
 */
#include "shmk_test.h"

#define SIZE	MiB(2)
#define MAX	MiB(8)

FIXTURE(mm) {
	int ctl;
	int fd;
	char name[SHMK_NAME_MAX];
	pid_t pid;
};

FIXTURE_SETUP(mm)
{
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	SHMK_NAME(self->name, "mm");
	self->fd = shmk_create(self->ctl, self->name, SIZE, MAX);
	ASSERT_LE(0, self->fd);
	shmk_probe_setup();
}

FIXTURE_TEARDOWN(mm)
{
	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	if (self->fd >= 0)
		close(self->fd);
	shmk_cleanup();
	close(self->ctl);
}

/* mmap() that must fail with @err; unmaps if it did not fail. */
static int map_err(int fd, size_t len, int prot, int flags, off_t off)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);

	if (p != MAP_FAILED) {
		munmap(p, len);
		return 0;
	}
	return errno;
}

TEST_F(mm, map_private)
{
	EXPECT_EQ(EINVAL, map_err(self->fd, SIZE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE, 0));
	EXPECT_EQ(EINVAL, map_err(self->fd, SIZE, PROT_READ, MAP_PRIVATE, 0));
	EXPECT_EQ(EINVAL, map_err(self->fd, page_size(), PROT_READ,
				  MAP_PRIVATE, (off_t)SHMK_STATUS_OFFSET));
	EXPECT_EQ(0, map_err(self->fd, SIZE, PROT_READ | PROT_WRITE,
			     MAP_SHARED, 0));
}

TEST_F(mm, bounds)
{
	size_t pg = page_size();
	char *p, *q;

	/* Offset at or beyond max_size. */
	EXPECT_EQ(EINVAL, map_err(self->fd, pg, PROT_READ, MAP_SHARED, MAX));
	EXPECT_EQ(EINVAL, map_err(self->fd, pg, PROT_READ, MAP_SHARED,
				  MAX + pg));
	EXPECT_EQ(EINVAL, map_err(self->fd, pg, PROT_READ, MAP_SHARED,
				  (off_t)1 << 40));
	EXPECT_EQ(EINVAL, map_err(self->fd, pg, PROT_READ, MAP_SHARED,
				  (off_t)(SHMK_STATUS_OFFSET - pg)));
	/* Length beyond max_size. */
	EXPECT_EQ(EINVAL, map_err(self->fd, MAX + pg, PROT_READ, MAP_SHARED,
				  0));
	EXPECT_EQ(EINVAL, map_err(self->fd, MAX, PROT_READ, MAP_SHARED, pg));
	EXPECT_EQ(EINVAL, map_err(self->fd, 2 * pg, PROT_READ, MAP_SHARED,
				  MAX - pg));

	/* Right up to the end is fine, and offsets line up. */
	p = shmk_map(self->fd, MAX, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	q = mmap(NULL, pg, PROT_READ, MAP_SHARED, self->fd, MAX - pg);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(SIGBUS, shmk_probe_read(q));
	munmap(q, pg);
	p[SIZE - pg + 5] = 42;
	q = mmap(NULL, pg, PROT_READ, MAP_SHARED, self->fd, SIZE - pg);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(42, q[5]);
	munmap(q, pg);
	munmap(p, MAX);
}

TEST_F(mm, rdonly_client)
{
	size_t pg = page_size();
	char *p, *w;
	int ro;

	ro = shmk_open(self->ctl, self->name, SHMK_ATTACH_RDONLY, NULL);
	ASSERT_LE(0, ro);
	EXPECT_EQ(EACCES, map_err(ro, SIZE, PROT_READ | PROT_WRITE,
				  MAP_SHARED, 0));
	EXPECT_EQ(EACCES, map_err(ro, SIZE, PROT_WRITE, MAP_SHARED, 0));

	w = shmk_map(self->fd, SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, w);
	w[pg] = 9;
	p = shmk_map(ro, SIZE, PROT_READ);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(9, p[pg]);
	EXPECT_EQ(-1, mprotect(p, SIZE, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-1, mprotect(p + pg, pg, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(SIGSEGV, shmk_probe_write(p + pg, 1));
	EXPECT_EQ(9, p[pg]);
	/* It still sees writes and grows. */
	w[2 * pg] = 10;
	EXPECT_EQ(10, p[2 * pg]);
	munmap(p, SIZE);
	munmap(w, SIZE);
	close(ro);
}

TEST_F(mm, mremap)
{
	size_t pg = page_size();
	struct shmk_resize r;
	char *p, *q, *res;

	p = shmk_map(self->fd, SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	EXPECT_EQ(MAP_FAILED, mremap(p, SIZE, 2 * SIZE, 0));
	EXPECT_EQ(MAP_FAILED, mremap(p, SIZE, 2 * SIZE, MREMAP_MAYMOVE));
	EXPECT_EQ(1, p[0]);

	/* Moving it whole is allowed; grows must find it at its new place. */
	res = mmap(NULL, MAX + pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	ASSERT_NE(MAP_FAILED, res);
	munmap(p, SIZE);
	p = shmk_map(self->fd, MAX, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	p[SIZE - 1] = 2;
	q = mremap(p, MAX, MAX, MREMAP_MAYMOVE | MREMAP_FIXED, res + pg);
	if (q == MAP_FAILED) {
		TH_LOG("moving mremap refused: %s", strerror(errno));
		munmap(p, MAX);
		munmap(res, MAX + pg);
		return;
	}
	EXPECT_EQ(res + pg, q);
	EXPECT_EQ(SIGSEGV, shmk_probe_read(p));
	EXPECT_EQ(2, q[SIZE - 1]);
	ASSERT_EQ(0, shmk_grow(self->fd, 2 * SIZE, 0, &r));
	EXPECT_EQ(0, shmk_probe_write(q + 2 * SIZE - 1, 3));
	EXPECT_EQ(SIGSEGV, shmk_probe_read(p + SIZE));
	ASSERT_EQ(0, shmk_shrink(self->fd, SIZE / 2, &r));
	EXPECT_EQ(SIGBUS, shmk_probe_write(q + SIZE / 2, 1));
	EXPECT_EQ(0, shmk_probe_read(q + SIZE / 2));
	EXPECT_EQ(0, q[SIZE / 2]);
	EXPECT_EQ(0, shmk_probe_read(q + SIZE / 2 - 1));
	munmap(q, MAX);
	munmap(res, pg);
}

/* Expected state of one page of the split mapping. */
enum pstate { P_RW, P_RO, P_HOLE };

static enum pstate page_state(size_t off)
{
	if ((off >= KiB(256) && off < KiB(512)) ||
	    (off >= MiB(5) && off < MiB(5) + KiB(256)))
		return P_HOLE;
	if ((off >= MiB(1) && off < MiB(1) + KiB(256)) ||
	    (off >= MiB(4) && off < MiB(4) + KiB(256)))
		return P_RO;
	return P_RW;
}

TEST_F(mm, split_mapping_grow_shrink)
{
	size_t pg = page_size(), off;
	struct shmk_info info;
	struct shmk_resize r;
	char *p, *q;
	int bad = 0;

	p = shmk_map(self->fd, MAX, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	q = shmk_map(self->fd, MAX, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, q);

	/* Holes and read-only parts, inside and beyond the active size. */
	ASSERT_EQ(0, munmap(p + KiB(256), KiB(256)));
	ASSERT_EQ(0, munmap(p + MiB(5), KiB(256)));
	ASSERT_EQ(0, mprotect(p + MiB(1), KiB(256), PROT_READ));
	ASSERT_EQ(0, mprotect(p + MiB(4), KiB(256), PROT_READ));

	ASSERT_EQ(0, shmk_grow(self->fd, MAX, 0, &r));

	for (off = 0; off < MAX; off += pg) {
		int rd = shmk_probe_read(p + off);
		int wr = shmk_probe_write(p + off + 1, (char)(off / pg));
		enum pstate ps = page_state(off);
		int want_rd = ps == P_HOLE ? SIGSEGV : 0;
		int want_wr = ps == P_RW ? 0 : SIGSEGV;

		q[off + 2] = (char)(off / pg + 1);
		if (rd != want_rd || wr != want_wr ||
		    p[0] != q[0] ||
		    (ps != P_HOLE && p[off + 2] != (char)(off / pg + 1)) ||
		    (ps == P_RW && q[off + 1] != (char)(off / pg))) {
			if (bad++ < 5)
				TH_LOG("offset %#zx: read %d, write %d, state %d",
				       off, rd, wr, ps);
		}
	}
	EXPECT_EQ(0, bad);
	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	EXPECT_EQ(1u, info.nr_clients);

	/*
	 * Shrink: cut everywhere (the cut range reads as zeroes), holes stay
	 * holes, the rest stays.
	 */
	ASSERT_EQ(0, shmk_shrink(self->fd, MiB(1), &r));
	for (off = 0; off < MAX; off += pg) {
		enum pstate ps = page_state(off);
		int want = ps == P_HOLE ? SIGSEGV : 0;
		int rd = shmk_probe_read(p + off);
		int rq = shmk_probe_read(q + off);
		char val = off < MiB(1) ? (char)(off / pg + 1) : 0;

		if (rd != want || rq || q[off + 2] != val ||
		    (ps != P_HOLE && p[off + 2] != val)) {
			if (bad++ < 5)
				TH_LOG("after shrink, offset %#zx: read %d/%d",
				       off, rd, rq);
		}
	}
	EXPECT_EQ(0, bad);

	/* And a lazy regrow reaches the split parts through faults. */
	ASSERT_EQ(0, shmk_grow(self->fd, MAX, SHMK_GROW_LAZY, &r));
	EXPECT_EQ(0, shmk_probe_write(p + MiB(6), 1));
	EXPECT_EQ(0, shmk_probe_read(p + MiB(4)));
	EXPECT_EQ(SIGSEGV, shmk_probe_write(p + MiB(4), 1));
	EXPECT_EQ(1, q[MiB(6)]);
	munmap(p, MAX);
	munmap(q, MAX);
}

struct fork_args {
	int fd;
	char *p;
};

static int fork_child(int idx, void *arg)
{
	struct fork_args *fa = arg;

	(void)idx;
	shmk_probe_setup();
	/* VM_DONTCOPY: nothing there in the child. */
	CHK_EQ(SIGSEGV, shmk_probe_read(fa->p));
	CHK_EQ(SIGSEGV, shmk_probe_write(fa->p + MiB(1), 1));
	/* The inherited client handle is not ours to map. */
	CHK(mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fa->fd, 0) ==
	    MAP_FAILED);
	CHK_EQ(EPERM, errno);
	CHK(mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fa->fd, 0) == MAP_FAILED);
	CHK_EQ(EPERM, errno);
	return 0;
}

TEST_F(mm, fork)
{
	struct fork_args fa;
	struct shmk_resize r;
	__u32 total;
	int status;
	char *p;

	p = shmk_map(self->fd, MAX, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 'x';
	fa.fd = self->fd;
	fa.p = p;

	self->pid = shmk_fork(NULL, fork_child, 0, &fa);
	ASSERT_LT(0, self->pid);
	status = shmk_wait(self->pid, 20000);
	self->pid = 0;
	EXPECT_TRUE(shmk_status_ok(-1, status));

	/* A child that touches it for real dies of SIGSEGV. */
	fflush(stdout);
	fflush(stderr);
	self->pid = fork();
	ASSERT_LE(0, self->pid);
	if (!self->pid) {
		signal(SIGSEGV, SIG_DFL);
		*(volatile char *)p = 1;
		_exit(0);
	}
	status = shmk_wait(self->pid, 20000);
	self->pid = 0;
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));

	/* The parent is unaffected, and still follows grows. */
	EXPECT_EQ('x', p[0]);
	p[1] = 'y';
	ASSERT_EQ(0, shmk_grow(self->fd, MAX, 0, &r));
	EXPECT_EQ(0, shmk_probe_write(p + MAX - 1, 'z'));
	ASSERT_EQ(0, shmk_list_clients(self->fd, NULL, 0, NULL, &total));
	EXPECT_EQ(1u, total);
	munmap(p, MAX);
}

struct base_args {
	char name[SHMK_NAME_MAX];
	__u64 base;
};

static int base_child(int idx, void *arg)
{
	struct base_args *ba = arg;
	const struct shmk_status *st;
	struct shmk_info info;
	char *p;
	int fd;

	(void)idx;
	fd = shmk_open_simple(ba->name, 0, NULL);
	CHK(fd >= 0);
	CHK(shmk_get_info(fd, &info) == 0);
	CHK_EQ(ba->base, info.base_addr);
	p = mmap((void *)(uintptr_t)info.base_addr, MAX,
		 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE,
		 fd, 0);
	CHK(p != MAP_FAILED);
	CHK_EQ(info.base_addr, (uintptr_t)p);
	/* Same data at the same address: pointers can be shared. */
	CHK_EQ(0, strcmp(p + 100, "hello from the parent"));
	CHK_EQ((uintptr_t)p + 100, *(__u64 *)p);
	strcpy(p + 200, "hello from the child");
	st = shmk_map_status(fd);
	CHK(st != NULL);
	CHK_EQ(info.base_addr, st->base_addr);
	/* Mapping elsewhere does not move the recorded base. */
	CHK(shmk_map(fd, SIZE, PROT_READ) != MAP_FAILED);
	CHK(shmk_get_info(fd, &info) == 0);
	CHK_EQ(ba->base, info.base_addr);
	return 0;
}

TEST_F(mm, base_addr_fixed)
{
	struct base_args ba;
	struct shmk_info info;
	char *p;

	p = shmk_map(self->fd, MAX, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	ASSERT_EQ((__u64)(uintptr_t)p, info.base_addr);
	strcpy(p + 100, "hello from the parent");
	*(__u64 *)p = (uintptr_t)p + 100;

	strcpy(ba.name, self->name);
	ba.base = info.base_addr;
	self->pid = shmk_fork(NULL, base_child, 0, &ba);
	ASSERT_LT(0, self->pid);
	EXPECT_TRUE(shmk_status_ok(self->pid, shmk_wait(self->pid, 20000)));
	self->pid = 0;
	EXPECT_STREQ("hello from the child", p + 200);

	/* MAP_FIXED_NOREPLACE over our own mapping is refused. */
	EXPECT_EQ(MAP_FAILED, mmap(p, MAX, PROT_READ, MAP_SHARED |
				   MAP_FIXED_NOREPLACE, self->fd, 0));
	EXPECT_EQ(EEXIST, errno);
	munmap(p, MAX);
}

TEST_HARNESS_MAIN
