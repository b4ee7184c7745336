/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Read-only clients: they map the segment read-only, cannot allocate or
 * change anything (EPERM, and a write faults), and read the directory
 * lock-free: while a writer storms creates, removes and allocations, two
 * readers keep finding objects and iterating, and always see sizes and
 * contents that belong together, and a consistent heap (shmk_check()).
 */
#include "harness.h"

#define NFIXED	100
#define NDYN	400

struct shared {
	volatile int stop;
	volatile long finds, iters, checks;
};

static const char *seg;
static struct shared *sh;

static size_t fixed_size(int i)
{
	return 8 + (size_t)i * 3;
}

static size_t dyn_size(int i)
{
	return 16 + (size_t)(i * 37) % 5000;
}

static int writer(void *arg)
{
	struct shmk *h;
	void *noise[64] = { 0 };

	(void)arg;
	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	for (long k = 0; !sh->stop; k++) {
		int i = (int)rnd_below(NDYN), created;
		char name[32];
		uint32_t *p;

		snprintf(name, sizeof(name), "dyn-%d", i);
		if (rnd_below(2)) {
			p = shmk_find_or_alloc(h, name, dyn_size(i), &created);
			if (!p)
				return 3;
		} else {
			int r = shmk_remove(h, name);

			if (r && r != -ENOENT)
				return 4;
		}
		i = (int)rnd_below(64);
		shmk_free(h, noise[i]);
		noise[i] = shmk_alloc(h, rnd_below(2000));
		if (k % 200 == 0)
			usleep(500);	/* let a reader's full check through */
	}
	return shmk_close(h) ? 5 : 0;
}

struct it {
	int n;
	unsigned char seen[NDYN + NFIXED];
	int bad;
};

static int iter_fn(const char *name, void *ptr, size_t size, void *arg)
{
	struct it *it = arg;
	int i;

	if (sscanf(name, "fixed-%d", &i) == 1 && i < NFIXED) {
		if (size != fixed_size(i) || *(uint32_t *)ptr != (uint32_t)i ||
		    it->seen[NDYN + i]++)
			it->bad = 1;
	} else if (sscanf(name, "dyn-%d", &i) == 1 && i < NDYN) {
		if (size != dyn_size(i) || it->seen[i]++)
			it->bad = 1;
	} else {
		it->bad = 1;
	}
	it->n++;
	return 0;
}

static int reader(void *arg)
{
	struct shmk *h;
	int r;

	(void)arg;
	if (shmk_open(seg, SHMK_RDONLY, NULL, &h))
		return 2;
	for (bool last = false; !last;) {
		int i = (int)rnd_below(NDYN + NFIXED);
		char name[32];
		size_t sz;
		uint32_t *p;

		if (i < NFIXED) {
			snprintf(name, sizeof(name), "fixed-%d", i);
			p = shmk_find(h, name, &sz);
			if (!p || sz != fixed_size(i) || *p != (uint32_t)i)
				return 3;
		} else {
			i -= NFIXED;
			snprintf(name, sizeof(name), "dyn-%d", i);
			p = shmk_find(h, name, &sz);
			if (p && sz != dyn_size(i))
				return 4;
			if (!p && errno != ENOENT)
				return 5;
		}
		__atomic_fetch_add(&sh->finds, 1, __ATOMIC_RELAXED);
		last = sh->stop;	/* then iterate and check once more */
		if (last || rnd_below(500) == 0) {
			struct it it = { 0 };

			r = shmk_foreach(h, iter_fn, &it);
			if (r < 0 || it.bad || r != it.n)
				return 6;
			for (int k = 0; k < NFIXED; k++)
				if (!it.seen[NDYN + k])
					return 7;
			__atomic_fetch_add(&sh->iters, 1, __ATOMIC_RELAXED);
		}
		if (last || rnd_below(5000) == 0) {
			r = shmk_check(h);
			if (r && r != -EAGAIN)
				return 8;
			if (!r)
				__atomic_fetch_add(&sh->checks, 1,
						   __ATOMIC_RELAXED);
		}
	}
	return shmk_close(h) ? 9 : 0;
}

