// SPDX-License-Identifier: GPL-2.0
/*
 * shmk security: what a local user can and cannot do through a client
 * handle and its mappings, who pays for what, and what each namespace sees.
 * Each test is the regression test of one finding of the security review.
 */
#include <fcntl.h>
#include <grp.h>
#include <sched.h>

#include "shmk_test.h"

#define SIZE	MiB(1)
#define MAX	MiB(4)
#define NOBODY	65534

FIXTURE(sec) {
	int ctl;
	int fd;
	char name[SHMK_NAME_MAX];
	pid_t pid;
};

FIXTURE_SETUP(sec)
{
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	SHMK_NAME(self->name, "sec");
	self->fd = shmk_attach_opts(self->ctl, self->name,
				    SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL,
				    0644, SIZE, MAX, "owner", NULL);
	ASSERT_LE(0, self->fd);
	shmk_probe_setup();
}

FIXTURE_TEARDOWN(sec)
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

/* Drop to nobody; 0 or -errno. */
static int become_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return -errno;
	return 0;
}

/* -errno of a call that returns -1 and sets errno, or 0 when it worked. */
#define ERR(call) ((call) < 0 ? -errno : 0)

/*
 * Every generic file operation on a handle fails cleanly: the handle is not
 * the segment's shmem file. fcntl(F_GET_SEALS) used to read, and
 * F_ADD_SEALS to write, a word beside the system-wide anon inode.
 */
static int handle_ops(int fd, bool rdonly)
{
	char buf[64] = { 0 };
	int p[2], tmp;
	loff_t off = 0;

	CHK_EQ(rdonly ? O_RDONLY : O_RDWR, fcntl(fd, F_GETFL) & O_ACCMODE);
	CHK_EQ(-EINVAL, ERR(fcntl(fd, F_GET_SEALS)));
	CHK_EQ(rdonly ? -EPERM : -EINVAL,
	       ERR(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW |
			 F_SEAL_SHRINK | F_SEAL_SEAL)));
	/* fallocate() wants a writable descriptor first, then a regular file. */
	CHK_EQ(rdonly ? -EBADF : -ENODEV,
	       ERR(fallocate(fd, 0, 0, page_size())));
	CHK_EQ(rdonly ? -EBADF : -ENODEV,
	       ERR(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			     page_size())));
	CHK_EQ(-EINVAL, ERR(readahead(fd, 0, page_size())));
	CHK_EQ(ESPIPE, posix_fadvise(fd, 0, page_size(), POSIX_FADV_WILLNEED));
	CHK_EQ(ESPIPE, posix_fadvise(fd, 0, page_size(), POSIX_FADV_DONTNEED));
	CHK_EQ(-EINVAL, ERR(read(fd, buf, sizeof(buf))));
	CHK_EQ(-ESPIPE, ERR(pread(fd, buf, sizeof(buf), 0)));
	CHK_EQ(rdonly ? -EBADF : -EINVAL, ERR(write(fd, buf, sizeof(buf))));
	CHK_EQ(-EINVAL, ERR(ftruncate(fd, 2 * SIZE)));
	CHK_EQ(-EINVAL, ERR(fsync(fd)));
	CHK_EQ(-EINVAL, ERR(fdatasync(fd)));
	CHK_EQ(-ESPIPE, ERR(sync_file_range(fd, 0, page_size(),
					    SYNC_FILE_RANGE_WRITE)));
	CHK(pipe(p) == 0);
	CHK_EQ(-EINVAL, ERR(splice(fd, &off, p[1], NULL, page_size(), 0)));
	CHK(write(p[1], buf, sizeof(buf)) == sizeof(buf));
	CHK(ERR(splice(p[0], NULL, fd, &off, sizeof(buf), 0)) < 0);
	close(p[0]);
	close(p[1]);
	tmp = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	CHK(tmp >= 0);
	CHK(ERR(copy_file_range(fd, NULL, tmp, NULL, page_size(), 0)) < 0);
	CHK_EQ(0, lseek(tmp, 0, SEEK_END));
	CHK(ERR(copy_file_range(tmp, NULL, fd, NULL, page_size(), 0)) < 0);
	close(tmp);
	return 0;
}

