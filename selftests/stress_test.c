// SPDX-License-Identifier: GPL-2.0
/*
 * shmk stress: several processes attach, map, grow (eager and lazy),
 * shrink, write and verify their own data, probe, close and unlink a few
 * shared names at random while the parent SIGKILLs some of them at random
 * moments. At the end nothing is left: the global counters read 0.
 *
 * SHMK_STRESS_SECS sets the duration (default 5 s, at most 500).
 */
#include "shmk_test.h"

#define NWORKERS	6
#define NNAMES		3
#define SLOT		KiB(64)			/* each worker's own range */
#define FLOOR		(NWORKERS * SLOT)	/* never shrunk below */
#define SMAX		MiB(4)

struct stress_shared {
	int stop;
	unsigned long ops[NWORKERS];
	unsigned long resizes[NWORKERS];
	unsigned long sigbus[NWORKERS];
	char names[NNAMES][SHMK_NAME_MAX];
};

struct handle {
	int fd;
	char *p;
	const struct shmk_status *st;
	bool ro;
	__u32 version;	/* 0: nothing written through this handle yet */
};

FIXTURE(stress) {
	pid_t pids[NWORKERS];
	struct stress_shared *sh;
};

FIXTURE_SETUP(stress)
{
	int i;

	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	for (i = 0; i < NNAMES; i++) {
		char tag[8];

		snprintf(tag, sizeof(tag), "st%d", i);
		SHMK_NAME(self->sh->names[i], tag);
		shmk_track(self->sh->names[i]);
	}
}

FIXTURE_TEARDOWN(stress)
{
	shmk_kill_children(NWORKERS, self->pids);
	shmk_cleanup();
}

static inline __u64 slot_val(int idx, __u32 version, size_t word)
{
	return ((__u64)idx << 56) ^ ((__u64)version << 24) ^
	       (word * 0x9e3779b97f4a7c15ULL >> 8);
}

static __u64 *slot_of(struct handle *h, int idx)
{
	return (__u64 *)(h->p + idx * SLOT);
}

static void slot_fill(struct handle *h, int idx)
{
	__u64 *s = slot_of(h, idx);
	size_t i;

	h->version++;
	for (i = 0; i < SLOT / sizeof(__u64); i++)
		s[i] = slot_val(idx, h->version, i);
}

static long slot_bad(struct handle *h, int idx)
{
	__u64 *s = slot_of(h, idx);
	long bad = 0;
	size_t i;

	if (h->p == MAP_FAILED || !h->version)
		return 0;
	for (i = 0; i < SLOT / sizeof(__u64); i++)
		bad += s[i] != slot_val(idx, h->version, i);
	return bad;
}

static int handle_close(struct handle *h, int idx)
{
	CHK_EQ(0, slot_bad(h, idx));
	if (h->st)
		munmap((void *)h->st, page_size());
	if (h->p != MAP_FAILED)
		munmap(h->p, SMAX);
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->p = MAP_FAILED;
	h->st = NULL;
	h->version = 0;
	return 0;
}

static __u64 rnd_size(__u64 *rnd)
{
	__u64 lo = FLOOR / page_size(), hi = SMAX / page_size();

	return (lo + rnd_range(rnd, hi - lo + 1)) * page_size();
}

/* Between FLOOR and the middle of the reservation. */
static __u64 size_for_create(__u64 *rnd)
{
	__u64 lo = FLOOR / page_size(), hi = SMAX / 2 / page_size();

	return (lo + rnd_range(rnd, hi - lo + 1)) * page_size();
}

enum {
	OP_ATTACH, OP_MAP, OP_GROW, OP_SHRINK, OP_WRITE, OP_PROBE,
	OP_CLOSE, OP_UNLINK, OP_INFO, OP_STATUS, NR_OPS
};

static int worker_op(struct stress_shared *sh, int idx, int ctl,
		     struct handle *hs, __u64 *rnd)
{
	int k = (int)rnd_range(rnd, NNAMES);
	struct handle *h = &hs[k];
	struct shmk_status snap;
	struct shmk_attach a;
	struct shmk_info info;
	struct shmk_resize r;
	__u64 size, off;
	__u32 total;
	int ret, sig;

