/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The directory: name checks, find / find_or_alloc / remove semantics,
 * zeroed new objects, shmk_free() refusing named objects, a table growing
 * through thousands of names, shmk_foreach() seeing exactly the set (and
 * callbacks free to change the directory), and another handle and process
 * finding the same objects.
 */
#include "harness.h"

#define MANY	5000

static const char *seg;

static size_t size_for(unsigned int i)
{
	return 1 + (i * 131) % 700;
}

struct seen {
	unsigned char *mark;
	int calls, stop_at;
	struct shmk *h;
};

static int count_fn(const char *name, void *ptr, size_t size, void *arg)
{
	struct seen *s = arg;
	unsigned int i;

	if (sscanf(name, "name-%u", &i) != 1 || i >= MANY)
		return -100;
	if (size != size_for(i) || *(unsigned int *)ptr != i || s->mark[i])
		return -101;
	s->mark[i] = 1;
	return ++s->calls == s->stop_at ? 42 : 0;
}

/* Changing the directory from the callback must not deadlock. */
static int remove_fn(const char *name, void *ptr, size_t size, void *arg)
{
	struct seen *s = arg;

	(void)ptr;
	(void)size;
	s->calls++;
	return shmk_remove(s->h, name);
}

static int child_finds(void *arg)
{
	struct shmk *h;

	(void)arg;
	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	for (unsigned int i = 0; i < MANY; i += 7) {
		char name[32];
		size_t sz;
		unsigned int *p;

		snprintf(name, sizeof(name), "name-%u", i);
		p = shmk_find(h, name, &sz);
		if (!p || *p != i || sz != size_for(i))
			return 3;
	}
	return shmk_close(h) ? 4 : 0;
}

