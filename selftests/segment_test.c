// SPDX-License-Identifier: GPL-2.0
/*
 * shmk segment lifecycle, names, argument validation, handle kinds,
 * permissions, the WRITER role and the module reference count.
 */
#include <grp.h>
#include <limits.h>

#include "shmk_test.h"

#define CC64	0xccccccccccccccccULL
#define CC32	0xccccccccU

FIXTURE(seg) {
	int ctl;
};

FIXTURE_SETUP(seg)
{
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
}

FIXTURE_TEARDOWN(seg)
{
	shmk_cleanup();
	if (self->ctl >= 0)
		close(self->ctl);
}

/* A valid create request for @name: 1 page, max 4 pages, 0600. */
static void attach_base(struct shmk_attach *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	a->flags = SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL;
	a->mode = 0600;
	a->size = page_size();
	a->max_size = 4 * page_size();
	set_str(a->name, SHMK_NAME_MAX, name);
}

/* ATTACH with @a; closes the fd if it unexpectedly worked. 0 or -errno. */
static int try_attach(int ctl, struct shmk_attach *a)
{
	int fd;

	shmk_track(a->name);
	fd = shmk_ioctl(ctl, SHMK_IOC_ATTACH, a);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return fd;
}

static long long counter(const char *which)
{
	return shmk_counter(which);
}

TEST_F(seg, lifecycle)
{
	long long segs0, pages0, clients0;
	struct shmk_attach a, b;
	char name[SHMK_NAME_MAX];
	struct shmk_info info;
	int fd1, fd2, fd3, fd4;
	size_t pg = page_size();
	char *p1, *p2;

	segs0 = counter("segments");
	pages0 = counter("pages");
	clients0 = counter("clients");
	ASSERT_LE(0, segs0);
	ASSERT_LE(0, pages0);
	ASSERT_LE(0, clients0);

	SHMK_NAME(name, "lc");
	EXPECT_EQ(-ENOENT, shmk_open(self->ctl, name, 0, NULL));
	EXPECT_EQ(-ENOENT, shmk_unlink_name(self->ctl, name));

	/* Create; the out fields are pre-filled to show they get written. */
	attach_base(&a, name);
	a.flags = SHMK_ATTACH_CREATE;
	a.mode = 0640;
	a.size = 3 * pg;
	a.max_size = 8 * pg;
	a.segment_id = CC64;
	a.client_id = CC32;
	a.out_flags = CC32;
	shmk_track(name);
	fd1 = shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, &a);
	ASSERT_LE(0, fd1);
	EXPECT_EQ(SHMK_ATTACH_CREATED, a.out_flags);
	EXPECT_NE(CC64, a.segment_id);
	EXPECT_NE(CC32, a.client_id);
	EXPECT_TRUE(fcntl(fd1, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(segs0 + 1, counter("segments"));
	EXPECT_EQ(pages0 + 3, counter("pages"));
	EXPECT_EQ(clients0 + 1, counter("clients"));

	/* CREATE without EXCL on an existing one attaches; sizes ignored. */
	attach_base(&b, name);
	b.flags = SHMK_ATTACH_CREATE;
	b.size = 5 * pg;
	b.max_size = 6 * pg;
	b.mode = 0666;
	b.segment_id = CC64;
	b.client_id = CC32;
	b.out_flags = CC32;
	fd2 = shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, &b);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0u, b.out_flags);
	EXPECT_EQ(a.segment_id, b.segment_id);
	EXPECT_NE(a.client_id, b.client_id);
	ASSERT_EQ(0, shmk_get_info(fd2, &info));
	EXPECT_EQ(3 * pg, info.size);
	EXPECT_EQ(8 * pg, info.max_size);
	EXPECT_EQ(0640u, info.mode);

	/* Plain attach: size fields are not even checked. */
	attach_base(&b, name);
	b.flags = 0;
	b.size = 123;
	b.max_size = 1;
	fd3 = shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, &b);
	ASSERT_LE(0, fd3);
	EXPECT_EQ(0u, b.out_flags);
	EXPECT_EQ(a.segment_id, b.segment_id);

	/* CREATE|EXCL on an existing name. */
	attach_base(&b, name);
	EXPECT_EQ(-EEXIST, shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, &b));
	EXPECT_EQ(segs0 + 1, counter("segments"));
	EXPECT_EQ(clients0 + 3, counter("clients"));
	EXPECT_EQ(pages0 + 3, counter("pages"));

	p1 = shmk_map(fd1, 3 * pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p1);
	p2 = shmk_map(fd2, 3 * pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p2);
	memset(p1, 0x5a, 3 * pg);
	EXPECT_EQ(0x5a, p2[3 * pg - 1]);

	/* Unlink: the name goes, the segment stays while attached. */
	ASSERT_EQ(0, shmk_unlink_name(self->ctl, name));
	EXPECT_EQ(-ENOENT, shmk_open(self->ctl, name, 0, NULL));
	EXPECT_EQ(-ENOENT, shmk_unlink_name(self->ctl, name));
	EXPECT_EQ(segs0 + 1, counter("segments"));
	p2[0] = 0x21;
	EXPECT_EQ(0x21, p1[0]);
	ASSERT_EQ(0, shmk_get_info(fd1, &info));
	EXPECT_EQ(a.segment_id, info.segment_id);
	EXPECT_EQ(3u, info.nr_clients);

	/* The name can be reused at once, for a new segment. */
	attach_base(&b, name);
	fd4 = shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, &b);
	ASSERT_LE(0, fd4);
	EXPECT_EQ(SHMK_ATTACH_CREATED, b.out_flags);
	EXPECT_NE(a.segment_id, b.segment_id);
	EXPECT_EQ(segs0 + 2, counter("segments"));
	EXPECT_EQ(pages0 + 4, counter("pages"));
	close(fd4);
	EXPECT_EQ(segs0 + 2, counter("segments"));
	ASSERT_EQ(0, shmk_unlink_name(self->ctl, name));
	EXPECT_EQ(segs0 + 1, counter("segments"));

	/* Close everything but one mapping: still alive. */
	munmap(p2, 3 * pg);
	close(fd2);
	close(fd3);
	EXPECT_EQ(clients0 + 1, counter("clients"));
	close(fd1);
	EXPECT_EQ(segs0 + 1, counter("segments"));
	EXPECT_EQ(clients0 + 1, counter("clients"));
	EXPECT_EQ(pages0 + 3, counter("pages"));
	EXPECT_EQ(0x21, p1[0]);
	EXPECT_EQ(0x5a, p1[3 * pg - 1]);

	/* The last mapping goes: so does the segment. */
	munmap(p1, 3 * pg);
	EXPECT_EQ(segs0, counter("segments"));
	EXPECT_EQ(pages0, counter("pages"));
	EXPECT_EQ(clients0, counter("clients"));
}

