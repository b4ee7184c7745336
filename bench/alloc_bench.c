// SPDX-License-Identifier: GPL-2.0
/*
 * alloc_bench: the same allocation traces through libshmk, Boost.Interprocess
 * (managed_shared_memory) and glibc malloc, and named lookups in libshmk and
 * Boost, with 1 and 2 processes on one shared heap.
 *
 * Experiments:
 *   small   sizes 16 B .. 4 KiB, 10000 live blocks, 500k steady-state ops
 *   large   sizes 4 KiB .. 1 MiB, 128 live blocks, 50k steady-state ops
 *           (see alloc_trace.h for the shape of a trace)
 *   lookup  NAMES named uint64_t objects (shmk_find_or_alloc, Boost
 *           construct<uint64_t>), then LOOKUPS random lookups per process
 *           (shmk_find, Boost find<uint64_t>)
 *
 * A round: the parent creates a fresh segment (for lookup, one per
 * implementation, filled once and kept for every round), forks PROCS
 * workers which each open the segment by name, and starts them together
 * once all are ready. Each worker replays its own trace (seeded by its
 * index, the same for every implementation) and times itself. A trace is
 * replayed twice per round, the workers starting together each time: cold,
 * on the fresh segment (row "small"), then warm, on the heap that the cold
 * pass grew and emptied ("small-warm"). A figure is the workers' summed
 * time over their summed ops: the mean time per op as the workers saw it.
 * glibc's workers each have a private heap. Every alloc writes a tag into
 * its block and every free checks it, every lookup checks the object's
 * value; the parent checks the heap after the round (shmk_check and no
 * live allocation left, Boost check_sanity), all outside the timed part.
 *
 * Repetitions are interleaved (rep, experiment, procs, then each
 * implementation, their order rotated every rep). Output: CSV on stdout,
 *   trace,impl,procs,ops,names,ns_per_op,min_ns_per_op,cpu_ns_per_op,
 *   minflt_per_op
 * where ops is summed over the processes, names is empty for traces,
 * ns_per_op is the median of the wall-clock figures (the upper one for an
 * even REPS) and min_ns_per_op the fastest, cpu_ns_per_op the median of
 * the workers' CPU time (user and system: page faults and growth count,
 * time preempted or asleep on a lock does not), and minflt_per_op the
 * median of the workers' minor page faults per op.
 *
 * Usage: alloc_bench [-r REPS] [-p PROCS,...] [-x small,large,lookup]
 *                    [-i libshmk,boost,glibc,pagemap] [-n NAMES] [-l LOOKUPS]
 *                    [-b BACKEND]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmk.h>

#include "alloc_impl.h"
#include "alloc_trace.h"

#define MIB		(1UL << 20)
#define MAX_PROCS	2
#define MAX_REPS	51
#define NAME_LEN	32
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define ALIGN_MIB(x)	(((x) + MIB - 1) & ~(MIB - 1))

/* ---- helpers ----------------------------------------------------------- */

