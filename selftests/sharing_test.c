// SPDX-License-Identifier: GPL-2.0
/*
 * Segment memory behaves like real shared memory to the rest of the
 * kernel: process-shared pthread mutexes and condition variables, raw
 * shared futexes (keyed by page->mapping, so not EFAULT) and O_DIRECT
 * block I/O, each between processes that map the segment at different
 * addresses and in pages that a grow installed.
 */
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>

#include "shmk_test.h"

#define SEG_INIT	MiB(1)
#define SEG_GROWN	MiB(4)
#define SEG_MAX		MiB(8)

struct blockdev {
	char path[64];
	char loop_file[256];
	bool loaded_brd;
};

FIXTURE(share) {
	int ctl;
	int fd;
	char *p;
	char name[SHMK_NAME_MAX];
	pid_t pid;
	struct shmk_barrier b;
	struct blockdev bd;
};

static void blockdev_teardown(struct blockdev *bd);

FIXTURE_SETUP(share)
{
	struct shmk_resize r;

	shmk_barrier_clear(&self->b);
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	SHMK_NAME(self->name, "share");
	self->fd = shmk_create(self->ctl, self->name, SEG_INIT, SEG_MAX);
	ASSERT_LE(0, self->fd);
	self->p = shmk_map(self->fd, SEG_MAX, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->p);
	/* The objects below live in pages installed by this grow. */
	ASSERT_EQ(0, shmk_grow(self->fd, SEG_GROWN, 0, &r));
	ASSERT_EQ(0, shmk_barrier_init(&self->b));
}

FIXTURE_TEARDOWN(share)
{
	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	shmk_barrier_destroy(&self->b);
	blockdev_teardown(&self->bd);
	if (self->p != MAP_FAILED)
		munmap(self->p, SEG_MAX);
	if (self->fd >= 0)
		close(self->fd);
	shmk_cleanup();
	close(self->ctl);
}

struct share_args {
	char name[SHMK_NAME_MAX];
	struct shmk_barrier *b;
	char *parent_p;		/* where the parent mapped it */
	size_t off;		/* offset of the shared object */
};

/*
 * Attaches and maps the segment at an address other than the parent's,
 * so that anything that works does so by page, not by virtual address.
 */