static void segv_handler(int sig)
{
	(void)sig;
	_exit(42);
}

static int writes_to_reader(void *arg)
{
	struct sigaction sa = { .sa_handler = segv_handler };
	struct shmk *h;
	volatile uint32_t *p;

	(void)arg;
	sigaction(SIGSEGV, &sa, NULL);	/* ours, not the sanitizer's */
	if (shmk_open(seg, SHMK_RDONLY, NULL, &h))
		return 2;
	p = shmk_find(h, "fixed-1", NULL);
	if (!p)
		return 3;
	*p = 5;			/* must fault */
	return 4;
}

int main(void)
{
	struct shmk_client clients[8];
	struct shmk_stats st;
	struct shmk *h, *rh;
	pid_t pids[3];
	size_t sz;
	int n, found = 0;

	test_seed();
	seg = test_name("reader");
	sh = test_shared(sizeof(*sh));
	h = test_open(seg, SHMK_CREATE, 1 << 20, 64 << 20);
	for (int i = 0; i < NFIXED; i++) {
		char name[32];
		uint32_t *p;

		snprintf(name, sizeof(name), "fixed-%d", i);
		p = shmk_find_or_alloc(h, name, fixed_size(i), NULL);
		CHECK(p);
		*p = (uint32_t)i;
	}

	/* What a reader may and may not do */
	CHECK_OK(shmk_open(seg, SHMK_RDONLY, NULL, &rh));
	CHECK_NULL_ERRNO(shmk_alloc(rh, 10), EPERM);
	CHECK_NULL_ERRNO(shmk_alloc_aligned(rh, 10, 64), EPERM);
	CHECK_NULL_ERRNO(shmk_find_or_alloc(rh, "new", 10, NULL), EPERM);
	CHECK_NULL_ERRNO(shmk_find_or_alloc(rh, "fixed-3", 10, NULL), EPERM);
	CHECK_ERR(shmk_remove(rh, "fixed-3"), EPERM);
	CHECK_ERR(shmk_grow(rh, 4 << 20), EPERM);
	CHECK_ERR(shmk_shrink(rh, 0), EPERM);
	shmk_free(rh, shmk_find(rh, "fixed-3", NULL));	/* ignored */
	CHECK(*(uint32_t *)shmk_find(rh, "fixed-3", &sz) == 3 && sz == 17);
	CHECK_EQ(shmk_size(rh), shmk_size(h));
	CHECK_OK(shmk_check(rh));
	CHECK_OK(shmk_stats(rh, &st));
	CHECK_EQ(st.named_objects, NFIXED);
	n = shmk_clients(h, clients, 8);
	CHECK(n >= 1);
	for (int i = 0; i < n && i < 8; i++)
		found += !!(clients[i].flags & SHMK_CLIENT_RDONLY);
	CHECK_EQ(found, 1);
	CHECK_EQ(test_wait(test_fork(writes_to_reader, NULL)), 42);

	/* A writer storms while two readers read */
	pids[0] = test_fork(writer, NULL);
	pids[1] = test_fork(reader, NULL);
	test_rng_state++;
	pids[2] = test_fork(reader, NULL);
	usleep(test_small() ? 1000000 : 1500000);
	sh->stop = 1;
	for (int i = 0; i < 3; i++)
		CHECK_EQ(test_wait(pids[i]), 0);
	printf("readers: %ld finds, %ld iterations, %ld full checks\n",
	       sh->finds, sh->iters, sh->checks);
	CHECK(sh->finds > (test_small() ? 10 : 1000));
	CHECK(sh->iters >= 2 && sh->checks >= 1);
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_check(rh));
	CHECK_OK(shmk_close(rh));
	CHECK_OK(shmk_close(h));
	test_pass("reader");
	return 0;
}