static int reader_ops(int idx, void *arg)
{
	const char *name = arg;
	int ctl, fd;
	char *p;

	(void)idx;
	CHK_EQ(0, become_nobody());
	ctl = shmk_open_ctl();
	CHK(ctl >= 0);
	fd = shmk_open(ctl, name, SHMK_ATTACH_RDONLY, NULL);
	CHK(fd >= 0);
	CHK_EQ(0, handle_ops(fd, true));
	/* The handle is O_RDONLY: no writable mapping, no mprotect to one. */
	CHK(mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) ==
	    MAP_FAILED && errno == EACCES);
	p = shmk_map(fd, MAX, PROT_READ);
	CHK(p != MAP_FAILED);
	CHK_EQ(0x5a, p[100]);
	CHK_EQ(-EACCES, ERR(mprotect(p, SIZE, PROT_READ | PROT_WRITE)));
	CHK_EQ(SIGSEGV, shmk_probe_write(p + 100, 1));
	return 0;
}

TEST_F(sec, handle_file_ops)
{
	char *p;

	p = shmk_map(self->fd, MAX, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	p[100] = 0x5a;
	ASSERT_EQ(0, handle_ops(self->fd, false));
	/* A read-only attacher running as nobody, the review's attacker. */
	self->pid = shmk_fork(NULL, reader_ops, 0, self->name);
	ASSERT_LT(0, self->pid);
	ASSERT_TRUE(shmk_status_ok(self->pid, shmk_wait(self->pid, 30000)));
	self->pid = 0;
	/* Nothing was sealed: the owner maps it writable again. */
	munmap(p, MAX);
	p = shmk_map(self->fd, MAX, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0x5a, p[100]);
	p[101] = 1;
	EXPECT_EQ(0, shmk_grow(self->fd, 2 * SIZE, 0, NULL));
	p[2 * SIZE - 1] = 2;
	munmap(p, MAX);
}

/*
 * remap_file_pages() maps the VMA's file again, which for a segment mapping
 * is the segment's shmem file: it must not give a plain shmem mapping that
 * escapes kicks, fork rules and the segment's lifetime and charges.
 */
TEST_F(sec, remap_file_pages_refused)
{
	size_t pg = page_size();
	char *p = shmk_map(self->fd, MAX, PROT_READ | PROT_WRITE);

	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	p[2 * pg] = 2;
	EXPECT_EQ(-EPERM, ERR(remap_file_pages(p, pg, 0, 1, 0)));
	EXPECT_EQ(-EPERM, ERR(remap_file_pages(p + pg, pg, 0, 0, 0)));
	/*
	 * As for any MAP_FIXED mmap() that fails, the pages it was to
	 * replace are unmapped; nothing else of the mapping changed.
	 */
	EXPECT_EQ(SIGSEGV, shmk_probe_read(p));
	EXPECT_EQ(SIGSEGV, shmk_probe_read(p + pg));
	EXPECT_EQ(2, p[2 * pg]);
	EXPECT_EQ(0, shmk_grow(self->fd, 2 * SIZE, 0, NULL));
	p[2 * SIZE - 1] = 3;
	munmap(p, MAX);
}

/* msync() works as on memfd and POSIX shm. */
TEST_F(sec, msync)
{
	char *p = shmk_map(self->fd, MAX, PROT_READ | PROT_WRITE);

	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	EXPECT_EQ(0, msync(p, SIZE, MS_SYNC));
	EXPECT_EQ(0, msync(p, SIZE, MS_ASYNC));
	EXPECT_EQ(0, msync(p, SIZE, MS_INVALIDATE));
	EXPECT_EQ(1, p[0]);
	munmap(p, MAX);
}

struct dofork {
	char *p;
	const struct shmk_status *st;
	int fd;
};

static int dofork_child(int idx, void *arg)
{
	struct dofork *d = arg;

	(void)idx;
	/* Inherited despite VM_DONTCOPY, but the child is not a client. */
	CHK_EQ(SIGBUS, shmk_probe_read(d->p));
	CHK_EQ(SIGBUS, shmk_probe_write(d->p + SIZE - 1, 1));
	CHK_EQ(SIGBUS, shmk_probe_read(d->p + SIZE));
	CHK_EQ(SIGBUS, shmk_probe_read(d->st));
	/* Nor can it make itself one through the inherited handle. */
	CHK(mmap(NULL, SIZE, PROT_READ, MAP_SHARED, d->fd, 0) == MAP_FAILED);
	CHK_EQ(EPERM, errno);
	return 0;
}

/*
 * madvise(MADV_DOFORK) clears VM_DONTCOPY: a child then inherits the
 * mapping, but faults in it raise SIGBUS, before and after a grow.
 */
TEST_F(sec, dofork_child_is_not_a_client)
{
	struct dofork d = { .fd = self->fd };

	d.p = shmk_map(self->fd, MAX, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, d.p);
	memset(d.p, 7, SIZE);
	ASSERT_EQ(0, madvise(d.p, MAX, MADV_DOFORK));
	d.st = shmk_map_status(self->fd);
	ASSERT_NE(NULL, d.st);
	ASSERT_EQ(0, madvise((void *)d.st, page_size(), MADV_DOFORK));
	ASSERT_EQ(0, shmk_grow(self->fd, 2 * SIZE, 0, NULL));
	self->pid = shmk_fork(NULL, dofork_child, 0, &d);
	ASSERT_LT(0, self->pid);
	ASSERT_TRUE(shmk_status_ok(self->pid, shmk_wait(self->pid, 30000)));
	self->pid = 0;
	EXPECT_EQ(7, d.p[SIZE - 1]);
	munmap(d.p, MAX);
}

/* Unevictable: kB, from /proc/meminfo. */
static long long meminfo(const char *key)
{
	char line[256];
	long long v = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = atoll(line + n + 1);
			break;
		}
	fclose(f);
	return v;
}

