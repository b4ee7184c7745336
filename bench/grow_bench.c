// SPDX-License-Identifier: GPL-2.0
/*
 * grow_bench: how long until every peer has written every page of a grown
 * shared segment, for shmk and for the memfd peers of the same run.
 *
 * Modes, per peer count and growth size:
 *   eager    shmk SHMK_IOC_GROW on a segment with 2 MiB pages (the default):
 *            pages installed in every peer by the grow
 *   eager4k  the same on a segment created with SHMK_ATTACH_SMALL_PAGES
 *            (4 KiB pages; on a module without the flag, its only mode)
 *   lazy     shmk SHMK_IOC_GROW with SHMK_GROW_LAZY: peers fault pages in
 *   memfd    a memfd mapped at its maximum size in each peer, grown with
 *            ftruncate(); peers fault pages in
 *   populate as memfd, each peer first calls MADV_POPULATE_WRITE on the new
 *            range after it is told of the growth
 *   touch    no grow: the segment (2 MiB pages) already has its final size
 *            and every peer has it mapped (MADV_POPULATE_WRITE) before t0;
 *            the peers only write their byte per page. What the peers'
 *            own writes cost (TLB misses; under QEMU TCG, its soft TLB
 *            fills), which no way of giving them the memory can remove
 *
 * A round: the peers (forked, attached and mapped beforehand) wait on a
 * pipe; the grower takes t0, grows, and wakes them; each writes one byte in
 * every new page and reports when it is done and its minor faults. The
 * round's time is the last peer's finish minus t0. Each configuration runs
 * REPS times; the median is reported. Output: CSV on stdout.
 *
 * Two floors, per growth size, reported with peers = 0: what no design of
 * peer mapping can beat.
 *   fill     one process populates a fresh memfd of that size with
 *            MADV_POPULATE_WRITE, one thread per CPU on its own slice
 *            (allocating and clearing the pages once, for one process)
 *   memset   one thread per CPU clears its slice of that memfd, already
 *            populated: clearing the bytes, with no allocation or mapping
 *
 * With -v N every peer first makes N one-page anonymous mappings of its own
 * (alternately readable and not, so that they do not merge): what a grow
 * costs when the peers' address spaces are large.
 *
 * Usage: grow_bench [-r REPS] [-p PEERS,...] [-s MIB,...] [-v VMAS]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/shmk.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define MIB		(1UL << 20)
#define BASE_SIZE	(4 * MIB)
#define MAX_PEERS	8
#define PAGE		4096UL

enum mode { EAGER, EAGER4K, LAZY, TOUCH, MEMFD, POPULATE, NR_MODES };
static const char *const mode_names[] = {
	"eager", "eager4k", "lazy", "touch", "memfd", "populate",
};
#define IS_SHMK(m)	((m) <= TOUCH)

struct result {
	double done;	/* CLOCK_MONOTONIC seconds */
	long minflt;
};

static void die(const char *what)
{
	fprintf(stderr, "grow_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static int shmk_attach(const char *name, uint32_t flags, size_t max,
		       bool full)
{
	struct shmk_attach a = {
		.flags = flags, .mode = 0600, .max_size = max,
		.size = (flags & SHMK_ATTACH_CREATE) && full ? max : BASE_SIZE,
	};
	int ctl, fd;

	snprintf(a.name, sizeof(a.name), "%s", name);
	ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		die("open " SHMK_DEVICE);
	fd = ioctl(ctl, SHMK_IOC_ATTACH, &a);
	/* A module from before huge pages has 4 KiB pages only. */
	if (fd < 0 && errno == EINVAL && (flags & SHMK_ATTACH_SMALL_PAGES)) {
		a.flags &= ~SHMK_ATTACH_SMALL_PAGES;
		fd = ioctl(ctl, SHMK_IOC_ATTACH, &a);
	}
	if (fd < 0)
		die("attach");
	close(ctl);
	return fd;
}

static void shmk_unlink(const char *name)
{
	struct shmk_unlink u = { 0 };
	int ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);

	snprintf(u.name, sizeof(u.name), "%s", name);
	if (ctl < 0 || ioctl(ctl, SHMK_IOC_UNLINK, &u))
		die("unlink");
	close(ctl);
}

/*
 * Map at a 2 MiB boundary, as libshmk does (reserve more, map over the
 * aligned part, trim): page tables then line up with the segment.
 */
