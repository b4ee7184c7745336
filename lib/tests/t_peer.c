/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Peers and growth: a peer attached to a small segment follows an offset
 * into memory that another process allocated after growing the heap by
 * 16 MiB. With the kernel backend the module installed the new pages in
 * the peer before the growth returned, so reading them all takes no fault
 * at all (ru_minflt unchanged; not checked under valgrind, whose own work
 * faults too). The memfd backend maps them lazily: the data must be right,
 * the faults are only reported.
 */
#include <sys/resource.h>

#include "harness.h"

#define LEN	(16 << 20)

static const char *seg;
static int to_peer[2], from_peer[2];

/* Not instrumented: ASan's shadow of the range would fault in instead. */
__attribute__((no_sanitize("address"), noinline))
static uint64_t touch(const volatile uint8_t *p, uint64_t len)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < len; i += 4096)
		sum += p[i];
	return sum;
}

static int peer(void *arg)
{
	struct rusage r0, r1;
	struct shmk *h;
	uint64_t msg[3];
	const volatile uint8_t *p;
	uint64_t sum = 0;

	(void)arg;
	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	msg[0] = 1;
	if (write(from_peer[1], msg, 8) != 8 ||
	    read(to_peer[0], msg, 16) != 16)
		return 3;
	p = shmk_ptr(h, msg[0]);
	getrusage(RUSAGE_SELF, &r0);
	getrusage(RUSAGE_SELF, &r1);	/* both structs touched */
	getrusage(RUSAGE_SELF, &r0);
	sum = touch(p, msg[1]);
	getrusage(RUSAGE_SELF, &r1);
	msg[0] = sum;
	msg[1] = (uint64_t)(r1.ru_minflt - r0.ru_minflt);
	msg[2] = shmk_size(h);
	if (write(from_peer[1], msg, 24) != 24)
		return 4;
	return shmk_close(h) ? 5 : 0;
}

int main(void)
{
	struct shmk *h;
	uint64_t msg[3];
	uint8_t *p;
	pid_t pid;
	bool kernel;

	seg = test_name("peer");
	h = test_open(seg, SHMK_CREATE, 256 << 10, 256 << 20);
	kernel = !strcmp(shmk_backend(h), "kernel");
	CHECK(!pipe(to_peer) && !pipe(from_peer));
	pid = test_fork(peer, NULL);
	CHECK_EQ(read(from_peer[0], msg, 8), 8);

	p = shmk_alloc(h, LEN);		/* grows the segment */
	CHECK(p != NULL);
	memset(p, 1, LEN);
	msg[0] = shmk_off(h, p);
	msg[1] = LEN;
	CHECK_EQ(write(to_peer[1], msg, 16), 16);
	CHECK_EQ(read(from_peer[0], msg, 24), 24);
	CHECK_EQ(test_wait(pid), 0);
	CHECK_EQ(msg[0], LEN / 4096);		/* one byte of 1 per page */
	CHECK_EQ(msg[2], shmk_size(h));
	printf("%s backend: the peer took %llu minor faults over %d pages\n",
	       shmk_backend(h), (unsigned long long)msg[1], LEN / 4096);
	/* Under valgrind, its own work faults too: count only natively. */
	if (kernel && !test_under_valgrind())
		CHECK_EQ(msg[1], 0);
	CHECK_OK(shmk_close(h));
	test_pass("peer");
	return 0;
}