/*
 * Segment pages are ordinary evictable shmem pages, charged to memory
 * cgroups; they used to be unevictable with no RLIMIT_MEMLOCK accounting.
 */
TEST_F(sec, pages_are_evictable)
{
	long long before, after;
	char name[SHMK_NAME_MAX];
	int fd;

	SHMK_NAME(name, "big");
	before = meminfo("Unevictable");
	ASSERT_LE(0, before);
	fd = shmk_create(self->ctl, name, MiB(64), MiB(64));
	ASSERT_LE(0, fd);
	after = meminfo("Unevictable");
	TH_LOG("Unevictable: %lld kB -> %lld kB", before, after);
	EXPECT_GT(before + 16 * 1024, after);
	close(fd);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name));
}

struct limits_args {
	char prefix[24];
	int made;
	int err;
};

/* As nobody: create segments until the per-user limit says no. */
static int nobody_creates(int idx, void *arg)
{
	struct limits_args *la = arg;
	char name[SHMK_NAME_MAX];
	int ctl, fd, i;

	(void)idx;
	CHK_EQ(0, become_nobody());
	ctl = shmk_open_ctl();
	CHK(ctl >= 0);
	for (i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "%s-%d", la->prefix, i);
		fd = shmk_attach_opts(ctl, name, SHMK_ATTACH_CREATE |
				      SHMK_ATTACH_EXCL, 0600, page_size(),
				      MiB(2), "", NULL);
		if (fd < 0) {
			la->err = fd;
			break;
		}
		close(fd);	/* persistent: it counts until unlinked */
		la->made++;
	}
	/* Pages too: 64 pages allowed, in all of nobody's segments. */
	snprintf(name, sizeof(name), "%s-%d", la->prefix, 0);
	fd = shmk_open(ctl, name, 0, NULL);
	CHK(fd >= 0);
	CHK_EQ(0, shmk_grow(fd, 60 * page_size(), 0, NULL));
	CHK_EQ(-ENOSPC, shmk_grow(fd, 80 * page_size(), 0, NULL));
	CHK_EQ(60 * (long long)page_size(), shmk_size(fd));
	close(fd);
	for (i = 0; i < la->made; i++) {
		snprintf(name, sizeof(name), "%s-%d", la->prefix, i);
		CHK_EQ(0, shmk_unlink_name(ctl, name));
	}
	return 0;
}

/*
 * Segments and pages count against the user who created them: nobody
 * cannot exhaust the module's segments and lock everyone else out.
 */
