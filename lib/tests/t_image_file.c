/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The file backend: the image file is the segment.
 *
 *  - created by one process, opened by several at once (one is first:
 *    origin IMAGE for an existing file, ATTACHED for the others), each
 *    allocating named objects and growing the segment; shmk_sync(); all of
 *    them exit; the file is then a complete image (shmk_image_check), and
 *    reopens with every object, with the file backend and loaded into a
 *    segment of the default backend;
 *  - a process SIGKILLed with the file open (and a writer killed inside an
 *    allocation, holding the lock): the next opener recovers it;
 *  - an image written by shmk_save() opens with the file backend;
 *  - the file grows by ftruncate and reads back after a reopen.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "harness.h"
#include "image.h"

#define NPROC	4
#define PER	500

static char dir[128], path[200];

static struct shmk *fopen_seg(int flags, int *err)
{
	struct shmk_opts o = { .backend = "file", .image = path, .schema = 5,
			       .size = 1 << 20, .max_size = 1ULL << 30 };
	struct shmk *h = NULL;

	*err = shmk_open("tfile", flags, &o, &h);
	return h;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7);
}

static int same(const uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)(seed * 31 + i * 7))
			return 0;
	return 1;
}

static size_t obj_size(int c, int k)
{
	return 1 + (size_t)((c * 7919 + k * 104729) % 30000);
}

static int worker(void *arg)
{
	int c = (int)(intptr_t)arg, r, created;
	struct shmk *h = fopen_seg(SHMK_CREATE, &r);

	if (!h) {
		fprintf(stderr, "worker %d: open: %s\n", c, strerror(-r));
		return 2;
	}
	if (shmk_origin(h) != SHMK_ORIGIN_ATTACHED &&
	    shmk_origin(h) != SHMK_ORIGIN_IMAGE)
		return 3;
	for (int k = 0; k < PER; k++) {
		char name[32];
		uint8_t *p;

		snprintf(name, sizeof(name), "c%d-%d", c, k);
		p = shmk_find_or_alloc(h, name, obj_size(c, k), &created);
		if (!p || !created)
			return 4;
		fill(p, obj_size(c, k), (uint64_t)c * 1000 + k);
		if (k == PER / 2) {
			/* Grow (each worker a bit further) past the heap. */
			r = shmk_grow(h, shmk_size(h) + (4 << 20));
			if (r && r != -EINVAL)
				return 5;
		}
	}
	if (shmk_sync(h))
		return 6;
	shmk_close(h);
	return 0;
}

static void verify(struct shmk *h)
{
	for (int c = 0; c < NPROC; c++)
		for (int k = 0; k < PER; k++) {
			char name[32];
			size_t size;
			uint8_t *p;

			snprintf(name, sizeof(name), "c%d-%d", c, k);
			p = shmk_find(h, name, &size);
			CHECK(p);
			CHECK_EQ(size, obj_size(c, k));
			CHECK(same(p, size, (uint64_t)c * 1000 + k));
		}
	CHECK_OK(shmk_check(h));
}

static int killed_holder(void *arg)
{
	int r;
	struct shmk *h = fopen_seg(0, &r);

	(void)arg;
	if (!h)
		return 2;
	/* Die at a fault point inside an allocation, lock held. */
	shmk__fault_countdown = 3;
	for (int i = 0; i < 1000; i++)
		shmk_alloc(h, 5000 + i);
	return 7;
}

