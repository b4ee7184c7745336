/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for the shmk selftests.
 *
 * It includes kselftest_harness.h. Helpers return a value or -errno
 * and never use the harness ASSERT macros, so they are safe in forked
 * children too. Children must leave with _exit() (shmk_fork() does that) and
 * report failures through their exit status; CHK() and CHK_EQ() print the
 * failed condition and return 1 from the child function.
 *
 * Use FIXTURE/TEST_F: the 6.1 harness's plain TEST() has an unused
 * parameter that -Wextra -Werror refuses. The harness's EXPECT/ASSERT
 * macros are not single statements: brace them under if/else.
 */
#ifndef SHMK_TEST_H
#define SHMK_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <linux/shmk.h>

/*
 * The harness from linux-source-6.1 has an unused parameter, which
 * -Wextra -Werror would refuse; only its own code is exempted.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#define SHMK_SYSFS_DIR		"/sys/class/misc/shmk"
#define SHMK_PARAM_DIR		"/sys/module/shmk/parameters"
#define SHMK_REFCNT_PATH	"/sys/module/shmk/refcnt"

#define KiB(x)			((__u64)(x) << 10)
#define MiB(x)			((__u64)(x) << 20)

#define SHMK_UNUSED		__attribute__((unused))

static SHMK_UNUSED size_t shmk_pagesz;

/* Copies a string into a fixed array, truncated and NUL-terminated. */
static inline void set_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}

static inline size_t page_size(void)
{
	if (!shmk_pagesz)
		shmk_pagesz = (size_t)sysconf(_SC_PAGESIZE);
	return shmk_pagesz;
}

/* ------------------------------------------------------------------ */
/* Checks usable in forked children (no harness state involved).       */

#define CHK(cond) do {							\
	if (!(cond)) {							\
		int __e = errno;					\
		fprintf(stderr, "# child %d: %s:%d: check failed: %s "	\
			"(errno %d: %s)\n", getpid(), __FILE__,	\
			__LINE__, #cond, __e, strerror(__e));		\
		fflush(stderr);						\
		return 1;						\
	}								\
} while (0)

#define CHK_EQ(expected, seen) do {					\
	long long __x = (long long)(expected);				\
	long long __s = (long long)(seen);				\
	if (__x != __s) {						\
		fprintf(stderr, "# child %d: %s:%d: %s == %s: "	\
			"expected %lld, got %lld\n", getpid(),		\
			__FILE__, __LINE__, #expected, #seen,		\
			__x, __s);					\
		fflush(stderr);						\
		return 1;						\
	}								\
} while (0)

/* ------------------------------------------------------------------ */
/* Time.                                                                */

static inline __u64 now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

static inline __u64 mono_ms(void)
{
	return now_ns(CLOCK_MONOTONIC) / 1000000ULL;
}

static inline void sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000L,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* sysfs: module parameters, global counters, refcount.               */

static inline long long sysfs_read_ll(const char *path)
{
	char buf[64];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtoll(buf, NULL, 0);
}

static inline int sysfs_write_ll(const char *path, long long val)
{
	char buf[64];
	int fd, len;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%lld\n", val);
	n = write(fd, buf, len);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	return n == len ? 0 : -EIO;
}

/* /sys/class/misc/shmk/{segments,pages,clients}; -1 on error. */
static inline long long shmk_counter(const char *which)
{
	char path[128];

	snprintf(path, sizeof(path), SHMK_SYSFS_DIR "/%s", which);
	return sysfs_read_ll(path);
}

static inline long long shmk_param(const char *which)
{
	char path[128];

	snprintf(path, sizeof(path), SHMK_PARAM_DIR "/%s", which);
	return sysfs_read_ll(path);
}

static inline int shmk_set_param(const char *which, long long val)
{
	char path[128];

	snprintf(path, sizeof(path), SHMK_PARAM_DIR "/%s", which);
	return sysfs_write_ll(path, val);
}

/* ------------------------------------------------------------------ */
/* Segment names: unique per test process, tracked for cleanup.        */

#define SHMK_TRACK_MAX	256

/*
 * Names of the segments created by this test binary, in memory shared
 * between the harness parent, each test process and their children: a
 * FIXTURE_TEARDOWN unlinks them with shmk_cleanup(), and an atexit handler
 * in the harness parent catches those left by a test that was killed
 * (timeout) or aborted before its teardown.
 */
struct shmk_track {
	unsigned int n;
	char names[SHMK_TRACK_MAX][SHMK_NAME_MAX];
};

static SHMK_UNUSED struct shmk_track *shmk_tracked;