TEST_F(sec, per_user_limits)
{
	long long segs = shmk_param("max_segments_per_user");
	long long pages = shmk_param("max_pages_per_user");
	struct limits_args *la;
	char name[SHMK_NAME_MAX];
	int fd;

	ASSERT_LT(0, segs);
	ASSERT_LT(0, pages);
	la = mmap(NULL, sizeof(*la), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, la);
	snprintf(la->prefix, sizeof(la->prefix), "%d-lim", getpid());
	ASSERT_EQ(0, shmk_set_param("max_segments_per_user", 4));
	ASSERT_EQ(0, shmk_set_param("max_pages_per_user", 64));
	self->pid = shmk_fork(NULL, nobody_creates, 0, la);
	ASSERT_LT(0, self->pid);
	EXPECT_TRUE(shmk_status_ok(self->pid, shmk_wait(self->pid, 30000)));
	self->pid = 0;
	/* Root (CAP_SYS_RESOURCE) is not held to them. */
	SHMK_NAME(name, "root");
	fd = shmk_create(self->ctl, name, MiB(1), MiB(1));
	shmk_set_param("max_segments_per_user", segs);
	shmk_set_param("max_pages_per_user", pages);
	EXPECT_EQ(4, la->made);
	EXPECT_EQ(-ENOSPC, la->err);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name));
	munmap(la, sizeof(*la));
}

static int other_ipc_ns(int idx, void *arg)
{
	const char *name = arg;
	struct shmk_info info;
	int ctl, fd;

	(void)idx;
	CHK_EQ(0, unshare(CLONE_NEWIPC));
	ctl = shmk_open_ctl();
	CHK(ctl >= 0);
	CHK_EQ(-ENOENT, shmk_open(ctl, name, 0, NULL));
	CHK_EQ(-ENOENT, shmk_unlink_name(ctl, name));
	/* The same name, a segment of its own. */
	fd = shmk_create(ctl, name, page_size(), page_size());
	CHK(fd >= 0);
	CHK_EQ(0, shmk_get_info(fd, &info));
	CHK_EQ((__u64)page_size(), info.size);
	close(fd);
	CHK_EQ(0, shmk_unlink_name(ctl, name));
	return 0;
}

/* Names are scoped by IPC namespace, as SysV shared memory is. */
TEST_F(sec, ipc_namespace)
{
	struct shmk_info info;
	int fd;

	self->pid = shmk_fork(NULL, other_ipc_ns, 0, self->name);
	ASSERT_LT(0, self->pid);
	ASSERT_TRUE(shmk_status_ok(self->pid, shmk_wait(self->pid, 30000)));
	self->pid = 0;
	fd = shmk_open(self->ctl, self->name, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, shmk_get_info(fd, &info));
	EXPECT_EQ((__u64)SIZE, info.size);
	close(fd);
}

struct pidns_args {
	char name[SHMK_NAME_MAX];
	pid_t inner;		/* the inner client's pid, seen from outside */
	int ready, done;
};

/* pid 1 of a new pid namespace: attach, check its view, wait. */
static int pidns_inner(struct pidns_args *pa)
{
	const struct shmk_status *st;
	struct shmk_status snap;
	unsigned int i, mine = 0, outer = 0;
	int ctl, fd;

	CHK_EQ(1, getpid());
	ctl = shmk_open_ctl();
	CHK(ctl >= 0);
	fd = shmk_attach_opts(ctl, pa->name, 0, 0, 0, 0, "inner", NULL);
	CHK(fd >= 0);
	st = shmk_map_status(fd);
	CHK(st != NULL);
	CHK(shmk_status_read(st, &snap, 5000) >= 0);
	CHK_EQ(2u, snap.table_len);
	for (i = 0; i < snap.table_len; i++) {
		if (!strcmp(snap.clients[i].name, "inner")) {
			CHK_EQ(1, snap.clients[i].pid);
			mine++;
		} else {
			/* The owner is outside this namespace. */
			CHK_EQ(0, snap.clients[i].pid);
			outer++;
		}
	}
	CHK_EQ(1u, mine);
	CHK_EQ(1u, outer);
	__atomic_store_n(&pa->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&pa->done, __ATOMIC_ACQUIRE))
		sleep_ms(5);
	return 0;
}

