// SPDX-License-Identifier: GPL-2.0
/*
 * shmk storm: 16 processes attach (creating, read-only or read-write),
 * map, touch, grow (eager and lazy), shrink, kick each other (netlink),
 * unlink and detach (close, exit) at random on a few shared names, while the
 * parent SIGKILLs some of them at random moments and starts others. All of
 * them run in a memory cgroup of their own. Afterwards nothing is left
 * behind: the module's counters read 0, meminfo's Shmem is back to its
 * baseline, the cgroup's memory.current is back to what it was before the
 * storm (no page, no page table charged), and the mm_struct slab holds no
 * more objects than before (no mm reference left). The VM rig then unloads
 * the module and checks the kernel log and kmemleak.
 *
 * SHMK_STORM_SECS sets the duration (default 30 s; make stress: 600).
 */
#include "shmk_test.h"
#include "shmk_nl.h"

#define NPROCS		16
#define NNAMES		4
#define SMAX		MiB(8)
#define CG_ROOT		"/sys/fs/cgroup"
#define CG		CG_ROOT "/shmk-storm"

enum storm_op {
	S_ATTACH, S_MAP, S_TOUCH, S_GROW, S_SHRINK, S_KICK, S_UNLINK,
	S_DETACH, S_EXIT, S_SIGBUS, NR_S,
};

static const char *const s_names[NR_S] = {
	"attach", "map", "touch", "grow", "shrink", "kick", "unlink",
	"detach", "exit", "sigbus",
};

struct storm_shared {
	int stop;
	unsigned long ok[NR_S];
	unsigned long kills;
	char names[NNAMES][SHMK_NAME_MAX];
};

static struct storm_shared *ss;
static sigjmp_buf storm_jb;
static volatile int storm_touching;

static void storm_sigbus(int sig)
{
	(void)sig;
	if (storm_touching)
		siglongjmp(storm_jb, 1);
	_exit(99);
}

static void count(enum storm_op op)
{
	__atomic_fetch_add(&ss->ok[op], 1, __ATOMIC_RELAXED);
}

static uint64_t xs;

static uint64_t rnd(void)
{
	xs ^= xs << 13;
	xs ^= xs >> 7;
	xs ^= xs << 17;
	return xs;
}

struct h {
	int fd;
	char *p;
	size_t len;
	bool ro;
};

/* Touch a few pages of @h; a kicked or shrunk mapping raises SIGBUS. */
static void touch(struct h *h)
{
	volatile char *v = (volatile char *)h->p;
	int i;

	storm_touching = 1;
	if (sigsetjmp(storm_jb, 1)) {
		storm_touching = 0;
		count(S_SIGBUS);
		return;
	}
	for (i = 0; i < 8; i++) {
		size_t off = (rnd() % (h->len / page_size())) * page_size();

		if (h->ro)
			(void)v[off];
		else
			v[off] = (char)i;
	}
	storm_touching = 0;
	count(S_TOUCH);
}

/* Kick a random client of a random segment (as root, CAP_SYS_ADMIN). */
static void kick_one(void)
{
	const char *name = ss->names[rnd() % NNAMES];
	struct nlans a;

	if (nl_clients(name, &a) || !a.nclients)
		return;
	if (!nl_do(SHMK_CMD_CLIENT_KICK, name,
		   a.client_id[rnd() % (unsigned int)a.nclients]))
		count(S_KICK);
}

