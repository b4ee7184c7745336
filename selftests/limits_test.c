// SPDX-License-Identifier: GPL-2.0
/*
 * shmk module parameters: each one lowered at runtime is enforced with its
 * errno, and raising it back lifts the limit. Parameters are restored in
 * the teardown, and once more at exit in case a test was killed.
 */
#include "shmk_test.h"

static const char *const params[] = {
	"max_segment_size", "max_pages", "max_segments", "max_clients",
};
#define NPARAMS		ARRAY_SIZE(params)

/* Saved by the harness parent before any test runs. */
static long long saved[NPARAMS];
static bool saved_ok;

static void restore_params(void)
{
	unsigned int i;

	if (!saved_ok)
		return;
	for (i = 0; i < NPARAMS; i++)
		if (shmk_param(params[i]) != saved[i] &&
		    shmk_set_param(params[i], saved[i]))
			fprintf(stderr, "# cannot restore %s to %lld\n",
				params[i], saved[i]);
}

static void restore_at_exit(void)
{
	if (getpid() == shmk_main_pid)
		restore_params();
}

static void __attribute__((constructor)) save_params(void)
{
	unsigned int i;

	for (i = 0; i < NPARAMS; i++) {
		saved[i] = shmk_param(params[i]);
		if (saved[i] < 0)
			return;
	}
	saved_ok = true;
	atexit(restore_at_exit);
}

FIXTURE(lim) {
	int ctl;
	int fds[8];
	int nfds;
};

FIXTURE_SETUP(lim)
{
	unsigned int i;

	for (i = 0; i < NPARAMS; i++)
		ASSERT_LT(0, saved[i]) TH_LOG("cannot read parameter #%u", i);
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
}

FIXTURE_TEARDOWN(lim)
{
	int i;

	for (i = 0; i < self->nfds; i++)
		if (self->fds[i] >= 0)
			close(self->fds[i]);
	restore_params();
	shmk_cleanup();
	close(self->ctl);
}

/* Keeps @fd for the teardown; returns it. */
static int keep(FIXTURE_DATA(lim) *self, int fd)
{
	if (fd >= 0 && self->nfds < 8)
		self->fds[self->nfds++] = fd;
	return fd;
}

TEST_F(lim, max_segment_size)
{
	char name[SHMK_NAME_MAX], name2[SHMK_NAME_MAX];
	struct shmk_resize r;
	int fd;

	SHMK_NAME(name, "big");
	SHMK_NAME(name2, "small");
	/* Created before the limit drops: keeps its own max_size. */
	fd = keep(self, shmk_create(self->ctl, name, MiB(1), MiB(4)));
	ASSERT_LE(0, fd);

	ASSERT_EQ(0, shmk_set_param("max_segment_size", MiB(1)));
	ASSERT_EQ((long long)MiB(1), shmk_param("max_segment_size"));
	EXPECT_EQ(-EFBIG, shmk_create(self->ctl, name2, MiB(1), MiB(2)));
	EXPECT_EQ(-EFBIG, shmk_create(self->ctl, name2, page_size(),
				      MiB(1) + page_size()));
	EXPECT_EQ(-ENOENT, shmk_open(self->ctl, name2, 0, NULL));
	EXPECT_LE(0, keep(self, shmk_create(self->ctl, name2, MiB(1),
					    MiB(1))));
	/* Attaching to the existing bigger one is unaffected, so is GROW. */
	EXPECT_LE(0, keep(self, shmk_open(self->ctl, name, 0, NULL)));
	EXPECT_EQ(0, shmk_grow(fd, MiB(4), 0, &r));
	EXPECT_EQ(MiB(4), r.new_size);

	ASSERT_EQ(0, shmk_set_param("max_segment_size", saved[0]));
	EXPECT_EQ(-EEXIST, shmk_create(self->ctl, name2, MiB(1), MiB(2)));
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name2));
	EXPECT_LE(0, keep(self, shmk_create(self->ctl, name2, MiB(1),
					    MiB(2))));
}