TEST_F(seg, info_outputs)
{
	struct shmk_info info, info2;
	char name[SHMK_NAME_MAX];
	struct shmk_attach a;
	size_t pg = page_size();
	__u64 t0, t1;
	int fd, fd2, fd3;
	void *p;

	SHMK_NAME(name, "info");
	attach_base(&a, name);
	a.mode = 0640;
	a.size = 3 * pg;
	a.max_size = 16 * pg;
	t0 = now_ns(CLOCK_REALTIME);
	shmk_track(name);
	fd = shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, &a);
	t1 = now_ns(CLOCK_REALTIME);
	ASSERT_LE(0, fd);

	memset(&info, 0xcc, sizeof(info));
	info.flags = 0;
	info.reserved0 = 0;
	info.reserved1 = 0;
	memset(info.reserved, 0, sizeof(info.reserved));
	ASSERT_EQ(0, shmk_ioctl(fd, SHMK_IOC_INFO, &info));
	EXPECT_EQ(a.segment_id, info.segment_id);
	EXPECT_EQ(3 * pg, info.size);
	EXPECT_EQ(16 * pg, info.max_size);
	EXPECT_EQ(0u, info.base_addr);
	EXPECT_LE(t0 / 1000000000ULL, info.ctime_ns / 1000000000ULL);
	EXPECT_GE(t1 / 1000000000ULL + 1, info.ctime_ns / 1000000000ULL);
	EXPECT_EQ(geteuid(), info.uid);
	EXPECT_EQ(getegid(), info.gid);
	EXPECT_EQ(0640u, info.mode);
	EXPECT_EQ(1u, info.nr_clients);
	EXPECT_EQ(a.client_id, info.client_id);
	EXPECT_EQ(0u, info.client_flags);
	EXPECT_STREQ(name, info.name);
	EXPECT_EQ(0u, info.flags);
	EXPECT_EQ(0u, info.reserved0);
	EXPECT_EQ(0u, info.reserved1);
	EXPECT_EQ(0u, info.reserved[0]);
	/* 2 MiB pages: none in a segment of three 4 KiB pages. */
	EXPECT_EQ(0u, info.huge_size);
	EXPECT_EQ(0u, info.seg_flags & ~SHMK_SEG_HUGE_PAGES);
	EXPECT_NE(0u, info.features & SHMK_FEATURE_HUGE_PAGES);
	EXPECT_NE(0u, info.features & SHMK_FEATURE_SHMEM_MAPPING);
	EXPECT_NE(0u, info.features & SHMK_FEATURE_STATUS_PIDNS);
	EXPECT_NE(0u, info.features & SHMK_FEATURE_EXTENSIBLE_IOCTLS);

	fd2 = shmk_open(self->ctl, name, SHMK_ATTACH_RDONLY, NULL);
	ASSERT_LE(0, fd2);
	fd3 = shmk_open(self->ctl, name, SHMK_ATTACH_WRITER, NULL);
	ASSERT_LE(0, fd3);
	ASSERT_EQ(0, shmk_get_info(fd2, &info2));
	EXPECT_EQ(SHMK_CLIENT_RDONLY, info2.client_flags);
	EXPECT_EQ(3u, info2.nr_clients);
	EXPECT_NE(info.client_id, info2.client_id);
	EXPECT_EQ(info.generation, info2.generation);
	EXPECT_EQ(info.ctime_ns, info2.ctime_ns);
	ASSERT_EQ(0, shmk_get_info(fd3, &info2));
	EXPECT_EQ(SHMK_CLIENT_WRITER, info2.client_flags);
	close(fd3);
	ASSERT_EQ(0, shmk_get_info(fd, &info2));
	EXPECT_EQ(2u, info2.nr_clients);

	/* base_addr: the address of the first data mapping. */
	p = shmk_map(fd2, 3 * pg, PROT_READ);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, shmk_get_info(fd, &info2));
	EXPECT_EQ((__u64)(uintptr_t)p, info2.base_addr);
	munmap(p, 3 * pg);
	close(fd2);
	close(fd);
}

