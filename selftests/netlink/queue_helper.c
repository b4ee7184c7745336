// SPDX-License-Identifier: GPL-2.0
/*
 * queue_helper: a receiver of a libshmk message queue for shmkctl's tests
 * (shmkctl queues). Linked with libshmk; works on whichever backend
 * SHMK_BACKEND picks.
 *
 *   queue_helper SEGMENT QUEUE CAPACITY N
 *
 * Creates SEGMENT if absent, opens QUEUE as its receiver (creating it with
 * CAPACITY slots), sends N messages to it from a sender handle of the same
 * process, prints "ready PID", then obeys lines on stdin:
 *   recv K   take K messages and free them; prints "ok"
 *   quit     (or end of file) close the queue and the segment, exit 0
 * Errors go to stderr and exit 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmk.h>

static void __attribute__((noreturn)) die(const char *what, int r)
{
	fprintf(stderr, "queue_helper: %s: %s\n", what, strerror(-r));
	exit(1);
}

int main(int argc, char **argv)
{
	struct shmk_opts so = { .size = 1 << 20, .max_size = 64 << 20,
				.client_name = "queue_helper" };
	struct shmk_queue_opts qo = { 0 };
	struct shmk_queue *r, *s;
	struct shmk *h;
	char line[64];
	long n;
	int e;

	if (argc != 5) {
		fprintf(stderr, "usage: %s SEGMENT QUEUE CAPACITY N\n", argv[0]);
		return 2;
	}
	qo.capacity = (uint32_t)strtoul(argv[3], NULL, 0);
	n = strtol(argv[4], NULL, 0);
	e = shmk_open(argv[1], SHMK_CREATE, &so, &h);
	if (e)
		die("shmk_open", e);
	e = shmk_queue_open(h, argv[2], SHMK_QUEUE_RECV, &qo, &r);
	if (e < 0)
		die("shmk_queue_open (receiver)", e);
	e = shmk_queue_open(h, argv[2], 0, NULL, &s);
	if (e < 0)
		die("shmk_queue_open (sender)", e);
	for (long i = 0; i < n; i++) {
		void *m = shmk_msg_alloc(h, 64);

		if (!m)
			die("shmk_msg_alloc", -errno);
		e = shmk_send(s, m, SHMK_NONBLOCK);
		if (e)
			die("shmk_send", e);
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin) && strncmp(line, "quit", 4)) {
		long k;

		if (sscanf(line, "recv %ld", &k) != 1) {
			fprintf(stderr, "queue_helper: bad command: %s", line);
			return 1;
		}
		while (k-- > 0) {
			void *m;

			e = shmk_recv(r, &m, NULL, 0);
			if (e)
				die("shmk_recv", e);
			shmk_msg_free(h, m);
		}
		printf("ok\n");
		fflush(stdout);
	}
	shmk_queue_close(s);
	e = shmk_queue_close(r);
	if (e)
		die("shmk_queue_close", e);
	e = shmk_close(h);
	if (e)
		die("shmk_close", e);
	return 0;
}
