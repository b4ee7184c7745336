// SPDX-License-Identifier: GPL-2.0
/*
 * ipc_bench: one-way latency (ping-pong halved: p50, p99, p99.9) and
 * throughput of passing a message between two processes, for
 *
 *   shmk        libshmk's queues: shmk_msg_alloc() + shmk_send() /
 *               shmk_recv() + shmk_msg_free(), nothing copied; busy-poll
 *               (SHMK_BUSY_POLL_FOREVER) and blocking
 *   shmk-reuse  the same queues with the message handed back instead of
 *               freed: the receiver sends it back to the sender (a pool
 *               of 256 messages for the stream), so no allocation is timed
 *   mqueue      POSIX message queues (blocking)
 *   socketpair  a Unix stream socket pair (blocking)
 *   pipe        two pipes (blocking)
 *   cacheline   floor, busy-poll: a sequence number bounced through one
 *               cache line per direction, nothing else (latency only)
 *   futex       floor, blocking: the same with FUTEX_WAIT/FUTEX_WAKE
 *
 * iceoryx is measured by its peer, ipc_iceoryx (needs RouDi); bench/ipc-run
 * runs both and the report. Output: CSV rows (ipc_common.h).
 *
 *   ipc_bench [-n ITERS] [-t MSGS] [-s SIZE,...] [-x TRANSPORT,...] [-r REPS]
 *
 * REPS (default IPC_BUSY_REPS): runs of each busy-poll latency case, the
 * row giving the medians (ipc_common.h).
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "shmk.h"
#include "ipc_common.h"

struct ctx {
	const char *transport;
	bool busy;
	size_t size;
	int side;
	/* shmk */
	struct shmk *h;
	struct shmk_queue *rq, *sq;
	uint64_t *pool[256];		/* shmk-reuse: A's free messages */
	int npool;
	uint64_t *cur;			/* shmk-reuse: the last received */
	/* mqueue */
	mqd_t mq_in, mq_out;
	/* socketpair, pipe */
	int fd_in, fd_out;
	char *buf;
	/* floors */
	uint32_t *word_in, *word_out;
};

static char seg_name[64];
static char mq_name[2][64];
static int sp[2], pa[2], pb[2];
static uint32_t *floor_words;	/* two cache lines, shared */

static void die(const char *what, int err)
{
	fprintf(stderr, "ipc_bench: %s: %s\n", what, strerror(err));
	exit(1);
}

/* ---- per-case setup (before fork) and per-side setup (after) ----------- */

static bool is_shmk(const char *t)
{
	return !strncmp(t, "shmk", 4);
}

static bool is_reuse(const char *t)
{
	return !strcmp(t, "shmk-reuse");
}

static int setup(const char *t, size_t size)
{
	if (is_shmk(t)) {
		struct shmk_opts o = { .size = 8 << 20, .max_size = 4ULL << 30 };
		struct shmk *h;
		int r;

		snprintf(seg_name, sizeof(seg_name), "ipcbench-%d", getpid());
		shmk_unlink(seg_name);
		r = shmk_open(seg_name, SHMK_CREATE | SHMK_EXCL, &o, &h);
		if (r)
			die("shmk_open", -r);
		/* Creating segments and queues is not part of the figure. */
		shmk_close(h);
	} else if (!strcmp(t, "mqueue")) {
		struct mq_attr a = { .mq_maxmsg = 10, .mq_msgsize = (long)size };

		for (int i = 0; i < 2; i++) {
			mqd_t q;

			snprintf(mq_name[i], sizeof(mq_name[i]), "/ipcbench-%d-%d",
				 getpid(), i);
			mq_unlink(mq_name[i]);
			q = mq_open(mq_name[i], O_RDWR | O_CREAT | O_EXCL, 0600, &a);
			if (q == (mqd_t)-1)
				return -errno;	/* above msgsize_max */
			mq_close(q);
		}
	} else if (!strcmp(t, "socketpair")) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp))
			die("socketpair", errno);
	} else if (!strcmp(t, "pipe")) {
		if (pipe(pa) || pipe(pb))
			die("pipe", errno);
	} else if (!floor_words) {
		floor_words = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (floor_words == MAP_FAILED)
			die("mmap", errno);
	}
	if (floor_words)
		memset(floor_words, 0, 4096);
	return 0;
}

