// SPDX-License-Identifier: MIT
/*
 * grow_demo: one process grows a shared heap while three peers use it.
 *
 *   grow_demo [kernel|posix ...]   default: kernel (if /dev/shmk exists),
 *                                  then posix
 *   grow_demo --help
 *
 * For each backend, a grower creates a 1 MiB libshmk segment and three
 * peers attach to it. The grower then allocates a 64 MiB block, which no
 * free block can hold: the heap grows. It writes a message at the start of
 * the block and publishes the block's offset under a name in the segment's
 * directory. Each peer finds the name, follows the offset, reads the
 * message and writes every page of the block, counting its minor page
 * faults.
 *
 * With the kernel backend (/dev/shmk) the module installed the new pages in
 * every peer before the growth returned: the peers take no fault at all.
 * With the posix backend (POSIX shared memory grown by ftruncate, what
 * applications do today) every peer faults every page in.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmk.h>

#define PEERS		3
#define MIB		(1UL << 20)
#define BLOCK		(64 * MIB)
#define PAGE		4096UL

/* Published under "demo/block" by the grower. */
struct published {
	uint64_t off;		/* of the block: valid in every process */
	uint64_t len;
};

#define PROG		"grow_demo"

/* One line on what to do about the most likely failures. */
static const char *hint(int err)
{
	switch (err) {
	case ENODEV:
		return "load shmk.ko (modprobe shmk), or set SHMK_BACKEND=posix";
	case EACCES:
		return "no access to /dev/shmk or the segment: see its mode, "
		       "or set SHMK_BACKEND=posix";
	case EADDRINUSE:
		return "the other backend has a segment of that name: use the "
		       "same SHMK_BACKEND everywhere, or unlink it";
	case ENOENT:
		return "no such segment: start its creator first";
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

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static struct shmk *attach(const char *seg, const char *client, int flags)
{
	struct shmk_opts o = {
		.size = 1 * MIB,
		.max_size = 256 * MIB,
		.mode = 0600,
		.client_name = client,
	};
	struct shmk *h;
	int r;

	r = shmk_open(seg, flags, &o, &h);
	if (r)
		die("shmk_open", -r);
	return h;
}

static void peer(const char *seg, int id, int go, int done)
{
	const struct published *pub;
	char client[32], c;
	struct shmk *h;
	long before, faults;
	char *p;
	uint64_t i;

	snprintf(client, sizeof(client), "peer-%d", id);
	h = attach(seg, client, 0);
	minflt();	/* fault in what measuring itself touches */
	if (write(done, "r", 1) != 1)
		die("ready", errno);
	if (read(go, &c, 1) != 1)
		die("wait", errno);

	pub = shmk_find(h, "demo/block", NULL);
	if (!pub)
		die("shmk_find demo/block", errno);
	p = shmk_ptr(h, pub->off);
	before = minflt();
	for (i = PAGE; i < pub->len; i += PAGE)
		p[i + id] = (char)id;
	faults = minflt() - before;
	printf("  %-6s pid %-5d read \"%s\" at offset %#llx, wrote %llu new pages: %ld minor faults\n",
	       client, getpid(), p, (unsigned long long)pub->off,
	       (unsigned long long)(pub->len / PAGE - 1), faults);
	fflush(stdout);
	shmk_close(h);
	exit(0);
}

static void run(const char *backend)
{
	struct shmk_client clients[PEERS + 1];
	struct published *pub;
	int go[2], done[2], i, n, r, created, status, failed = 0;
	char seg[64], c, *blk;
	struct shmk *h;
	size_t before;

	/* The backend for shmk_open() and shmk_unlink() here and in the peers */
	if (setenv("SHMK_BACKEND", backend, 1))
		die("setenv", errno);
	snprintf(seg, sizeof(seg), "grow-demo-%s-%d", backend, (int)getpid());
	h = attach(seg, "grower", SHMK_CREATE | SHMK_EXCL);
	printf("%s backend: grower pid %d created segment \"%s\" (%zu MiB active, %zu MiB max)\n",
	       shmk_backend(h), getpid(), seg, shmk_size(h) / MIB,
	       shmk_max_size(h) / MIB);

	if (pipe(go) || pipe(done))
		die("pipe", errno);
	for (i = 0; i < PEERS; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork", errno);
		if (!pid)
			peer(seg, i + 1, go[0], done[1]);
	}
	for (i = 0; i < PEERS; i++)
		if (read(done[0], &c, 1) != 1)
			die("ready", errno);
	n = shmk_clients(h, clients, PEERS + 1);
	if (n < 0)
		die("shmk_clients", -n);
	printf("  %d clients attached:", n);
	for (i = 0; i < n && i < PEERS + 1; i++)
		printf(" %s (pid %d)", clients[i].name, clients[i].pid);
	printf("\n");

	before = shmk_size(h);
	blk = shmk_alloc(h, BLOCK);
	if (!blk)
		die("shmk_alloc", errno);
	snprintf(blk, 64, "hello from pid %d", getpid());
	pub = shmk_find_or_alloc(h, "demo/block", sizeof(*pub), &created);
	if (!pub)
		die("shmk_find_or_alloc", errno);
	pub->off = shmk_off(h, blk);
	pub->len = BLOCK;
	printf("  shmk_alloc(64 MiB) grew the heap from %zu to %zu MiB; the peers follow its offset:\n",
	       before / MIB, shmk_size(h) / MIB);
	for (i = 0; i < PEERS; i++)
		if (write(go[1], "g", 1) != 1)
			die("go", errno);
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed = 1;
	if (failed)
		die("a peer failed", EIO);

	shmk_free(h, blk);
	r = shmk_remove(h, "demo/block");
	if (r)
		die("shmk_remove", -r);
	r = shmk_check(h);
	printf("  freed the block; shmk_check: %s\n", r ? strerror(-r) : "ok");
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
	shmk_close(h);
	r = shmk_unlink(seg);
	if (r)
		die("shmk_unlink", -r);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: grow_demo [kernel|posix ...]\n"
		"\n"
		"Grow a shared heap by 64 MiB while three peers use it, on each\n"
		"backend given (default: kernel if /dev/shmk exists, then posix),\n"
		"and count the page faults the peers take on the new memory.\n"
		"The kernel backend needs shmk.ko loaded; posix needs nothing.\n");
}

int main(int argc, char **argv)
{
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "kernel") && strcmp(argv[i], "posix") &&
		    strcmp(argv[i], "memfd")) {
			fprintf(stderr, "grow_demo: unknown backend '%s'\n",
				argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (argc > 1) {
		for (i = 1; i < argc; i++)
			run(argv[i]);
		return 0;
	}
	if (access("/dev/shmk", F_OK) == 0)
		run("kernel");
	else
		printf("kernel backend: skipped, no /dev/shmk (load shmk.ko to "
		       "compare)\n");
	run("posix");
	return 0;
}