static int storm_child(int idx, void *arg)
{
	struct h hs[4];
	struct sigaction sa;
	int ctl, i;

	for (i = 0; i < 4; i++) {
		hs[i].fd = -1;
		hs[i].p = NULL;
		hs[i].len = 0;
		hs[i].ro = false;
	}

	(void)arg;
	xs = ((uint64_t)getpid() << 20) ^ now_ns(CLOCK_MONOTONIC) ^
	     (uint64_t)idx;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = storm_sigbus;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	ctl = shmk_open_ctl();
	CHK(ctl >= 0);
	while (!__atomic_load_n(&ss->stop, __ATOMIC_RELAXED)) {
		struct h *h = &hs[rnd() % 4];
		const char *name = ss->names[rnd() % NNAMES];
		struct shmk_resize rs;
		unsigned int r = (unsigned int)(rnd() % 100);

		if (h->fd < 0) {
			__u32 fl = rnd() % 4 ? 0 : SHMK_ATTACH_RDONLY;

			if (rnd() % 2)
				fl |= SHMK_ATTACH_CREATE;
			h->fd = shmk_attach_opts(ctl, name, fl |
						 (rnd() % 3 ? 0 :
						  SHMK_ATTACH_SMALL_PAGES &
						  -(fl & SHMK_ATTACH_CREATE)),
						 0666, MiB(1), SMAX, "storm",
						 NULL);
			if (h->fd >= 0) {
				h->ro = fl & SHMK_ATTACH_RDONLY;
				h->p = NULL;
				count(S_ATTACH);
			}
			continue;
		}
		if (!h->p) {
			h->len = SMAX;
			h->p = mmap(NULL, h->len, h->ro ? PROT_READ :
				    PROT_READ | PROT_WRITE, MAP_SHARED, h->fd, 0);
			if (h->p == MAP_FAILED)
				h->p = NULL;
			else
				count(S_MAP);
			continue;
		}
		memset(&rs, 0, sizeof(rs));
		if (r < 30) {
			touch(h);
		} else if (r < 45) {
			rs.size = (1 + rnd() % 8) * MiB(1);
			rs.flags = rnd() % 2 ? SHMK_GROW_LAZY : 0;
			if (!shmk_ioctl(h->fd, SHMK_IOC_GROW, &rs))
				count(S_GROW);
		} else if (r < 60) {
			rs.size = (rnd() % 8) * MiB(1);
			if (!shmk_ioctl(h->fd, SHMK_IOC_SHRINK, &rs))
				count(S_SHRINK);
		} else if (r < 66) {
			kick_one();
		} else if (r < 72) {
			if (!shmk_unlink_name(ctl, name))
				count(S_UNLINK);
		} else if (r < 90) {
			munmap(h->p, h->len);
			close(h->fd);
			h->fd = -1;
			h->p = NULL;
			count(S_DETACH);
		} else if (r < 91) {
			count(S_EXIT);
			_exit(0);	/* detach by exit, mappings and all */
		} else {
			touch(h);
		}
	}
	return 0;
}