static void teardown(const char *t)
{
	if (is_shmk(t)) {
		shmk_unlink(seg_name);
	} else if (!strcmp(t, "mqueue")) {
		mq_unlink(mq_name[0]);
		mq_unlink(mq_name[1]);
	} else if (!strcmp(t, "socketpair")) {
		close(sp[0]);
		close(sp[1]);
	} else if (!strcmp(t, "pipe")) {
		close(pa[0]); close(pa[1]); close(pb[0]); close(pb[1]);
	}
}

static void side_setup(struct ctx *c)
{
	int s = c->side;

	if (is_shmk(c->transport)) {
		struct shmk_queue_opts o = {
			.capacity = 256,
			.busy_poll_ns = c->busy ? SHMK_BUSY_POLL_FOREVER : 0,
		};
		int r = shmk_open(seg_name, 0, NULL, &c->h);

		if (!r)
			r = shmk_queue_open(c->h, s ? "b" : "a", SHMK_QUEUE_RECV,
					    &o, &c->rq);
		/* The peer's queue exists once it said it is ready. */
		if (r)
			die("shmk queue", -r);
		return;
	}
	if (!strcmp(c->transport, "mqueue")) {
		c->mq_in = mq_open(mq_name[s], O_RDONLY);
		c->mq_out = mq_open(mq_name[!s], O_WRONLY);
		if (c->mq_in == (mqd_t)-1 || c->mq_out == (mqd_t)-1)
			die("mq_open", errno);
	} else if (!strcmp(c->transport, "socketpair")) {
		c->fd_in = c->fd_out = sp[s];
		close(sp[!s]);
	} else if (!strcmp(c->transport, "pipe")) {
		c->fd_in = s ? pa[0] : pb[0];
		c->fd_out = s ? pb[1] : pa[1];
		close(s ? pa[1] : pb[1]);
		close(s ? pb[0] : pa[0]);
	} else {
		c->word_in = floor_words + (s ? 0 : 16);
		c->word_out = floor_words + (s ? 16 : 0);
	}
	c->buf = calloc(1, c->size < 8 ? 8 : c->size);
}

static void side_connect(struct ctx *c)
{
	if (is_shmk(c->transport)) {
		/* A busy sender spins on a full queue too (as iceoryx's). */
		struct shmk_queue_opts o = {
			.busy_poll_ns = c->busy ? SHMK_BUSY_POLL_FOREVER : 0,
		};
		int r = shmk_queue_open(c->h, c->side ? "a" : "b", 0, &o,
					&c->sq);

		if (r)
			die("shmk_queue_open", -r);
	}
	if (is_reuse(c->transport) && c->side == 0) {
		for (c->npool = 0; c->npool < 256; c->npool++) {
			c->pool[c->npool] = shmk_msg_alloc(c->h, c->size);
			if (!c->pool[c->npool])
				die("shmk_msg_alloc", errno);
		}
	}
}

/* ---- send and receive -------------------------------------------------- */

static void xwrite(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write", errno);
		}
		p += w;
		n -= (size_t)w;
	}
}

static void xread(int fd, char *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			die("read", r ? errno : EPIPE);
		}
		p += r;
		n -= (size_t)r;
	}
}

