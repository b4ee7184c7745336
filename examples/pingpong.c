/* SPDX-License-Identifier: MIT */
/*
 * pingpong: two processes pass messages through shmk queues, without
 * copying them.
 *
 *   pingpong [-n COUNT] [-s SIZE] [--busy]   run a server and a client
 *   pingpong server [SEGMENT]                run only the server
 *   pingpong client [SEGMENT] [-n COUNT] ... run only the client
 *   pingpong --help
 *
 * The server receives requests on the queue "pingpong/req" and answers on
 * "pingpong/rep". The client writes a request into a message buffer of
 * the segment (shmk_msg_alloc), sends it, and the server gets a pointer to
 * the very same bytes: it doubles the number in place and sends the same
 * buffer back as the reply. Only the buffer's offset crosses the queue,
 * whatever its size. The client checks each reply (same offset, doubled
 * number) and prints the round-trip times. Either backend works: /dev/shmk
 * when the module is loaded, POSIX shared memory otherwise (or
 * SHMK_BACKEND=posix).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmk.h>

#define PROG		"pingpong"
#define REQ		"pingpong/req"
#define REP		"pingpong/rep"

struct request {
	uint64_t seq;			/* ~0: stop */
	uint64_t value;			/* the server doubles it */
};

static const char *hint(int err)
{
	switch (err) {
	case ENODEV:
		return "load shmk.ko (modprobe shmk), or set SHMK_BACKEND=posix";
	case EACCES:
		return "no access to /dev/shmk or the segment: see its mode, "
		       "or set SHMK_BACKEND=posix";
	case ENOENT:
		return "no such segment or queue: start the server first";
	case EADDRINUSE:
		return "a server already receives on " REQ ": stop it, or use "
		       "another segment";
	case ECONNRESET:
		return "the other side is gone: restart it";
	case ETIMEDOUT:
		return "no answer for 5 s: is the server running?";
	default:
		return NULL;
	}
}

