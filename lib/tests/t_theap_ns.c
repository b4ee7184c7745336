/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Thread heaps across pid namespaces. A thread heap's owner tag is a tid
 * and a start time as the owner's pid namespace shows them; seen from
 * another namespace the same tid names another task (or none), so a
 * reaper there would take a live owner's heap from under it. A process in
 * a new user, pid and mount namespace (with its own /proc, as in a
 * container) claims a thread heap and keeps it; the parent, in the
 * original namespace, then runs everything that reaps (shmk_shrink() and
 * a claim with the table full): the heap stays its owner's, the owner's
 * blocks and its fast path are intact, and shmk_check() passes.
 *
 * Skipped where the kernel or the sandbox forbids the namespaces
 * (unprivileged user namespaces off, or a /proc that may not be mounted).
 */
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "small.h"
#include "harness.h"

#define SKIP_CODE	77

struct share {
	int idx;		/* the grandchild's thread heap */
	uint64_t owner, ns;	/* its record as claimed */
	uint64_t off;		/* a slot it allocated */
};

static struct shmk *h;
static int ready[2], go[2];

static const struct shmk_theap *theap(unsigned int i)
{
	return (const struct shmk_theap *)(h->base + h->hdr->theaps) + i;
}

/* pid 1 of a new pid namespace, with its own /proc. */
static int grandchild(struct share *sh)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);
	uint8_t *p, *q;
	char c;

	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL))
		return SKIP_CODE;
	/* Mappings are not inherited across fork(): a handle of its own */
	if (shmk_open(test_segment, 0, NULL, &h))
		return 9;
	p = shmk_alloc(h, 24);
	if (!p)
		return 2;
	memset(p, 0x5a, 24);
	sh->idx = -1;
	for (unsigned int i = 0; i < SHMK_THEAPS; i++)
		if (theap(i)->owner >> 32 == (uint64_t)tid &&
		    theap(i)->pid == (uint32_t)getpid()) {
			sh->idx = (int)i;
			sh->owner = theap(i)->owner;
			sh->ns = theap(i)->ns;
		}
	if (sh->idx < 0)
		return 3;	/* no heap of its own */
	sh->off = shmk_off(h, p);
	if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
		return 4;
	/* Still its own heap: the fast path serves it, from the same run */
	q = shmk_alloc(h, 24);
	if (!q || theap((unsigned int)sh->idx)->owner != sh->owner)
		return 5;
	if (small_run_of(h, shmk_off(h, q)) != small_run_of(h, sh->off))
		return 6;
	for (int k = 0; k < 24; k++)
		if (p[k] != 0x5a)
			return 7;
	shmk_free(h, q);
	shmk_free(h, p);
	return shmk_close(h) ? 10 : 0;
}

static int child(void *arg)
{
	pid_t pid;

	close(ready[0]);
	close(go[1]);
	if (unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS))
		return SKIP_CODE;
	pid = fork();
	if (pid < 0)
		return 8;
	if (pid == 0)
		_exit(grandchild(arg));
	return test_wait(pid);
}

/* Threads that claim a heap each and exit: the table fills up. */
static void *claim_and_exit(void *arg)
{
	void *p = shmk_alloc(h, 48);

	(void)arg;
	shmk_free(h, p);
	return p ? NULL : (void *)1;
}

int main(void)
{
	const char *seg = test_name("theap_ns");
	struct share *sh = test_shared(sizeof(*sh));
	struct shmk_theap before;
	pthread_t t;
	void *ret;
	pid_t pid;
	char c;
	int rc;

	h = test_open(seg, SHMK_CREATE, 1 << 20, 64 << 20);
	CHECK(shmk_alloc(h, 16));	/* the parent's own heap */
	CHECK_OK(pipe(ready));
	CHECK_OK(pipe(go));
	pid = test_fork(child, sh);
	close(ready[1]);
	close(go[0]);
	if (read(ready[0], &c, 1) != 1) {
		rc = test_wait(pid);
		if (rc == SKIP_CODE)
			test_skip("no user, pid and mount namespaces with a /proc of their own here");
		fprintf(stderr, "the child exited %d before claiming a heap\n",
			rc);
		test_fail();
	}
	CHECK(sh->ns != 0);
	memcpy(&before, theap((unsigned int)sh->idx), sizeof(before));

	/* A shrink reaps every dead owner's heap it can judge */
	CHECK_OK(shmk_shrink(h, shmk_size(h)));
	CHECK_EQ(theap((unsigned int)sh->idx)->owner, sh->owner);
	CHECK_EQ(theap((unsigned int)sh->idx)->ns, sh->ns);
	CHECK(!memcmp(&before, theap((unsigned int)sh->idx), sizeof(before)));

	/* So does a claim that finds the table full of exited threads */
	for (unsigned int i = 0; i < SHMK_THEAPS + 4; i++) {
		CHECK_OK(pthread_create(&t, NULL, claim_and_exit, NULL));
		CHECK_OK(pthread_join(t, &ret));
		CHECK(ret == NULL);
	}
	CHECK_EQ(theap((unsigned int)sh->idx)->owner, sh->owner);
	CHECK_OK(shmk_check(h));

	CHECK_EQ(write(go[1], "g", 1), 1);
	CHECK_EQ(test_wait(pid), 0);
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
	test_pass("theap_ns");
	return 0;
}
