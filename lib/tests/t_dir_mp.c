/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * shmk_find_or_alloc() is atomic across processes: six processes, released
 * together, race for the same 300 names in different orders while removing
 * and recreating a private set. For every shared name exactly one process
 * is told it created the object, and every process gets the same offset.
 */
#include "harness.h"

#define NPROC	6
#define NNAMES	300

struct shared {
	volatile int go;
	uint64_t off[NPROC][NNAMES];
	int created[NPROC][NNAMES];
};

static const char *seg;
static struct shared *sh;

static int racer(void *arg)
{
	int id = (int)(intptr_t)arg;
	int order[NNAMES];
	struct shmk *h;

	test_rng_state ^= (uint64_t)(id + 1) * 0x9e3779b97f4a7c15ULL;
	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	for (int i = 0; i < NNAMES; i++)
		order[i] = i;
	for (int i = NNAMES - 1; i > 0; i--) {
		int j = (int)rnd_below((uint64_t)i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	while (!sh->go)
		;
	for (int k = 0; k < NNAMES; k++) {
		int i = order[k], created;
		char name[32], mine[32];
		uint32_t *p;

		snprintf(name, sizeof(name), "shared-%d", i);
		p = shmk_find_or_alloc(h, name, 64 + (size_t)i, &created);
		if (!p)
			return 3;
		if (created)
			__atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
		sh->off[id][i] = shmk_off(h, p);
		sh->created[id][i] = created;
		/* private churn between the races */
		snprintf(mine, sizeof(mine), "private-%d-%d", id, k % 5);
		if (!shmk_find_or_alloc(h, mine, 200, &created))
			return 4;
		if (k % 3 == 0 && shmk_remove(h, mine))
			return 5;
	}
	return shmk_close(h) ? 6 : 0;
}

int main(void)
{
	pid_t pids[NPROC];
	struct shmk *h;
	long creators = 0;

	test_seed();
	seg = test_name("dirmp");
	sh = test_shared(sizeof(*sh));
	h = test_open(seg, SHMK_CREATE, 1 << 20, 64 << 20);
	for (int i = 0; i < NPROC; i++)
		pids[i] = test_fork(racer, (void *)(intptr_t)i);
	usleep(20000);
	sh->go = 1;
	for (int i = 0; i < NPROC; i++)
		CHECK_EQ(test_wait(pids[i]), 0);

	for (int n = 0; n < NNAMES; n++) {
		char name[32];
		int c = 0;
		size_t sz;
		uint32_t *p;

		for (int i = 0; i < NPROC; i++) {
			c += sh->created[i][n];
			CHECK_EQ(sh->off[i][n], sh->off[0][n]);
		}
		CHECK_EQ(c, 1);
		creators += c;
		snprintf(name, sizeof(name), "shared-%d", n);
		p = shmk_find(h, name, &sz);
		CHECK(p && shmk_off(h, p) == sh->off[0][n]);
		CHECK_EQ(sz, 64 + n);
		CHECK_EQ(*p, 1);	/* initialized by its one creator */
	}
	CHECK_OK(shmk_check(h));
	printf("%d processes, %d names, %ld creators\n", NPROC, NNAMES,
	       creators);
	CHECK_OK(shmk_close(h));
	test_pass("dir_mp");
	return 0;
}