	switch (rnd_range(rnd, NR_OPS)) {
	case OP_ATTACH:
		if (h->fd >= 0)
			break;
		h->ro = rnd_range(rnd, 8) == 0;
		h->fd = shmk_attach_opts(ctl, sh->names[k], SHMK_ATTACH_CREATE |
					 (h->ro ? SHMK_ATTACH_RDONLY : 0),
					 0600, size_for_create(rnd), SMAX,
					 "stress", &a);
		CHK(h->fd >= 0);
		CHK(shmk_get_info(h->fd, &info) == 0);
		CHK_EQ(SMAX, info.max_size);
		CHK(info.size >= FLOOR && info.size <= SMAX);
		break;
	case OP_MAP:
		if (h->fd < 0 || h->p != MAP_FAILED)
			break;
		h->p = shmk_map(h->fd, SMAX, h->ro ? PROT_READ :
				PROT_READ | PROT_WRITE);
		CHK(h->p != MAP_FAILED);
		if (!h->ro)
			slot_fill(h, idx);
		break;
	case OP_GROW:
		if (h->fd < 0 || h->ro)
			break;
		size = rnd_size(rnd);
		ret = shmk_grow(h->fd, size, rnd_range(rnd, 2) ?
				SHMK_GROW_LAZY : 0, &r);
		CHK_EQ(0, ret);
		CHK_EQ(r.old_size > size ? r.old_size : size, r.new_size);
		sh->resizes[idx]++;
		break;
	case OP_SHRINK:
		if (h->fd < 0 || h->ro)
			break;
		size = rnd_size(rnd);
		ret = shmk_shrink(h->fd, size, &r);
		CHK_EQ(0, ret);
		CHK_EQ(r.old_size < size ? r.old_size : size, r.new_size);
		sh->resizes[idx]++;
		break;
	case OP_WRITE:
		if (h->p == MAP_FAILED || h->ro)
			break;
		CHK_EQ(0, slot_bad(h, idx));
		slot_fill(h, idx);
		CHK_EQ(0, slot_bad(h, idx));
		break;
	case OP_PROBE:
		if (h->p == MAP_FAILED)
			break;
		off = FLOOR + rnd_range(rnd, SMAX - FLOOR);
		sig = h->ro ? shmk_probe_read(h->p + off) :
			      shmk_probe_write(h->p + off, (char)idx);
		CHK(sig == 0 || sig == SIGBUS);
		if (sig)
			sh->sigbus[idx]++;
		CHK_EQ(0, shmk_probe_read(h->p + idx * SLOT));
		break;
	case OP_CLOSE:
		if (h->fd < 0)
			break;
		CHK_EQ(0, handle_close(h, idx));
		break;
	case OP_UNLINK:
		ret = shmk_unlink_name(ctl, sh->names[k]);
		CHK(ret == 0 || ret == -ENOENT);
		break;
	case OP_INFO:
		if (h->fd < 0)
			break;
		CHK(shmk_get_info(h->fd, &info) == 0);
		CHK(info.size >= FLOOR && info.size <= SMAX);
		CHK(info.nr_clients >= 1);
		CHK(shmk_list_clients(h->fd, NULL, 0, NULL, &total) == 0);
		CHK(total >= 1);
		CHK(shmk_lookup(h->fd, "stress", NULL, NULL) == 0);
		break;
	case OP_STATUS:
		if (h->fd < 0)
			break;
		if (!h->st) {
			h->st = shmk_map_status(h->fd);
			CHK(h->st != NULL);
		}
		CHK(shmk_status_read(h->st, &snap, 5000) >= 0);
		CHK_EQ(SHMK_STATUS_MAGIC, snap.magic);
		CHK(snap.size >= FLOOR && snap.size <= SMAX);
		CHK_EQ(SMAX, snap.max_size);
		break;
	}
	CHK_EQ(0, slot_bad(h, idx));
	return 0;
}