static char *map_elsewhere(const struct share_args *sa, int *fdp)
{
	size_t pg = page_size();
	char *res, *at, *p;
	int fd;

	fd = shmk_open_simple(sa->name, 0, NULL);
	if (fd < 0)
		return NULL;
	res = mmap(NULL, SEG_MAX + 2 * pg, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		return NULL;
	at = res + pg;
	if (at == sa->parent_p)
		at += pg;
	p = mmap(at, SEG_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	*fdp = fd;
	return p;
}

struct sync_area {
	pthread_mutex_t m;
	pthread_cond_t c;
	int state;
};

static void deadline_in(struct timespec *ts, clockid_t clk, int secs)
{
	clock_gettime(clk, ts);
	ts->tv_sec += secs;
}

static int mutex_child(int idx, void *arg)
{
	struct share_args *sa = arg;
	struct sync_area *s;
	struct timespec ts;
	int fd, ret;
	char *p;

	(void)idx;
	p = map_elsewhere(sa, &fd);
	CHK(p != NULL);
	CHK(p != sa->parent_p);
	s = (struct sync_area *)(p + sa->off);

	CHK(shmk_barrier_arrive(sa->b) >= 0);
	/* The parent holds the mutex. */
	CHK_EQ(EBUSY, pthread_mutex_trylock(&s->m));
	deadline_in(&ts, CLOCK_REALTIME, 10);
	/* Sleeps in the kernel until the parent's unlock wakes it. */
	CHK_EQ(0, pthread_mutex_timedlock(&s->m, &ts));
	CHK_EQ(1, s->state);
	s->state = 2;
	CHK_EQ(0, pthread_cond_signal(&s->c));
	deadline_in(&ts, CLOCK_MONOTONIC, 10);
	while (s->state != 3) {
		ret = pthread_cond_timedwait(&s->c, &s->m, &ts);
		CHK_EQ(0, ret);
	}
	CHK_EQ(0, pthread_mutex_unlock(&s->m));
	return 0;
}

TEST_F(share, pthread_mutex_condvar)
{
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	struct share_args sa;
	struct sync_area *s;
	struct timespec ts;
	int ret;

	strcpy(sa.name, self->name);
	sa.b = &self->b;
	sa.parent_p = self->p;
	sa.off = SEG_INIT + 3 * page_size() + 64;
	s = (struct sync_area *)(self->p + sa.off);

	ASSERT_EQ(0, pthread_mutexattr_init(&ma));
	ASSERT_EQ(0, pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED));
	ASSERT_EQ(0, pthread_mutex_init(&s->m, &ma));
	ASSERT_EQ(0, pthread_condattr_init(&ca));
	ASSERT_EQ(0, pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED));
	ASSERT_EQ(0, pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
	ASSERT_EQ(0, pthread_cond_init(&s->c, &ca));
	s->state = 0;

	ASSERT_EQ(0, pthread_mutex_lock(&s->m));
	self->pid = shmk_fork(&self->b, mutex_child, 0, &sa);
	ASSERT_LT(0, self->pid);
	ASSERT_EQ(0, shmk_barrier_wait(&self->b, 1, 20000));
	ASSERT_EQ(0, shmk_barrier_release(&self->b, 1, 1));

	/* Give the child time to block in pthread_mutex_timedlock(). */
	sleep_ms(300);
	s->state = 1;
	ASSERT_EQ(0, pthread_mutex_unlock(&s->m));

	ASSERT_EQ(0, pthread_mutex_lock(&s->m));
	deadline_in(&ts, CLOCK_MONOTONIC, 10);
	ret = 0;
	while (s->state != 2 && !ret)
		ret = pthread_cond_timedwait(&s->c, &s->m, &ts);
	EXPECT_EQ(0, ret) TH_LOG("the child never signalled (state %d)",
				 s->state);
	s->state = 3;
	ASSERT_EQ(0, pthread_cond_signal(&s->c));
	ASSERT_EQ(0, pthread_mutex_unlock(&s->m));

	EXPECT_TRUE(shmk_status_ok(self->pid, shmk_wait(self->pid, 30000)));
	self->pid = 0;
	EXPECT_EQ(3, s->state);
}

static long futex(volatile __u32 *uaddr, int op, __u32 val,
		  const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

static int futex_child(int idx, void *arg)
{
	struct share_args *sa = arg;
	__u64 deadline = mono_ms() + 10000;
	struct timespec ts = { .tv_sec = 1 };
	volatile __u32 *word;
	int fd, wakes = 0;
	char *p;
	long r;

	(void)idx;
	p = map_elsewhere(sa, &fd);
	CHK(p != NULL);
	word = (volatile __u32 *)(p + sa->off);
	CHK(shmk_barrier_arrive(sa->b) >= 0);

	while (!__atomic_load_n(word, __ATOMIC_ACQUIRE)) {
		CHK(mono_ms() < deadline);
		r = futex(word, FUTEX_WAIT, 0, &ts);
		if (r == 0) {
			wakes++;
			continue;
		}
		CHK(errno == EAGAIN || errno == EINTR || errno == ETIMEDOUT);
	}
	CHK_EQ(1, *word);
	CHK(wakes >= 1);
	return 0;
}

TEST_F(share, futex_shared)
{
	struct timespec zero = { 0 };
	volatile __u32 *word;
	struct share_args sa;
	__u64 deadline;
	long r, woken = 0;

	strcpy(sa.name, self->name);
	sa.b = &self->b;
	sa.parent_p = self->p;
	sa.off = SEG_GROWN - page_size() + 128;
	word = (volatile __u32 *)(self->p + sa.off);
	*word = 0;

	/* Key lookup works here: a mismatching value says EAGAIN. */
	r = futex(word, FUTEX_WAIT, 1, &zero);
	EXPECT_EQ(-1, r);
	EXPECT_EQ(EAGAIN, errno) TH_LOG("FUTEX_WAIT: %s", strerror(errno));

	self->pid = shmk_fork(&self->b, futex_child, 0, &sa);
	ASSERT_LT(0, self->pid);
	ASSERT_EQ(0, shmk_barrier_wait(&self->b, 1, 20000));
	ASSERT_EQ(0, shmk_barrier_release(&self->b, 1, 1));

	/*
	 * Wake without changing the word until a wake finds the child's
	 * waiter: proof that both processes' addresses give the same key.
	 */
	deadline = mono_ms() + 10000;
	while (mono_ms() < deadline) {
		r = futex(word, FUTEX_WAKE, 1, NULL);
		ASSERT_LE(0, r) TH_LOG("FUTEX_WAKE: %s", strerror(errno));
		if (r == 1) {
			woken = 1;
			break;
		}
		sleep_ms(5);
	}
	EXPECT_EQ(1, woken) TH_LOG("no FUTEX_WAKE reached the child's FUTEX_WAIT");

	__atomic_store_n(word, 1, __ATOMIC_RELEASE);
	futex(word, FUTEX_WAKE, 1, NULL);
	EXPECT_TRUE(shmk_status_ok(self->pid, shmk_wait(self->pid, 30000)));
	self->pid = 0;
}

/* ---- O_DIRECT ------------------------------------------------------- */

#define DIO_LEN		MiB(1)
#define DEV_SIZE	MiB(8)

static bool wait_for_path(const char *path, int ms)
{
	__u64 end = mono_ms() + ms;

	while (access(path, F_OK)) {
		if (mono_ms() > end)
			return false;
		sleep_ms(10);
	}
	return true;
}

static bool blockdev_size_ok(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;

	if (fd < 0)
		return false;
	end = lseek(fd, 0, SEEK_END);
	close(fd);
	return end >= (off_t)(4 * DIO_LEN);
}

/* /dev/ram0 from brd, or a loop device over a file; false if neither. */
static bool blockdev_setup(struct blockdev *bd, char *why, size_t whylen)
{
	static const char *const dirs[] = { "/tmp", "/var/tmp", "." };
	char cmd[512], out[64] = "";
	unsigned int i;
	int fd, ret;
	FILE *f;

	memset(bd, 0, sizeof(*bd));
	if (access("/dev/ram0", F_OK) &&
	    !system("modprobe brd rd_nr=1 rd_size=8192 >/dev/null 2>&1"))
		bd->loaded_brd = wait_for_path("/dev/ram0", 3000);
	if (!access("/dev/ram0", F_OK) && blockdev_size_ok("/dev/ram0")) {
		strcpy(bd->path, "/dev/ram0");
		return true;
	}

	/* A loop device over a file. */
	/* Failing is fine: loop may be built in. */
	ret = system("modprobe loop >/dev/null 2>&1");
	(void)ret;
	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(bd->loop_file, sizeof(bd->loop_file),
			 "%s/shmk-dio-%d.img", dirs[i], getpid());
		fd = open(bd->loop_file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0600);
		if (fd < 0)
			continue;
		if (ftruncate(fd, DEV_SIZE)) {
			close(fd);
			unlink(bd->loop_file);
			continue;
		}
		close(fd);
		snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>/dev/null",
			 bd->loop_file);
		f = popen(cmd, "r");
		if (f) {
			if (!fgets(out, sizeof(out), f))
				out[0] = 0;
			pclose(f);
		}
		out[strcspn(out, "\n")] = 0;
		if (!strncmp(out, "/dev/loop", 9)) {
			strcpy(bd->path, out);
			return true;
		}
		unlink(bd->loop_file);
	}
	bd->loop_file[0] = 0;
	snprintf(why, whylen, "no block device: brd does not load and losetup failed");
	return false;
}