int main(void)
{
	char longname[300], name[32];
	struct seen s = { 0 };
	struct shmk_stats st, st0;
	struct shmk *h, *h2;
	int created;
	size_t sz;
	uint8_t *p, *q;

	seg = test_name("dir");
	h = test_open(seg, SHMK_CREATE, 1 << 20, 256 << 20);

	/* Name checks */
	memset(longname, 'x', sizeof(longname));
	longname[256] = '\0';
	CHECK_NULL_ERRNO(shmk_find(h, NULL, &sz), EINVAL);
	CHECK_NULL_ERRNO(shmk_find(h, "", &sz), EINVAL);
	CHECK_NULL_ERRNO(shmk_find(h, longname, &sz), EINVAL);
	CHECK_NULL_ERRNO(shmk_find_or_alloc(h, longname, 1, NULL), EINVAL);
	CHECK_NULL_ERRNO(shmk_find_or_alloc(h, "", 1, NULL), EINVAL);
	CHECK_NULL_ERRNO(shmk_find_or_alloc(NULL, "x", 1, NULL), EINVAL);
	CHECK_ERR(shmk_remove(h, longname), EINVAL);
	CHECK_ERR(shmk_remove(h, NULL), EINVAL);
	CHECK_ERR(shmk_foreach(h, NULL, NULL), EINVAL);
	longname[255] = '\0';			/* 255 bytes: fine */
	p = shmk_find_or_alloc(h, longname, 10, &created);
	CHECK(p && created == 1);
	CHECK(shmk_find(h, longname, &sz) == p && sz == 10);
	CHECK_OK(shmk_remove(h, longname));

	/* Absent */
	CHECK_NULL_ERRNO(shmk_find(h, "absent", &sz), ENOENT);
	CHECK_ERR(shmk_remove(h, "absent"), ENOENT);

	/* Create: zeroed, found, created once */
	CHECK_OK(shmk_stats(h, &st0));
	p = shmk_find_or_alloc(h, "config", 5000, &created);
	CHECK(p && created == 1 && (uintptr_t)p % 16 == 0);
	for (int i = 0; i < 5000; i++)
		CHECK(p[i] == 0);
	memset(p, 0x3c, 5000);
	CHECK(shmk_find(h, "config", &sz) == p && sz == 5000);
	CHECK(shmk_find(h, "config", NULL) == p);
	CHECK(shmk_find_or_alloc(h, "config", 5000, &created) == p);
	CHECK_EQ(created, 0);
	CHECK(shmk_find_or_alloc(h, "config", 10, NULL) == p);
	CHECK_NULL_ERRNO(shmk_find_or_alloc(h, "config", 5001, &created),
			 EEXIST);
	CHECK_EQ(created, 0);
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.named_objects, 1);
	CHECK_EQ(st.live_allocs, 0);
	CHECK(st.used_bytes > st0.used_bytes + 5000);

	/* shmk_free() refuses a named object */
	shmk_free(h, p);
	CHECK(shmk_find(h, "config", &sz) == p && p[4999] == 0x3c);
	CHECK_OK(shmk_check(h));

	/* Other spellings are other names */
	q = shmk_find_or_alloc(h, "Config", 1, &created);
	CHECK(q && q != p && created);
	q = shmk_find_or_alloc(h, "config ", 0, &created);
	CHECK(q && q != p && created);
	CHECK(shmk_find_or_alloc(h, "caf\xc3\xa9 / \x01\x7f", 8, NULL));

	/* Remove frees it */
	CHECK_OK(shmk_remove(h, "config"));
	CHECK_NULL_ERRNO(shmk_find(h, "config", &sz), ENOENT);
	CHECK_ERR(shmk_remove(h, "config"), ENOENT);
	CHECK_OK(shmk_remove(h, "Config"));
	CHECK_OK(shmk_remove(h, "config "));
	CHECK_OK(shmk_remove(h, "caf\xc3\xa9 / \x01\x7f"));
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.named_objects, 0);
	CHECK_EQ(st.used_bytes, st0.used_bytes);
	CHECK_OK(shmk_check(h));

	/* Thousands of names: the table grows, every one stays findable */
	for (unsigned int i = 0; i < MANY; i++) {
		unsigned int *o;

		snprintf(name, sizeof(name), "name-%u", i);
		o = shmk_find_or_alloc(h, name, size_for(i), &created);
		CHECK(o && created);
		*o = i;
		if (i % 997 == 0)
			CHECK_OK(shmk_check(h));
	}
	for (unsigned int i = 0; i < MANY; i++) {
		unsigned int *o;

		snprintf(name, sizeof(name), "name-%u", i);
		o = shmk_find(h, name, &sz);
		CHECK(o && *o == i && sz == size_for(i));
	}
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.named_objects, MANY);
	CHECK_OK(shmk_check(h));

	/* Iteration sees exactly the set; nonzero stops it */
	s.mark = calloc(MANY, 1);
	CHECK_EQ(shmk_foreach(h, count_fn, &s), MANY);
	for (int i = 0; i < MANY; i++)
		CHECK(s.mark[i]);
	memset(s.mark, 0, MANY);
	s.calls = 0;
	s.stop_at = 10;
	CHECK_EQ(shmk_foreach(h, count_fn, &s), 42);
	CHECK_EQ(s.calls, 10);

	/* Another handle and another process see the same objects */
	CHECK_OK(shmk_open(seg, 0, NULL, &h2));
	snprintf(name, sizeof(name), "name-%u", 1234);
	CHECK_EQ(shmk_off(h2, shmk_find(h2, name, &sz)),
		 shmk_off(h, shmk_find(h, name, &sz)));
	CHECK_OK(shmk_close(h2));
	CHECK_EQ(test_wait(test_fork(child_finds, NULL)), 0);

	/* Remove every other one, with tombstones; the rest remain */
	for (unsigned int i = 0; i < MANY; i += 2) {
		snprintf(name, sizeof(name), "name-%u", i);
		CHECK_OK(shmk_remove(h, name));
	}
	CHECK_OK(shmk_check(h));
	memset(s.mark, 0, MANY);
	s.calls = 0;
	s.stop_at = -1;
	CHECK_EQ(shmk_foreach(h, count_fn, &s), MANY / 2);
	for (int i = 0; i < MANY; i++)
		CHECK_EQ(s.mark[i], i % 2);
	/* Re-create in tombstones */
	for (unsigned int i = 0; i < MANY; i += 2) {
		unsigned int *o;

		snprintf(name, sizeof(name), "name-%u", i);
		o = shmk_find_or_alloc(h, name, size_for(i), &created);
		CHECK(o && created);
		*o = i;
	}
	CHECK_OK(shmk_check(h));

	/* A callback that removes every name */
	s.h = h;
	s.calls = 0;
	CHECK_EQ(shmk_foreach(h, remove_fn, &s), MANY);
	CHECK_EQ(s.calls, MANY);
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.named_objects, 0);
	CHECK_EQ(st.live_allocs, 0);
	CHECK_OK(shmk_check(h));
	CHECK_EQ(shmk_foreach(h, count_fn, &s), 0);

	free(s.mark);
	CHECK_OK(shmk_close(h));
	test_pass("dir");
	return 0;
}
