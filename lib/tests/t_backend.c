/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Backends: their names ("posix", with "memfd" its old alias), ENODEV when
 * the kernel backend is required without /dev/shmk, one segment per name
 * whatever the backend (EADDRINUSE, both orders, racing creators),
 * shmk_unlink() on whichever backend holds the name, and the same EPERM
 * from both backends when the caller may not unlink.
 *
 * The parts that need the module run where /dev/shmk exists (make check
 * runs this test in the VM); the rest everywhere.
 */
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include "harness.h"

struct race {
	volatile int go;
	volatile int ready;
	volatile int res[2];
};

static struct shmk *open_on(const char *name, int flags, const char *be,
			    int *err)
{
	struct shmk_opts o = { .backend = be };
	struct shmk *h = NULL;

	*err = shmk_open(name, flags, &o, &h);
	CHECK(!*err == !!h);
	return h;
}

static bool in_dev_shm(const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm/shmk.%s", name);
	return !lstat(path, &st);
}

static void names(const char *seg)
{
	struct shmk *h, *h2;
	int r;

	h = open_on(seg, SHMK_CREATE | SHMK_EXCL, "memfd", &r);
	CHECK_OK(r);
	CHECK(!strcmp(shmk_backend(h), "posix"));
	CHECK(in_dev_shm(seg));
	/* The alias and the name are one backend: the same segment. */
	h2 = open_on(seg, 0, "posix", &r);
	CHECK_OK(r);
	CHECK(!strcmp(shmk_backend(h2), "posix"));
	CHECK(shmk_find_or_alloc(h, "x", 64, NULL) != NULL);
	CHECK(shmk_find(h2, "x", NULL) != NULL);
	CHECK_OK(shmk_close(h2));
	CHECK_OK(shmk_close(h));
	setenv("SHMK_BACKEND", "memfd", 1);
	CHECK_OK(shmk_unlink(seg));
	setenv("SHMK_BACKEND", "posix", 1);
	h = open_on(seg, SHMK_CREATE | SHMK_EXCL, NULL, &r);
	CHECK_OK(r);
	CHECK(!strcmp(shmk_backend(h), "posix"));
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
	unsetenv("SHMK_BACKEND");
	CHECK(!in_dev_shm(seg));
}

/* Without the module: ENODEV, not ENOENT, when "kernel" is asked for. */
static void no_module(const char *seg)
{
	struct shmk *h;
	int r;

	CHECK(open_on(seg, 0, "kernel", &r) == NULL);
	CHECK_EQ(r, -ENODEV);
	CHECK(open_on(seg, SHMK_CREATE, "kernel", &r) == NULL);
	CHECK_EQ(r, -ENODEV);
	setenv("SHMK_BACKEND", "kernel", 1);
	CHECK(open_on(seg, SHMK_CREATE, NULL, &r) == NULL);
	CHECK_EQ(r, -ENODEV);
	CHECK_ERR(shmk_unlink(seg), ENODEV);
	unsetenv("SHMK_BACKEND");
	/* ENODEV, not EADDRINUSE, even while the posix backend has it. */
	h = open_on(seg, SHMK_CREATE | SHMK_EXCL, "posix", &r);
	CHECK_OK(r);
	CHECK(open_on(seg, SHMK_CREATE, "kernel", &r) == NULL);
	CHECK_EQ(r, -ENODEV);
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
	/* Unpinned, the posix backend stands in. */
	h = open_on(seg, SHMK_CREATE, NULL, &r);
	CHECK_OK(r);
	CHECK(!strcmp(shmk_backend(h), "posix"));
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
	CHECK_ERR(shmk_unlink(seg), ENOENT);
}

