// SPDX-License-Identifier: GPL-2.0
/*
 * shmkctl queues: the message queues of a segment (shmk_queue_open(3)),
 * read through libshmk (linked statically), so on every backend. The
 * segment is attached read-only (the caller needs read access to it, and
 * is listed as a client named "shmkctl" meanwhile); each queue is found in
 * the directory by its prefix, opened as a sender, which changes nothing,
 * and its counters read with shmk_queue_stats(3): a moment's view, exact
 * when the queue is quiet.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmk.h>

#include "json.h"
#include "queue.h"
#include "shmkctl_queues.h"

struct qrow {
	char *name;			/* without QUEUE_PREFIX */
	struct shmk_queue_stats st;
	int err;			/* opening or reading it failed */
};

struct qlist {
	struct qrow *rows;
	size_t n, cap;
	int err;
};

static int collect(const char *name, void *ptr, size_t size, void *arg)
{
	const size_t plen = sizeof(QUEUE_PREFIX) - 1;
	struct qlist *l = arg;
	struct qrow *r;

	(void)ptr;
	(void)size;
	if (strncmp(name, QUEUE_PREFIX, plen) || !name[plen])
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;

		r = realloc(l->rows, cap * sizeof(*r));
		if (!r) {
			l->err = -ENOMEM;
			return 1;
		}
		l->rows = r;
		l->cap = cap;
	}
	r = &l->rows[l->n];
	memset(r, 0, sizeof(*r));
	r->name = strdup(name + plen);
	if (!r->name) {
		l->err = -ENOMEM;
		return 1;
	}
	l->n++;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct qrow *)a)->name,
		      ((const struct qrow *)b)->name);
}

/* A name as the terminal should see it: control bytes as '?'. */
static void print_printable(const char *s, int width)
{
	int n = 0;

	for (; *s; s++, n++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
	for (; n < width; n++)
		putchar(' ');
}

static void print_json(const char *seg, const struct qlist *l)
{
	putchar('[');
	for (size_t i = 0; i < l->n; i++) {
		const struct qrow *r = &l->rows[i];

		printf("%s{\"segment\":", i ? "," : "");
		json_str(stdout, seg);
		printf(",\"queue\":");
		json_str(stdout, r->name);
		if (r->err) {
			printf(",\"error\":");
			json_str(stdout, strerror(-r->err));
			putchar('}');
			continue;
		}
		printf(",\"receiver_pid\":%" PRId64 ",\"capacity\":%" PRIu64
		       ",\"queued\":%" PRIu64 ",\"sent\":%" PRIu64
		       ",\"received\":%" PRIu64 ",\"high_water\":%" PRIu64
		       ",\"senders_blocked\":%" PRIu64 "}",
		       r->st.receiver_pid, r->st.capacity, r->st.queued,
		       r->st.sent, r->st.received, r->st.high_water,
		       r->st.senders_blocked);
	}
	printf("]\n");
}

static void print_table(const struct qlist *l)
{
	int w = 5;

	for (size_t i = 0; i < l->n; i++)
		if ((int)strlen(l->rows[i].name) > w)
			w = (int)strlen(l->rows[i].name);
	print_printable("QUEUE", w);
	printf("  %8s %8s %8s %10s %10s %8s %8s\n", "RECEIVER", "CAPACITY",
	       "QUEUED", "SENT", "RECEIVED", "HIGH", "BLOCKED");
	for (size_t i = 0; i < l->n; i++) {
		const struct qrow *r = &l->rows[i];
		char pid[24];

		print_printable(r->name, w);
		if (r->err) {
			printf("  (%s)\n", strerror(-r->err));
			continue;
		}
		if (r->st.receiver_pid > 0)
			snprintf(pid, sizeof(pid), "%" PRId64, r->st.receiver_pid);
		else
			snprintf(pid, sizeof(pid), "%s",
				 r->st.receiver_pid ? "other-ns" : "-");
		printf("  %8s %8" PRIu64 " %8" PRIu64 " %10" PRIu64 " %10" PRIu64
		       " %8" PRIu64 " %8" PRIu64 "\n", pid, r->st.capacity,
		       r->st.queued, r->st.sent, r->st.received,
		       r->st.high_water, r->st.senders_blocked);
	}
}

int shmkctl_queues(const char *seg, bool json)
{
	struct shmk_opts so = { .client_name = "shmkctl" };
	struct qlist l = { 0 };
	struct shmk *h;
	int r = shmk_open(seg, SHMK_RDONLY, &so, &h);

	if (r) {
		fprintf(stderr, "shmkctl: cannot open segment %s: %s\n", seg,
			strerror(-r));
		return 1;
	}
	r = shmk_foreach(h, collect, &l);	/* the count, or -errno */
	if (r >= 0)
		r = l.err;
	if (r) {
		fprintf(stderr, "shmkctl: cannot list the objects of %s: %s\n",
			seg, strerror(-r));
		goto out;
	}
	qsort(l.rows, l.n, sizeof(*l.rows), by_name);
	for (size_t i = 0; i < l.n; i++) {
		struct shmk_queue *q;

		l.rows[i].err = shmk_queue_open(h, l.rows[i].name, 0, NULL, &q);
		if (l.rows[i].err)
			continue;
		l.rows[i].err = shmk_queue_stats(q, &l.rows[i].st);
		shmk_queue_close(q);
	}
	if (json)
		print_json(seg, &l);
	else
		print_table(&l);
out:
	for (size_t i = 0; i < l.n; i++)
		free(l.rows[i].name);
	free(l.rows);
	shmk_close(h);
	return r ? 1 : 0;
}