/* Every way a segment name can be invalid, on ATTACH and UNLINK. */
TEST_F(seg, names)
{
	static const char *const bad[] = {
		"", "/", "a/b", "trailing/", "\x01" "abc", "ab\x7f", "\x80x",
		"tab\tname", "new\nline", "\xff",
	};
	char name[SHMK_NAME_MAX], prefix[SHMK_NAME_MAX];
	struct shmk_info info;
	struct shmk_attach a;
	struct shmk_unlink u;
	unsigned int i;
	int fd, len;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		attach_base(&a, bad[i]);
		EXPECT_EQ(-EINVAL, shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, &a))
			TH_LOG("name #%u", i);
		a.flags = 0;
		EXPECT_EQ(-EINVAL, shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, &a))
			TH_LOG("name #%u", i);
		EXPECT_EQ(-EINVAL, shmk_unlink_name(self->ctl, bad[i]))
			TH_LOG("name #%u", i);
	}

	/* 64 bytes, no terminating NUL. */
	SHMK_NAME(prefix, "n64");
	len = (int)strlen(prefix);
	attach_base(&a, prefix);
	memset(a.name + len, 'x', SHMK_NAME_MAX - len);
	shmk_track(a.name);	/* truncated to 63 by the tracker */
	EXPECT_EQ(-EINVAL, shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, &a));
	memset(&u, 0, sizeof(u));
	memcpy(u.name, a.name, SHMK_NAME_MAX);
	EXPECT_EQ(-EINVAL, shmk_ioctl(self->ctl, SHMK_IOC_UNLINK, &u));

	/* 63 bytes: the longest valid one; printable punctuation is fine. */
	SHMK_NAME(prefix, "n63 ~!");
	len = (int)strlen(prefix);
	memset(name, '.', sizeof(name));
	memcpy(name, prefix, len);
	name[SHMK_NAME_MAX - 1] = 0;
	ASSERT_EQ(SHMK_NAME_MAX - 1, (int)strlen(name));
	fd = shmk_create(self->ctl, name, page_size(), page_size());
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, shmk_get_info(fd, &info));
	EXPECT_EQ(0, memcmp(name, info.name, SHMK_NAME_MAX));
	close(fd);
	fd = shmk_open(self->ctl, name, 0, NULL);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name));

	/* Client names: 0..31 printable bytes. */
	SHMK_NAME(name, "cn");
	fd = shmk_create(self->ctl, name, page_size(), page_size());
	ASSERT_LE(0, fd);
	attach_base(&a, name);
	a.flags = 0;
	memset(a.client_name, 'c', SHMK_CLIENT_NAME_MAX);
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	a.client_name[SHMK_CLIENT_NAME_MAX - 1] = 0;
	EXPECT_EQ(0, try_attach(self->ctl, &a));
	strcpy(a.client_name, "bad\001name");
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	strcpy(a.client_name, "bad\x7f");
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	strcpy(a.client_name, "with space/slash");
	EXPECT_EQ(0, try_attach(self->ctl, &a));
	close(fd);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name));
}

TEST_F(seg, attach_bad_input)
{
	size_t pg = page_size();
	__u64 pgmask = ~(__u64)(pg - 1);
	char name[SHMK_NAME_MAX];
	long long maxseg;
	struct shmk_attach a;
	int i, ret;

	SHMK_NAME(name, "badattach");
	maxseg = shmk_param("max_segment_size");
	ASSERT_LT(0, maxseg);

	attach_base(&a, name);
	a.flags |= 1U << 5;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	attach_base(&a, name);
	a.flags |= 1U << 31;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	attach_base(&a, name);
	a.flags |= SHMK_ATTACH_RDONLY | SHMK_ATTACH_WRITER;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));

	/* EXCL without CREATE has no meaning: nothing to create. */
	attach_base(&a, name);
	a.flags = SHMK_ATTACH_EXCL;
	ret = try_attach(self->ctl, &a);
	EXPECT_TRUE(ret == -EINVAL || ret == -ENOENT) TH_LOG("ret %d", ret);
	/* Nor SMALL_PAGES: an attach does not choose an existing one's pages. */
	attach_base(&a, name);
	a.flags = SHMK_ATTACH_SMALL_PAGES;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));

	attach_base(&a, name);
	a.mode = 01000;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	attach_base(&a, name);
	a.mode = 0x80000000U;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));

	for (i = 0; i < 4; i++) {
		attach_base(&a, name);
		a.reserved[i] = 1;
		EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a)) TH_LOG("reserved[%d]", i);
		attach_base(&a, name);
		a.reserved[i] = 1ULL << 63;
		EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a)) TH_LOG("reserved[%d]", i);
	}

	/* Sizes. */
	attach_base(&a, name);
	a.size = pg + 1;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	attach_base(&a, name);
	a.size = pg / 2;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	attach_base(&a, name);
	a.max_size = 4 * pg - 1;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	attach_base(&a, name);
	a.size = 8 * pg;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	attach_base(&a, name);
	a.size = 0;
	a.max_size = 0;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	attach_base(&a, name);
	a.size = ~0ULL;
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));
	attach_base(&a, name);
	a.size = ~0ULL & pgmask;	/* aligned, but above max_size */
	EXPECT_EQ(-EINVAL, try_attach(self->ctl, &a));

	/* Above the max_segment_size parameter. */
	attach_base(&a, name);
	a.max_size = ((__u64)maxseg & pgmask) + pg;
	EXPECT_EQ(-EFBIG, try_attach(self->ctl, &a));
	attach_base(&a, name);
	a.max_size = SHMK_SIZE_LIMIT;
	if ((__u64)maxseg < SHMK_SIZE_LIMIT) {
		EXPECT_EQ(-EFBIG, try_attach(self->ctl, &a));
	}

	/* Overflowing values: invalid for two reasons, either errno will do. */
	attach_base(&a, name);
	a.max_size = ~0ULL & pgmask;
	ret = try_attach(self->ctl, &a);
	EXPECT_TRUE(ret == -EFBIG || ret == -EINVAL) TH_LOG("ret %d", ret);
	attach_base(&a, name);
	a.size = ~0ULL & pgmask;
	a.max_size = ~0ULL & pgmask;
	ret = try_attach(self->ctl, &a);
	EXPECT_TRUE(ret == -EFBIG || ret == -EINVAL) TH_LOG("ret %d", ret);
	attach_base(&a, name);
	a.size = ~0ULL;
	a.max_size = ~0ULL;
	ret = try_attach(self->ctl, &a);
	EXPECT_TRUE(ret == -EFBIG || ret == -EINVAL) TH_LOG("ret %d", ret);
	attach_base(&a, name);
	a.max_size = 1ULL << 63;
	ret = try_attach(self->ctl, &a);
	EXPECT_TRUE(ret == -EFBIG || ret == -EINVAL) TH_LOG("ret %d", ret);

	EXPECT_EQ(-EFAULT, shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, NULL));
	EXPECT_EQ(-EFAULT, shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, (void *)8));

	/* None of the rejected calls created the segment. */
	EXPECT_EQ(-ENOENT, shmk_open(self->ctl, name, 0, NULL));

	/* The same request, made valid, works. */
	attach_base(&a, name);
	EXPECT_EQ(0, try_attach(self->ctl, &a));
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name));
}