TEST_F(lim, max_pages)
{
	char name[SHMK_NAME_MAX], name2[SHMK_NAME_MAX];
	size_t pg = page_size();
	struct shmk_info info;
	long long pages0;
	int fd;

	SHMK_NAME(name, "pages");
	SHMK_NAME(name2, "pages2");
	pages0 = shmk_counter("pages");
	ASSERT_LE(0, pages0);
	ASSERT_EQ(0, shmk_set_param("max_pages", pages0 + 16));

	/* Initial size over the total. */
	EXPECT_EQ(-ENOSPC, shmk_create(self->ctl, name, 32 * pg, 64 * pg));
	EXPECT_EQ(-ENOSPC, shmk_create(self->ctl, name, 17 * pg, 64 * pg));
	EXPECT_EQ(-ENOENT, shmk_open(self->ctl, name, 0, NULL));
	/* max_size alone does not count, only the active size. */
	fd = keep(self, shmk_create(self->ctl, name, 8 * pg, 64 * pg));
	ASSERT_LE(0, fd);
	EXPECT_EQ(pages0 + 8, shmk_counter("pages"));

	EXPECT_EQ(-ENOSPC, shmk_grow(fd, 24 * pg, 0, NULL));
	EXPECT_EQ(-ENOSPC, shmk_grow(fd, 17 * pg, 0, NULL));
	EXPECT_EQ(-ENOSPC, shmk_grow(fd, 20 * pg, SHMK_GROW_LAZY, NULL));
	ASSERT_EQ(0, shmk_get_info(fd, &info));
	EXPECT_EQ(8 * pg, info.size);
	EXPECT_EQ(pages0 + 8, shmk_counter("pages"));

	/* Exactly at the limit is fine. */
	EXPECT_EQ(0, shmk_grow(fd, 16 * pg, 0, NULL));
	EXPECT_EQ(pages0 + 16, shmk_counter("pages"));
	/* Other segments share the budget. */
	EXPECT_EQ(-ENOSPC, shmk_create(self->ctl, name2, pg, pg));
	EXPECT_LE(0, keep(self, shmk_create(self->ctl, name2, 0, pg)));
	/* Shrinking gives pages back. */
	EXPECT_EQ(0, shmk_shrink(fd, 4 * pg, NULL));
	EXPECT_EQ(pages0 + 4, shmk_counter("pages"));
	EXPECT_EQ(0, shmk_grow(fd, 16 * pg, SHMK_GROW_LAZY, NULL));
	EXPECT_EQ(pages0 + 16, shmk_counter("pages"));

	ASSERT_EQ(0, shmk_set_param("max_pages", saved[1]));
	EXPECT_EQ(0, shmk_grow(fd, 32 * pg, 0, NULL));
}

TEST_F(lim, max_segments)
{
	char names[4][SHMK_NAME_MAX];
	long long segs0;
	int fd, i;

	segs0 = shmk_counter("segments");
	ASSERT_LE(0, segs0);
	for (i = 0; i < 4; i++) {
		char tag[8];

		snprintf(tag, sizeof(tag), "s%d", i);
		SHMK_NAME(names[i], tag);
	}
	ASSERT_EQ(0, shmk_set_param("max_segments", segs0 + 2));

	EXPECT_LE(0, keep(self, shmk_create(self->ctl, names[0], page_size(),
					    page_size())));
	fd = shmk_create(self->ctl, names[1], page_size(), page_size());
	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENOSPC, shmk_create(self->ctl, names[2], page_size(),
				       page_size()));
	EXPECT_EQ(-ENOENT, shmk_open(self->ctl, names[2], 0, NULL));
	/* Attaching to existing ones is not creating. */
	EXPECT_LE(0, keep(self, shmk_open(self->ctl, names[0], 0, NULL)));

	/* Free one (unlink + last close) and there is room again. */
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, names[1]));
	close(fd);
	EXPECT_EQ(segs0 + 1, shmk_counter("segments"));
	EXPECT_LE(0, keep(self, shmk_create(self->ctl, names[2], page_size(),
					    page_size())));
	EXPECT_EQ(-ENOSPC, shmk_create(self->ctl, names[3], page_size(),
				       page_size()));

	ASSERT_EQ(0, shmk_set_param("max_segments", saved[2]));
	EXPECT_LE(0, keep(self, shmk_create(self->ctl, names[3], page_size(),
					    page_size())));
}

TEST_F(lim, max_clients)
{
	char name[SHMK_NAME_MAX], name2[SHMK_NAME_MAX];
	int fd1, fd2, fd3;
	void *p;

	SHMK_NAME(name, "clients");
	SHMK_NAME(name2, "clients2");
	ASSERT_EQ(0, shmk_set_param("max_clients", 3));

	fd1 = shmk_create(self->ctl, name, page_size(), page_size());
	ASSERT_LE(0, fd1);
	fd2 = shmk_open(self->ctl, name, 0, NULL);
	ASSERT_LE(0, fd2);
	fd3 = shmk_open(self->ctl, name, SHMK_ATTACH_RDONLY, NULL);
	ASSERT_LE(0, fd3);
	keep(self, fd1);
	keep(self, fd2);
	EXPECT_EQ(-EUSERS, shmk_open(self->ctl, name, 0, NULL));
	EXPECT_EQ(-EUSERS, shmk_open(self->ctl, name, SHMK_ATTACH_RDONLY,
				     NULL));
	EXPECT_EQ(-EUSERS, shmk_attach_opts(self->ctl, name,
					    SHMK_ATTACH_CREATE, 0600,
					    page_size(), page_size(), NULL,
					    NULL));
	/* The limit is per segment. */
	EXPECT_LE(0, keep(self, shmk_create(self->ctl, name2, page_size(),
					    page_size())));
	EXPECT_LE(0, keep(self, shmk_open(self->ctl, name2, 0, NULL)));

	/* A client kept by its mapping still counts. */
	p = shmk_map(fd3, page_size(), PROT_READ);
	ASSERT_NE(MAP_FAILED, p);
	close(fd3);
	EXPECT_EQ(-EUSERS, shmk_open(self->ctl, name, 0, NULL));
	munmap(p, page_size());
	EXPECT_LE(0, keep(self, shmk_open(self->ctl, name, 0, NULL)));
	EXPECT_EQ(-EUSERS, shmk_open(self->ctl, name, 0, NULL));

	ASSERT_EQ(0, shmk_set_param("max_clients", saved[3]));
	EXPECT_LE(0, keep(self, shmk_open(self->ctl, name, 0, NULL)));
}

TEST_HARNESS_MAIN
