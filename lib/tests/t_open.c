/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Segments: shmk_open() flags, names and options, errors, the backend,
 * sizes, offsets and pointers, the common base, unlink, and the errno
 * convention (int functions never touch errno).
 */
#include <fcntl.h>
#include <linux/shmk.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "internal.h"
#include "harness.h"

static const char *seg;

static int child_reads(void *arg)
{
	uint64_t off = *(uint64_t *)arg;
	struct shmk *h = NULL;
	char *p;

	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	p = shmk_ptr(h, off);
	if (!p || strcmp(p, "hello from the parent"))
		return 3;
	/* A fresh process has the range free: it maps at the common base
	 * (valgrind keeps the address space to itself). */
	if (shmk_at_common_base(h) != 1 && !test_under_valgrind())
		return 4;
	strcpy(p, "hello from the child");
	return shmk_close(h) ? 5 : 0;
}

#define NCREATORS	6

struct race {
	volatile int go;
	uint64_t off[NCREATORS];
	int created[NCREATORS];
};

static struct race *rc;

/* Released together: shmk_open(SHMK_CREATE), then one named object. */
static int creator(void *arg)
{
	int id = (int)(intptr_t)arg, created;
	struct shmk *h;
	void *p;

	while (!rc->go)
		;
	if (shmk_open(seg, SHMK_CREATE, NULL, &h))
		return 2;
	p = shmk_find_or_alloc(h, "common", 64, &created);
	if (!p)
		return 3;
	rc->off[id] = shmk_off(h, p);
	rc->created[id] = created;
	return shmk_close(h) ? 4 : 0;
}

/* Creators racing for one name all end up in the same segment. */
static void racing_creators(void)
{
	pid_t pid[NCREATORS];
	int made = 0;

	rc = test_shared(sizeof(*rc));
	shmk_unlink(seg);
	for (int i = 0; i < NCREATORS; i++)
		pid[i] = test_fork(creator, (void *)(intptr_t)i);
	usleep(20000);
	rc->go = 1;
	for (int i = 0; i < NCREATORS; i++)
		CHECK_EQ(test_wait(pid[i]), 0);
	for (int i = 0; i < NCREATORS; i++) {
		CHECK_EQ(rc->off[i], rc->off[0]);
		made += rc->created[i];
	}
	CHECK_EQ(made, 1);
	CHECK_OK(shmk_unlink(seg));
}

/* Create the segment, but die (SIGKILL) at the Nth fault point of it. */
static int create_and_die(void *arg)
{
	struct shmk *h;

	shmk__fault_countdown = (long)(intptr_t)arg;
	shmk_open(seg, SHMK_CREATE | SHMK_EXCL, NULL, &h);
	return 0;
}

/* @h is a whole, working segment: check it, use it, close and unlink it. */
static void works_then_unlink(struct shmk *h)
{
	CHECK_OK(shmk_check(h));
	CHECK(shmk_alloc(h, 100));
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
}

/*
 * A creator killed inside shmk_open() leaves no half-made segment behind:
 * the next shmk_open(SHMK_CREATE) creates it at once (it waited 5 s, then
 * failed with ETIMEDOUT, until someone unlinked the name). The posix
 * backend publishes a segment only whole; the kernel backend names it at
 * once, and the next opener takes the work over from the dead creator.
 */
static void killed_creator(void)
{
	struct shmk *h;
	long points;

	shmk_unlink(seg);
	shmk__fault_hits = 0;
	CHECK_OK(shmk_open(seg, SHMK_CREATE | SHMK_EXCL, NULL, &h));
	points = shmk__fault_hits;
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
	CHECK(points >= 3);
	for (long k = 1; k <= points; k++) {
		uint64_t t0;

		CHECK_EQ(test_wait(test_fork(create_and_die,
					     (void *)(intptr_t)k)),
			 128 + SIGKILL);
		t0 = shmk__clock_ns(CLOCK_MONOTONIC);
		CHECK_OK(shmk_open(seg, SHMK_CREATE, NULL, &h));
		CHECK(shmk__clock_ns(CLOCK_MONOTONIC) - t0 < 1000000000ULL);
		works_then_unlink(h);
	}
}