static void futex_wait(uint32_t *w, uint32_t v)
{
	syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void futex_wake(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void send_msg(struct ctx *c, uint64_t seq)
{
	const char *t = c->transport;

	if (is_reuse(t)) {
		uint64_t *m = c->cur;
		int r;

		if (c->side == 0) {	/* A: a message of the pool */
			if (!c->npool) {
				size_t sz;

				r = shmk_recv(c->rq, (void **)&m, &sz, -1);
				if (r)
					die("shmk_recv", -r);
				c->pool[c->npool++] = m;
			}
			m = c->pool[--c->npool];
		}
		m[0] = seq;
		r = shmk_send(c->sq, m, 0);
		if (r)
			die("shmk_send", -r);
	} else if (!strcmp(t, "shmk")) {
		uint64_t *m = shmk_msg_alloc(c->h, c->size);
		int r;

		if (!m)
			die("shmk_msg_alloc", errno);
		m[0] = seq;
		r = shmk_send(c->sq, m, 0);
		if (r)
			die("shmk_send", -r);
	} else if (!strcmp(t, "mqueue")) {
		memcpy(c->buf, &seq, 8);
		if (mq_send(c->mq_out, c->buf, c->size, 0))
			die("mq_send", errno);
	} else if (!strcmp(t, "socketpair") || !strcmp(t, "pipe")) {
		memcpy(c->buf, &seq, 8);
		xwrite(c->fd_out, c->buf, c->size);
	} else {
		/* Floors: the low 32 bits of seq + 1 (0 is "nothing yet"). */
		__atomic_store_n(c->word_out, (uint32_t)seq + 1,
				 __ATOMIC_RELEASE);
		if (!c->busy)
			futex_wake(c->word_out);
	}
}

/* Floors: wait for seq; others: the next message's seq. */
static uint64_t recv_msg(struct ctx *c, uint64_t want)
{
	const char *t = c->transport;
	uint64_t seq;

	if (is_shmk(t)) {
		uint64_t *m;
		size_t sz;
		int r = shmk_recv(c->rq, (void **)&m, &sz, -1);

		if (r)
			die("shmk_recv", -r);
		seq = m[0];
		if (!is_reuse(t))
			shmk_msg_free(c->h, m);
		else if (c->side == 0)
			c->pool[c->npool++] = m;	/* back in the pool */
		else
			c->cur = m;			/* B sends it back */
		return seq;
	}
	if (!strcmp(t, "mqueue")) {
		if (mq_receive(c->mq_in, c->buf, c->size, NULL) < 0)
			die("mq_receive", errno);
	} else if (!strcmp(t, "socketpair") || !strcmp(t, "pipe")) {
		xread(c->fd_in, c->buf, c->size);
	} else {
		uint32_t w = (uint32_t)want + 1, v;

		while ((v = __atomic_load_n(c->word_in, __ATOMIC_ACQUIRE)) != w) {
			if (c->busy)
				ipc_relax();
			else
				futex_wait(c->word_in, v);
		}
		return want;
	}
	memcpy(&seq, c->buf, 8);
	return seq;
}

/* ---- the two loops ----------------------------------------------------- */

static int side_main(struct ctx *c, struct ipc_shared *sh, bool lat, long n)
{
	side_setup(c);
	ipc_barrier(sh, c->side);
	side_connect(c);
	/* Both connected before the first message. */
	__atomic_add_fetch(&sh->go, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&sh->go, __ATOMIC_SEQ_CST) < 2)
		sched_yield();
	if (lat) {
		uint64_t *rtt;

		if (c->side == 1) {
			for (long i = 0; i < n + IPC_WARMUP; i++)
				send_msg(c, recv_msg(c, (uint64_t)i));
			return 0;
		}
		rtt = calloc((size_t)n, sizeof(*rtt));
		for (long i = 0; i < n + IPC_WARMUP; i++) {
			uint64_t t0 = ipc_now();

			send_msg(c, (uint64_t)i);
			if (recv_msg(c, (uint64_t)i) != (uint64_t)i)
				return 2;
			if (i >= IPC_WARMUP)
				rtt[i - IPC_WARMUP] = ipc_now() - t0;
		}
		ipc_percentiles(sh, rtt, (size_t)n);
		return 0;
	}
	if (is_reuse(c->transport)) {
		/* B hands every message back; A reuses them. */
		if (c->side == 0) {
			sh->t_start = ipc_now();
			for (long i = 0; i < n; i++)
				send_msg(c, (uint64_t)i);
			while (!__atomic_load_n(&sh->t_end, __ATOMIC_ACQUIRE))
				usleep(100);
			return 0;
		}
		for (long i = 0; i < n; i++) {
			if (recv_msg(c, (uint64_t)i) != (uint64_t)i)
				return 2;
			send_msg(c, (uint64_t)i);
		}
		__atomic_store_n(&sh->t_end, ipc_now(), __ATOMIC_RELEASE);
		return 0;
	}
	if (c->side == 0) {
		sh->t_start = ipc_now();
		for (long i = 0; i < n; i++)
			send_msg(c, (uint64_t)i);
		recv_msg(c, (uint64_t)n);	/* B is done */
		return 0;
	}
	for (long i = 0; i < n; i++)
		if (recv_msg(c, (uint64_t)i) != (uint64_t)i)
			return 2;
	sh->t_end = ipc_now();
	send_msg(c, (uint64_t)n);
	return 0;
}

static int run_case(const char *t, bool busy, size_t size, bool lat, long n,
		    struct ipc_shared *sh)
{
	pid_t p[2];
	int r = setup(t, size);

	if (r)
		return r;
	memset(sh, 0, sizeof(*sh));
	fflush(stdout);
	for (int side = 0; side < 2; side++) {
		p[side] = fork();
		if (p[side] < 0)
			die("fork", errno);
		if (p[side] == 0) {
			struct ctx c = { .transport = t, .busy = busy,
					 .size = size, .side = side };

			exit(side_main(&c, sh, lat, n));
		}
	}
	r = ipc_wait2(p[0], p[1]) ? -EIO : 0;
	teardown(t);
	return r;
}

/*
 * A latency case run @reps times, each run after one of the cache-line
 * floor when @paired (ipc_common.h): the medians into @lat, @floor_p50
 * and @ratio.
 */
static int lat_case(const char *t, bool busy, size_t size, long iters,
		    int reps, bool paired, struct ipc_shared *lat,
		    struct ipc_shared *flo, uint64_t *floor_p50,
		    double *ratio)
{
	struct ipc_reps rl = { 0 };
	int r = 0;

	for (int j = 0; !r && j < reps; j++) {
		if (paired)
			r = run_case("cacheline", true, 8, true, iters, flo);
		if (!r)
			r = run_case(t, busy, size, true, iters, lat);
		if (!r)
			ipc_reps_add(&rl, lat, paired ? flo->p50 : 0);
	}
	ipc_reps_median(&rl, lat, floor_p50, ratio);
	return r;
}

static bool listed(const char *list, const char *t)
{
	size_t n = strlen(t);

	for (const char *p = list; (p = strstr(p, t)); p += n)
		if ((p == list || p[-1] == ',') && (!p[n] || p[n] == ','))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *t;
		bool busy, block, sized;
	} T[] = {
		{ "cacheline", true, false, false },
		{ "futex", false, true, false },
		{ "shmk", true, true, true },
		{ "shmk-reuse", true, true, true },
		{ "mqueue", false, true, true },
		{ "socketpair", false, true, true },
		{ "pipe", false, true, true },
	};
	size_t sizes[8] = { 64, 4096, 65536, 1 << 20 };
	int nsizes = 4, reps = IPC_BUSY_REPS, c;
	long iters = 20000, msgs = 20000;
	const char *only = NULL;
	struct ipc_shared *lat, *thr, *flo;

	while ((c = getopt(argc, argv, "n:t:s:x:r:")) != -1) {
		switch (c) {
		case 'n': iters = atol(optarg); break;
		case 'r': reps = atoi(optarg); break;
		case 't': msgs = atol(optarg); break;
		case 'x': only = optarg; break;
		case 's':
			nsizes = 0;
			for (char *s = strtok(optarg, ","); s && nsizes < 8;
			     s = strtok(NULL, ","))
				sizes[nsizes++] = (size_t)atol(s);
			break;
		default:
			fprintf(stderr, "usage: %s [-n ITERS] [-t MSGS] "
				"[-s SIZE,...] [-x TRANSPORT,...] [-r REPS]\n",
				argv[0]);
			return 2;
		}
	}
	if (iters < 1000 || msgs < 1) {
		fprintf(stderr, "ipc_bench: at least 1000 iterations\n");
		return 2;
	}
	if (reps < 1 || reps > IPC_MAX_REPS) {
		fprintf(stderr, "ipc_bench: -r takes 1 to %d\n", IPC_MAX_REPS);
		return 2;
	}
	lat = ipc_shared_new();
	thr = ipc_shared_new();
	flo = ipc_shared_new();
	printf(IPC_CSV_HEADER);
	for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++) {
		if (only && !listed(only, T[i].t))
			continue;
		for (int m = 0; m < 2; m++) {
			bool busy = m == 0;

			if ((busy && !T[i].busy) || (!busy && !T[i].block))
				continue;
			for (int k = 0; k < (T[i].sized ? nsizes : 1); k++) {
				size_t size = T[i].sized ? sizes[k] : 8;
				uint64_t floor_p50;
				double ratio;
				int r = lat_case(T[i].t, busy, size, iters,
						 busy ? reps : 1,
						 busy && T[i].sized, lat, flo,
						 &floor_p50, &ratio);

				/* A floor bounces one word: no stream. */
				if (!r && T[i].sized)
					r = run_case(T[i].t, busy, size, false,
						     msgs, thr);
				if (r) {
					fprintf(stderr, "ipc_bench: %s %s %zu: "
						"%s%s\n", T[i].t,
						busy ? "busy" : "block", size,
						strerror(-r),
						!strcmp(T[i].t, "mqueue") ?
						" (above fs.mqueue.msgsize_max"
						"?): skipped" : "");
					continue;
				}
				ipc_row(T[i].t, busy ? "busy" : "block", size,
					iters, lat, msgs,
					T[i].sized ? thr : NULL, floor_p50,
					ratio);
			}
		}
	}
	return 0;
}
