/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Crash recovery under load: in each round, three processes run storms of
 * allocs, frees, creates, finds and removes on one segment, journaling what
 * they own in memory shared with the parent; the parent SIGKILLs a random
 * subset at a random moment and stops the rest. Then shmk_check() must pass
 * (the first lock recovers), and every allocation of either tier is
 * accounted for: each is the directory's, a journaled one, or the one a
 * killed process was allocating. The parent then frees everything the
 * children owned and requires the heap to be back to its empty state, so
 * no block was lost. 200 rounds (30 with SHMK_TEST_SCALE=small).
 */
#include "internal.h"
#include "page_heap.h"
#include "small.h"
#include "directory.h"
#include "harness.h"
#include "blocks.h"

#define NCHILD		3
#define MAXLIVE		1024
#define MAXNAMES	128

enum { IF_NONE, IF_ALLOC, IF_FREE, IF_CREATE, IF_REMOVE };

struct journal {
	volatile int ready, stop;
	volatile int inflight;
	volatile uint64_t inflight_off;
	char inflight_name[32];
	volatile uint64_t nlive, nnames;
	uint64_t live[MAXLIVE];
	char names[MAXNAMES][32];
	uint64_t ops;
};

static const char *seg;
static struct journal *journals;

#define JBARRIER() __atomic_thread_fence(__ATOMIC_SEQ_CST)

static int storm(void *arg)
{
	int id = (int)(intptr_t)arg;
	struct journal *j = &journals[id];
	struct shmk *h;
	uint64_t seq = 0;

	int ret;

	test_rng_state ^= (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
	ret = shmk_open(seg, 0, NULL, &h);
	if (ret) {
		fprintf(stderr, "child %d: shmk_open: %s\n", id, strerror(-ret));
		return 2;
	}
	j->ready = 1;
	while (!j->stop) {
		uint64_t r = rnd_below(100);

		j->ops++;
		if (r < 40 && j->nlive < MAXLIVE) {
			size_t n = rnd_below(4) ? rnd_below(600)
						: rnd_below(40000);
			uint8_t *p;

			j->inflight = IF_ALLOC;
			JBARRIER();
			p = shmk_alloc(h, n);
			if (p) {
				memset(p, 0x5a, n < 64 ? n : 64);
				j->live[j->nlive] = shmk_off(h, p);
				JBARRIER();
				j->nlive++;
			}
			JBARRIER();
			j->inflight = IF_NONE;
		} else if (r < 75 && j->nlive) {
			uint64_t i = rnd_below(j->nlive), off = j->live[i];

			j->inflight_off = off;
			JBARRIER();
			j->inflight = IF_FREE;
			JBARRIER();
			shmk_free(h, shmk_ptr(h, off));
			JBARRIER();
			j->live[i] = j->live[j->nlive - 1];
			JBARRIER();
			j->nlive--;
			JBARRIER();
			j->inflight = IF_NONE;
		} else if (r < 88 && j->nnames < MAXNAMES) {
			char name[32];
			uint8_t *p;
			int created;

			snprintf(name, sizeof(name), "c%d-%llu", id,
				 (unsigned long long)seq++);
			memcpy(j->inflight_name, name, sizeof(name));
			JBARRIER();
			j->inflight = IF_CREATE;
			JBARRIER();
			p = shmk_find_or_alloc(h, name, 16 + rnd_below(3000),
					       &created);
			if (p) {
				if (!created)
					return 3;
				p[0] = (uint8_t)id;
				memcpy(j->names[j->nnames], name, 32);
				JBARRIER();
				j->nnames++;
			}
			JBARRIER();
			j->inflight = IF_NONE;
		} else if (r < 95 && j->nnames) {
			uint64_t i = rnd_below(j->nnames);

			memcpy(j->inflight_name, j->names[i], 32);
			JBARRIER();
			j->inflight = IF_REMOVE;
			JBARRIER();
			if (shmk_remove(h, j->inflight_name))
				return 4;
			memcpy(j->names[i], j->names[j->nnames - 1], 32);
			JBARRIER();
			j->nnames--;
			JBARRIER();
			j->inflight = IF_NONE;
		} else if (j->nnames) {
			uint8_t *p = shmk_find(h, j->names[rnd_below(j->nnames)],
					       NULL);

			if (!p || p[0] != (uint8_t)id)
				return 5;
		}
	}
	shmk_close(h);
	return 0;
}

/* ---- accounting -------------------------------------------------------- */

struct dir_acc {
	struct blocks *expected;
	const struct shmk *h;
};

static int dir_fn(const char *name, void *ptr, size_t size, void *arg)
{
	struct dir_acc *a = arg;

	(void)size;
	blocks_add(a->expected, shmk_off(a->h, ptr) -
				dir_obj_delta(strlen(name)));
	return 0;
}

static bool journal_has_name(const struct journal *j, const char *name)
{
	for (uint64_t i = 0; i < j->nnames; i++)
		if (!strncmp(j->names[i], name, 32))
			return true;
	return false;
}

struct name_check {
	const struct journal *js;
};

/* Every named object belongs to a journal, or is a killed create. */
static int name_owner_fn(const char *name, void *ptr, size_t size, void *arg)
{
	const struct journal *js = arg;

	(void)ptr;
	(void)size;
	for (int c = 0; c < NCHILD; c++)
		if (journal_has_name(&js[c], name) ||
		    (js[c].inflight == IF_CREATE &&
		     !strncmp(js[c].inflight_name, name, 32)))
			return 0;
	fprintf(stderr, "named object %s has no owner\n", name);
	return -1;
}

static long account(struct shmk *h, const bool *killed)
{
	struct blocks used = { 0 }, expected = { 0 };
	struct dir_acc da = { &expected, h };
	long extra = 0, allowed = 0;
	size_t sz;

	CHECK_OK(shmk__alloc_walk(h, blocks_walk_fn, &used));
	blocks_sort(&used);
	blocks_add(&expected, h->hdr->dir_table);
	CHECK(shmk_foreach(h, dir_fn, &da) >= 0);
	for (int c = 0; c < NCHILD; c++) {
		const struct journal *j = &journals[c];

		CHECK(killed[c] || j->inflight == IF_NONE);
		for (uint64_t i = 0; i < j->nlive; i++)
			if (j->inflight != IF_FREE ||
			    j->live[i] != j->inflight_off)
				blocks_add(&expected, j->live[i]);
		/* A block being freed, or allocated: at most one each. */
		if (j->inflight == IF_FREE || j->inflight == IF_ALLOC)
			allowed++;
		for (uint64_t i = 0; i < j->nnames; i++) {
			const char *name = j->names[i];

			if (j->inflight == IF_REMOVE &&
			    !strncmp(name, j->inflight_name, 32))
				continue;
			CHECK(shmk_find(h, name, &sz) != NULL);
		}
	}
	CHECK_EQ(shmk_foreach(h, name_owner_fn, journals) >= 0, 1);
	blocks_sort(&expected);

	/* Journaled blocks are allocated (but a free may have finished). */
	for (int c = 0; c < NCHILD; c++) {
		const struct journal *j = &journals[c];

		for (uint64_t i = 0; i < j->nlive; i++) {
			if (j->inflight == IF_FREE &&
			    j->live[i] == j->inflight_off)
				continue;
			if (!blocks_has(&used, j->live[i])) {
				fprintf(stderr, "child %d: block %#llx lost\n",
					c, (unsigned long long)j->live[i]);
				test_fail();
			}
		}
	}
	/* Allocated blocks are expected, but for killed allocs and frees. */
	for (size_t i = 0; i < used.n; i++) {
		if (blocks_has(&expected, used.off[i]))
			continue;
		extra++;
		shmk_free(h, shmk_ptr(h, used.off[i]));
	}
	if (extra > allowed) {
		fprintf(stderr, "%ld unaccounted blocks, %ld allowed\n", extra,
			allowed);
		test_fail();
	}
	free(used.off);
	free(expected.off);
	return extra;
}

/* Free everything the children owned: the heap must be empty again. */
static void clean(struct shmk *h)
{
	struct shmk_stats st;

	for (int c = 0; c < NCHILD; c++) {
		struct journal *j = &journals[c];

		/* Not the one being freed: account() did, if need be. */
		for (uint64_t i = 0; i < j->nlive; i++)
			if (j->inflight != IF_FREE ||
			    j->live[i] != j->inflight_off)
				shmk_free(h, shmk_ptr(h, j->live[i]));
		for (uint64_t i = 0; i < j->nnames; i++)
			shmk_remove(h, j->names[i]);
		if (j->inflight == IF_CREATE)
			shmk_remove(h, j->inflight_name);
	}
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.live_allocs, 0);
	CHECK_EQ(st.named_objects, 0);
	/* Only the directory's table is left (it may have grown). */
	CHECK_EQ(st.used_bytes, blk_size(shmk__rd(h, h->hdr->dir_table - 8)));
	/* Every slot is free; trimming gives every run back. */
	CHECK_EQ(st.cached_bytes, h->hdr->small_bytes);
	CHECK_OK(shmk_shrink(h, shmk_size(h)));
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.cached_bytes, 0);
	CHECK_EQ(h->hdr->run_blocks, 1);	/* the run map */
	CHECK(st.free_blocks <= 3);	/* around the table and the map */
}