TEST_F(seg, unlink_bad_input)
{
	char name[SHMK_NAME_MAX];
	struct shmk_unlink u;
	int fd;

	SHMK_NAME(name, "badunlink");
	fd = shmk_create(self->ctl, name, page_size(), page_size());
	ASSERT_LE(0, fd);
	close(fd);

	memset(&u, 0, sizeof(u));
	strcpy(u.name, name);
	u.flags = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(self->ctl, SHMK_IOC_UNLINK, &u));
	u.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, shmk_ioctl(self->ctl, SHMK_IOC_UNLINK, &u));
	u.flags = 0;
	u.reserved0 = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(self->ctl, SHMK_IOC_UNLINK, &u));
	u.reserved0 = 0;
	u.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(self->ctl, SHMK_IOC_UNLINK, &u));
	u.reserved[0] = 0;
	u.reserved[1] = 1ULL << 40;
	EXPECT_EQ(-EINVAL, shmk_ioctl(self->ctl, SHMK_IOC_UNLINK, &u));
	u.reserved[1] = 0;
	EXPECT_EQ(-EFAULT, shmk_ioctl(self->ctl, SHMK_IOC_UNLINK, NULL));

	/* Still there after all that. */
	fd = shmk_open(self->ctl, name, 0, NULL);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(0, shmk_ioctl(self->ctl, SHMK_IOC_UNLINK, &u));
	EXPECT_EQ(-ENOENT, shmk_ioctl(self->ctl, SHMK_IOC_UNLINK, &u));
}

TEST_F(seg, info_bad_input)
{
	char name[SHMK_NAME_MAX];
	struct shmk_info info;
	int fd;

	SHMK_NAME(name, "badinfo");
	fd = shmk_create(self->ctl, name, page_size(), page_size());
	ASSERT_LE(0, fd);

	memset(&info, 0, sizeof(info));
	info.flags = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_INFO, &info));
	memset(&info, 0, sizeof(info));
	info.reserved0 = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_INFO, &info));
	memset(&info, 0, sizeof(info));
	info.reserved1 = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_INFO, &info));
	memset(&info, 0, sizeof(info));
	info.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_INFO, &info));
	/* Out fields are not inputs: garbage there is fine. */
	memset(&info, 0xcc, sizeof(info));
	info.flags = 0;
	info.reserved0 = 0;
	info.reserved1 = 0;
	memset(info.reserved, 0, sizeof(info.reserved));
	EXPECT_EQ(0, shmk_ioctl(fd, SHMK_IOC_INFO, &info));
	EXPECT_EQ(page_size(), info.size);
	EXPECT_EQ(-EFAULT, shmk_ioctl(fd, SHMK_IOC_INFO, NULL));
	close(fd);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name));
}

static void check_resize_bad(struct __test_metadata *_metadata, int fd,
			     unsigned long req, const char *what)
{
	size_t pg = page_size();
	__u64 pgmask = ~(__u64)(pg - 1);
	struct shmk_resize r;
	int i, ret;

	memset(&r, 0, sizeof(r));
	r.size = 2 * pg + 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, req, &r)) TH_LOG("%s", what);
	r.size = pg - 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, req, &r)) TH_LOG("%s", what);
	r.size = ~0ULL;
	ret = shmk_ioctl(fd, req, &r);
	EXPECT_TRUE(ret == -EINVAL || ret == -EFBIG)
		TH_LOG("%s ~0: %d", what, ret);

	memset(&r, 0, sizeof(r));
	r.size = 2 * pg;
	r.flags = 1U << 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, req, &r)) TH_LOG("%s", what);
	r.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, req, &r)) TH_LOG("%s", what);
	r.flags = 0;
	r.reserved0 = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, req, &r)) TH_LOG("%s", what);
	r.reserved0 = 0;
	for (i = 0; i < 2; i++) {
		r.reserved[i] = 1;
		EXPECT_EQ(-EINVAL, shmk_ioctl(fd, req, &r))
			TH_LOG("%s reserved[%d]", what, i);
		r.reserved[i] = 0;
	}
	EXPECT_EQ(-EFAULT, shmk_ioctl(fd, req, NULL)) TH_LOG("%s", what);

	if (req == SHMK_IOC_SHRINK) {
		r.size = pg;
		r.flags = SHMK_GROW_LAZY;
		EXPECT_EQ(-EINVAL, shmk_ioctl(fd, req, &r));
	} else {
		memset(&r, 0, sizeof(r));
		r.size = 16 * pg;	/* max_size is 8 pages */
		EXPECT_EQ(-EFBIG, shmk_ioctl(fd, req, &r));
		r.flags = SHMK_GROW_LAZY;
		EXPECT_EQ(-EFBIG, shmk_ioctl(fd, req, &r));
		r.flags = 0;
		r.size = 9 * pg;
		EXPECT_EQ(-EFBIG, shmk_ioctl(fd, req, &r));
		r.size = ~0ULL & pgmask;
		EXPECT_EQ(-EFBIG, shmk_ioctl(fd, req, &r));
		r.size = 1ULL << 63;
		EXPECT_EQ(-EFBIG, shmk_ioctl(fd, req, &r));
	}
}

