/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The posix backend: POSIX shared memory (shm_open "/shmk.NAME", that is
 * /dev/shm/shmk.NAME), for systems without /dev/shmk, or with
 * SHMK_BACKEND=posix. Its first name, "memfd" (it never used
 * memfd_create(2)), is still accepted; the C identifiers here keep it.
 *
 * Every process maps the whole max size at once (at the creator's address
 * from the header when that range is free). Growth is an ftruncate of the
 * file: a MAP_SHARED mapping of a shmem file already covers pages that a
 * later ftruncate adds, so peers need no remap; they learn the new size
 * from the header (seg_size, heap_end) and fault the pages in lazily.
 *
 * The client registry lives in the segment (struct shmk_registry): slots
 * claimed lock-free, each owned by a (pid, start time) pair that anyone can
 * test against /proc/PID/stat, so slots of dead processes are reaped. A
 * read-only client registers through a small read-write window onto the
 * registry when it may open the file read-write; otherwise it stays
 * unlisted.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define SHM_PREFIX		"/shmk."
#define SHM_DIR			"/dev/shm"	/* where shm_open() puts them */
#define SIZE_WAIT_NS		(5ULL * 1000000000ULL)

static void shm_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, SHM_PREFIX "%s", name);
}

/* ---- process liveness -------------------------------------------------- */

