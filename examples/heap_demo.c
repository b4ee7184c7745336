/* SPDX-License-Identifier: MIT */
/*
 * heap_demo: the shmk heap and directory, shared by two processes.
 *
 *   heap_demo                     run a producer and a consumer (forked)
 *   heap_demo producer [SEGMENT]  run only the producer
 *   heap_demo consumer [SEGMENT]  run only the consumer
 *   heap_demo --help
 *
 * The producer creates a small segment, allocates a linked list of records
 * (linked by offsets, which are valid in every process), which makes the
 * heap grow, and publishes the list under the name "demo/list". The
 * consumer attaches, finds the list by name, walks it and prints it, then
 * tells the producer it is done. Either backend works: /dev/shmk when the
 * module is loaded, POSIX shared memory otherwise (or SHMK_BACKEND=posix).
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

#define RECORDS		2000

struct record {
	uint64_t next;			/* offset of the next record, or 0 */
	uint32_t seq;
	char text[60];
};

struct list {
	uint64_t head;			/* offset of the first record */
	uint32_t count;
	uint32_t ready;			/* set by the producer (release) */
	uint32_t done;			/* set by the consumer (release) */
};

#define PROG		"heap_demo"

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

static void nap(void)
{
	nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
}

static void print_stats(const char *who, struct shmk *h)
{
	struct shmk_stats st;
	int r = shmk_stats(h, &st);

	if (r)
		die("shmk_stats", -r);
	printf("%s: %s backend, %zu KiB of %zu KiB max, %llu bytes used in "
	       "%llu blocks, %llu named, %llu clients%s\n", who,
	       shmk_backend(h), shmk_size(h) >> 10, shmk_max_size(h) >> 10,
	       (unsigned long long)st.used_bytes,
	       (unsigned long long)st.live_allocs,
	       (unsigned long long)st.named_objects,
	       (unsigned long long)st.clients,
	       shmk_at_common_base(h) == 1 ? ", at the common base" : "");
}

static int producer(const char *seg)
{
	struct shmk_opts opts = {
		.size = 256 << 10,		/* small: the heap must grow */
		.max_size = 64 << 20,
		.client_name = "producer",
	};
	struct record *prev = NULL;
	struct list *list;
	struct shmk *h;
	int r, created;

	r = shmk_open(seg, SHMK_CREATE | SHMK_WRITER, &opts, &h);
	if (r)
		die("shmk_open", -r);
	print_stats("producer", h);

	list = shmk_find_or_alloc(h, "demo/list", sizeof(*list), &created);
	if (!list)
		die("shmk_find_or_alloc", errno);
	for (uint32_t i = 0; i < RECORDS; i++) {
		struct record *rec = shmk_alloc(h, sizeof(*rec));

		if (!rec)
			die("shmk_alloc", errno);
		rec->next = 0;
		rec->seq = i;
		snprintf(rec->text, sizeof(rec->text), "record %u of %u", i,
			 RECORDS);
		if (prev)
			prev->next = shmk_off(h, rec);
		else
			list->head = shmk_off(h, rec);
		prev = rec;
		/* some bulk, so that the heap grows a few times */
		if (!shmk_alloc(h, 1000))
			die("shmk_alloc", errno);
	}
	list->count = RECORDS;
	__atomic_store_n(&list->ready, 1, __ATOMIC_RELEASE);
	print_stats("producer", h);

	while (!__atomic_load_n(&list->done, __ATOMIC_ACQUIRE))
		nap();
	r = shmk_check(h);
	printf("producer: the consumer is done; shmk_check: %s\n",
	       r ? strerror(-r) : "ok");
	shmk_close(h);
	shmk_unlink(seg);
	return r ? 1 : 0;
}

static int consumer(const char *seg)
{
	struct shmk_opts opts = { .client_name = "consumer" };
	const struct record *rec;
	struct list *list;
	struct shmk *h;
	uint32_t n = 0;
	size_t size;
	int r;

	/* Wait for the producer to create the segment and the list. */
	while ((r = shmk_open(seg, 0, &opts, &h)) == -ENOENT)
		nap();
	if (r)
		die("shmk_open", -r);
	while (!(list = shmk_find(h, "demo/list", &size))) {
		if (errno != ENOENT)
			die("shmk_find", errno);
		nap();
	}
	while (!__atomic_load_n(&list->ready, __ATOMIC_ACQUIRE))
		nap();
	printf("consumer: found demo/list (%zu bytes): %u records; the "
	       "producer is pid %d\n", size, list->count,
	       shmk_client_pid(h, "producer"));

	for (uint64_t off = list->head; off; off = rec->next, n++) {
		rec = shmk_ptr(h, off);
		if (!rec || rec->seq != n)
			die("walking the list", EUCLEAN);
		if (n < 3 || n == list->count - 1)
			printf("consumer: at offset %#llx: %s\n",
			       (unsigned long long)off, rec->text);
		else if (n == 3)
			printf("consumer: ...\n");
	}
	print_stats("consumer", h);
	__atomic_store_n(&list->done, 1, __ATOMIC_RELEASE);
	shmk_close(h);
	return n == RECORDS ? 0 : 1;
}

int main(int argc, char **argv)
{
	char name[SHMK_NAME_MAX];
	int st1, st2;
	pid_t pid;

	snprintf(name, sizeof(name), "heap-demo-%d", (int)getpid());
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: heap_demo [producer|consumer] [SEGMENT]\n"
		       "\n"
		       "Share a heap and a named linked list between a producer\n"
		       "and a consumer (both, forked, by default). The backend is\n"
		       "/dev/shmk when shmk.ko is loaded, POSIX shared memory\n"
		       "otherwise; SHMK_BACKEND=kernel or posix chooses.\n");
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "producer"))
		return producer(argc >= 3 ? argv[2] : "heap-demo");
	if (argc >= 2 && !strcmp(argv[1], "consumer"))
		return consumer(argc >= 3 ? argv[2] : "heap-demo");
	if (argc >= 2) {
		fprintf(stderr, "usage: heap_demo [producer|consumer] "
				"[SEGMENT] (--help)\n");
		return 2;
	}

	/* Both, in two processes. */
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		int r = consumer(name);

		fflush(stdout);
		_exit(r);
	}
	st1 = producer(name);
	if (waitpid(pid, &st2, 0) < 0)
		die("waitpid", errno);
	return st1 || !WIFEXITED(st2) || WEXITSTATUS(st2);
}