TEST_F(seg, resize_bad_input)
{
	struct shmk_info before, after;
	char name[SHMK_NAME_MAX];
	size_t pg = page_size();
	struct shmk_resize r;
	int fd, ro;

	SHMK_NAME(name, "badresize");
	fd = shmk_create(self->ctl, name, 4 * pg, 8 * pg);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, shmk_get_info(fd, &before));

	check_resize_bad(_metadata, fd, SHMK_IOC_GROW, "grow");
	check_resize_bad(_metadata, fd, SHMK_IOC_SHRINK, "shrink");

	ASSERT_EQ(0, shmk_get_info(fd, &after));
	EXPECT_EQ(before.size, after.size);
	EXPECT_EQ(before.generation, after.generation);

	/* A read-only client may not resize. */
	ro = shmk_open(self->ctl, name, SHMK_ATTACH_RDONLY, NULL);
	ASSERT_LE(0, ro);
	EXPECT_EQ(-EPERM, shmk_grow(ro, 6 * pg, 0, NULL));
	EXPECT_EQ(-EPERM, shmk_grow(ro, 6 * pg, SHMK_GROW_LAZY, NULL));
	EXPECT_EQ(-EPERM, shmk_shrink(ro, 2 * pg, NULL));

	/* Valid calls, outputs pre-filled with 0xcc. */
	memset(&r, 0, sizeof(r));
	r.size = 6 * pg;
	r.old_size = r.new_size = r.generation = CC64;
	ASSERT_EQ(0, shmk_ioctl(fd, SHMK_IOC_GROW, &r));
	EXPECT_EQ(4 * pg, r.old_size);
	EXPECT_EQ(6 * pg, r.new_size);
	EXPECT_EQ(before.generation + 1, r.generation);
	EXPECT_EQ(6 * pg, r.size);
	EXPECT_EQ(0u, r.reserved0);
	EXPECT_EQ(0u, r.reserved[0]);
	EXPECT_EQ(0u, r.reserved[1]);

	memset(&r, 0, sizeof(r));
	r.size = 3 * pg;
	r.old_size = r.new_size = r.generation = CC64;
	ASSERT_EQ(0, shmk_ioctl(fd, SHMK_IOC_SHRINK, &r));
	EXPECT_EQ(6 * pg, r.old_size);
	EXPECT_EQ(3 * pg, r.new_size);
	EXPECT_EQ(before.generation + 2, r.generation);

	/* No-op both ways: success, nothing changes. */
	memset(&r, 0, sizeof(r));
	r.size = 2 * pg;
	r.old_size = r.new_size = r.generation = CC64;
	ASSERT_EQ(0, shmk_ioctl(fd, SHMK_IOC_GROW, &r));
	EXPECT_EQ(3 * pg, r.old_size);
	EXPECT_EQ(3 * pg, r.new_size);
	EXPECT_EQ(before.generation + 2, r.generation);
	memset(&r, 0, sizeof(r));
	r.size = 8 * pg;
	r.old_size = r.new_size = r.generation = CC64;
	ASSERT_EQ(0, shmk_ioctl(fd, SHMK_IOC_SHRINK, &r));
	EXPECT_EQ(3 * pg, r.old_size);
	EXPECT_EQ(3 * pg, r.new_size);
	EXPECT_EQ(before.generation + 2, r.generation);

	ASSERT_EQ(0, shmk_get_info(fd, &after));
	EXPECT_EQ(3 * pg, after.size);
	EXPECT_EQ(before.generation + 2, after.generation);

	close(ro);
	close(fd);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name));
}