static void die(const char *what)
{
	fprintf(stderr, "alloc_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *what)
{
	fprintf(stderr, "alloc_bench: %s\n", what);
	exit(1);
}

static double clock_secs(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now(void)
{
	return clock_secs(CLOCK_MONOTONIC);
}

static double cpu_now(void)
{
	return clock_secs(CLOCK_THREAD_CPUTIME_ID);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void *map_or_die(size_t bytes)
{
	void *p = trace_mmap(bytes);

	if (!p)
		die("mmap");
	return p;
}

/* ---- libshmk ----------------------------------------------------------- */

static const char *shmk_backend_name = "memfd";

static void *shmk_create(const char *seg, size_t size)
{
	struct shmk_opts o = { .max_size = size, .backend = shmk_backend_name };
	struct shmk *h;
	int r;

	shmk_unlink(seg);
	r = shmk_open(seg, SHMK_CREATE | SHMK_EXCL, &o, &h);
	if (r) {
		fprintf(stderr, "alloc_bench: shmk_open %s: %s\n", seg,
			strerror(-r));
		return NULL;
	}
	return h;
}

static void *shmk_open_seg(const char *seg)
{
	struct shmk_opts o = { .backend = shmk_backend_name };
	struct shmk *h;

	return shmk_open(seg, 0, &o, &h) ? NULL : h;
}

static void *shmk_alloc_op(void *h, size_t size)
{
	return shmk_alloc(h, size);
}

static void shmk_free_op(void *h, void *p)
{
	shmk_free(h, p);
}

static int shmk_name_new(void *h, const char *name, uint64_t val)
{
	int created;
	uint64_t *p = shmk_find_or_alloc(h, name, sizeof(*p), &created);

	if (!p || !created)
		return -1;
	*p = val;
	return 0;
}

static uint64_t *shmk_name_find(void *h, const char *name)
{
	return shmk_find(h, name, NULL);
}

static int shmk_check_op(void *h)
{
	struct shmk_stats st;

	if (shmk_check(h) || shmk_stats(h, &st))
		return -1;
	/* Traces free all they allocate; lookup segments hold only names. */
	return st.live_allocs ? -1 : 0;
}

static void shmk_close_op(void *h)
{
	shmk_close(h);
}

static void shmk_destroy(void *h, const char *seg)
{
	shmk_close(h);
	shmk_unlink(seg);
}

/* It only grows during a round: after it, the peak. */
static size_t shmk_seg_size(void *h)
{
	return shmk_size(h);
}

static const struct alloc_impl shmk_impl = {
	.name = "libshmk",
	.create = shmk_create,
	.open = shmk_open_seg,
	.alloc = shmk_alloc_op,
	.free = shmk_free_op,
	.name_new = shmk_name_new,
	.name_find = shmk_name_find,
	.check = shmk_check_op,
	.close = shmk_close_op,
	.destroy = shmk_destroy,
	.seg_size = shmk_seg_size,
};

/* ---- glibc malloc (a private heap per process) ------------------------- */

static void *glibc_create(const char *seg, size_t size)
{
	(void)seg;
	(void)size;
	return (void *)&glibc_create;
}

static void *glibc_open(const char *seg)
{
	(void)seg;
	return (void *)&glibc_open;
}

static void *glibc_alloc(void *h, size_t size)
{
	(void)h;
	return malloc(size);
}

static void glibc_free(void *h, void *p)
{
	(void)h;
	free(p);
}

static int glibc_check(void *h)
{
	(void)h;
	return 0;
}

static void glibc_close(void *h)
{
	(void)h;
}

static void glibc_destroy(void *h, const char *seg)
{
	(void)h;
	(void)seg;
}

static const struct alloc_impl glibc_impl = {
	.name = "glibc",
	.create = glibc_create,
	.open = glibc_open,
	.alloc = glibc_alloc,
	.free = glibc_free,
	.check = glibc_check,
	.close = glibc_close,
	.destroy = glibc_destroy,
};

static const struct alloc_impl *const impls[] = {
	&shmk_impl, &boost_impl, &glibc_impl, &floor_impl,
};
#define NR_IMPLS	ARRAY_SIZE(impls)

/* ---- experiments ------------------------------------------------------- */

struct trace_kind {
	const char *name;
	uint32_t lo, hi, live;
	size_t steady;
};

static const struct trace_kind kinds[] = {
	{ "small", 16, 4096, 10000, 500000 },
	{ "large", 4096, 1 << 20, 128, 50000 },
};
#define NR_KINDS	ARRAY_SIZE(kinds)
#define EXP_LOOKUP	NR_KINDS
#define NR_EXPS		(NR_KINDS + 1)
#define NR_PASSES	2		/* cold, warm */
/* Output rows: each trace cold and warm, then lookups. */
#define ROW_LOOKUP	(NR_KINDS * NR_PASSES)
#define NR_ROWS		(ROW_LOOKUP + 1)

static const char *exp_name(unsigned int e)
{
	return e < NR_KINDS ? kinds[e].name : "lookup";
}

static void row_name(unsigned int row, char *buf, size_t n)
{
	if (row == ROW_LOOKUP)
		snprintf(buf, n, "lookup");
	else
		snprintf(buf, n, "%s%s", kinds[row / NR_PASSES].name,
			 row % NR_PASSES ? "-warm" : "");
}

struct worker_result {
	double secs;
	double cpu_secs;		/* user + system */
	uint64_t ops;
	uint64_t minflt;		/* minor page faults */
	uint64_t errors;
	uint64_t rss_kib;		/* growth of the peak RSS */
};

/* What a worker does once started: a trace replay or lookups. */
struct job {
	const struct trace *trace;	/* or NULL: lookups */
	/*
	 * Lookups: the name of each, NAME_LEN bytes apart in lookup order so
	 * that reading them streams, and the value each object holds.
	 */
	const char *names;
	const uint32_t *lookups;
	size_t nlookups;
};

static uint64_t minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_minflt;
}

/* The process's peak resident set so far, in KiB. */
static uint64_t maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_maxrss;
}

static uint64_t block_tag(unsigned int w, uint32_t slot)
{
	return (uint64_t)(w + 1) << 40 | 0xa5ULL << 32 | slot;
}

static void replay(const struct alloc_impl *im, void *h, unsigned int w,
		   const struct trace *t, void **ptrs, struct worker_result *res)
{
	const struct trace_op *op = t->ops, *end = t->ops + t->nops;
	uint64_t f0 = minflt(), m0 = maxrss_kib();
	double c0 = cpu_now(), t0 = now();

	for (; op < end; op++) {
		if (op->size) {
			uint64_t *p = im->alloc(h, op->size);

			if (!p) {
				res->errors++;
				break;
			}
			*p = block_tag(w, op->slot);
			ptrs[op->slot] = p;
		} else {
			uint64_t *p = ptrs[op->slot];

			if (*p != block_tag(w, op->slot))
				res->errors++;
			im->free(h, p);
		}
	}
	res->secs = now() - t0;
	res->cpu_secs = cpu_now() - c0;
	res->minflt = minflt() - f0;
	res->rss_kib = maxrss_kib() - m0;
	res->ops = (uint64_t)(op - t->ops);
}

static void lookups(const struct alloc_impl *im, void *h, const struct job *j,
		    struct worker_result *res)
{
	uint64_t f0 = minflt();
	double c0 = cpu_now(), t0 = now();

	for (size_t i = 0; i < j->nlookups; i++) {
		uint64_t *p = im->name_find(h, j->names + i * NAME_LEN);

		if (!p || *p != j->lookups[i])
			res->errors++;
	}
	res->secs = now() - t0;
	res->cpu_secs = cpu_now() - c0;
	res->minflt = minflt() - f0;
	res->ops = j->nlookups;
}

/*
 * A worker: open the segment, then for each pass say ready, wait for the
 * go, run the job and report. A trace is replayed twice: cold, on the
 * fresh segment, then warm, on the same heap that the cold pass grew and
 * emptied again.
 */
static void worker(const struct alloc_impl *im, const char *seg,
		   unsigned int w, const struct job *j, int ready, int go,
		   int out)
{
	unsigned int passes = j->trace ? NR_PASSES : 1;
	void **ptrs = NULL;
	void *h = im->open(seg);
	char c;

	if (!h)
		fail("worker: cannot open the segment");
	if (j->trace) {
		ptrs = map_or_die(j->trace->nslots * sizeof(*ptrs));
		memset(ptrs, 0, j->trace->nslots * sizeof(*ptrs));
	}
	for (unsigned int pass = 0; pass < passes; pass++) {
		struct worker_result res = { 0 };

		if (write(ready, "r", 1) != 1 || read(go, &c, 1) != 1)
			die("worker sync");
		if (j->trace)
			replay(im, h, w, j->trace, ptrs, &res);
		else
			lookups(im, h, j, &res);
		if (write(out, &res, sizeof(res)) != sizeof(res))
			die("worker report");
	}
	im->close(h);
	_exit(0);
}

/* A pass's figures: summed over the workers, over their summed ops. */
struct fig {
	double wall;		/* ns, CLOCK_MONOTONIC */
	double cpu;		/* ns, the workers' CPU time */
	double minflt;		/* minor faults per op */
	double rss_kib;		/* the workers' peak RSS growth, summed */
	double seg_kib;		/* the segment's size after the round */
};

/*
 * One round of @procs workers on segment @seg (already created), each with
 * jobs[w], in @passes passes that start together; figures in fig[pass].
 */
static void round_once(const struct alloc_impl *im, const char *seg,
		       unsigned int procs, const struct job *jobs,
		       unsigned int passes, struct fig *fig)
{
	int ready[2], go[2], out[2], status;
	unsigned int w;
	char c;

	if (pipe(ready) || pipe(go) || pipe(out))
		die("pipe");
	fflush(NULL);
	for (w = 0; w < procs; w++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (!pid) {
			close(ready[0]);
			close(go[1]);
			close(out[0]);
			worker(im, seg, w, &jobs[w], ready[1], go[0], out[1]);
		}
	}
	close(ready[1]);
	close(go[0]);
	close(out[1]);
	for (unsigned int pass = 0; pass < passes; pass++) {
		struct worker_result sum = { 0 };

		for (w = 0; w < procs; w++)
			if (read(ready[0], &c, 1) != 1)
				fail("a worker died before it was ready");
		for (w = 0; w < procs; w++)
			if (write(go[1], "g", 1) != 1)
				die("go");
		for (w = 0; w < procs; w++) {
			struct worker_result r;

			if (read(out[0], &r, sizeof(r)) != sizeof(r))
				fail("a worker died");
			sum.secs += r.secs;
			sum.cpu_secs += r.cpu_secs;
			sum.ops += r.ops;
			sum.minflt += r.minflt;
			sum.errors += r.errors;
			sum.rss_kib += r.rss_kib;
		}
		if (sum.errors) {
			fprintf(stderr, "alloc_bench: %s: %llu errors (failed allocs, torn tags or wrong lookups)\n",
				im->name, (unsigned long long)sum.errors);
			exit(1);
		}
		fig[pass].wall = sum.secs * 1e9 / (double)sum.ops;
		fig[pass].cpu = sum.cpu_secs * 1e9 / (double)sum.ops;
		fig[pass].minflt = (double)sum.minflt / (double)sum.ops;
		fig[pass].rss_kib = (double)sum.rss_kib;
		fig[pass].seg_kib = 0;
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			fail("a worker failed");
	close(ready[0]);
	close(go[1]);
	close(out[0]);
}

/* A fresh segment for one trace round, then the round (both passes). */
static void trace_round(const struct alloc_impl *im, unsigned int procs,
			const struct trace *traces, double *ops,
			struct fig *fig)
{
	struct job jobs[MAX_PROCS] = { { 0 } };
	static unsigned int seq;
	uint64_t peak = 0;
	char seg[64];
	size_t size;
	void *h;

	*ops = 0;
	for (unsigned int w = 0; w < procs; w++) {
		jobs[w].trace = &traces[w];
		*ops += (double)traces[w].nops;
		if (traces[w].peak_live_bytes > peak)
			peak = traces[w].peak_live_bytes;
	}
	/* Room for every worker's peak three times over (Boost cannot grow). */
	size = ALIGN_MIB(procs * peak * 3 + 16 * MIB);
	snprintf(seg, sizeof(seg), "alloc-bench-%d-%u", (int)getpid(), seq++);
	h = im->create(seg, size);
	if (!h)
		fail("cannot create a segment");
	round_once(im, seg, procs, jobs, NR_PASSES, fig);
	for (unsigned int pass = 0; im->seg_size && pass < NR_PASSES; pass++)
		fig[pass].seg_kib = (double)im->seg_size(h) / 1024;
	if (im->check(h)) {
		fprintf(stderr, "alloc_bench: %s: the heap check failed after a round\n",
			im->name);
		exit(1);
	}
	im->destroy(h, seg);
}

/* A lookup round on the names segment @seg, filled beforehand. */
static void lookup_round(const struct alloc_impl *im, const char *seg,
			 unsigned int procs, const struct job *jobs,
			 double *ops, struct fig *fig)
{
	*ops = 0;
	for (unsigned int w = 0; w < procs; w++)
		*ops += (double)jobs[w].nlookups;
	round_once(im, seg, procs, jobs, 1, fig);
}

/* @n random lookups among the @nnames names, seeded by @seed. */
static void make_lookups(struct job *j, const char *names, size_t nnames,
			 size_t n, uint64_t seed)
{
	uint32_t *idx = map_or_die(n * sizeof(*idx));
	char *seq = map_or_die(n * NAME_LEN);

	for (size_t i = 0; i < n; i++) {
		idx[i] = (uint32_t)trace_below(&seed, nnames);
		memcpy(seq + i * NAME_LEN, names + (size_t)idx[i] * NAME_LEN,
		       NAME_LEN);
	}
	j->names = seq;
	j->lookups = idx;
	j->nlookups = n;
}

/* ---- main -------------------------------------------------------------- */

/* Parse "1,2" into @out; returns the count, 0 on error. */
static int parse_procs(const char *arg, unsigned int *out)
{
	char *end;
	int n = 0;

	do {
		long v = strtol(arg, &end, 10);

		if (end == arg || v < 1 || v > MAX_PROCS || n == MAX_PROCS)
			return 0;
		out[n++] = (unsigned int)v;
		arg = end + 1;
	} while (*end == ',');
	return *end ? 0 : n;
}

static const char *impl_name(unsigned int i)
{
	return impls[i]->name;
}

/* Parse "a,b" against the @n names from @name() into @on. */
static int parse_set(const char *arg, bool *on, unsigned int n,
		     const char *(*name)(unsigned int))
{
	char buf[128], *tok, *save;

	snprintf(buf, sizeof(buf), "%s", arg);
	memset(on, 0, n * sizeof(*on));
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		unsigned int e;

		for (e = 0; e < n; e++)
			if (!strcmp(tok, name(e)))
				break;
		if (e == n)
			return -1;
		on[e] = true;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: alloc_bench [-r REPS (1..%d)] [-p PROCS,... (1..%d)] [-x small,large,lookup]\n"
		"                   [-i libshmk,boost,glibc,pagemap] [-n NAMES] [-l LOOKUPS per process]\n"
		"                   [-b BACKEND (of libshmk)]\n",
		MAX_REPS, MAX_PROCS);
	exit(2);
}

/* Results: [row][procs index][impl][rep] */
static double res_wall[NR_ROWS][MAX_PROCS][NR_IMPLS][MAX_REPS];
static double res_cpu[NR_ROWS][MAX_PROCS][NR_IMPLS][MAX_REPS];
static double res_flt[NR_ROWS][MAX_PROCS][NR_IMPLS][MAX_REPS];
static double res_rss[NR_ROWS][MAX_PROCS][NR_IMPLS][MAX_REPS];
static double res_seg[NR_ROWS][MAX_PROCS][NR_IMPLS][MAX_REPS];
static double res_ops[NR_ROWS][MAX_PROCS];

static void record(unsigned int row, unsigned int p, unsigned int i, int r,
		   const struct fig *f)
{
	res_wall[row][p][i][r] = f->wall;
	res_cpu[row][p][i][r] = f->cpu;
	res_flt[row][p][i][r] = f->minflt;
	res_rss[row][p][i][r] = f->rss_kib;
	res_seg[row][p][i][r] = f->seg_kib;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(v[0]), cmp_double);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	unsigned int procs[MAX_PROCS] = { 1, 2 }, np = 2;
	struct trace traces[NR_KINDS][MAX_PROCS];
	struct job ljobs[MAX_PROCS] = { { 0 } };
	void *lseg[NR_IMPLS] = { 0 };
	char lseg_name[NR_IMPLS][64];
	long nnames = 100000, nlookups = 500000;
	bool on[NR_EXPS] = { true, true, true };
	/* The page-map floor only when asked for (-i). */
	bool use[NR_IMPLS] = { true, true, true, false };
	int reps = 5, opt;
	char *names = NULL;

	while ((opt = getopt(argc, argv, "r:p:x:i:n:l:b:")) != -1) {
		switch (opt) {
		case 'r':
			reps = atoi(optarg);
			if (reps < 1 || reps > MAX_REPS)
				usage();
			break;
		case 'p':
			np = (unsigned int)parse_procs(optarg, procs);
			if (!np)
				usage();
			break;
		case 'x':
			if (parse_set(optarg, on, NR_EXPS, exp_name))
				usage();
			break;
		case 'i':
			if (parse_set(optarg, use, NR_IMPLS, impl_name))
				usage();
			break;
		case 'n':
			nnames = atol(optarg);
			if (nnames < 1 || nnames > 10000000)
				usage();
			break;
		case 'l':
			nlookups = atol(optarg);
			if (nlookups < 1 || nlookups > 100000000)
				usage();
			break;
		case 'b':
			shmk_backend_name = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	/* Everything a worker replays exists before the first round. */
	for (unsigned int k = 0; k < NR_KINDS; k++)
		for (unsigned int w = 0; w < MAX_PROCS; w++)
			if (on[k] && trace_make(&traces[k][w],
						0x53484d4bULL * (k + 1) + w,
						kinds[k].lo, kinds[k].hi,
						kinds[k].live, kinds[k].steady))
				die("trace");
	if (on[EXP_LOOKUP]) {
		names = map_or_die((size_t)nnames * NAME_LEN);
		for (long i = 0; i < nnames; i++)
			snprintf(names + (size_t)i * NAME_LEN, NAME_LEN,
				 "bench/obj/%08x/value",
				 (uint32_t)((uint64_t)i * 2654435761u));
		for (unsigned int w = 0; w < MAX_PROCS; w++)
			make_lookups(&ljobs[w], names, (size_t)nnames,
				     (size_t)nlookups, 0x4c4f4f4bULL + w);
		/* One named segment per implementation, filled once. */
		for (unsigned int i = 0; i < NR_IMPLS; i++) {
			size_t size = ALIGN_MIB((size_t)nnames * 512 + 16 * MIB);

			if (!use[i] || !impls[i]->name_new)
				continue;
			snprintf(lseg_name[i], sizeof(lseg_name[i]),
				 "alloc-bench-%d-names-%u", (int)getpid(), i);
			lseg[i] = impls[i]->create(lseg_name[i], size);
			if (!lseg[i])
				fail("cannot create a segment");
			for (long n = 0; n < nnames; n++)
				if (impls[i]->name_new(lseg[i],
						       names + (size_t)n * NAME_LEN,
						       (uint64_t)n))
					fail("cannot create a named object");
		}
	}

	for (int r = 0; r < reps; r++) {
		for (unsigned int e = 0; e < NR_EXPS; e++) {
			for (unsigned int p = 0; on[e] && p < np; p++) {
				for (unsigned int k = 0; k < NR_IMPLS; k++) {
					unsigned int i = (k + (unsigned int)r) % NR_IMPLS;
					struct fig f[NR_PASSES];
					unsigned int row = e * NR_PASSES;

					if (!use[i] || (e == EXP_LOOKUP && !lseg[i]))
						continue;
					if (e == EXP_LOOKUP) {
						lookup_round(impls[i], lseg_name[i], procs[p],
							     ljobs, &res_ops[row][p], f);
						record(row, p, i, r, &f[0]);
						continue;
					}
					trace_round(impls[i], procs[p], traces[e],
						    &res_ops[row][p], f);
					res_ops[row + 1][p] = res_ops[row][p];
					for (unsigned int pass = 0; pass < NR_PASSES; pass++)
						record(row + pass, p, i, r, &f[pass]);
				}
			}
		}
		fprintf(stderr, "alloc_bench: repetition %d of %d done\n",
			r + 1, reps);
	}

	printf("trace,impl,procs,ops,names,ns_per_op,min_ns_per_op,cpu_ns_per_op,minflt_per_op,peak_rss_kib,segment_kib\n");
	for (unsigned int row = 0; row < NR_ROWS; row++) {
		unsigned int e = row / NR_PASSES;
		char tname[32];

		row_name(row, tname, sizeof(tname));
		for (unsigned int p = 0; on[e] && p < np; p++) {
			for (unsigned int i = 0; i < NR_IMPLS; i++) {
				double *t = res_wall[row][p][i];
				char nbuf[24] = "";
				double med;

				if (!use[i] || (e == EXP_LOOKUP && !lseg[i]))
					continue;
				if (e == EXP_LOOKUP)
					snprintf(nbuf, sizeof(nbuf), "%ld", nnames);
				med = median(t, reps);	/* sorts: t[0] is the min */
				printf("%s,%s,%u,%.0f,%s,%.2f,%.2f,%.2f,%.4f,%.0f,%.0f\n",
				       tname, impls[i]->name, procs[p],
				       res_ops[row][p], nbuf, med, t[0],
				       median(res_cpu[row][p][i], reps),
				       median(res_flt[row][p][i], reps),
				       median(res_rss[row][p][i], reps),
				       median(res_seg[row][p][i], reps));
			}
		}
	}

	for (unsigned int i = 0; i < NR_IMPLS; i++) {
		if (!lseg[i])
			continue;
		if (impls[i]->check(lseg[i]))
			fail("the heap check failed on the names segment");
		impls[i]->destroy(lseg[i], lseg_name[i]);
	}
	for (unsigned int k = 0; k < NR_KINDS; k++)
		for (unsigned int w = 0; w < MAX_PROCS; w++)
			if (on[k])
				trace_free(&traces[k][w]);
	return 0;
}