static int pidns_child(int idx, void *arg)
{
	struct pidns_args *pa = arg;
	int status;
	pid_t pid;

	(void)idx;
	CHK_EQ(0, unshare(CLONE_NEWPID));
	pid = fork();
	CHK(pid >= 0);
	if (!pid)
		_exit(pidns_inner(pa));
	__atomic_store_n(&pa->inner, pid, __ATOMIC_RELEASE);
	CHK(waitpid(pid, &status, 0) == pid);
	CHK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return 0;
}

/* The status page shows pids in the namespace of the process mapping it. */
TEST_F(sec, status_page_pid_namespace)
{
	const struct shmk_status *st;
	struct shmk_status snap;
	struct pidns_args *pa;
	unsigned int i, found = 0;
	__u64 end;

	st = shmk_map_status(self->fd);
	ASSERT_NE(NULL, st);
	pa = mmap(NULL, sizeof(*pa), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, pa);
	memcpy(pa->name, self->name, sizeof(pa->name));
	self->pid = shmk_fork(NULL, pidns_child, 0, pa);
	ASSERT_LT(0, self->pid);
	end = mono_ms() + 10000;
	while ((!__atomic_load_n(&pa->ready, __ATOMIC_ACQUIRE) ||
		!__atomic_load_n(&pa->inner, __ATOMIC_ACQUIRE)) &&
	       mono_ms() < end)
		sleep_ms(5);
	ASSERT_TRUE(pa->ready);
	ASSERT_LT(0, pa->inner);
	ASSERT_LE(0, shmk_status_read(st, &snap, 5000));
	ASSERT_EQ(2u, snap.table_len);
	for (i = 0; i < snap.table_len; i++) {
		if (!strcmp(snap.clients[i].name, "inner")) {
			EXPECT_EQ(pa->inner, snap.clients[i].pid);
			found++;
		} else {
			EXPECT_EQ(getpid(), snap.clients[i].pid);
		}
	}
	EXPECT_EQ(1u, found);
	__atomic_store_n(&pa->done, 1, __ATOMIC_RELEASE);
	ASSERT_TRUE(shmk_status_ok(self->pid, shmk_wait(self->pid, 30000)));
	self->pid = 0;
	munmap(pa, sizeof(*pa));
}

#define STALL_REGION	MiB(512)
#define STALL_GROWS	40

struct stall_args {
	char name[SHMK_NAME_MAX];
	int attached;		/* the peer is a client, idle */
	int busy;		/* set by the test: start the mprotect() loop */
	int ready;		/* the loop runs; mprotect_ns is measured */
	int stop;
	__u64 mprotect_ns;	/* median time of one mprotect() */
};

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/*
 * A peer whose mmap lock is busy: once told to, it keeps changing the
 * protection of a large populated region, which holds its mmap lock for
 * writing each time.
 */