/* One backend holds @seg: the other refuses it, with or without CREATE. */
static void refused(const char *seg, const char *holder, const char *other)
{
	struct shmk *h, *x;
	int r;

	h = open_on(seg, SHMK_CREATE | SHMK_EXCL, holder, &r);
	CHECK_OK(r);
	CHECK(!strcmp(shmk_backend(h), holder));
	x = open_on(seg, SHMK_CREATE, other, &r);
	CHECK_EQ(r, -EADDRINUSE);
	x = open_on(seg, SHMK_CREATE | SHMK_EXCL, other, &r);
	CHECK_EQ(r, -EADDRINUSE);
	x = open_on(seg, 0, other, &r);
	CHECK_EQ(r, -EADDRINUSE);
	x = open_on(seg, SHMK_RDONLY, other, &r);
	CHECK_EQ(r, -EADDRINUSE);
	/* Through the environment, as a service that sets it would. */
	setenv("SHMK_BACKEND", !strcmp(other, "posix") ? "memfd" : other, 1);
	x = open_on(seg, SHMK_CREATE, NULL, &r);
	CHECK_EQ(r, -EADDRINUSE);
	unsetenv("SHMK_BACKEND");
	(void)x;
	/* The holder is untouched and still attachable. */
	x = open_on(seg, 0, holder, &r);
	CHECK_OK(r);
	CHECK_OK(shmk_close(x));
	CHECK_OK(shmk_close(h));
	/* The refused backend created nothing: the name is the holder's. */
	if (!strcmp(other, "posix"))
		CHECK(!in_dev_shm(seg));
	/* shmk_unlink() finds it whichever backend it picks first. */
	setenv("SHMK_BACKEND", other, 1);
	CHECK_OK(shmk_unlink(seg));
	unsetenv("SHMK_BACKEND");
	CHECK(open_on(seg, 0, holder, &r) == NULL);
	CHECK_EQ(r, -ENOENT);
	CHECK(open_on(seg, 0, other, &r) == NULL);
	CHECK_EQ(r, -ENOENT);
	CHECK(!in_dev_shm(seg));
}

static struct race *race;
static const char *race_seg;

static int racer(void *arg)
{
	int i = (int)(intptr_t)arg, r;
	struct shmk *h;

	__atomic_add_fetch(&race->ready, 1, __ATOMIC_SEQ_CST);
	while (!race->go)
		;
	h = open_on(race_seg, SHMK_CREATE, i ? "kernel" : "posix", &r);
	race->res[i] = r;
	/* Keep it attached until the parent has looked at both. */
	while (race->go != 2)
		usleep(100);
	if (h)
		shmk_close(h);
	return 0;
}

/*
 * Two creators on different backends at once: never both succeed. Both
 * may fail (each saw the other's segment and backed off): a retry finds
 * one or none.
 */
static void racing(const char *seg)
{
	int one = 0, none = 0;

	race = test_shared(sizeof(*race));
	race_seg = seg;
	for (int round = 0; round < (test_small() ? 10 : 60); round++) {
		pid_t p[2];

		memset((void *)race, 0, sizeof(*race));
		race->res[0] = race->res[1] = 1;	/* pending */
		for (int i = 0; i < 2; i++)
			p[i] = test_fork(racer, (void *)(intptr_t)i);
		while (race->ready != 2)
			sched_yield();
		race->go = 1;
		while (race->res[0] == 1 || race->res[1] == 1)
			usleep(200);
		race->go = 2;
		for (int i = 0; i < 2; i++)
			CHECK_EQ(test_wait(p[i]), 0);
		for (int i = 0; i < 2; i++)
			CHECK(race->res[i] == 0 || race->res[i] == -EADDRINUSE);
		if (race->res[0] == 0 && race->res[1] == 0) {
			fprintf(stderr, "round %d: both backends created %s\n",
				round, seg);
			test_fail();
		}
		if (race->res[0] == 0 || race->res[1] == 0)
			one++;
		else
			none++;
		shmk_unlink(seg);
		shmk_unlink(seg);
		CHECK(!in_dev_shm(seg));
	}
	printf("racing creators: %d rounds with one segment, %d with none\n",
	       one, none);
}

static int unlink_as_nobody(void *arg)
{
	const char *seg = arg;

	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 3;
	return -shmk_unlink(seg);
}

/* The same refusal gives the same errno on both backends. */
static void unlink_refused(const char *seg, const char *be)
{
	struct shmk *h;
	int r;

	h = open_on(seg, SHMK_CREATE | SHMK_EXCL, be, &r);
	CHECK_OK(r);
	setenv("SHMK_BACKEND", be, 1);
	CHECK_EQ(test_wait(test_fork(unlink_as_nobody, (void *)seg)), EPERM);
	unsetenv("SHMK_BACKEND");
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
}

int main(void)
{
	const char *seg = test_name("backend");
	bool module = access("/dev/shmk", F_OK) == 0;

	unsetenv("SHMK_BACKEND");
	names(seg);
	if (!module) {
		no_module(seg);
		printf("no /dev/shmk: the two-backend checks need the module\n");
		test_pass("backend");
		return 0;
	}
	refused(seg, "posix", "kernel");
	refused(seg, "kernel", "posix");
	racing(seg);
	if (geteuid() == 0 && !test_under_valgrind()) {
		unlink_refused(seg, "kernel");
		unlink_refused(seg, "posix");
	}
	test_pass("backend");
	return 0;
}