/*
 * Kernel backend: a creator killed after the module made the segment and
 * before the library took init_lock (a process that only made it, with
 * the raw ioctl, and exited) leaves a segment of zeros under the name.
 * The next opener with SHMK_CREATE takes it over once init_lock has stayed
 * clear for a second, if it could have made it so: its own, and with no
 * wider mode than it asks for. Others wait, and time out.
 */
struct raw_seg {
	uint32_t mode;
	uint64_t size, max_size;
};

/* Make the segment with the module alone: its client fd, or -1. */
static int raw_attach(const struct raw_seg *rs)
{
	struct shmk_attach a = { .flags = SHMK_ATTACH_CREATE |
					  SHMK_ATTACH_EXCL,
				 .mode = rs->mode, .size = rs->size,
				 .max_size = rs->max_size };
	int ctl = open("/dev/shmk", O_RDWR | O_CLOEXEC);

	strncpy(a.name, seg, sizeof(a.name) - 1);
	return ctl < 0 ? -1 : ioctl(ctl, SHMK_IOC_ATTACH, &a);
}

static int raw_create(void *arg)
{
	return raw_attach(arg) < 0 ? 3 : 0;
}

/* A child makes the segment raw and exits: an orphan under the name. */
static void raw_orphan(const struct raw_seg *rs)
{
	CHECK_EQ(test_wait(test_fork(raw_create, (void *)rs)), 0);
}

static void orphan_before_claim(void)
{
	struct raw_seg mine = { 0600, 1 << 20, 64 << 20 };
	struct raw_seg open_to_all = { 0666, 1 << 20, 64 << 20 };
	struct raw_seg empty = { 0600, 0, 64 << 20 };
	struct raw_seg tiny = { 0600, 0, 64 << 10 };
	struct shmk *h;
	uint64_t t0, dt;

	shmk_unlink(seg);
	raw_orphan(&mine);
	/* Not asked to create: it waits for a creator, in vain. */
	CHECK_ERR(shmk_open(seg, 0, NULL, &h), ETIMEDOUT);
	t0 = shmk__clock_ns(CLOCK_MONOTONIC);
	CHECK_OK(shmk_open(seg, SHMK_CREATE, NULL, &h));
	dt = shmk__clock_ns(CLOCK_MONOTONIC) - t0;
	CHECK(dt >= 1000000000ULL && dt < 5000000000ULL);
	CHECK_EQ(shmk_origin(h), SHMK_ORIGIN_CREATED);
	works_then_unlink(h);

	/* Made readable by all: not one this opener (0600) would make. */
	raw_orphan(&open_to_all);
	CHECK_ERR(shmk_open(seg, SHMK_CREATE, NULL, &h), ETIMEDOUT);
	CHECK_OK(shmk_unlink(seg));

	/* Made empty: grown to the smallest segment, then taken over. */
	raw_orphan(&empty);
	CHECK_OK(shmk_open(seg, SHMK_CREATE, NULL, &h));
	CHECK(shmk_size(h) >= 128 << 10);
	works_then_unlink(h);

	/* Too small to hold a heap at all: not a shmk segment. */
	raw_orphan(&tiny);
	CHECK_ERR(shmk_open(seg, SHMK_CREATE, NULL, &h), EPROTO);
	CHECK_OK(shmk_unlink(seg));

	/* Empty and another's to make: not read, not a shmk segment. */
	raw_orphan(&empty);
	CHECK_ERR(shmk_open(seg, 0, NULL, &h), EPROTO);
	CHECK_OK(shmk_unlink(seg));
}

/*
 * A kernel-backend creator that gives up marks the header SHMK_HDR_DEAD
 * before it unlinks the segment: an opener waiting on it attaches again by
 * name (and creates anew once the name is gone) instead of taking over a
 * segment without a name. Here the dying creator is played by a process
 * that makes the segment raw, marks it, and unlinks it 300 ms later.
 */
static int raw_dead(void *arg)
{
	const struct raw_seg rs = { 0600, 1 << 20, 64 << 20 };
	int fd = raw_attach(&rs);
	uint64_t *hdr;

	if (fd < 0)
		return 3;
	hdr = mmap(NULL, rs.max_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   0);
	if (hdr == MAP_FAILED)
		return 4;
	__atomic_store_n(&hdr[0], SHMK_HDR_DEAD, __ATOMIC_RELEASE);
	*(volatile int *)arg = 1;
	usleep(300000);
	return shmk_unlink(seg) ? 5 : 0;
}