static int stall_peer(int idx, void *arg)
{
	struct stall_args *sa = arg;
	__u64 t[64];
	char *seg, *r;
	int fd, i = 0;

	(void)idx;
	fd = shmk_open_simple(sa->name, 0, "staller");
	CHK(fd >= 0);
	seg = shmk_map(fd, MAX, PROT_READ | PROT_WRITE);
	CHK(seg != MAP_FAILED);
	/* 4 KiB pages, so that each mprotect() walks 131072 PTEs. */
	r = mmap(NULL, STALL_REGION, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHK(r != MAP_FAILED);
	CHK_EQ(0, madvise(r, STALL_REGION, MADV_NOHUGEPAGE));
	memset(r, 1, STALL_REGION);
	__atomic_store_n(&sa->attached, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&sa->busy, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	for (;;) {
		__u64 t0 = now_ns(CLOCK_MONOTONIC);

		CHK_EQ(0, mprotect(r, STALL_REGION, (i & 1) ? PROT_READ :
				   PROT_READ | PROT_WRITE));
		if (i < 64)
			t[i] = now_ns(CLOCK_MONOTONIC) - t0;
		if (++i == 64) {
			qsort(t, 64, sizeof(t[0]), cmp_u64);
			sa->mprotect_ns = t[32];
			__atomic_store_n(&sa->ready, 1, __ATOMIC_RELEASE);
		}
		if (__atomic_load_n(&sa->stop, __ATOMIC_ACQUIRE))
			return 0;
	}
}

/* Median time of STALL_GROWS grows of 32 KiB, from @size on. */
static __u64 stall_grows(int fd, __u64 size)
{
	__u64 t[STALL_GROWS];
	int i;

	for (i = 0; i < STALL_GROWS; i++) {
		__u64 t0 = now_ns(CLOCK_MONOTONIC);

		if (shmk_grow(fd, size + (i + 1) * KiB(32), 0, NULL))
			return ~0ULL;
		t[i] = now_ns(CLOCK_MONOTONIC) - t0;
		sleep_ms(3);
	}
	qsort(t, STALL_GROWS, sizeof(t[0]), cmp_u64);
	return t[STALL_GROWS / 2];
}

static bool stall_wait(int *flag)
{
	__u64 end = mono_ms() + 60000;

	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE) && mono_ms() < end)
		sleep_ms(10);
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

/*
 * A grow does not wait for a peer's mmap lock: a peer busy changing its
 * mappings faults the new pages in later instead. Grows used to wait for
 * every such peer, under the segment lock: about half an mprotect() each.
 */
TEST_F_TIMEOUT(sec, busy_peer_does_not_stall_grow, 300)
{
	struct stall_args *sa;
	__u64 idle, busy;

	sa = mmap(NULL, sizeof(*sa), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sa);
	memcpy(sa->name, self->name, sizeof(sa->name));
	self->pid = shmk_fork(NULL, stall_peer, 0, sa);
	ASSERT_LT(0, self->pid);
	ASSERT_TRUE(stall_wait(&sa->attached));
	idle = stall_grows(self->fd, SIZE);
	__atomic_store_n(&sa->busy, 1, __ATOMIC_RELEASE);
	ASSERT_TRUE(stall_wait(&sa->ready));
	busy = stall_grows(self->fd, SIZE + STALL_GROWS * KiB(32));
	__atomic_store_n(&sa->stop, 1, __ATOMIC_RELEASE);
	ASSERT_TRUE(shmk_status_ok(self->pid, shmk_wait(self->pid, 60000)));
	self->pid = 0;
	TH_LOG("mprotect of %llu MiB: %llu us; 32 KiB grow: %llu us with the peer idle, %llu us with it busy",
	       (unsigned long long)(STALL_REGION >> 20),
	       (unsigned long long)sa->mprotect_ns / 1000,
	       (unsigned long long)idle / 1000,
	       (unsigned long long)busy / 1000);
	ASSERT_NE(~0ULL, idle);
	ASSERT_NE(~0ULL, busy);
	EXPECT_GT(idle + sa->mprotect_ns / 4, busy);
	munmap(sa, sizeof(*sa));
}

#define NS_CLIENTS	18

struct many_ns {
	char name[SHMK_NAME_MAX];
	int attached;		/* clients that attached and looked */
	int own_pid_1;		/* those whose status page shows them as pid 1 */
	int own_pid_0;		/* those shown as pid 0 (the shared view) */
	int stop;
};

/* pid 1 of a pid namespace of its own: attach, find itself in the table. */
static int many_ns_inner(struct many_ns *m, int idx)
{
	const struct shmk_status *st;
	struct shmk_status snap;
	char cname[SHMK_CLIENT_NAME_MAX];
	unsigned int i;
	int fd;

	snprintf(cname, sizeof(cname), "ns-%d", idx);
	fd = shmk_open_simple(m->name, SHMK_ATTACH_RDONLY, cname);
	CHK(fd >= 0);
	st = shmk_map_status(fd);
	CHK(st != NULL);
	__atomic_fetch_add(&m->attached, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&m->attached, __ATOMIC_ACQUIRE) < NS_CLIENTS)
		sleep_ms(5);
	CHK(shmk_status_read(st, &snap, 5000) >= 0);
	for (i = 0; i < snap.table_len; i++) {
		if (strcmp(snap.clients[i].name, cname))
			continue;
		if (snap.clients[i].pid == 1)
			__atomic_fetch_add(&m->own_pid_1, 1, __ATOMIC_ACQ_REL);
		else if (snap.clients[i].pid == 0)
			__atomic_fetch_add(&m->own_pid_0, 1, __ATOMIC_ACQ_REL);
	}
	while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE))
		sleep_ms(5);
	return 0;
}