static char *map_aligned(size_t len, int fd)
{
	size_t align = 2u << 20;
	char *res, *a;

	res = mmap(NULL, len + align, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	a = (char *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
	if (mmap(a, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
		 0) == MAP_FAILED)
		return MAP_FAILED;
	if (a > res)
		munmap(res, (size_t)(a - res));
	munmap(a + len, (size_t)(res + align - a));
	return a;
}

/* A peer: map, say ready, wait, write every new page, report. */
/* -v: one-page mappings each peer makes besides the segment. */
static long extra_vmas;

static void peer(enum mode mode, const char *name, int memfd, size_t max,
		 size_t grow, int go, int res)
{
	struct result r;
	long before, i;
	char *p, c;
	size_t off;
	int fd = IS_SHMK(mode) ? shmk_attach(name, 0, max, false) : memfd;

	for (i = 0; i < extra_vmas; i++)
		if (mmap(NULL, PAGE, (i & 1) ? PROT_READ : PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
			die("mmap (-v)");

	p = map_aligned(max, fd);
	if (p == MAP_FAILED)
		die("mmap");
	if (mode == TOUCH && madvise(p, max, MADV_POPULATE_WRITE))
		die("MADV_POPULATE_WRITE");
	/* Fault in what the measured part uses besides the segment. */
	r.done = now();
	r.minflt = minflt();
	if (write(res, "r", 1) != 1 || read(go, &c, 1) != 1)
		die("sync");

	before = minflt();
	if (mode == POPULATE &&
	    madvise(p + BASE_SIZE, grow, MADV_POPULATE_WRITE))
		die("MADV_POPULATE_WRITE");
	for (off = BASE_SIZE; off < BASE_SIZE + grow; off += PAGE)
		p[off] = 1;
	r.done = now();
	r.minflt = minflt() - before;
	if (write(res, &r, sizeof(r)) != sizeof(r))
		die("report");
	_exit(0);
}

/* One round; returns its time and the peers' mean minor faults. */
static double round_once(enum mode mode, int peers, size_t grow,
			 double *faults)
{
	size_t max = BASE_SIZE + grow;
	int go[2], res[2], fd = -1, memfd = -1, i;
	double t0, last = 0;
	char name[64];
	long total = 0;

	snprintf(name, sizeof(name), "grow-bench-%d", getpid());
	if (IS_SHMK(mode)) {
		fd = shmk_attach(name, SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL |
				 (mode == EAGER4K ? SHMK_ATTACH_SMALL_PAGES : 0),
				 max, mode == TOUCH);
	} else {
		memfd = memfd_create("grow-bench", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, BASE_SIZE))
			die("memfd");
	}
	if (pipe(go) || pipe(res))
		die("pipe");
	for (i = 0; i < peers; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (!pid)
			peer(mode, name, memfd, max, grow, go[0], res[1]);
	}
	for (i = 0; i < peers; i++) {
		char c;

		if (read(res[0], &c, 1) != 1)
			die("ready");
	}

	t0 = now();
	if (mode == TOUCH) {
		/* Nothing to give: the peers have it all already. */
	} else if (IS_SHMK(mode)) {
		struct shmk_resize rs = {
			.size = max, .flags = mode == LAZY ? SHMK_GROW_LAZY : 0,
		};

		if (ioctl(fd, SHMK_IOC_GROW, &rs))
			die("grow");
	} else if (ftruncate(memfd, max)) {
		die("ftruncate");
	}
	for (i = 0; i < peers; i++)
		if (write(go[1], "g", 1) != 1)
			die("go");
	for (i = 0; i < peers; i++) {
		struct result r;

		if (read(res[0], &r, sizeof(r)) != sizeof(r))
			die("result");
		if (r.done > last)
			last = r.done;
		total += r.minflt;
	}
	while (wait(NULL) > 0)
		;
	close(go[0]);
	close(go[1]);
	close(res[0]);
	close(res[1]);
	if (IS_SHMK(mode)) {
		close(fd);
		shmk_unlink(name);
	} else {
		close(memfd);
	}
	*faults = (double)total / peers;
	return last - t0;
}

/* The floors: one thread per CPU, each on its slice of one mapping. */
enum floor { FILL, MEMSET, NR_FLOORS };
static const char *const floor_names[] = { "fill", "memset" };

struct slice {
	enum floor floor;
	char *p;
	size_t len;
	pthread_barrier_t *start;
};

static void *floor_thread(void *arg)
{
	struct slice *s = arg;

	pthread_barrier_wait(s->start);
	if (s->floor == FILL) {
		if (s->len && madvise(s->p, s->len, MADV_POPULATE_WRITE))
			die("MADV_POPULATE_WRITE");
	} else {
		memset(s->p, 0, s->len);
	}
	return NULL;
}

/* One round of a floor over @len bytes; returns its time. */
static double floor_once(enum floor floor, size_t len)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t th[64];
	struct slice sl[64];
	pthread_barrier_t start;
	size_t per, off = 0;
	double t0, t1;
	int memfd, i, n;
	char *p;

	n = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;
	memfd = memfd_create("grow-bench-floor", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, len))
		die("memfd");
	p = map_aligned(len, memfd);
	if (p == MAP_FAILED)
		die("mmap");
	if (floor == MEMSET && madvise(p, len, MADV_POPULATE_WRITE))
		die("MADV_POPULATE_WRITE");
	pthread_barrier_init(&start, NULL, n + 1);
	per = (len / n + PAGE - 1) & ~(PAGE - 1);
	for (i = 0; i < n; i++) {
		size_t l = off < len ? (len - off < per ? len - off : per) : 0;

		sl[i] = (struct slice){ floor, p + off, l, &start };
		off += l;
		if (pthread_create(&th[i], NULL, floor_thread, &sl[i]))
			die("pthread_create");
	}
	t0 = now();
	pthread_barrier_wait(&start);
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	t1 = now();
	pthread_barrier_destroy(&start);
	munmap(p, len);
	close(memfd);
	return t1 - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Parse "1,2,4" into @out; returns the count, 0 on error. */
static int parse_list(const char *arg, long *out, int max, long hi)
{
	char *end;
	int n = 0;

	do {
		long v = strtol(arg, &end, 10);

		if (end == arg || v < 1 || v > hi || n == max)
			return 0;
		out[n++] = v;
		arg = end + 1;
	} while (*end == ',');
	return *end ? 0 : n;
}

static void usage(void)
{
	fprintf(stderr, "usage: grow_bench [-r REPS (1..50)] [-p PEERS,... (1..%d)] [-s MIB,... (1..1024)] [-v VMAS (0..60000)]\n",
		MAX_PEERS);
	exit(2);
}

int main(int argc, char **argv)
{
	long peer_counts[MAX_PEERS] = { 1, 2, 4, 8 };
	long sizes_mib[8] = { 1, 16, 256 };
	int np = 4, ns = 3, reps = 3;
	int s, p, m, r, opt;

	while ((opt = getopt(argc, argv, "r:p:s:v:")) != -1) {
		switch (opt) {
		case 'r':
			reps = atoi(optarg);
			if (reps < 1 || reps > 50)
				usage();
			break;
		case 'p':
			np = parse_list(optarg, peer_counts, MAX_PEERS,
					MAX_PEERS);
			if (!np)
				usage();
			break;
		case 's':
			ns = parse_list(optarg, sizes_mib, 8, 1024);
			if (!ns)
				usage();
			break;
		case 'v':
			extra_vmas = atol(optarg);
			if (extra_vmas < 0 || extra_vmas > 60000)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	printf("mode,peers,grow_mib,median_ms,min_ms,peer_minflt\n");
	for (s = 0; s < ns; s++) {
		for (m = 0; m < NR_FLOORS; m++) {
			double t[50];

			for (r = 0; r < reps; r++)
				t[r] = floor_once(m, sizes_mib[s] * MIB);
			qsort(t, reps, sizeof(t[0]), cmp_double);
			printf("%s,0,%ld,%.3f,%.3f,0\n", floor_names[m],
			       sizes_mib[s], t[reps / 2] * 1e3, t[0] * 1e3);
			fflush(stdout);
		}
		for (p = 0; p < np; p++) {
			for (m = 0; m < NR_MODES; m++) {
				double t[50], faults = 0;

				for (r = 0; r < reps; r++)
					t[r] = round_once(m, peer_counts[p],
							  sizes_mib[s] * MIB,
							  &faults);
				qsort(t, reps, sizeof(t[0]), cmp_double);
				printf("%s,%ld,%ld,%.3f,%.3f,%.0f\n",
				       mode_names[m], peer_counts[p],
				       sizes_mib[s], t[reps / 2] * 1e3,
				       t[0] * 1e3, faults);
				fflush(stdout);
			}
		}
	}
	return 0;
}