static void blockdev_teardown(struct blockdev *bd)
{
	char cmd[512];

	if (bd->loop_file[0]) {
		snprintf(cmd, sizeof(cmd), "losetup -d %s >/dev/null 2>&1",
			 bd->path);
		if (system(cmd))
			fprintf(stderr, "# %s failed\n", cmd);
		unlink(bd->loop_file);
		bd->loop_file[0] = 0;
	}
	if (bd->loaded_brd && system("rmmod brd >/dev/null 2>&1"))
		fprintf(stderr, "# rmmod brd failed\n");
	bd->loaded_brd = false;
}

TEST_F(share, odirect)
{
	char why[128], *pattern, *buf;
	size_t pg = page_size();
	struct blockdev *bd = &self->bd;
	struct shmk_resize r;
	int dfd, bfd;
	__u64 rnd = 7;
	ssize_t n;
	size_t i;

	if (!blockdev_setup(bd, why, sizeof(why)))
		SKIP(return, "%s", why);
	TH_LOG("using %s", bd->path);

	pattern = malloc(3 * DIO_LEN);
	ASSERT_NE(NULL, pattern);
	for (i = 0; i < 3 * DIO_LEN / 8; i++)
		((__u64 *)pattern)[i] = rnd_next(&rnd);

	/* Write the pattern with ordinary buffered I/O. */
	bfd = open(bd->path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, bfd);
	ASSERT_EQ((ssize_t)DIO_LEN, pwrite(bfd, pattern, DIO_LEN, 0));
	ASSERT_EQ(0, fsync(bfd));

	dfd = open(bd->path, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, dfd) TH_LOG("O_DIRECT open: %s", strerror(errno));

	/* Device -> segment, into a buffer across the initial/grown line. */
	buf = self->p + SEG_INIT - DIO_LEN / 2;
	memset(buf, 0xee, DIO_LEN);
	n = pread(dfd, buf, DIO_LEN, 0);
	EXPECT_EQ((ssize_t)DIO_LEN, n) TH_LOG("O_DIRECT read: %s",
					      n < 0 ? strerror(errno) : "short");
	EXPECT_EQ(0, memcmp(buf, pattern, DIO_LEN));

	/* Segment -> device, then read back through the page cache. */
	memcpy(buf, pattern + DIO_LEN, DIO_LEN);
	n = pwrite(dfd, buf, DIO_LEN, 2 * DIO_LEN);
	EXPECT_EQ((ssize_t)DIO_LEN, n) TH_LOG("O_DIRECT write: %s",
					      n < 0 ? strerror(errno) : "short");
	memset(pattern + 2 * DIO_LEN, 0, DIO_LEN);
	ASSERT_EQ((ssize_t)DIO_LEN, pread(bfd, pattern + 2 * DIO_LEN,
					  DIO_LEN, 2 * DIO_LEN));
	EXPECT_EQ(0, memcmp(pattern + 2 * DIO_LEN, pattern + DIO_LEN,
			    DIO_LEN));

	/* Into lazily grown pages nobody has touched yet. */
	ASSERT_EQ(0, shmk_grow(self->fd, SEG_GROWN + DIO_LEN, SHMK_GROW_LAZY,
			       &r));
	buf = self->p + SEG_GROWN;
	n = pread(dfd, buf, DIO_LEN, 0);
	EXPECT_EQ((ssize_t)DIO_LEN, n) TH_LOG("O_DIRECT read (lazy): %s",
					      n < 0 ? strerror(errno) : "short");
	EXPECT_EQ(0, memcmp(buf, pattern, DIO_LEN));
	/* And one page, at the very end of the active size. */
	n = pread(dfd, self->p + SEG_GROWN + DIO_LEN - pg, pg, 0);
	EXPECT_EQ((ssize_t)pg, n);

	close(dfd);
	close(bfd);
	free(pattern);
}

TEST_HARNESS_MAIN