static int many_ns_child(int idx, void *arg)
{
	int status;
	pid_t pid;

	CHK_EQ(0, unshare(CLONE_NEWPID));
	pid = fork();
	CHK(pid >= 0);
	if (!pid)
		_exit(many_ns_inner(arg, idx));
	CHK(waitpid(pid, &status, 0) == pid);
	CHK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return 0;
}

/*
 * A segment keeps a status page per pid namespace for 16 of them; clients
 * from further namespaces share one that shows every pid as 0, rather than
 * being refused: attaching from many namespaces locks nobody out.
 */
TEST_F_TIMEOUT(sec, status_pages_of_many_namespaces, 120)
{
	pid_t pids[NS_CLIENTS];
	struct many_ns *m;
	__u64 end;

	m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	memcpy(m->name, self->name, sizeof(m->name));
	ASSERT_EQ(0, shmk_fork_children(NS_CLIENTS, pids, NULL, many_ns_child,
					m));
	end = mono_ms() + 60000;
	while (__atomic_load_n(&m->own_pid_1, __ATOMIC_ACQUIRE) +
	       __atomic_load_n(&m->own_pid_0, __ATOMIC_ACQUIRE) < NS_CLIENTS &&
	       mono_ms() < end)
		sleep_ms(10);
	__atomic_store_n(&m->stop, 1, __ATOMIC_RELEASE);
	EXPECT_EQ(0, shmk_wait_children(NS_CLIENTS, pids, 30000));
	/* The creator's namespace has the first view. */
	EXPECT_EQ(NS_CLIENTS, m->attached);
	EXPECT_EQ(15, m->own_pid_1);
	EXPECT_EQ(NS_CLIENTS - 15, m->own_pid_0);
	munmap(m, sizeof(*m));
}

/* Busy (user + system + irq) time of @cpu, in clock ticks, from /proc/stat. */
static long long cpu_busy(int cpu)
{
	long long usr, nic, sys, idle, iow, irq, sirq;
	char line[512], tag[16];
	long long v = -1;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return -1;
	snprintf(tag, sizeof(tag), "cpu%d ", cpu);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, tag, strlen(tag)) &&
		    sscanf(line + strlen(tag), "%lld %lld %lld %lld %lld %lld %lld",
			   &usr, &nic, &sys, &idle, &iow, &irq, &sirq) == 7) {
			v = usr + nic + sys + irq + sirq;
			break;
		}
	fclose(f);
	return v;
}

/*
 * A grower confined to one CPU fills its pages on that CPU: the workers
 * that help an unconfined grower would escape its affinity (and cpuset and
 * CPU cgroup). The other CPU stays about as idle as it was.
 */
TEST_F_TIMEOUT(sec, confined_grower_uses_its_cpu, 120)
{
	long long threads = shmk_param("grow_threads");
	long long b0, b1, ticks = sysconf(_SC_CLK_TCK);
	char name[SHMK_NAME_MAX];
	__u64 t0, ms;
	cpu_set_t set;
	int fd;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs two CPUs");
	ASSERT_LE(0, threads);
	ASSERT_EQ(0, shmk_set_param("grow_threads", 0));
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(set), &set));
	SHMK_NAME(name, "conf");
	fd = shmk_create(self->ctl, name, page_size(), MiB(512));
	ASSERT_LE(0, fd);
	b0 = cpu_busy(1);
	t0 = mono_ms();
	ASSERT_EQ(0, shmk_grow(fd, MiB(512), 0, NULL));
	ms = mono_ms() - t0;
	b1 = cpu_busy(1);
	shmk_set_param("grow_threads", threads);
	TH_LOG("512 MiB grow in %llu ms; CPU 1 busy for %lld ms meanwhile",
	       (unsigned long long)ms, (b1 - b0) * 1000 / ticks);
	/* With workers CPU 1 takes about half of the work. */
	EXPECT_GT((long long)ms / 4 + 30, (b1 - b0) * 1000 / ticks);
	close(fd);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name));
}

TEST_HARNESS_MAIN