static void dead_creator(void)
{
	volatile int *marked = test_shared(sizeof(int));
	struct shmk *h, *h2;
	uint64_t t0;
	pid_t pid;

	shmk_unlink(seg);
	pid = test_fork(raw_dead, (void *)marked);
	while (!*marked)
		usleep(1000);
	t0 = shmk__clock_ns(CLOCK_MONOTONIC);
	CHECK_OK(shmk_open(seg, SHMK_CREATE, NULL, &h));
	CHECK(shmk__clock_ns(CLOCK_MONOTONIC) - t0 < 1000000000ULL);
	CHECK_EQ(test_wait(pid), 0);
	CHECK_EQ(shmk_origin(h), SHMK_ORIGIN_CREATED);
	/* Named: another opener finds the same segment. */
	CHECK_OK(shmk_open(seg, 0, NULL, &h2));
	CHECK_EQ(shmk_origin(h2), SHMK_ORIGIN_ATTACHED);
	CHECK_OK(shmk_close(h2));
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
}

int main(void)
{
	struct shmk_opts o = { 0 };
	struct shmk *h, *h2, *h3;
	char backend[16];
	const char *be;
	uint64_t off;
	char *p;
	int r;

	seg = test_name("open");

	/* Argument errors */
	CHECK_ERR(shmk_open(seg, 0, NULL, NULL), EINVAL);
	CHECK_ERR(shmk_open(seg, 1 << 10, NULL, &h), EINVAL);
	CHECK_ERR(shmk_open(seg, SHMK_EXCL, NULL, &h), EINVAL);
	CHECK_ERR(shmk_open(seg, SHMK_RDONLY | SHMK_WRITER, NULL, &h), EINVAL);
	CHECK_ERR(shmk_open(seg, SHMK_RDONLY | SHMK_CREATE, NULL, &h), EINVAL);
	CHECK_ERR(shmk_open(NULL, SHMK_CREATE, NULL, &h), EINVAL);
	CHECK_ERR(shmk_open("", SHMK_CREATE, NULL, &h), EINVAL);
	CHECK_ERR(shmk_open("a/b", SHMK_CREATE, NULL, &h), EINVAL);
	CHECK_ERR(shmk_open("tab\there", SHMK_CREATE, NULL, &h), EINVAL);
	CHECK_ERR(shmk_open("0123456789012345678901234567890123456789"
			    "012345678901234567890123", SHMK_CREATE, NULL, &h),
		  EINVAL);
	o.mode = 01000;
	CHECK_ERR(shmk_open(seg, SHMK_CREATE, &o, &h), EINVAL);
	o.mode = 0;
	o.client_name = "a client name that is far too long";
	CHECK_ERR(shmk_open(seg, SHMK_CREATE, &o, &h), EINVAL);
	o.client_name = NULL;
	o.size = 8 << 20;
	o.max_size = 4 << 20;
	CHECK_ERR(shmk_open(seg, SHMK_CREATE, &o, &h), EINVAL);
	o.size = 0;
	o.max_size = 1ULL << 50;
	CHECK_ERR(shmk_open(seg, SHMK_CREATE, &o, &h), EFBIG);
	o.max_size = 0;
	o.backend = "floppy";
	CHECK_ERR(shmk_open(seg, SHMK_CREATE, &o, &h), EINVAL);
	o.backend = NULL;
	CHECK_ERR(shmk_open(seg, 0, NULL, &h), ENOENT);
	CHECK(h == NULL);

	/* errno is left alone by int functions, even on failure */
	errno = 4242;
	CHECK_ERR(shmk_open(seg, 0, NULL, &h), ENOENT);
	CHECK_EQ(errno, 4242);
	CHECK_ERR(shmk_unlink(seg), ENOENT);
	CHECK_EQ(errno, 4242);

	/* Create with sizes that get rounded to pages */
	o.size = 300000;
	o.max_size = 64 << 20;
	o.mode = 0640;
	CHECK_OK(shmk_open(seg, SHMK_CREATE | SHMK_EXCL, &o, &h));
	CHECK_EQ(errno, 4242);
	be = getenv("SHMK_BACKEND");
	if (be && !strcmp(be, "memfd"))
		be = "posix";		/* its old name, still accepted */
	if (be && *be)
		CHECK(!strcmp(shmk_backend(h), be));
	CHECK(!strcmp(shmk_backend(h), "posix") ||
	      !strcmp(shmk_backend(h), "kernel"));
	printf("backend %s\n", shmk_backend(h));
	snprintf(backend, sizeof(backend), "%s", shmk_backend(h));
	CHECK_EQ(shmk_size(h), (300000 + 4095) & ~4095);
	CHECK_EQ(shmk_max_size(h), 64 << 20);
	CHECK(shmk_base(h) != NULL);
	CHECK_EQ(shmk_at_common_base(h), 1);
	CHECK_OK(shmk_check(h));
	/*
	 * The common base says nothing about the creator's address space: a
	 * random address in [16 TiB, 96 TiB), away from mmap_base, the heap
	 * and the stacks (valgrind keeps the address space to itself).
	 */
	if (!test_under_valgrind()) {
		uintptr_t b = (uintptr_t)shmk_base(h);

		CHECK(b >= (16ULL << 40) && b + (64 << 20) <= (96ULL << 40));
		CHECK((uintptr_t)&b < (16ULL << 40) || (uintptr_t)&b > (96ULL << 40));
		CHECK((uintptr_t)malloc < (16ULL << 40) ||
		      (uintptr_t)malloc > (96ULL << 40));
	}

	CHECK_ERR(shmk_open(seg, SHMK_CREATE | SHMK_EXCL, NULL, &h2), EEXIST);

	/* Offsets and pointers */
	p = shmk_alloc(h, 100);
	CHECK(p != NULL);
	strcpy(p, "hello from the parent");
	off = shmk_off(h, p);
	CHECK(off != 0 && off < shmk_size(h));
	CHECK(shmk_ptr(h, off) == p);
	CHECK_EQ(shmk_off(h, NULL), 0);
	CHECK_EQ(shmk_off(h, &off), 0);
	CHECK_NULL_ERRNO(shmk_ptr(h, 0), EINVAL);
	CHECK_NULL_ERRNO(shmk_ptr(h, 64 << 20), EINVAL);

	/* A second handle in this process: elsewhere, same memory */
	CHECK_OK(shmk_open(seg, SHMK_CREATE, NULL, &h2));
	CHECK_EQ(shmk_at_common_base(h2), 0);
	CHECK(shmk_base(h2) != shmk_base(h));
	CHECK_EQ(shmk_size(h2), shmk_size(h));
	CHECK_EQ(shmk_max_size(h2), 64 << 20);
	CHECK(!strcmp(shmk_ptr(h2, off), "hello from the parent"));

	/* Another process follows the offset */
	r = test_wait(test_fork(child_reads, &off));
	CHECK_EQ(r, 0);
	CHECK(!strcmp(p, "hello from the child"));

	/* Unlink: the name goes, attached handles keep working */
	CHECK_OK(shmk_unlink(seg));
	CHECK_ERR(shmk_unlink(seg), ENOENT);
	CHECK_ERR(shmk_open(seg, 0, NULL, &h3), ENOENT);
	CHECK(h3 == NULL);
	CHECK(!strcmp(shmk_ptr(h2, off), "hello from the child"));
	CHECK_OK(shmk_close(h));
	shmk_free(h2, shmk_ptr(h2, off));
	CHECK_OK(shmk_check(h2));
	CHECK_OK(shmk_close(h2));

	/* Defaults */
	CHECK_OK(shmk_open(seg, SHMK_CREATE, NULL, &h));
	CHECK_EQ(shmk_size(h), 1 << 20);
	CHECK_EQ(shmk_max_size(h), 1 << 30);
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
	CHECK_ERR(shmk_close(NULL), EINVAL);

	/* Version */
	CHECK_EQ(shmk_version_major(), SHMK_VERSION_MAJOR);
	CHECK_EQ(shmk_version_minor(), SHMK_VERSION_MINOR);
	CHECK_EQ(shmk_version_patch(), SHMK_VERSION_PATCH);
	CHECK_OK(shmk_check_version(SHMK_VERSION_MAJOR, SHMK_VERSION_MINOR));
	CHECK_ERR(shmk_check_version(SHMK_VERSION_MAJOR + 1, 0), ENOTSUP);
	CHECK(SHMK_CHECK_VERSION(0, 1));

	racing_creators();
	killed_creator();
	if (!strcmp(backend, "kernel")) {
		orphan_before_claim();
		dead_creator();
	}
	test_pass("open");
	return 0;
}