/* 0 and the start time if @pid runs, -ESRCH if it is gone or a zombie. */
static int proc_starttime(pid_t pid, uint64_t *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	p = strrchr(buf, ')');		/* comm may hold spaces and parens */
	if (!p || p[1] != ' ')
		return -EIO;
	p += 2;				/* field 3: state */
	if (*p == 'Z' || *p == 'X' || *p == 'x')
		return -ESRCH;
	for (int i = 3; i < 22; i++) {	/* to field 22: starttime */
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	*start = strtoull(p, NULL, 10);
	return 0;
}

static uint64_t owner_key(pid_t pid, uint64_t start)
{
	return (uint64_t)(uint32_t)pid << 32 | (uint32_t)start;
}

static bool key_alive(uint64_t key)
{
	pid_t pid = (pid_t)(key >> 32);
	uint64_t start;
	int r;

	if (pid <= 0)
		return false;
	r = proc_starttime(pid, &start);
	if (r == -ESRCH)
		return false;
	if (r)
		return true;	/* cannot tell: keep it */
	return (uint32_t)start == (uint32_t)key;
}

/* ---- the registry ------------------------------------------------------ */

static const struct shmk_registry *reg_view(const struct shmk *h)
{
	return (const void *)(h->base + SHMK_REG_OFF);
}

static int claim_slot(struct shmk *h, const char *client_name)
{
	struct shmk_registry *reg = h->m.reg;
	char comm[16] = "";

	if (!client_name || !*client_name) {
		prctl(PR_GET_NAME, comm, 0, 0, 0);
		client_name = comm;
	}
	for (unsigned int i = 0; i < SHMK_REG_SLOTS; i++) {
		struct shmk_reg_slot *s = &reg->slot[i];
		uint64_t o = __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE);
		uint32_t seq;

		if (o && !key_alive(o))	/* reap */
			__atomic_compare_exchange_n(&s->owner, &o, 0, false,
						    __ATOMIC_ACQ_REL,
						    __ATOMIC_ACQUIRE);
		o = 0;
		if (!__atomic_compare_exchange_n(&s->owner, &o, h->m.key, false,
						 __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			continue;
		/* Ours: only the owner writes the rest, under seq. */
		seq = s->seq | 1;
		__atomic_store_n(&s->seq, seq, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		s->client_id = __atomic_add_fetch(&reg->next_id, 1,
						  __ATOMIC_RELAXED);
		s->flags = (h->rdonly ? SHMK_CLIENT_RDONLY : 0) |
			   ((h->flags & SHMK_WRITER) ? SHMK_CLIENT_WRITER : 0);
		s->pid = (int32_t)(h->m.key >> 32);
		memset(s->name, 0, sizeof(s->name));
		memcpy(s->name, client_name,
		       strnlen(client_name, sizeof(s->name) - 1));
		__atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
		h->m.slot = (int)i;
		return 0;
	}
	return -EUSERS;
}

static void release_slot(struct shmk *h)
{
	struct shmk_reg_slot *s = &h->m.reg->slot[h->m.slot];
	uint64_t me = h->m.key;

	__atomic_compare_exchange_n(&s->owner, &me, 0, false, __ATOMIC_RELEASE,
				    __ATOMIC_RELAXED);
	h->m.slot = -1;
}

/* The writer word holds the writer's owner key: one live writer at most. */
static int claim_writer(struct shmk *h)
{
	uint64_t *writer = &h->m.reg->writer;
	uint64_t w = __atomic_load_n(writer, __ATOMIC_ACQUIRE);

	for (;;) {
		if (w && key_alive(w))
			return -EBUSY;
		if (__atomic_compare_exchange_n(writer, &w, h->m.key, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return 0;
	}
}

static void release_writer(struct shmk *h)
{
	uint64_t me = h->m.key;

	__atomic_compare_exchange_n(&h->m.reg->writer, &me, 0, false,
				    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

/* Copy a live slot; false if it is free, dead or changing. */
static bool read_slot(const struct shmk_reg_slot *s, struct shmk_client *c)
{
	for (int tries = 0; tries < 100; tries++) {
		uint64_t o = __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE);
		uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

		if (!o)
			return false;
		if (seq & 1) {
			sched_yield();
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->id = READ_ONCE(s->client_id);
		c->pid = READ_ONCE(s->pid);
		c->flags = READ_ONCE(s->flags);
		memcpy(c->name, s->name, sizeof(c->name));
		c->name[sizeof(c->name) - 1] = '\0';
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq ||
		    __atomic_load_n(&s->owner, __ATOMIC_RELAXED) != o)
			continue;
		return key_alive(o);
	}
	return false;
}

static int memfd_clients(struct shmk *h, struct shmk_client *out, size_t max)
{
	const struct shmk_registry *reg = reg_view(h);
	size_t total = 0;

	for (unsigned int i = 0; i < SHMK_REG_SLOTS; i++) {
		struct shmk_client c;

		if (!read_slot(&reg->slot[i], &c))
			continue;
		if (total < max)
			out[total] = c;
		total++;
	}
	return (int)total;
}

static int memfd_client_pid(struct shmk *h, const char *client_name)
{
	const struct shmk_registry *reg = reg_view(h);

	for (unsigned int i = 0; i < SHMK_REG_SLOTS; i++) {
		struct shmk_client c;

		if (read_slot(&reg->slot[i], &c) &&
		    !strncmp(c.name, client_name, sizeof(c.name)))
			return c.pid;
	}
	return -ENOENT;
}

/* ---- attach, detach ---------------------------------------------------- */

/* An existing segment's max size and base, once its creator published it. */
static int read_identity(int fd, size_t page, uint64_t *max, uint64_t *base)
{
	uint64_t deadline = shmk__clock_ns(CLOCK_MONOTONIC) + SIZE_WAIT_NS;
	const struct shmk_hdr *hd;
	struct stat st;
	int r;

	for (;;) {
		if (fstat(fd, &st))
			return -errno;
		if ((uint64_t)st.st_size >= SHMK_HEAP_START)
			break;
		if (shmk__clock_ns(CLOCK_MONOTONIC) > deadline)
			return -ETIMEDOUT;
		nanosleep(&(struct timespec){ 0, 200000 }, NULL);
	}
	hd = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
	if (hd == MAP_FAILED)
		return -errno;
	r = shmk__wait_ready(&hd->magic);
	*max = hd->max_size;
	*base = hd->base_addr;
	munmap((void *)hd, page);
	if (!r && (*max < SHMK_HEAP_START || *max > (1ULL << 46) ||
		   *max % page))
		r = -EUCLEAN;
	return r;
}

static bool memfd_available(void)
{
	return true;
}

static int memfd_attach(struct shmk *h, const char *name, int flags,
			const struct shmk_opts *opts, size_t size,
			size_t max_size, bool *created)
{
	mode_t mode = opts->mode ? opts->mode : 0600;
	uint64_t max = max_size, hint = 0;
	bool rdonly = flags & SHMK_RDONLY, rw = true, at = false;
	char path[SHMK_NAME_MAX + sizeof(SHM_PREFIX)];
	void *base;
	int fd = -1, r;

	shm_path(path, sizeof(path), name);
	if (flags & SHMK_CREATE) {
		/*
		 * Create it unnamed, to be linked in once initialized
		 * (memfd_publish()): a creator killed half way leaves nothing
		 * behind. Without O_TMPFILE in SHM_DIR, create it by name.
		 */
		fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
		if (fd >= 0 && (flags & SHMK_EXCL)) {
			close(fd);
			return -EEXIST;
		}
		if (fd < 0 && errno != ENOENT)
			return -errno;
		if (fd < 0) {
			fd = open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
			h->m.unnamed = fd >= 0;
			if (fd < 0)
				fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL |
						    O_CLOEXEC, mode);
			if (fd < 0 && (errno != EEXIST || (flags & SHMK_EXCL)))
				return -errno;
			*created = fd >= 0;
		}
		if (*created && (fchmod(fd, mode) ||
				 ftruncate(fd, (off_t)size))) {
			r = -errno;
			goto fail;
		}
	}
	if (!*created) {
		if (fd < 0)
			fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
		if (fd < 0 && rdonly && errno == EACCES) {
			fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
			rw = false;
		}
		if (fd < 0)
			return -errno;
		r = read_identity(fd, h->page_size, &max, &hint);
		if (r)
			goto fail;
	}

	base = shmk__map_at((void *)(uintptr_t)hint, max,
			    rdonly ? PROT_READ : PROT_READ | PROT_WRITE, 0, fd,
			    0, &at);
	if (base == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	/* As the kernel backend's mappings: not inherited by fork. */
	madvise(base, max, MADV_DONTFORK);
	h->base = base;
	h->map_size = max;
	h->at_common_base = *created || at;
	h->m.fd = fd;
	h->m.slot = -1;
	if (!rdonly) {
		h->m.reg = (struct shmk_registry *)(h->base + SHMK_REG_OFF);
	} else if (rw) {
		void *w = mmap(NULL, SHMK_REG_SIZE, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, SHMK_REG_OFF);

		if (w != MAP_FAILED) {
			madvise(w, SHMK_REG_SIZE, MADV_DONTFORK);
			h->m.reg_map = w;
			h->m.reg = w;
		}
	}
	return 0;
fail:
	close(fd);
	if (*created && !h->m.unnamed)
		shm_unlink(path);
	*created = false;
	return r;
}

/* Link a segment created unnamed under its name, now that it is whole. */
static int memfd_publish(struct shmk *h)
{
	char path[sizeof(SHM_DIR) + sizeof(SHM_PREFIX) + SHMK_NAME_MAX];
	char self[64];

	if (!h->m.unnamed)
		return 0;
	snprintf(path, sizeof(path), SHM_DIR SHM_PREFIX "%s", h->name);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", h->m.fd);
	if (linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) &&
	    linkat(h->m.fd, "", AT_FDCWD, path, AT_EMPTY_PATH))
		return -errno;
	h->m.unnamed = false;
	return 0;
}

static int memfd_attached(struct shmk *h)
{
	uint64_t start;
	int r;

	if (!h->m.reg)
		return 0;	/* a reader without write access: unlisted */
	r = proc_starttime(getpid(), &start);
	if (r)
		return r;
	h->m.key = owner_key(getpid(), start);
	r = claim_slot(h, h->client_name);
	if (r)
		return r;
	if (h->flags & SHMK_WRITER) {
		r = claim_writer(h);
		if (r)
			release_slot(h);
	}
	return r;
}

static void memfd_detach(struct shmk *h)
{
	if (h->m.slot >= 0) {
		if (h->flags & SHMK_WRITER)
			release_writer(h);
		release_slot(h);
	}
	if (h->m.reg_map)
		munmap(h->m.reg_map, SHMK_REG_SIZE);
	munmap(h->base, h->map_size);
	close(h->m.fd);
}

/*
 * Growth lengthens the file (or reuses what a shrink left of it). A shrink
 * (@size is the heap's new end, already committed) frees the pages by
 * punching a hole and keeps the file's length: a lock-free reader that
 * still holds an offset above the cut then reads zeros, sees the sequence
 * count moved and retries, where a truncated file would give it SIGBUS.
 */
static int memfd_resize(struct shmk *h, uint64_t size)
{
	struct stat st;

	if (fstat(h->m.fd, &st))
		return -errno;
	if (size > (uint64_t)st.st_size)
		return ftruncate(h->m.fd, (off_t)size) ? -errno : 0;
	/* A shrink: the heap was cut first (h->heap_ok, not the header's). */
	if (size < (uint64_t)st.st_size && size <= h->heap_ok &&
	    fallocate(h->m.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)size, (off_t)((uint64_t)st.st_size - size)))
		return -errno;
	return 0;
}

static uint64_t memfd_size(const struct shmk *h)
{
	return __atomic_load_n(&h->hdr->seg_size, __ATOMIC_ACQUIRE);
}

static uint64_t memfd_backing_size(const struct shmk *h)
{
	struct stat st;

	return fstat(h->m.fd, &st) ? 0 : (uint64_t)st.st_size;
}

/*
 * EPERM for a refusal, as the kernel backend: unlink(2) in the sticky
 * /dev/shm gives EPERM, a directory without write access EACCES.
 */
static int memfd_unlink(const char *name)
{
	char path[SHMK_NAME_MAX + sizeof(SHM_PREFIX)];

	shm_path(path, sizeof(path), name);
	if (!shm_unlink(path))
		return 0;
	return errno == EACCES ? -EPERM : -errno;
}

/* Whether /dev/shm holds a segment of that name (in use or not). */
static int memfd_exists(const char *name)
{
	char path[sizeof(SHM_DIR) + sizeof(SHM_PREFIX) + SHMK_NAME_MAX];
	struct stat st;

	snprintf(path, sizeof(path), SHM_DIR SHM_PREFIX "%s", name);
	if (!lstat(path, &st))
		return 1;
	return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
}

const struct shmk_backend shmk__backend_memfd = {
	.name = "posix",
	.available = memfd_available,
	.attach = memfd_attach,
	.publish = memfd_publish,
	.attached = memfd_attached,
	.detach = memfd_detach,
	.resize = memfd_resize,
	.size = memfd_size,
	.backing_size = memfd_backing_size,
	.clients = memfd_clients,
	.client_pid = memfd_client_pid,
	.unlink = memfd_unlink,
	.exists = memfd_exists,
};
