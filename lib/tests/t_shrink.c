/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Shrinking under lock-free readers: a writer keeps creating named objects
 * that grow the heap, removing them and shrinking the segment back, while
 * two read-only clients look the names up and iterate over the directory
 * without the lock. A reader may hold an offset that a shrink has just
 * cut off; it must see the change and retry, never fault: the posix
 * backend punches a hole instead of truncating the file, and shmk.ko maps
 * a zeroed page where a reader loads from a cut range
 * (SHMK_FEATURE_CUT_READS_ZERO).
 */
#include "harness.h"

#define NNAMES	8
#define OBJ	(256 << 10)

struct shared {
	volatile int held, cut;		/* held_reader()'s handshake */
	volatile int stop;
	volatile long rounds, finds, iters;
	size_t floor;			/* what the writer shrinks to */
};

static const char *seg;
static struct shared *sh;

static int writer(void *arg)
{
	struct shmk *h;
	char name[32];
	int r;

	(void)arg;
	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	while (!sh->stop) {
		for (int i = 0; i < NNAMES; i++) {
			snprintf(name, sizeof(name), "obj-%d", i);
			if (!shmk_find_or_alloc(h, name, OBJ, NULL))
				return 3;
		}
		for (int i = NNAMES - 1; i >= 0; i--) {
			snprintf(name, sizeof(name), "obj-%d", i);
			if (shmk_remove(h, name))
				return 4;
		}
		r = shmk_shrink(h, sh->floor);
		if (r)
			return 5;
		sh->rounds++;
	}
	return shmk_close(h) ? 6 : 0;
}

static int count_fn(const char *name, void *ptr, size_t size, void *arg)
{
	(void)name;
	(void)ptr;
	(void)size;
	++*(long *)arg;
	return 0;
}

static int reader(void *arg)
{
	struct shmk *h;
	char name[32];
	long n;

	(void)arg;
	if (shmk_open(seg, SHMK_RDONLY, NULL, &h))
		return 2;
	for (long k = 0; !sh->stop; k++) {
		size_t size;

		snprintf(name, sizeof(name), "obj-%ld", k % NNAMES);
		if (shmk_find(h, name, &size) && size != OBJ)
			return 3;
		__atomic_fetch_add(&sh->finds, 1, __ATOMIC_RELAXED);
		n = 0;
		if (k % 8 == 0 && shmk_foreach(h, count_fn, &n) >= 0)
			__atomic_fetch_add(&sh->iters, 1, __ATOMIC_RELAXED);
	}
	return shmk_close(h) ? 4 : 0;
}

/*
 * A reader that still holds a pointer into an object when the writer
 * removes it and shrinks the segment below the object's end: its next load
 * there must see zeros, not fault.
 */
static int held_reader(void *arg)
{
	const volatile unsigned char *p;
	struct shmk *h;
	size_t size;

	(void)arg;
	if (shmk_open(seg, SHMK_RDONLY, NULL, &h))
		return 2;
	p = shmk_find(h, "held", &size);
	if (!p || size != OBJ || p[OBJ - 1] != 0x5a)
		return 3;
	sh->held = 1;
	while (!sh->cut)
		usleep(1000);
	if (p[OBJ - 1])		/* SIGBUS here: exit status 135 */
		return 4;
	return shmk_close(h) ? 5 : 0;
}

static void held_pointer(struct shmk *h, size_t floor)
{
	unsigned char *obj = shmk_find_or_alloc(h, "held", OBJ, NULL);
	pid_t r;

	CHECK(obj && shmk_off(h, obj) + OBJ > floor + (64 << 10));
	memset(obj, 0x5a, OBJ);
	sh->held = sh->cut = 0;
	r = test_fork(held_reader, NULL);
	while (!sh->held)
		usleep(1000);
	CHECK_OK(shmk_remove(h, "held"));
	CHECK_OK(shmk_shrink(h, floor));
	CHECK(shmk_size(h) <= shmk_off(h, obj) + OBJ - 1);
	sh->cut = 1;
	CHECK_EQ(test_wait(r), 0);
}

int main(void)
{
	const int secs = test_small() ? 3 : 2;
	struct shmk *h;
	pid_t w, r[2];

	void *hole, *keep;

	seg = test_name("shrink");
	sh = test_shared(sizeof(*sh));
	h = test_open(seg, SHMK_CREATE, 256 << 10, 64 << 20);
	/*
	 * A free hole low in the heap, for the directory's table when it is
	 * rehashed: otherwise it lands above the objects and no shrink can
	 * pass it.
	 */
	hole = shmk_alloc(h, 8 << 10 | 1024);
	keep = shmk_alloc(h, 8 << 10 | 1024);
	CHECK(hole && keep);
	shmk_free(h, hole);
	sh->floor = shmk_off(h, keep) + (16 << 10);
	held_pointer(h, sh->floor);
	w = test_fork(writer, NULL);
	r[0] = test_fork(reader, NULL);
	r[1] = test_fork(reader, NULL);
	sleep((unsigned int)secs);
	sh->stop = 1;
	CHECK_EQ(test_wait(r[0]), 0);	/* 128 + SIGBUS: a reader faulted */
	CHECK_EQ(test_wait(r[1]), 0);
	CHECK_EQ(test_wait(w), 0);
	printf("%ld shrink rounds, %ld finds, %ld iterations\n", sh->rounds,
	       sh->finds, sh->iters);
	CHECK(sh->rounds > 0 && sh->finds > 0);
	CHECK(shmk_size(h) < (256 << 10));
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_close(h));
	test_pass("shrink");
	return 0;
}
