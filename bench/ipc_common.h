/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What ipc_bench.c and ipc_iceoryx.cpp share: the measurement loops, run
 * in two processes forked per case (A pings, B pongs), and the CSV rows.
 *
 *   latency:    A times ITERS round trips (send, then receive the reply);
 *               the one-way figure is half the round trip, p50/p99/p99.9.
 *   throughput: A sends MSGS messages as fast as the transport takes them,
 *               B receives them; messages per second from A's first send to
 *               B's last receive (CLOCK_MONOTONIC, one clock).
 *
 * A message of SIZE bytes carries a sequence number in its first 8 bytes,
 * which the receiver reads and checks; zero-copy transports write nothing
 * else, copying transports copy all SIZE bytes (that is their cost).
 */
#ifndef IPC_COMMON_H
#define IPC_COMMON_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IPC_WARMUP	200

struct ipc_shared {
	volatile int ready[2];
	volatile int go;
	volatile int failed;
	volatile uint64_t t_start, t_end;
	volatile uint64_t p50, p99, p999;
	char pad[64];
};

static inline uint64_t ipc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline void ipc_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static int ipc_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One-way percentiles from round trips (halved). */
static inline void ipc_percentiles(struct ipc_shared *sh, uint64_t *rtt,
				   size_t n)
{
	qsort(rtt, n, sizeof(*rtt), ipc_cmp);
	sh->p50 = rtt[n / 2] / 2;
	sh->p99 = rtt[(size_t)((double)n * 0.99)] / 2;
	sh->p999 = rtt[(size_t)((double)n * 0.999)] / 2;
}

/*
 * A busy-poll latency case is short (ITERS round trips of a few hundred
 * ns), and what it measures moves with where the two processes run: on
 * the 2-vCPU build machines the cache-line floor itself reads about 60 ns
 * for a few seconds, then about 260 ns (most likely as the host moves the
 * two vCPUs between one core's hyperthreads and two cores). So each busy
 * case is run IPC_BUSY_REPS times (-r), each run right after a run of the
 * cache-line floor (ipc_bench; ipc_iceoryx has no floor of its own), and
 * its row gives the median of each percentile over the runs, the median
 * of the paired floors' p50, and the median of the per-run ratios p50 /
 * floor p50: a ratio taken within one placement.
 */
#define IPC_BUSY_REPS	5
#define IPC_MAX_REPS	64

struct ipc_reps {
	int n;
	bool paired;			/* floor[] and ratio[] filled */
	uint64_t p50[IPC_MAX_REPS], p99[IPC_MAX_REPS], p999[IPC_MAX_REPS];
	uint64_t floor[IPC_MAX_REPS];
	double ratio[IPC_MAX_REPS];
};

static int ipc_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * A run's percentiles; @floor_p50 the paired floor's p50, or 0 (the same
 * for every run of a case).
 */
static inline void ipc_reps_add(struct ipc_reps *r,
				const struct ipc_shared *sh, uint64_t floor_p50)
{
	if (r->n >= IPC_MAX_REPS)
		return;
	r->p50[r->n] = sh->p50;
	r->p99[r->n] = sh->p99;
	r->p999[r->n] = sh->p999;
	if (floor_p50) {
		r->floor[r->n] = floor_p50;
		r->ratio[r->n] = (double)sh->p50 / (double)floor_p50;
		r->paired = true;
	}
	r->n++;
}

/*
 * The medians (the upper one for an even count) into @sh, @floor_p50 and
 * @ratio (0 without paired floors).
 */
static inline void ipc_reps_median(struct ipc_reps *r, struct ipc_shared *sh,
				   uint64_t *floor_p50, double *ratio)
{
	*floor_p50 = 0;
	*ratio = 0;
	if (!r->n)
		return;
	qsort(r->p50, (size_t)r->n, sizeof(uint64_t), ipc_cmp);
	qsort(r->p99, (size_t)r->n, sizeof(uint64_t), ipc_cmp);
	qsort(r->p999, (size_t)r->n, sizeof(uint64_t), ipc_cmp);
	sh->p50 = r->p50[r->n / 2];
	sh->p99 = r->p99[r->n / 2];
	sh->p999 = r->p999[r->n / 2];
	if (!r->paired)
		return;
	qsort(r->floor, (size_t)r->n, sizeof(uint64_t), ipc_cmp);
	qsort(r->ratio, (size_t)r->n, sizeof(double), ipc_cmp_double);
	*floor_p50 = r->floor[r->n / 2];
	*ratio = r->ratio[r->n / 2];
}

/* Both sides set up: then A may start. */
static inline void ipc_barrier(struct ipc_shared *sh, int side)
{
	__atomic_store_n(&sh->ready[side], 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&sh->ready[!side], __ATOMIC_SEQ_CST)) {
		if (sh->failed)
			_exit(1);
		usleep(100);
	}
}

static inline struct ipc_shared *ipc_shared_new(void)
{
	void *p = mmap(NULL, sizeof(struct ipc_shared), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset(p, 0, sizeof(struct ipc_shared));
	return (struct ipc_shared *)p;
}

/*
 * transport,mode,size,iters,p50_ns,p99_ns,p999_ns,msgs,msgs_per_s,
 * mib_per_s,floor_p50_ns,floor_ratio (the last two 0 without paired
 * floors)
 */
#define IPC_CSV_HEADER	"transport,mode,size,iters,p50_ns,p99_ns,p999_ns," \
			"msgs,msgs_per_s,mib_per_s,floor_p50_ns,floor_ratio\n"

static inline void ipc_row(const char *transport, const char *mode,
			   size_t size, long iters, const struct ipc_shared *lat,
			   long msgs, const struct ipc_shared *thr,
			   uint64_t floor_p50, double floor_ratio)
{
	double secs = thr ? (double)(thr->t_end - thr->t_start) / 1e9 : 0;
	double rate = thr && secs > 0 ? (double)msgs / secs : 0;

	printf("%s,%s,%zu,%ld,%llu,%llu,%llu,%ld,%.0f,%.1f,%llu,%.3f\n",
	       transport, mode, size, iters, (unsigned long long)lat->p50,
	       (unsigned long long)lat->p99, (unsigned long long)lat->p999,
	       thr ? msgs : 0, rate, rate * (double)size / (1 << 20),
	       (unsigned long long)floor_p50, floor_ratio);
	fflush(stdout);
}

/* Wait for both sides; nonzero if one failed. */
static inline int ipc_wait2(pid_t a, pid_t b)
{
	int sa = 0, sb = 0;

	waitpid(a, &sa, 0);
	waitpid(b, &sb, 0);
	return !(WIFEXITED(sa) && WEXITSTATUS(sa) == 0 && WIFEXITED(sb) &&
		 WEXITSTATUS(sb) == 0);
}

#endif