int main(void)
{
	struct shmk *h, *l;
	pid_t pids[NPROC];
	char why[256];
	struct stat st;
	uint64_t t0;
	int r;

	test_seed();
	test_name("imgfile");
	snprintf(dir, sizeof(dir), "/tmp/t-image-file-%d", (int)getpid());
	CHECK_OK(mkdir(dir, 0700));
	snprintf(path, sizeof(path), "%s/seg.shmk", dir);

	/* Created by the first open, unnamed until whole. */
	h = fopen_seg(SHMK_CREATE | SHMK_EXCL, &r);
	CHECK_OK(r);
	CHECK_EQ(shmk_origin(h), SHMK_ORIGIN_CREATED);
	CHECK(!strcmp(shmk_backend(h), "file"));
	CHECK_OK(stat(path, &st));
	CHECK_ERR(shmk_image_check(path, 5, why, sizeof(why)), EBUSY);
	CHECK_ERR(fopen_seg(SHMK_CREATE | SHMK_EXCL, &r) ? 0 : r, EEXIST);

	/* Several processes at once, growing it. */
	for (int c = 0; c < NPROC; c++)
		pids[c] = test_fork(worker, (void *)(intptr_t)c);
	for (int c = 0; c < NPROC; c++)
		CHECK_EQ(test_wait(pids[c]), 0);
	verify(h);
	CHECK(shmk_size(h) > (4 << 20));
	CHECK_OK(shmk_sync(h));
	shmk_close(h);

	/* All gone: a complete image; reopened, every object is there. */
	r = shmk_image_check(path, 5, why, sizeof(why));
	if (r)
		printf("check: %s\n", why);
	CHECK_OK(r);
	CHECK_ERR(shmk_image_check(path, 6, why, sizeof(why)), ESTALE);
	CHECK_OK(stat(path, &st));
	printf("file %lld bytes\n", (long long)st.st_size);
	t0 = shmk__clock_ns(CLOCK_MONOTONIC);
	h = fopen_seg(SHMK_CREATE, &r);
	CHECK_OK(r);
	printf("reopen %.2f ms\n", (shmk__clock_ns(CLOCK_MONOTONIC) - t0) / 1e6);
	CHECK_EQ(shmk_origin(h), SHMK_ORIGIN_IMAGE);
	verify(h);
	/* A wrong schema is refused while it is open, too. */
	{
		struct shmk_opts o = { .backend = "file", .image = path,
				       .schema = 6 };

		CHECK_ERR(shmk_open("tfile", 0, &o, &l), ESTALE);
	}
	shmk_close(h);

	/* Loaded into a segment of the default backend. */
	{
		struct shmk_opts o = { .image = path, .schema = 5 };
		const char *seg = test_segment;

		CHECK_OK(shmk_open(seg, SHMK_CREATE | SHMK_EXCL |
					SHMK_IMAGE_ONLY, &o, &l));
		CHECK_EQ(shmk_origin(l), SHMK_ORIGIN_IMAGE);
		verify(l);
		/* ... and saved again, opened with the file backend. */
		unlink(path);
		CHECK_OK(shmk_save(l, path));
		shmk_close(l);
		CHECK_OK(shmk_unlink(seg));
		h = fopen_seg(0, &r);
		CHECK_OK(r);
		CHECK_EQ(shmk_origin(h), SHMK_ORIGIN_IMAGE);
		verify(h);
		shmk_close(h);
	}

	/* Killed holding the lock, with the file open: recovered. */
	{
		pid_t p = test_fork(killed_holder, NULL);

		CHECK_EQ(test_wait(p), 128 + SIGKILL);
		CHECK_ERR(shmk_image_check(path, 5, why, sizeof(why)), EBUSY);
		h = fopen_seg(0, &r);
		CHECK_OK(r);
		CHECK_EQ(shmk_origin(h), SHMK_ORIGIN_IMAGE);
		verify(h);
		shmk_close(h);
		CHECK_OK(shmk_image_check(path, 5, why, sizeof(why)));
	}

	/* Garbage is refused, and nothing is created over it. */
	{
		int fd = open(path, O_WRONLY | O_TRUNC);

		CHECK(fd >= 0);
		CHECK_EQ(write(fd, "garbage garbage", 15), 15);
		close(fd);
		CHECK(!fopen_seg(SHMK_CREATE, &r));
		CHECK_EQ(r, -ENODATA);
		CHECK_OK(stat(path, &st));
		CHECK_EQ(st.st_size, 15);
	}
	unlink(path);
	CHECK_OK(rmdir(dir));
	printf("ok\n");
	return 0;
}