TEST_F(seg, clients_lookup_bad_input)
{
	struct shmk_client_info arr[4];
	char name[SHMK_NAME_MAX];
	struct shmk_clients c;
	struct shmk_lookup l;
	int fd, i;

	SHMK_NAME(name, "badclients");
	fd = shmk_attach_opts(self->ctl, name,
			      SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL, 0600,
			      page_size(), page_size(), "me", NULL);
	ASSERT_LE(0, fd);

	memset(&c, 0, sizeof(c));
	c.clients = (__u64)(uintptr_t)arr;
	c.count = 4;
	c.flags = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_CLIENTS, &c));
	c.flags = 0;
	c.reserved0 = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_CLIENTS, &c));
	c.reserved0 = 0;
	for (i = 0; i < 2; i++) {
		c.reserved[i] = 1;
		EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_CLIENTS, &c))
			TH_LOG("reserved[%d]", i);
		c.reserved[i] = 0;
	}
	EXPECT_EQ(-EFAULT, shmk_ioctl(fd, SHMK_IOC_CLIENTS, NULL));
	c.clients = 8;
	EXPECT_EQ(-EFAULT, shmk_ioctl(fd, SHMK_IOC_CLIENTS, &c));

	/* count 0: nothing written, total reported; pointer not touched. */
	c.clients = 8;
	c.count = 0;
	c.total = CC32;
	EXPECT_EQ(0, shmk_ioctl(fd, SHMK_IOC_CLIENTS, &c));
	EXPECT_EQ(0u, c.count);
	EXPECT_EQ(1u, c.total);

	/* A valid call, pre-filled. */
	memset(arr, 0xcc, sizeof(arr));
	memset(&c, 0, sizeof(c));
	c.clients = (__u64)(uintptr_t)arr;
	c.count = 4;
	c.total = CC32;
	ASSERT_EQ(0, shmk_ioctl(fd, SHMK_IOC_CLIENTS, &c));
	EXPECT_EQ(1u, c.count);
	EXPECT_EQ(1u, c.total);
	EXPECT_EQ(getpid(), arr[0].pid);
	EXPECT_EQ(0u, arr[0].flags);
	EXPECT_EQ(0u, arr[0].reserved);
	EXPECT_STREQ("me", arr[0].name);
	EXPECT_EQ(CC32, arr[1].client_id);

	memset(&l, 0, sizeof(l));
	strcpy(l.name, "me");
	l.flags = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_LOOKUP, &l));
	l.flags = 0;
	l.reserved0 = 1;
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_LOOKUP, &l));
	l.reserved0 = 0;
	for (i = 0; i < 2; i++) {
		l.reserved[i] = 1;
		EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_LOOKUP, &l))
			TH_LOG("reserved[%d]", i);
		l.reserved[i] = 0;
	}
	memset(l.name, 'm', sizeof(l.name));
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_LOOKUP, &l));
	strcpy(l.name, "m\001e");
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, SHMK_IOC_LOOKUP, &l));
	EXPECT_EQ(-EFAULT, shmk_ioctl(fd, SHMK_IOC_LOOKUP, NULL));

	memset(&l, 0, sizeof(l));
	strcpy(l.name, "me");
	l.pid = (__s32)CC32;
	l.client_id = CC32;
	ASSERT_EQ(0, shmk_ioctl(fd, SHMK_IOC_LOOKUP, &l));
	EXPECT_EQ(getpid(), l.pid);
	EXPECT_EQ(arr[0].client_id, l.client_id);
	EXPECT_EQ(0u, l.reserved0);

	close(fd);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name));
}

/* Control ioctls on a client handle and vice versa; unknown numbers. */
TEST_F(seg, wrong_handle)
{
	static const unsigned long client_cmds[] = {
		SHMK_IOC_INFO, SHMK_IOC_GROW, SHMK_IOC_SHRINK,
		SHMK_IOC_CLIENTS, SHMK_IOC_LOOKUP,
	};
	static const unsigned long unknown[] = {
		_IO(SHMK_IOC_MAGIC, 0x7f),
		_IOWR(SHMK_IOC_MAGIC, 0x02, struct shmk_attach),
		_IOWR(SHMK_IOC_MAGIC, 0x15, struct shmk_info),
		_IOR(SHMK_IOC_MAGIC, 0x10, struct shmk_info),	  /* dir */
		_IOW(SHMK_IOC_MAGIC, 0x10, struct shmk_info),	  /* dir */
		_IOWR(SHMK_IOC_MAGIC + 1, 0x10, struct shmk_info),
		0x5401, /* TCGETS */
	};
	/* Big enough and valid for any of the structs above. */
	union {
		struct shmk_attach a;
		struct shmk_info i;
		char raw[512];
	} arg;
	char name[SHMK_NAME_MAX];
	struct shmk_unlink u;
	struct shmk_attach a;
	unsigned int i;
	int fd;

	SHMK_NAME(name, "wrong");
	fd = shmk_create(self->ctl, name, page_size(), page_size());
	ASSERT_LE(0, fd);

	for (i = 0; i < ARRAY_SIZE(client_cmds); i++) {
		memset(&arg, 0, sizeof(arg));
		EXPECT_EQ(-ENOTTY, shmk_ioctl(self->ctl, client_cmds[i], &arg))
			TH_LOG("cmd %#lx", client_cmds[i]);
	}
	attach_base(&a, name);
	a.flags = 0;
	EXPECT_EQ(-ENOTTY, shmk_ioctl(fd, SHMK_IOC_ATTACH, &a));
	memset(&u, 0, sizeof(u));
	strcpy(u.name, name);
	EXPECT_EQ(-ENOTTY, shmk_ioctl(fd, SHMK_IOC_UNLINK, &u));

	for (i = 0; i < ARRAY_SIZE(unknown); i++) {
		memset(&arg, 0, sizeof(arg));
		EXPECT_EQ(-ENOTTY, shmk_ioctl(self->ctl, unknown[i], &arg))
			TH_LOG("cmd %#lx on control", unknown[i]);
		memset(&arg, 0, sizeof(arg));
		EXPECT_EQ(-ENOTTY, shmk_ioctl(fd, unknown[i], &arg))
			TH_LOG("cmd %#lx on client", unknown[i]);
	}

	/* The segment survived the UNLINK on the wrong handle. */
	close(fd);
	fd = shmk_open(self->ctl, name, 0, NULL);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name));
}

/*
 * The size in the command is the caller's struct size: a newer, longer
 * struct works while its extra bytes are zero (E2BIG otherwise), and a
 * shorter one than the module knows is invalid.
 */
