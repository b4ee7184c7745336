/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Growth and exhaustion: the heap grows on demand up to the max size, then
 * allocation fails with ENOMEM and the segment stays usable; shmk_grow()
 * and shmk_shrink() with their limits; a peer attached before a growth
 * follows offsets into the new memory and sees the new size.
 */
#include "harness.h"

#define MAX	(8 << 20)

static const char *seg;
static int pipes[2][2];

/* Attached before the growth: read what the parent wrote after it. */
static int peer(void *arg)
{
	struct shmk *h;
	uint64_t msg[2];
	uint64_t sum = 0;
	const uint8_t *p;

	(void)arg;
	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	msg[0] = shmk_size(h);
	if (write(pipes[1][1], msg, 8) != 8)
		return 3;
	if (read(pipes[0][0], msg, sizeof(msg)) != sizeof(msg))
		return 4;
	p = shmk_ptr(h, msg[0]);
	for (uint64_t i = 0; i < msg[1]; i++)
		sum += p[i];
	if (sum != msg[1] * 7)
		return 5;
	if (shmk_size(h) < msg[0] + msg[1])
		return 6;
	return shmk_close(h) ? 7 : 0;
}

int main(void)
{
	struct shmk_stats st;
	struct shmk *h;
	void *blocks[4096];
	size_t n = 0, small = 0;
	uint64_t msg[2], peer_size;
	uint8_t *big;
	pid_t pid;

	seg = test_name("grow");
	h = test_open(seg, SHMK_CREATE, 192 << 10, MAX);
	CHECK_EQ(shmk_size(h), 192 << 10);

	/* A peer attaches while the segment is small. */
	CHECK(!pipe(pipes[0]) && !pipe(pipes[1]));
	pid = test_fork(peer, NULL);
	CHECK_EQ(read(pipes[1][0], &peer_size, 8), 8);
	CHECK_EQ(peer_size, 192 << 10);

	/* Growth on demand: 1 MiB does not fit, the heap grows to hold it. */
	big = shmk_alloc(h, 1 << 20);
	CHECK(big != NULL);
	CHECK(shmk_size(h) > (1 << 20));
	memset(big, 7, 1 << 20);
	msg[0] = shmk_off(h, big);
	msg[1] = 1 << 20;
	CHECK_EQ(write(pipes[0][1], msg, sizeof(msg)), sizeof(msg));
	CHECK_EQ(test_wait(pid), 0);
	CHECK_OK(shmk_stats(h, &st));
	CHECK(st.grows >= 1);
	CHECK_EQ(st.total_size, shmk_size(h));

	/* Exhaustion: 64 KiB blocks until the max size is reached. */
	while (n < 4096 && (blocks[n] = shmk_alloc(h, 64 << 10)))
		n++;
	CHECK(n > 0 && n < 4096);
	CHECK_EQ(errno, ENOMEM);
	CHECK(shmk_size(h) > MAX - (64 << 10));
	CHECK_NULL_ERRNO(shmk_alloc(h, MAX), ENOMEM);
	CHECK_NULL_ERRNO(shmk_alloc(h, SIZE_MAX), ENOMEM);
	CHECK_NULL_ERRNO(shmk_alloc_aligned(h, 100, 1 << 20), ENOMEM);
	CHECK_OK(shmk_check(h));
	/* ... smaller blocks still fill the rest ... */
	while (shmk_alloc(h, 100))
		small++;
	CHECK_EQ(errno, ENOMEM);
	CHECK(small > 0);
	CHECK_EQ(shmk_size(h), MAX);
	CHECK_OK(shmk_stats(h, &st));
	CHECK(st.largest_free < 112);
	CHECK_OK(shmk_check(h));
	/* ... and freeing makes room again. */
	shmk_free(h, blocks[n / 2]);
	CHECK(shmk_alloc(h, 60 << 10) != NULL);
	CHECK_OK(shmk_check(h));
	/* A named object that does not fit: ENOMEM, directory unchanged */
	CHECK_NULL_ERRNO(shmk_find_or_alloc(h, "full", 100000, NULL), ENOMEM);
	CHECK_NULL_ERRNO(shmk_find(h, "full", NULL), ENOENT);
	CHECK_OK(shmk_check(h));

	/* shmk_grow() and shmk_shrink() limits */
	CHECK_ERR(shmk_grow(h, MAX + 1), EFBIG);
	CHECK_OK(shmk_grow(h, 4096));		/* smaller: nothing to do */
	CHECK_ERR(shmk_shrink(h, 0), EBUSY);	/* allocated to the end */
	CHECK_OK(shmk_close(h));

	/* A fresh segment: explicit growth, shrink back, grow again */
	CHECK_OK(shmk_unlink(seg));
	h = test_open(seg, SHMK_CREATE, 192 << 10, MAX);
	CHECK_OK(shmk_grow(h, 3 << 20));
	CHECK_EQ(shmk_size(h), 3 << 20);
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.largest_free, st.free_bytes);
	big = shmk_alloc(h, 2 << 20);
	CHECK(big);
	CHECK_ERR(shmk_shrink(h, 1 << 20), EBUSY);
	shmk_free(h, big);
	CHECK_OK(shmk_shrink(h, 1 << 20));
	CHECK_EQ(shmk_size(h), 1 << 20);
	CHECK_OK(shmk_check(h));
	/* Down to the directory, the run map and the thread heaps */
	CHECK_OK(shmk_shrink(h, 128 << 10));
	CHECK(shmk_size(h) <= 192 << 10);
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_grow(h, MAX));
	CHECK_EQ(shmk_size(h), MAX);
	CHECK(shmk_alloc(h, MAX - (1 << 20)) != NULL);
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_close(h));
	test_pass("grow");
	return 0;
}