static long long meminfo_kb(const char *key)
{
	char line[256];
	long long v = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * mm_struct objects in use, or -1: SLUB's count after a shrink, which flushes
 * the per-CPU slabs (/proc/slabinfo counts their free objects as active).
 */
static long long mm_structs(void)
{
	sysfs_write_ll("/sys/kernel/slab/mm_struct/shrink", 1);
	return sysfs_read_ll("/sys/kernel/slab/mm_struct/objects");
}

static int cg_write(const char *file, const char *val)
{
	char path[256];
	int fd, ret = 0;

	snprintf(path, sizeof(path), CG "/%s", file);
	if (!strcmp(file, "subtree_control"))
		snprintf(path, sizeof(path), CG_ROOT "/cgroup.subtree_control");
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static long long cg_current(void)
{
	return sysfs_read_ll(CG "/memory.current");
}

static void reap_until_quiet(void)
{
	while (waitpid(-1, NULL, 0) > 0)
		;
}

FIXTURE(storm) {
	int ctl;
	bool cg;
};

FIXTURE_SETUP(storm)
{
	ss = mmap(NULL, sizeof(*ss), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ss);
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	rmdir(CG);
	cg_write("subtree_control", "+memory");
	self->cg = !mkdir(CG, 0755) && cg_current() >= 0;
}

FIXTURE_TEARDOWN(storm)
{
	int i;

	for (i = 0; i < NNAMES; i++)
		shmk_unlink_name(self->ctl, ss->names[i]);
	close(self->ctl);
	if (self->cg)
		rmdir(CG);
}

TEST_F_TIMEOUT(storm, sixteen_processes, 900)
{
	const char *env = getenv("SHMK_STORM_SECS");
	int secs = env ? atoi(env) : 30, i;
	long long shmem0, cg0 = 0, mm0, shmem1, cg1 = 0, mm1, total = 0;
	pid_t pids[NPROCS];
	char pidbuf[32];
	__u64 end;

	if (geteuid() != 0)
		SKIP(return, "needs root (netlink kicks, cgroups, slabinfo)");
	if (secs < 1 || secs > 3600)
		secs = 30;
	for (i = 0; i < NNAMES; i++)
		snprintf(ss->names[i], SHMK_NAME_MAX, "%d-storm-%d", getpid(), i);
	/* The test process joins the cgroup: children inherit it. */
	if (self->cg) {
		snprintf(pidbuf, sizeof(pidbuf), "%d", getpid());
		ASSERT_EQ(0, cg_write("cgroup.procs", pidbuf));
	}
	shmem0 = meminfo_kb("Shmem");
	mm0 = mm_structs();
	if (self->cg)
		cg0 = cg_current();

	for (i = 0; i < NPROCS; i++)
		pids[i] = shmk_fork(NULL, storm_child, i, NULL);
	end = mono_ms() + (__u64)secs * 1000;
	while (mono_ms() < end) {
		int status;
		pid_t pid;

		sleep_ms(20 + (unsigned int)(rnd() % 200));
		/* Restart those that left; kill one now and then. */
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (WIFEXITED(status) && WEXITSTATUS(status)) {
				TH_LOG("child %d exited %d", pid,
				       WEXITSTATUS(status));
				ss->stop = 1;
			}
			if (WIFSIGNALED(status) &&
			    WTERMSIG(status) != SIGKILL) {
				TH_LOG("child %d died of signal %d", pid,
				       WTERMSIG(status));
				ss->stop = 1;
			}
			for (i = 0; i < NPROCS; i++)
				if (pids[i] == pid)
					pids[i] = shmk_fork(NULL, storm_child,
							    i, NULL);
		}
		if (ss->stop)
			break;
		if (rnd() % 3 == 0) {
			i = (int)(rnd() % NPROCS);
			kill(pids[i], SIGKILL);
			ss->kills++;
		}
	}
	EXPECT_EQ(0, ss->stop);
	ss->stop = 1;
	for (i = 0; i < NPROCS; i++)
		shmk_wait(pids[i], 60000);
	reap_until_quiet();
	for (i = 0; i < NNAMES; i++)
		shmk_unlink_name(self->ctl, ss->names[i]);

	for (i = 0; i < NR_S; i++)
		total += (long long)ss->ok[i];
	TH_LOG("%d s, %d processes: %lld operations, %lu kills; attach %lu map %lu touch %lu grow %lu shrink %lu kick %lu unlink %lu detach %lu exit %lu sigbus %lu",
	       secs, NPROCS, total, ss->kills, ss->ok[S_ATTACH],
	       ss->ok[S_MAP], ss->ok[S_TOUCH], ss->ok[S_GROW],
	       ss->ok[S_SHRINK], ss->ok[S_KICK], ss->ok[S_UNLINK],
	       ss->ok[S_DETACH], ss->ok[S_EXIT], ss->ok[S_SIGBUS]);
	/* Every kind of operation happened. */
	for (i = 0; i < NR_S; i++)
		if (i != S_EXIT || secs >= 10)
			EXPECT_LT(0UL, ss->ok[i]) {
				TH_LOG("no successful %s", s_names[i] ?: "?");
			}

	/* Nothing left: counters, Shmem, memcg charge, mm_structs. */
	for (i = 0; i < 100 && (shmk_counter("segments") ||
				shmk_counter("pages") ||
				shmk_counter("clients")); i++)
		sleep_ms(50);
	EXPECT_EQ(0, shmk_counter("segments"));
	EXPECT_EQ(0, shmk_counter("pages"));
	EXPECT_EQ(0, shmk_counter("clients"));
	shmem1 = meminfo_kb("Shmem");
	mm1 = mm_structs();
	if (self->cg)
		cg1 = cg_current();
	TH_LOG("Shmem %lld -> %lld kB; mm_struct %lld -> %lld; memory.current %lld -> %lld",
	       shmem0, shmem1, mm0, mm1, cg0, cg1);
	/* Slack: the rig's own tmpfs use, other processes of the VM. */
	EXPECT_GE(shmem0 + 512, shmem1);
	if (mm0 >= 0)
		EXPECT_GE(mm0 + 4, mm1);
	/* Kernel objects freed by RCU may still be charged for a moment. */
	if (self->cg) {
		for (i = 0; i < 50 && cg1 > cg0 + (long long)MiB(1); i++) {
			sleep_ms(100);
			cg1 = cg_current();
		}
		EXPECT_GE(cg0 + (long long)MiB(1), cg1);
		/* Leave the cgroup so that teardown can remove it. */
		cg_write("subtree_control", "+memory");
		{
			int fd = open(CG_ROOT "/cgroup.procs",
				      O_WRONLY | O_CLOEXEC);

			if (fd >= 0) {
				write(fd, pidbuf, strlen(pidbuf));
				close(fd);
			}
		}
	}
}

TEST_HARNESS_MAIN