int main(void)
{
	const int rounds = test_small() ? 30 : 200;
	long kills = 0, extras = 0, ops = 0;
	struct shmk_stats st;
	struct shmk *h;

	test_seed();
	seg = test_name("crash");
	journals = test_shared(NCHILD * sizeof(*journals));
	h = test_open(seg, SHMK_CREATE, 1 << 20, 256 << 20);

	for (int round = 0; round < rounds; round++) {
		pid_t pids[NCHILD];
		bool killed[NCHILD];
		unsigned int mask = 1 + (unsigned int)rnd_below((1 << NCHILD) - 1);

		memset(journals, 0, NCHILD * sizeof(*journals));
		for (int c = 0; c < NCHILD; c++)
			pids[c] = test_fork(storm, (void *)(intptr_t)c);
		for (int c = 0; c < NCHILD; c++) {
			while (!journals[c].ready) {
				int ws;

				if (waitpid(pids[c], &ws, WNOHANG) == pids[c]) {
					fprintf(stderr, "child %d ended early: "
						"%#x\n", c, ws);
					test_fail();
				}
				usleep(100);
			}
		}
		usleep((useconds_t)rnd_below(3000));
		for (int c = 0; c < NCHILD; c++) {
			killed[c] = mask & (1u << c);
			if (killed[c]) {
				kill(pids[c], SIGKILL);
				kills++;
			} else {
				journals[c].stop = 1;
			}
		}
		for (int c = 0; c < NCHILD; c++) {
			int r = test_wait(pids[c]);

			CHECK_EQ(r, killed[c] ? 128 + SIGKILL : 0);
			ops += (long)journals[c].ops;
		}
		CHECK_OK(shmk_check(h));
		extras += account(h, killed);
		clean(h);
	}
	CHECK_OK(shmk_stats(h, &st));
	printf("%d rounds, %ld kills, %ld operations, %llu recoveries, "
	       "%ld killed allocations found and freed\n", rounds, kills, ops,
	       (unsigned long long)st.recoveries, extras);
	CHECK(st.recoveries > 0);
	CHECK_OK(shmk_close(h));
	test_pass("crash");
	return 0;
}