static inline void shmk_track(const char *name)
{
	unsigned int i, n;

	if (!shmk_tracked)
		return;
	n = __atomic_load_n(&shmk_tracked->n, __ATOMIC_ACQUIRE);
	for (i = 0; i < n && i < SHMK_TRACK_MAX; i++)
		if (!strncmp(shmk_tracked->names[i], name, SHMK_NAME_MAX))
			return;
	i = __atomic_fetch_add(&shmk_tracked->n, 1, __ATOMIC_ACQ_REL);
	if (i < SHMK_TRACK_MAX)
		set_str(shmk_tracked->names[i], SHMK_NAME_MAX, name);
}

static inline int shmk_open_ctl(void)
{
	int fd = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static inline int shmk_unlink_name(int ctl, const char *name)
{
	struct shmk_unlink u;

	memset(&u, 0, sizeof(u));
	set_str(u.name, SHMK_NAME_MAX, name);
	return ioctl(ctl, SHMK_IOC_UNLINK, &u) < 0 ? -errno : 0;
}

/* Unlinks every tracked name; returns how many were still present. */
static inline int shmk_cleanup(void)
{
	unsigned int i, n;
	int ctl, found = 0;

	if (!shmk_tracked)
		return 0;
	n = __atomic_load_n(&shmk_tracked->n, __ATOMIC_ACQUIRE);
	if (n > SHMK_TRACK_MAX)
		n = SHMK_TRACK_MAX;
	ctl = shmk_open_ctl();
	if (ctl < 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (!shmk_tracked->names[i][0])
			continue;
		if (!shmk_unlink_name(ctl, shmk_tracked->names[i]))
			found++;
		shmk_tracked->names[i][0] = 0;
	}
	close(ctl);
	return found;
}

static SHMK_UNUSED pid_t shmk_main_pid;

static void shmk_atexit_cleanup(void)
{
	int n;

	/* Only the harness parent; children leave with _exit(). */
	if (getpid() != shmk_main_pid)
		return;
	n = shmk_cleanup();
	if (n)
		fprintf(stderr, "# unlinked %d segment(s) left by aborted tests\n",
			n);
}

static void __attribute__((constructor)) shmk_test_init(void)
{
	struct stat st;

	shmk_main_pid = getpid();
	/* Unbuffered stderr so child diagnostics are not lost. */
	setvbuf(stderr, NULL, _IONBF, 0);
	if (stat(SHMK_DEVICE, &st)) {
		printf("TAP version 13\n1..0 # SKIP %s: %s (shmk.ko not loaded)\n",
		       SHMK_DEVICE, strerror(errno));
		exit(KSFT_SKIP);
	}
	shmk_tracked = mmap(NULL, sizeof(*shmk_tracked),
			    PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shmk_tracked == MAP_FAILED)
		shmk_tracked = NULL;
	atexit(shmk_atexit_cleanup);
}

/*
 * "<pid>-<tag>-<test>" cut to 63 bytes: unique per test process (the
 * harness forks one per test) and descriptive in dmesg and sysfs.
 */
static inline char *shmk_name(char *buf, const char *test, const char *tag)
{
	snprintf(buf, SHMK_NAME_MAX, "%d-%s-%s", getpid(), tag, test);
	return buf;
}

/* In a TEST/TEST_F body. */
#define SHMK_NAME(buf, tag)	shmk_name(buf, _metadata->name, tag)

/* ------------------------------------------------------------------ */
/* ioctl wrappers: return >= 0 or -errno.                              */

static inline int shmk_ioctl(int fd, unsigned long req, void *arg)
{
	int ret = ioctl(fd, req, arg);

	return ret < 0 ? -errno : ret;
}

/*
 * Attaches to @name with all options. Returns the client fd or -errno;
 * copies the struct after the call to @out when non-NULL.
 */
static inline int shmk_attach_opts(int ctl, const char *name, __u32 flags,
				   __u32 mode, __u64 size, __u64 max_size,
				   const char *client_name,
				   struct shmk_attach *out)
{
	struct shmk_attach a;
	int ret;

	memset(&a, 0, sizeof(a));
	a.flags = flags;
	a.mode = mode;
	a.size = size;
	a.max_size = max_size;
	set_str(a.name, SHMK_NAME_MAX, name);
	if (client_name)
		set_str(a.client_name, SHMK_CLIENT_NAME_MAX,
			client_name);
	ret = shmk_ioctl(ctl, SHMK_IOC_ATTACH, &a);
	if (ret >= 0 && (flags & SHMK_ATTACH_CREATE))
		shmk_track(name);
	if (out)
		*out = a;
	return ret;
}

/* Creates a new 0600 segment (CREATE|EXCL) and returns its client fd. */
static inline int shmk_create(int ctl, const char *name, __u64 size,
			      __u64 max_size)
{
	return shmk_attach_opts(ctl, name,
				SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL, 0600,
				size, max_size, NULL, NULL);
}

/* Attaches to an existing segment. */
static inline int shmk_open(int ctl, const char *name, __u32 flags,
			    const char *client_name)
{
	return shmk_attach_opts(ctl, name, flags, 0, 0, 0, client_name, NULL);
}

/* Attaches with a control fd of its own (for children). */
static inline int shmk_open_simple(const char *name, __u32 flags,
				   const char *client_name)
{
	int ctl = shmk_open_ctl();
	int fd;

	if (ctl < 0)
		return ctl;
	fd = shmk_open(ctl, name, flags, client_name);
	close(ctl);
	return fd;
}

static inline int shmk_get_info(int fd, struct shmk_info *info)
{
	memset(info, 0, sizeof(*info));
	return shmk_ioctl(fd, SHMK_IOC_INFO, info);
}

/* Active size, or -errno. */
static inline long long shmk_size(int fd)
{
	struct shmk_info info;
	int ret = shmk_get_info(fd, &info);

	return ret < 0 ? ret : (long long)info.size;
}

static inline int shmk_resize(int fd, unsigned long req, __u64 size,
			      __u32 flags, struct shmk_resize *out)
{
	struct shmk_resize r;
	int ret;

	memset(&r, 0, sizeof(r));
	r.size = size;
	r.flags = flags;
	ret = shmk_ioctl(fd, req, &r);
	if (out)
		*out = r;
	return ret;
}

static inline int shmk_grow(int fd, __u64 size, __u32 flags,
			    struct shmk_resize *out)
{
	return shmk_resize(fd, SHMK_IOC_GROW, size, flags, out);
}

static inline int shmk_shrink(int fd, __u64 size, struct shmk_resize *out)
{
	return shmk_resize(fd, SHMK_IOC_SHRINK, size, 0, out);
}

/* Fills @arr (capacity @cap); *count = written, *total = attached. */
static inline int shmk_list_clients(int fd, struct shmk_client_info *arr,
				    __u32 cap, __u32 *count, __u32 *total)
{
	struct shmk_clients c;
	int ret;

	memset(&c, 0, sizeof(c));
	c.clients = (__u64)(uintptr_t)arr;
	c.count = cap;
	ret = shmk_ioctl(fd, SHMK_IOC_CLIENTS, &c);
	if (count)
		*count = c.count;
	if (total)
		*total = c.total;
	return ret;
}

/* Client id of the first client named @name, its pid in *pid. */
static inline int shmk_lookup(int fd, const char *name, pid_t *pid,
			      __u32 *client_id)
{
	struct shmk_lookup l;
	int ret;

	memset(&l, 0, sizeof(l));
	set_str(l.name, SHMK_CLIENT_NAME_MAX, name);
	ret = shmk_ioctl(fd, SHMK_IOC_LOOKUP, &l);
	if (!ret) {
		if (pid)
			*pid = l.pid;
		if (client_id)
			*client_id = l.client_id;
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* Mappings.                                                            */

/*
 * Map a segment as libshmk does: a mapping maps nothing by itself, so
 * MAP_POPULATE maps the active part at once.
 */
static inline void *shmk_map(int fd, size_t len, int prot)
{
	return mmap(NULL, len, prot, MAP_SHARED | MAP_POPULATE, fd, 0);
}

static inline const struct shmk_status *shmk_map_status(int fd)
{
	void *p = mmap(NULL, page_size(), PROT_READ, MAP_SHARED, fd,
		       (off_t)SHMK_STATUS_OFFSET);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Consistent snapshot of the status page with its sequence protocol:
 * acquire-load seq, retry while odd, copy, acquire fence, recheck seq.
 * Returns the number of retries, or -ETIMEDOUT if no stable snapshot came
 * within @timeout_ms (a writer stuck with an odd seq).
 */
static inline int shmk_status_read(const struct shmk_status *st,
				   struct shmk_status *snap,
				   unsigned int timeout_ms)
{
	__u64 deadline = 0;
	unsigned int spins = 0;
	int retries = 0;
	__u32 s1, s2;

	for (;;) {
		s1 = __atomic_load_n(&st->seq, __ATOMIC_ACQUIRE);
		if (!(s1 & 1)) {
			memcpy(snap, (const void *)st, sizeof(*snap));
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			s2 = __atomic_load_n(&st->seq, __ATOMIC_RELAXED);
			if (s1 == s2)
				return retries;
		}
		retries++;
		if (++spins % 1024 == 0) {
			if (!deadline)
				deadline = mono_ms() + timeout_ms;
			else if (mono_ms() > deadline)
				return -ETIMEDOUT;
			sched_yield();
		}
	}
}

/* ------------------------------------------------------------------ */
/* Faults and signals.                                                  */

static inline long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static SHMK_UNUSED sigjmp_buf shmk_probe_env;
static SHMK_UNUSED volatile sig_atomic_t shmk_probe_signo;

static void SHMK_UNUSED shmk_probe_handler(int sig)
{
	shmk_probe_signo = sig;
	siglongjmp(shmk_probe_env, 1);
}

/* Catch SIGBUS and SIGSEGV for shmk_probe_*(). */
static inline void shmk_probe_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = shmk_probe_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

/* Reads one byte: 0 if it worked, else the signal it raised. */
static __attribute__((noinline)) SHMK_UNUSED
int shmk_probe_read(const volatile void *addr)
{
	if (sigsetjmp(shmk_probe_env, 1))
		return shmk_probe_signo;
	(void)*(const volatile char *)addr;
	return 0;
}

/* Writes one byte: 0 if it worked, else the signal it raised. */
static __attribute__((noinline)) SHMK_UNUSED
int shmk_probe_write(volatile void *addr, char val)
{
	if (sigsetjmp(shmk_probe_env, 1))
		return shmk_probe_signo;
	*(volatile char *)addr = val;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Child processes and a pipe barrier.                                  */

/*
 * Lock-step phases between a parent and its children. A child arrives by
 * writing its index up a shared pipe, then blocks reading its own down
 * pipe; the parent waits for @count arrivals, does its part, then releases
 * exactly the children that arrived, each through its own pipe (so a fast
 * child can never take a slow one's token and run a phase ahead). A child
 * sees EOF (and fails) if the parent dies.
 */
#define SHMK_BARRIER_MAX	16

struct shmk_barrier {
	int up[2];
	int down[SHMK_BARRIER_MAX][2];
	bool waiting[SHMK_BARRIER_MAX];
};

/* This process's index for shmk_barrier_arrive(), set by shmk_fork(). */
static SHMK_UNUSED int shmk_barrier_idx = -1;

static inline void shmk_barrier_clear(struct shmk_barrier *b)
{
	int i;

	memset(b, 0, sizeof(*b));
	b->up[0] = b->up[1] = -1;
	for (i = 0; i < SHMK_BARRIER_MAX; i++)
		b->down[i][0] = b->down[i][1] = -1;
}

static inline void shmk_barrier_destroy(struct shmk_barrier *b)
{
	int i;

	for (i = 0; i < 2; i++)
		if (b->up[i] >= 0)
			close(b->up[i]);
	for (i = 0; i < SHMK_BARRIER_MAX; i++) {
		if (b->down[i][0] >= 0)
			close(b->down[i][0]);
		if (b->down[i][1] >= 0)
			close(b->down[i][1]);
	}
	shmk_barrier_clear(b);
}

static inline int shmk_barrier_init(struct shmk_barrier *b)
{
	int i, err;

	shmk_barrier_clear(b);
	if (pipe2(b->up, O_CLOEXEC))
		goto fail;
	for (i = 0; i < SHMK_BARRIER_MAX; i++)
		if (pipe2(b->down[i], O_CLOEXEC))
			goto fail;
	return 0;
fail:
	err = -errno;
	shmk_barrier_destroy(b);
	return err;
}

/* In a new child: keep only its own ends. */
static inline void shmk_barrier_child(struct shmk_barrier *b, int idx)
{
	int i;

	shmk_barrier_idx = idx;
	close(b->up[0]);
	b->up[0] = -1;
	for (i = 0; i < SHMK_BARRIER_MAX; i++) {
		close(b->down[i][1]);
		b->down[i][1] = -1;
		if (i != idx) {
			close(b->down[i][0]);
			b->down[i][0] = -1;
		}
	}
}

/* Child: arrive and wait for release; returns the command byte or -1. */
static inline int shmk_barrier_arrive(struct shmk_barrier *b)
{
	int idx = shmk_barrier_idx;
	unsigned char c;
	ssize_t n;

	if (idx < 0 || idx >= SHMK_BARRIER_MAX)
		return -1;
	c = (unsigned char)idx;
	do
		n = write(b->up[1], &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return -1;
	do
		n = read(b->down[idx][0], &c, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? c : -1;
}

/* Parent: wait for @count more arrivals; 0, -ETIMEDOUT or -EPIPE. */
static inline int shmk_barrier_wait(struct shmk_barrier *b, int count,
				    int timeout_ms)
{
	__u64 deadline = mono_ms() + timeout_ms;
	struct pollfd pfd = { .fd = b->up[0], .events = POLLIN };
	unsigned char c;
	long long left;
	ssize_t n;

	while (count > 0) {
		left = (long long)deadline - (long long)mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ETIMEDOUT;
		n = read(b->up[0], &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || c >= SHMK_BARRIER_MAX)
			return -EPIPE;
		b->waiting[c] = true;
		count--;
	}
	return 0;
}

/* Parent: a waiting child died; do not count it in the next release. */
static inline void shmk_barrier_forget(struct shmk_barrier *b, int idx)
{
	b->waiting[idx] = false;
}

/*
 * Parent: release every child that arrived, with command @cmd; fails
 * unless that is exactly @count children.
 */
static inline int shmk_barrier_release(struct shmk_barrier *b, int count,
				       unsigned char cmd)
{
	int i, released = 0;
	ssize_t n;

	for (i = 0; i < SHMK_BARRIER_MAX; i++) {
		if (!b->waiting[i])
			continue;
		b->waiting[i] = false;
		do
			n = write(b->down[i][1], &cmd, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			return -EPIPE;
		released++;
	}
	return released == count ? 0 : -EPIPE;
}

typedef int (*shmk_child_fn)(int idx, void *arg);

/*
 * Forks a child that runs @fn(@idx, @arg) and _exit()s with its return
 * value. The child dies with its parent (PR_SET_PDEATHSIG) and, with a
 * barrier @b (may be NULL), arrives there as @idx (< SHMK_BARRIER_MAX).
 */
static inline pid_t shmk_fork(struct shmk_barrier *b, shmk_child_fn fn,
			      int idx, void *arg)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(99);
	if (b)
		shmk_barrier_child(b, idx);
	_exit(fn(idx, arg));
}

/* Forks @n children 0..n-1; returns 0 or -errno (forked ones are killed). */
static inline int shmk_fork_children(int n, pid_t *pids,
				     struct shmk_barrier *b, shmk_child_fn fn,
				     void *arg)
{
	int i, j;

	for (i = 0; i < n; i++) {
		pids[i] = shmk_fork(b, fn, i, arg);
		if (pids[i] < 0) {
			int err = -errno;

			for (j = 0; j < i; j++) {
				kill(pids[j], SIGKILL);
				waitpid(pids[j], NULL, 0);
			}
			return err;
		}
	}
	return 0;
}

/*
 * Waits for @pid at most @timeout_ms, then kills it. Returns the wait
 * status, or -ETIMEDOUT (child killed and reaped), or -errno.
 */
static inline int shmk_wait(pid_t pid, int timeout_ms)
{
	__u64 deadline = mono_ms() + timeout_ms;
	unsigned int delay = 1;
	int status;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (mono_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "# child %d timed out, killed\n", pid);
			return -ETIMEDOUT;
		}
		sleep_ms(delay);
		if (delay < 20)
			delay *= 2;
	}
}

/* True when @status is a normal exit with code 0 (and says why not). */
static inline bool shmk_status_ok(pid_t pid, int status)
{
	if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	if (status < 0)
		fprintf(stderr, "# child %d: wait failed: %d\n", pid, status);
	else if (WIFEXITED(status))
		fprintf(stderr, "# child %d exited with %d\n", pid,
			WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		fprintf(stderr, "# child %d killed by signal %d (%s)\n", pid,
			WTERMSIG(status), strsignal(WTERMSIG(status)));
	return false;
}

/* Waits for all @n children; returns how many did not exit with 0. */
static inline int shmk_wait_children(int n, const pid_t *pids,
				     int timeout_ms)
{
	int i, bad = 0;

	for (i = 0; i < n; i++) {
		if (pids[i] <= 0)
			continue;
		if (!shmk_status_ok(pids[i], shmk_wait(pids[i], timeout_ms)))
			bad++;
	}
	return bad;
}

/* Kills and reaps children still around (teardown path). */
static inline void shmk_kill_children(int n, pid_t *pids)
{
	int i;

	for (i = 0; i < n; i++) {
		if (pids[i] <= 0)
			continue;
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
		pids[i] = 0;
	}
}

/* Small deterministic PRNG (xorshift64*) for patterns and random ops. */
static inline __u64 rnd_next(__u64 *s)
{
	__u64 x = *s ? *s : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static inline __u64 rnd_range(__u64 *s, __u64 n)
{
	return n ? rnd_next(s) % n : 0;
}

#endif /* SHMK_TEST_H */