static int worker(int idx, void *arg)
{
	struct stress_shared *sh = arg;
	struct handle hs[NNAMES];
	__u64 rnd = now_ns(CLOCK_MONOTONIC) ^ ((__u64)getpid() << 32);
	int ctl, k;

	shmk_probe_setup();
	for (k = 0; k < NNAMES; k++) {
		hs[k].fd = -1;
		hs[k].p = MAP_FAILED;
		hs[k].st = NULL;
		hs[k].version = 0;
	}
	ctl = shmk_open_ctl();
	CHK(ctl >= 0);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		if (worker_op(sh, idx, ctl, hs, &rnd))
			return 1;
		sh->ops[idx]++;
	}
	for (k = 0; k < NNAMES; k++)
		if (handle_close(&hs[k], idx))
			return 1;
	close(ctl);
	return 0;
}

static int stress_secs(void)
{
	const char *e = getenv("SHMK_STRESS_SECS");
	int secs = e ? atoi(e) : 5;

	if (secs < 1)
		secs = 1;
	if (secs > 500)
		secs = 500;
	return secs;
}

/* Reads @which until it is 0 or 2 s passed; returns the last value. */
static long long settle(const char *which, int *waited_ms)
{
	__u64 end = mono_ms() + 2000, t0 = mono_ms();
	long long v;

	while ((v = shmk_counter(which)) != 0 && mono_ms() < end)
		sleep_ms(10);
	*waited_ms = (int)(mono_ms() - t0);
	return v;
}

TEST_F_TIMEOUT(stress, random_ops, 600)
{
	static const char *const counters[] = { "segments", "pages",
						"clients" };
	unsigned long ops = 0, resizes = 0, sigbus = 0, kills = 0;
	int secs = stress_secs(), failures = 0, i, status, waited;
	__u64 rnd = 12345, end;
	long long v;
	pid_t pid;
	int ctl;

	TH_LOG("%d workers for %d s", NWORKERS, secs);
	ASSERT_EQ(0, shmk_fork_children(NWORKERS, self->pids, NULL, worker,
					self->sh));

	end = mono_ms() + secs * 1000ULL;
	while (mono_ms() < end) {
		sleep_ms(30 + rnd_range(&rnd, 250));
		i = (int)rnd_range(&rnd, NWORKERS);
		pid = self->pids[i];
		kill(pid, SIGKILL);
		status = shmk_wait(pid, 20000);
		self->pids[i] = 0;
		if (status < 0 || !WIFSIGNALED(status) ||
		    WTERMSIG(status) != SIGKILL) {
			shmk_status_ok(pid, status);
			failures++;
		}
		kills++;
		self->pids[i] = shmk_fork(NULL, worker, i, self->sh);
		ASSERT_LT(0, self->pids[i]);
	}
	__atomic_store_n(&self->sh->stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < NWORKERS; i++) {
		if (!shmk_status_ok(self->pids[i],
				    shmk_wait(self->pids[i], 60000)))
			failures++;
		self->pids[i] = 0;
	}
	for (i = 0; i < NWORKERS; i++) {
		ops += self->sh->ops[i];
		resizes += self->sh->resizes[i];
		sigbus += self->sh->sigbus[i];
	}
	TH_LOG("%lu ops, %lu resizes, %lu SIGBUS probes, %lu kills", ops,
	       resizes, sigbus, kills);
	EXPECT_EQ(0, failures);
	EXPECT_LT(0ul, resizes);

	ctl = shmk_open_ctl();
	ASSERT_LE(0, ctl);
	for (i = 0; i < NNAMES; i++) {
		int ret = shmk_unlink_name(ctl, self->sh->names[i]);

		EXPECT_TRUE(ret == 0 || ret == -ENOENT) TH_LOG("unlink: %d",
							       ret);
	}
	close(ctl);

	for (i = 0; i < 3; i++) {
		v = settle(counters[i], &waited);
		EXPECT_EQ(0, v) TH_LOG("%s still %lld", counters[i], v);
		if (!v && waited > 0)
			TH_LOG("%s took %d ms to reach 0", counters[i],
			       waited);
	}
}

TEST_HARNESS_MAIN