TEST_F(seg, extensible_ioctls)
{
	struct {
		struct shmk_info info;
		__u64 more[4];
	} big;
	char name[SHMK_NAME_MAX];
	struct shmk_info info;
	int fd;

	SHMK_NAME(name, "ext");
	fd = shmk_create(self->ctl, name, page_size(), page_size());
	ASSERT_LE(0, fd);

	memset(&big, 0, sizeof(big));
	EXPECT_EQ(0, shmk_ioctl(fd, _IOWR(SHMK_IOC_MAGIC, 0x10, big), &big));
	EXPECT_STREQ(name, big.info.name);
	EXPECT_EQ(page_size(), big.info.size);
	/* Nothing is written past the module's struct. */
	EXPECT_EQ(0u, big.more[0]);
	EXPECT_EQ(0u, big.more[3]);

	memset(&big, 0, sizeof(big));
	big.more[2] = 1;
	EXPECT_EQ(-E2BIG, shmk_ioctl(fd, _IOWR(SHMK_IOC_MAGIC, 0x10, big),
				     &big));

	memset(&info, 0, sizeof(info));
	EXPECT_EQ(-EINVAL, shmk_ioctl(fd, _IOC(_IOC_READ | _IOC_WRITE,
					       SHMK_IOC_MAGIC, 0x10,
					       sizeof(info) - 8), &info));
	close(fd);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, name));
}

struct perm_args {
	int ctl;
	char priv[SHMK_NAME_MAX];	/* 0600 */
	char pub[SHMK_NAME_MAX];	/* 0644 */
	char own[SHMK_NAME_MAX];	/* created by the child */
};

static int perm_child(int idx, void *arg)
{
	struct perm_args *pa = arg;
	struct shmk_info info;
	size_t pg = page_size();
	char *p;
	int fd;

	(void)idx;
	CHK(!setgroups(0, NULL));
	CHK(!setresgid(65534, 65534, 65534));
	CHK(!setresuid(65534, 65534, 65534));
	CHK_EQ(65534, geteuid());

	/* 0600, owned by root: no access at all. */
	CHK_EQ(-EACCES, shmk_open(pa->ctl, pa->priv, SHMK_ATTACH_RDONLY, NULL));
	CHK_EQ(-EACCES, shmk_open(pa->ctl, pa->priv, 0, NULL));
	CHK_EQ(-EACCES, shmk_open(pa->ctl, pa->priv, SHMK_ATTACH_WRITER, NULL));
	CHK_EQ(-EACCES, shmk_attach_opts(pa->ctl, pa->priv,
					 SHMK_ATTACH_CREATE, 0666, pg, pg,
					 NULL, NULL));

	/* 0644: read-only attach only. */
	CHK_EQ(-EACCES, shmk_open(pa->ctl, pa->pub, 0, NULL));
	CHK_EQ(-EACCES, shmk_open(pa->ctl, pa->pub, SHMK_ATTACH_WRITER, NULL));
	CHK_EQ(-EACCES, shmk_attach_opts(pa->ctl, pa->pub,
					 SHMK_ATTACH_CREATE, 0666, pg, pg,
					 NULL, NULL));
	fd = shmk_open(pa->ctl, pa->pub, SHMK_ATTACH_RDONLY, NULL);
	CHK(fd >= 0);
	CHK(shmk_get_info(fd, &info) == 0);
	CHK_EQ(SHMK_CLIENT_RDONLY, info.client_flags);
	CHK_EQ(0, info.uid);
	CHK_EQ(0644, info.mode);
	CHK_EQ(-EPERM, shmk_grow(fd, 2 * pg, 0, NULL));
	CHK(mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) ==
	    MAP_FAILED);
	CHK_EQ(EACCES, errno);
	p = shmk_map(fd, pg, PROT_READ);
	CHK(p != MAP_FAILED);
	CHK_EQ(0x77, p[100]);
	munmap(p, pg);
	close(fd);

	/* Neither owner nor creator: no unlink. */
	CHK_EQ(-EPERM, shmk_unlink_name(pa->ctl, pa->pub));
	CHK_EQ(-EPERM, shmk_unlink_name(pa->ctl, pa->priv));

	/* Its own segment: owned by 65534, unlinkable by it. */
	fd = shmk_create(pa->ctl, pa->own, pg, pg);
	CHK(fd >= 0);
	CHK(shmk_get_info(fd, &info) == 0);
	CHK_EQ(65534, info.uid);
	CHK_EQ(65534, info.gid);
	close(fd);
	CHK_EQ(0, shmk_unlink_name(pa->ctl, pa->own));
	return 0;
}

TEST_F(seg, permissions)
{
	int fpriv, fpub, fnone, fd, status;
	char none[SHMK_NAME_MAX];
	size_t pg = page_size();
	struct perm_args pa;
	pid_t pid;
	char *p;

	if (geteuid() != 0)
		SKIP(return, "needs root to drop to uid 65534");

	pa.ctl = self->ctl;
	SHMK_NAME(pa.priv, "priv");
	SHMK_NAME(pa.pub, "pub");
	SHMK_NAME(pa.own, "own");
	shmk_track(pa.own);
	fpriv = shmk_attach_opts(self->ctl, pa.priv,
				 SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL, 0600,
				 pg, pg, NULL, NULL);
	ASSERT_LE(0, fpriv);
	fpub = shmk_attach_opts(self->ctl, pa.pub,
				SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL, 0644,
				pg, pg, NULL, NULL);
	ASSERT_LE(0, fpub);
	p = shmk_map(fpub, pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	p[100] = 0x77;

	pid = shmk_fork(NULL, perm_child, 0, &pa);
	ASSERT_LT(0, pid);
	status = shmk_wait(pid, 20000);
	EXPECT_TRUE(shmk_status_ok(pid, status));

	/* Both still there, and the child's own is gone. */
	fd = shmk_open(self->ctl, pa.priv, 0, NULL);
	EXPECT_LE(0, fd);
	close(fd);
	fd = shmk_open(self->ctl, pa.pub, 0, NULL);
	EXPECT_LE(0, fd);
	close(fd);
	EXPECT_EQ(-ENOENT, shmk_open(self->ctl, pa.own, 0, NULL));

	/* Mode 0: root still gets in (CAP_IPC_OWNER). */
	SHMK_NAME(none, "none");
	fnone = shmk_attach_opts(self->ctl, none,
				 SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL, 0,
				 pg, pg, NULL, NULL);
	ASSERT_LE(0, fnone);
	fd = shmk_open(self->ctl, none, 0, NULL);
	EXPECT_LE(0, fd);
	close(fd);
	close(fnone);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, none));

	munmap(p, pg);
	close(fpriv);
	close(fpub);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, pa.priv));
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, pa.pub));
}

