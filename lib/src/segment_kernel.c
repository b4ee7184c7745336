/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The kernel backend: /dev/shmk (shmk.ko).
 *
 * SHMK_IOC_ATTACH on the control device returns a client handle; the
 * segment is mapped from it at offset 0 for its whole max size (populated
 * with MAP_POPULATE; the kernel installs grown pages into every client
 * before SHMK_IOC_GROW returns), and the read-only status page at
 * SHMK_STATUS_OFFSET gives the active size without a system call. The
 * kernel keeps the client registry and records the first mapping's address
 * as the segment's common base.
 */
#include <linux/shmk.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

_Static_assert(sizeof(struct shmk_client) == sizeof(struct shmk_client_info) &&
	       offsetof(struct shmk_client, pid) ==
		       offsetof(struct shmk_client_info, pid) &&
	       offsetof(struct shmk_client, flags) ==
		       offsetof(struct shmk_client_info, flags) &&
	       offsetof(struct shmk_client, name) ==
		       offsetof(struct shmk_client_info, name),
	       "struct shmk_client mirrors struct shmk_client_info");

/* Every ioctl goes through here: -errno on failure, errno left alone. */
static int shmk_ioctl(int fd, unsigned long req, void *arg)
{
	int saved = errno, r;

	do {
		r = ioctl(fd, req, arg);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		r = -errno;
	errno = saved;
	return r;
}

/* The control handle; -ENODEV without /dev/shmk (no module loaded). */
static int ctl_open(void)
{
	int fd = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	return errno == ENOENT || errno == ENXIO ? -ENODEV : -errno;
}

static int get_info(int fd, struct shmk_info *info)
{
	memset(info, 0, sizeof(*info));
	return shmk_ioctl(fd, SHMK_IOC_INFO, info);
}

static bool kernel_available(void)
{
	return access(SHMK_DEVICE, F_OK) == 0;
}

static int kernel_attach(struct shmk *h, const char *name, int flags,
			 const struct shmk_opts *opts, size_t size,
			 size_t max_size, bool *created)
{
	int prot = (flags & SHMK_RDONLY) ? PROT_READ : PROT_READ | PROT_WRITE;
	const struct shmk_status *status = MAP_FAILED;
	struct shmk_attach a;
	struct shmk_info info;
	void *base = MAP_FAILED;
	bool at;
	int ctl, fd, r;

	memset(&a, 0, sizeof(a));
	a.flags = ((flags & SHMK_CREATE) ? SHMK_ATTACH_CREATE : 0) |
		  ((flags & SHMK_EXCL) ? SHMK_ATTACH_EXCL : 0) |
		  ((flags & SHMK_RDONLY) ? SHMK_ATTACH_RDONLY : 0) |
		  ((flags & SHMK_WRITER) ? SHMK_ATTACH_WRITER : 0);
	a.mode = h->create_mode;
	a.size = size;
	a.max_size = max_size;
	strncpy(a.name, name, sizeof(a.name) - 1);
	if (opts->client_name)
		strncpy(a.client_name, opts->client_name,
			sizeof(a.client_name) - 1);

	ctl = ctl_open();
	if (ctl < 0)
		return ctl;
	fd = shmk_ioctl(ctl, SHMK_IOC_ATTACH, &a);
	close(ctl);
	if (fd < 0)
		return fd;
	*created = a.out_flags & SHMK_ATTACH_CREATED;

	r = get_info(fd, &info);
	if (r)
		goto fail;
	status = mmap(NULL, h->page_size, PROT_READ, MAP_SHARED, fd,
		      (off_t)SHMK_STATUS_OFFSET);
	if (status == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	/*
	 * A mapping maps nothing by itself: MAP_POPULATE maps the active
	 * part now (allocating any page a lazy grow left out), and every
	 * later grow is installed into it by the kernel.
	 */
	base = shmk__map_at((void *)(uintptr_t)info.base_addr, info.max_size,
			    prot, MAP_POPULATE, fd, 0, &at);
	if (base == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	/* The kernel records the first mapping: was it ours, or theirs? */
	r = get_info(fd, &info);
	if (r)
		goto fail;
	h->base = base;
	h->map_size = info.max_size;
	h->at_common_base = info.base_addr == (uintptr_t)base;
	h->k.fd = fd;
	h->k.status = status;
	h->k.client_id = a.client_id;
	return 0;
fail:
	if (base != MAP_FAILED)
		munmap(base, info.max_size);
	if (status != MAP_FAILED)
		munmap((void *)status, h->page_size);
	close(fd);
	return r;
}

static int kernel_attached(struct shmk *h)
{
	(void)h;
	return 0;
}

static void kernel_detach(struct shmk *h)
{
	munmap(h->base, h->map_size);
	munmap((void *)h->k.status, h->page_size);
	close(h->k.fd);
}

/* The active size, from the status page (under its sequence count). */
static uint64_t kernel_size(const struct shmk *h)
{
	const struct shmk_status *st = h->k.status;

	for (;;) {
		uint32_t seq = __atomic_load_n(&st->seq, __ATOMIC_ACQUIRE);
		uint64_t size;

		if (seq & 1)
			continue;
		size = READ_ONCE(st->size);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&st->seq, __ATOMIC_RELAXED) == seq)
			return size;
	}
}

static int kernel_resize(struct shmk *h, uint64_t size)
{
	struct shmk_resize rs;
	uint64_t cur = kernel_size(h);
	int r;

	if (size == cur)
		return 0;
	memset(&rs, 0, sizeof(rs));
	rs.size = size;
	r = shmk_ioctl(h->k.fd, size > cur ? SHMK_IOC_GROW : SHMK_IOC_SHRINK,
		       &rs);
	return r < 0 ? r : 0;
}

/* The uid that INFO reports for an owner unmapped in our user namespace. */
static uint32_t overflow_uid(void)
{
	unsigned int v = 65534;
	FILE *f = fopen("/proc/sys/kernel/overflowuid", "re");

	if (f) {
		if (fscanf(f, "%u", &v) != 1)
			v = 65534;
		fclose(f);
	}
	return v;
}

/*
 * Take over a half-made segment only where the caller could have made it
 * so: its own, with no permission beyond what it asked for, its group's
 * bits for its own group (a neighbour that made the name first, readable
 * by others, gets no image loaded into it). An owner that our user
 * namespace cannot name reads as the overflow uid, which may be ours too:
 * never taken over.
 */
static bool kernel_may_take_over(struct shmk *h, uint32_t mode)
{
	struct shmk_info info;

	if (get_info(h->k.fd, &info) || info.uid != geteuid() ||
	    info.uid == overflow_uid() || (info.mode & 0777 & ~mode))
		return false;
	return !(info.mode & 0070) || info.gid == getegid();
}

static int kernel_clients(struct shmk *h, struct shmk_client *out, size_t max)
{
	struct shmk_clients c;
	int r;

	memset(&c, 0, sizeof(c));
	c.clients = (uintptr_t)out;
	c.count = !out ? 0 : max > UINT32_MAX ? UINT32_MAX : (uint32_t)max;
	/* Defined even where the kernel writes less (and for valgrind). */
	if (c.count)
		memset(out, 0, c.count * sizeof(*out));
	r = shmk_ioctl(h->k.fd, SHMK_IOC_CLIENTS, &c);
	return r < 0 ? r : (int)c.total;
}

static int kernel_client_pid(struct shmk *h, const char *client_name)
{
	struct shmk_lookup l;
	int r;

	memset(&l, 0, sizeof(l));
	strncpy(l.name, client_name, sizeof(l.name) - 1);
	r = shmk_ioctl(h->k.fd, SHMK_IOC_LOOKUP, &l);
	return r < 0 ? r : l.pid;
}

static int kernel_unlink(const char *name)
{
	struct shmk_unlink u;
	int ctl = ctl_open(), r;

	if (ctl < 0)
		return ctl;
	memset(&u, 0, sizeof(u));
	strncpy(u.name, name, sizeof(u.name) - 1);
	r = shmk_ioctl(ctl, SHMK_IOC_UNLINK, &u);
	close(ctl);
	return r < 0 ? r : 0;
}

/*
 * Whether the module has a segment named @name: attach to it as a reader
 * without creating and detach at once (the module has no lookup on the
 * control handle). A segment the caller may not read still exists.
 */
static int kernel_exists(const char *name)
{
	struct shmk_attach a;
	int ctl, fd;

	if (!kernel_available())
		return 0;
	memset(&a, 0, sizeof(a));
	a.flags = SHMK_ATTACH_RDONLY;
	strncpy(a.name, name, sizeof(a.name) - 1);
	strcpy(a.client_name, "shmk-probe");
	ctl = ctl_open();
	if (ctl == -ENODEV)
		return 0;
	if (ctl < 0)
		return ctl;
	fd = shmk_ioctl(ctl, SHMK_IOC_ATTACH, &a);
	close(ctl);
	if (fd >= 0) {
		close(fd);
		return 1;
	}
	if (fd == -ENOENT)
		return 0;
	if (fd == -EACCES || fd == -EPERM || fd == -EUSERS || fd == -EBUSY)
		return 1;
	return fd;
}

const struct shmk_backend shmk__backend_kernel = {
	.name = "kernel",
	.available = kernel_available,
	.attach = kernel_attach,
	.attached = kernel_attached,
	.detach = kernel_detach,
	.resize = kernel_resize,
	.size = kernel_size,
	.backing_size = kernel_size,
	.backing_size_cheap = true,
	.clients = kernel_clients,
	.may_take_over = kernel_may_take_over,
	.client_pid = kernel_client_pid,
	.unlink = kernel_unlink,
	.exists = kernel_exists,
};