static void die(const char *what, int err)
{
	const char *h = hint(err);

	fprintf(stderr, "%s: %s: %s%s%s\n", PROG, what, strerror(err),
		h ? "; " : "", h ? h : "");
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void nap(void)
{
	nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
}

/* Open a queue to send to, waiting for its receiver to create it. */
static struct shmk_queue *open_to(struct shmk *h, const char *name)
{
	struct shmk_queue *q;
	int r, tries = 0;

	while ((r = shmk_queue_open(h, name, 0, NULL, &q)) == -ENOENT &&
	       tries++ < 500)
		nap();
	if (r)
		die("shmk_queue_open", -r);
	return q;
}

static struct shmk_queue *open_from(struct shmk *h, const char *name,
				    int busy)
{
	struct shmk_queue_opts o = {
		.busy_poll_ns = busy ? 1000000 : 0,	/* spin 1 ms first */
	};
	struct shmk_queue *q;
	int r = shmk_queue_open(h, name, SHMK_QUEUE_RECV, &o, &q);

	if (r)
		die("shmk_queue_open (receiver)", -r);
	return q;
}

static int server(const char *seg, int busy)
{
	struct shmk_opts opts = { .client_name = "pp-server" };
	struct shmk_queue *req, *rep = NULL;
	unsigned long served = 0;
	struct shmk *h;
	int r = shmk_open(seg, SHMK_CREATE, &opts, &h);

	if (r)
		die("shmk_open", -r);
	req = open_from(h, REQ, busy);
	for (;;) {
		struct request *m;
		size_t size;

		r = shmk_recv(req, (void **)&m, &size, -1);
		if (r)
			die("shmk_recv", -r);
		if (m->seq == ~0ULL) {
			shmk_msg_free(h, m);
			break;
		}
		m->value *= 2;		/* in place: the client's bytes */
		if (!rep)
			rep = open_to(h, REP);
		r = shmk_send(rep, m, 0);	/* the same buffer back */
		if (r)
			die("shmk_send", -r);
		served++;
	}
	printf("server: %lu requests answered in place\n", served);
	if (rep)
		shmk_queue_close(rep);
	shmk_queue_close(req);
	shmk_close(h);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int client(const char *seg, long count, size_t size, int busy)
{
	struct shmk_opts opts = { .client_name = "pp-client" };
	struct shmk_queue *req, *rep;
	struct shmk_queue_stats st;
	struct request *m, *stop;
	uint64_t *rtt;
	struct shmk *h;
	int r, tries = 0;

	while ((r = shmk_open(seg, 0, &opts, &h)) == -ENOENT && tries++ < 500)
		nap();
	if (r)
		die("shmk_open", -r);
	rep = open_from(h, REP, busy);
	req = open_to(h, REQ);
	rtt = calloc((size_t)count, sizeof(*rtt));
	if (!rtt)
		die("calloc", ENOMEM);
	/* One buffer, passed back and forth: written once, never copied. */
	m = shmk_msg_alloc(h, size < sizeof(*m) ? sizeof(*m) : size);
	if (!m)
		die("shmk_msg_alloc", errno);
	printf("client: a %zu-byte message at offset %#llx\n", size,
	       (unsigned long long)shmk_off(h, m));
	for (long i = 0; i < count; i++) {
		uint64_t t0 = now_ns(), off = shmk_off(h, m);
		struct request *back;
		size_t sz;

		m->seq = (uint64_t)i;
		m->value = (uint64_t)i + 1;
		r = shmk_send(req, m, 0);
		if (r)
			die("shmk_send", -r);
		r = shmk_recv(rep, (void **)&back, &sz, 5000000000LL);
		if (r)
			die("shmk_recv", -r);
		rtt[i] = now_ns() - t0;
		if (shmk_off(h, back) != off || back->seq != (uint64_t)i ||
		    back->value != 2 * ((uint64_t)i + 1))
			die("a reply", EPROTO);
		m = back;
	}
	qsort(rtt, (size_t)count, sizeof(*rtt), cmp_u64);
	printf("client: %ld round trips, the same offset each way; round "
	       "trip p50 %.1f us, p99 %.1f us\n", count,
	       (double)rtt[count / 2] / 1e3,
	       (double)rtt[(size_t)((double)count * 0.99)] / 1e3);
	if (!shmk_queue_stats(req, &st))
		printf("client: %s: %llu sent, %llu received, high water "
		       "%llu\n", REQ, (unsigned long long)st.sent,
		       (unsigned long long)st.received,
		       (unsigned long long)st.high_water);
	shmk_msg_free(h, m);
	stop = shmk_msg_alloc(h, sizeof(*stop));
	if (!stop)
		die("shmk_msg_alloc", errno);
	stop->seq = ~0ULL;
	r = shmk_send(req, stop, 0);
	if (r)
		die("shmk_send", -r);
	free(rtt);
	shmk_queue_close(req);
	shmk_queue_close(rep);
	shmk_close(h);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pingpong [server|client] [SEGMENT] [-n COUNT] "
		"[-s SIZE] [--busy]\n"
		"\n"
		"Pass messages between two processes through shmk queues, "
		"without\n"
		"copying them: the client sends a request, the server doubles "
		"it in place\n"
		"and sends the same buffer back. With no role, forks both. "
		"SEGMENT:\n"
		"default pingpong-PID (forked) or pingpong. -n: round trips "
		"(10000);\n"
		"-s: message size in bytes (64); --busy: spin 1 ms before "
		"sleeping.\n"
		"The backend is /dev/shmk when the module is loaded, else POSIX "
		"shared\n"
		"memory (SHMK_BACKEND=kernel or posix to choose).\n");
}

int main(int argc, char **argv)
{
	const char *role = NULL, *seg = NULL;
	char name[SHMK_NAME_MAX];
	long count = 10000;
	size_t size = 64;
	int busy = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			count = atol(argv[++i]);
		} else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
			size = (size_t)atol(argv[++i]);
		} else if (!strcmp(argv[i], "--busy")) {
			busy = 1;
		} else if (!role && (!strcmp(argv[i], "server") ||
				     !strcmp(argv[i], "client"))) {
			role = argv[i];
		} else if (role && !seg && argv[i][0] != '-') {
			seg = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (count < 1) {
		usage(stderr);
		return 2;
	}
	if (role) {
		if (!seg)
			seg = "pingpong";
		return !strcmp(role, "server") ? server(seg, busy)
					       : client(seg, count, size, busy);
	}
	snprintf(name, sizeof(name), "pingpong-%d", (int)getpid());
	shmk_unlink(name);
	{
		struct shmk_opts o = { .client_name = "pp-main" };
		struct shmk *h;
		int r = shmk_open(name, SHMK_CREATE | SHMK_EXCL, &o, &h);
		pid_t pid;
		int st;

		if (r)
			die("shmk_open", -r);
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			die("fork", errno);
		if (pid == 0)
			exit(server(name, busy));
		r = client(name, count, size, busy);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		shmk_close(h);
		shmk_unlink(name);
		return r || !WIFEXITED(st) || WEXITSTATUS(st);
	}
}
