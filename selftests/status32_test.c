// SPDX-License-Identifier: GPL-2.0
/*
 * A 32-bit process uses shmk: the ioctls through compat_ptr_ioctl (every
 * uapi struct has the same layout on i386 and x86-64), the segment, and the
 * status page, whose offset (SHMK_STATUS_OFFSET, 8 TiB) mmap2() reaches.
 * Built with -m32 -D_FILE_OFFSET_BITS=64 (see the Makefile).
 */
#include "shmk_test.h"

_Static_assert(sizeof(void *) == 4, "build this test with -m32");
_Static_assert(sizeof(off_t) == 8, "build this test with _FILE_OFFSET_BITS=64");

FIXTURE(s32) {
	int ctl;
	int fd;
	char name[SHMK_NAME_MAX];
};

FIXTURE_SETUP(s32)
{
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	SHMK_NAME(self->name, "s32");
	self->fd = shmk_create(self->ctl, self->name, MiB(1), MiB(8));
	ASSERT_LE(0, self->fd);
	shmk_probe_setup();
}

FIXTURE_TEARDOWN(s32)
{
	if (self->fd >= 0)
		close(self->fd);
	shmk_cleanup();
	close(self->ctl);
}

TEST_F(s32, status_page_and_segment)
{
	const struct shmk_status *st;
	struct shmk_status snap;
	struct shmk_info info;
	unsigned char *p;

	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	EXPECT_EQ((__u64)MiB(1), info.size);
	EXPECT_EQ((__u64)MiB(8), info.max_size);
	EXPECT_STREQ(self->name, info.name);

	/* (The harness compares pointers as 64-bit integers: test flags.) */
	st = shmk_map_status(self->fd);
	ASSERT_TRUE(st != NULL) TH_LOG("mmap at SHMK_STATUS_OFFSET: %s",
				       strerror(errno));
	ASSERT_LE(0, shmk_status_read(st, &snap, 5000));
	EXPECT_EQ(SHMK_STATUS_MAGIC, snap.magic);
	EXPECT_EQ((__u64)MiB(1), snap.size);
	EXPECT_EQ(1u, snap.table_len);
	EXPECT_EQ(getpid(), snap.clients[0].pid);

	p = shmk_map(self->fd, MiB(8), PROT_READ | PROT_WRITE);
	ASSERT_TRUE(p != MAP_FAILED);
	p[0] = 1;
	EXPECT_EQ(SIGBUS, shmk_probe_read(p + MiB(2)));
	ASSERT_EQ(0, shmk_grow(self->fd, MiB(4), 0, NULL));
	ASSERT_LE(0, shmk_status_read(st, &snap, 5000));
	EXPECT_EQ((__u64)MiB(4), snap.size);
	p[MiB(4) - 1] = 2;
	EXPECT_EQ(1, p[0]);
	munmap(p, MiB(8));
	munmap((void *)st, page_size());
}

TEST_HARNESS_MAIN