struct writer_args {
	char name[SHMK_NAME_MAX];
};

static int writer_child(int idx, void *arg)
{
	struct writer_args *wa = arg;
	int fd;

	(void)idx;
	CHK_EQ(-EBUSY, shmk_open_simple(wa->name, SHMK_ATTACH_WRITER, NULL));
	fd = shmk_open_simple(wa->name, 0, NULL);
	CHK(fd >= 0);
	close(fd);
	return 0;
}

TEST_F(seg, writer_exclusive)
{
	struct writer_args wa;
	struct shmk_info info;
	struct shmk_attach a;
	int w1, w2, plain, ro;
	pid_t pid;

	SHMK_NAME(wa.name, "writer");
	attach_base(&a, wa.name);
	a.flags |= SHMK_ATTACH_WRITER;
	shmk_track(wa.name);
	w1 = shmk_ioctl(self->ctl, SHMK_IOC_ATTACH, &a);
	ASSERT_LE(0, w1);
	ASSERT_EQ(0, shmk_get_info(w1, &info));
	EXPECT_EQ(SHMK_CLIENT_WRITER, info.client_flags);

	EXPECT_EQ(-EBUSY, shmk_open(self->ctl, wa.name, SHMK_ATTACH_WRITER,
				    NULL));
	EXPECT_EQ(-EBUSY, shmk_attach_opts(self->ctl, wa.name,
					   SHMK_ATTACH_CREATE |
					   SHMK_ATTACH_WRITER, 0600,
					   page_size(), page_size(), NULL,
					   NULL));
	EXPECT_EQ(-EINVAL, shmk_open(self->ctl, wa.name,
				     SHMK_ATTACH_WRITER | SHMK_ATTACH_RDONLY,
				     NULL));
	plain = shmk_open(self->ctl, wa.name, 0, NULL);
	EXPECT_LE(0, plain);
	ro = shmk_open(self->ctl, wa.name, SHMK_ATTACH_RDONLY, NULL);
	EXPECT_LE(0, ro);

	pid = shmk_fork(NULL, writer_child, 0, &wa);
	ASSERT_LT(0, pid);
	EXPECT_TRUE(shmk_status_ok(pid, shmk_wait(pid, 20000)));

	/* The role is free again once its holder is gone. */
	close(w1);
	w2 = shmk_open(self->ctl, wa.name, SHMK_ATTACH_WRITER, NULL);
	EXPECT_LE(0, w2);
	EXPECT_EQ(-EBUSY, shmk_open(self->ctl, wa.name, SHMK_ATTACH_WRITER,
				    NULL));
	close(w2);
	close(plain);
	close(ro);
	EXPECT_EQ(0, shmk_unlink_name(self->ctl, wa.name));
}

/* The module stays pinned while any handle or mapping exists, no longer. */
TEST_F(seg, module_refcnt)
{
	const struct shmk_status *st;
	long long r_start, r_none, r;
	char name[SHMK_NAME_MAX];
	size_t pg = page_size();
	int ctl, fd, ro;
	char *p;

	r_start = sysfs_read_ll(SHMK_REFCNT_PATH);
	ASSERT_LE(0, r_start);
	close(self->ctl);
	self->ctl = -1;
	r_none = sysfs_read_ll(SHMK_REFCNT_PATH);
	ASSERT_LE(0, r_none);
	EXPECT_LT(r_none, r_start) TH_LOG("an open /dev/shmk must pin the module");

	SHMK_NAME(name, "refcnt");
	ctl = shmk_open_ctl();
	ASSERT_LE(0, ctl);
	fd = shmk_create(ctl, name, 2 * pg, 4 * pg);
	ASSERT_LE(0, fd);
	ro = shmk_open(ctl, name, SHMK_ATTACH_RDONLY, NULL);
	ASSERT_LE(0, ro);
	p = shmk_map(fd, 4 * pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	st = shmk_map_status(ro);
	ASSERT_NE(NULL, st);
	ASSERT_EQ(0, shmk_unlink_name(ctl, name));

	/* Only the mappings are left. */
	close(ctl);
	close(fd);
	close(ro);
	r = sysfs_read_ll(SHMK_REFCNT_PATH);
	EXPECT_LT(r_none, r) TH_LOG("mappings must pin the module");
	p[0] = 1;
	EXPECT_EQ(SHMK_STATUS_MAGIC, st->magic);

	munmap(p, 4 * pg);
	r = sysfs_read_ll(SHMK_REFCNT_PATH);
	EXPECT_LT(r_none, r) TH_LOG("the status mapping must pin the module");
	munmap((void *)st, pg);
	EXPECT_EQ(r_none, sysfs_read_ll(SHMK_REFCNT_PATH));

	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	EXPECT_EQ(r_start, sysfs_read_ll(SHMK_REFCNT_PATH));
}

TEST_HARNESS_MAIN
