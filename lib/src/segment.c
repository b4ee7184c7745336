/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Segments: open and close, the header's creation and validation, backend
 * selection, and the address helpers. The backends (segment_kernel.c,
 * segment_memfd.c) provide the memory; this file lays out the library's
 * header at offset 0 of it.
 */
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "internal.h"
#include "small.h"

#define DEFAULT_SIZE		(1ULL << 20)
#define DEFAULT_MAX_SIZE	(1ULL << 30)
#define MIN_SIZE		(SHMK_HEAP_START + (64ULL << 10))
#define SIZE_LIMIT		(1ULL << 43)	/* SHMK_SIZE_LIMIT */
#define READY_TIMEOUT_NS	(5ULL * 1000000000ULL)
/* A creator takes init_lock at once: a clear word this long means it died. */
#define ORPHAN_GRACE_NS		(1ULL * 1000000000ULL)

#define OPEN_FLAGS	(SHMK_CREATE | SHMK_EXCL | SHMK_RDONLY | SHMK_WRITER | \
			 SHMK_IMAGE_ONLY)

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

static int check_name(const char *name)
{
	size_t n;

	if (!name)
		return -EINVAL;
	n = strnlen(name, SHMK_NAME_MAX);
	if (n == 0 || n >= SHMK_NAME_MAX || !printable(name, n) ||
	    memchr(name, '/', n))
		return -EINVAL;
	return 0;
}

static int check_client_name(const char *name)
{
	size_t n;

	if (!name)
		return 0;
	n = strnlen(name, SHMK_CLIENT_NAME_MAX);
	return n < SHMK_CLIENT_NAME_MAX && printable(name, n) ? 0 : -EINVAL;
}

static const struct shmk_backend *pick_backend(const char *want)
{
	if (!want || !*want)
		want = getenv("SHMK_BACKEND");
	if (!want || !*want)
		return shmk__backend_kernel.available() ? &shmk__backend_kernel
							: &shmk__backend_memfd;
	if (!strcmp(want, shmk__backend_kernel.name))
		return &shmk__backend_kernel;
	/* "memfd": the posix backend's first name, for existing users. */
	if (!strcmp(want, shmk__backend_memfd.name) || !strcmp(want, "memfd"))
		return &shmk__backend_memfd;
	if (!strcmp(want, shmk__backend_file.name))
		return &shmk__backend_file;
	return NULL;
}

/* The backend whose segments @be must not shadow, or NULL. */
static const struct shmk_backend *other_backend(const struct shmk_backend *be)
{
	if (be == &shmk__backend_kernel)
		return &shmk__backend_memfd;
	if (be == &shmk__backend_memfd)
		return &shmk__backend_kernel;
	return NULL;
}

/*
 * One segment per name on a machine, whatever the backend: -EADDRINUSE
 * when the other backend has a segment of that name, 0 when it has none.
 */
static int name_free_elsewhere(const struct shmk_backend *be,
			       const char *name)
{
	const struct shmk_backend *other = other_backend(be);
	int r;

	/* Without its module, the kernel backend's own ENODEV says more. */
	if (!other || !be->available())
		return 0;
	r = other->exists(name);
	return r > 0 ? -EADDRINUSE : r;
}

/*
 * Where a segment mapped first goes: a random SHMK_BASE_ALIGN-aligned
 * address in a range of its own, [16 TiB, 96 TiB), far from where the
 * kernel places mmap(), the heap and the stacks. The common base that later
 * attachers share then says nothing about the creator's address-space
 * layout. Only where user space has 47 bits or more (64-bit processes).
 */
#define RANDOM_BASE_LO		(16ULL << 40)
#define RANDOM_BASE_HI		(96ULL << 40)
#define RANDOM_BASE_TRIES	8

static void *map_random(size_t len, int prot, int flags, int fd, off_t off)
{
	uint64_t span, r;

	if (sizeof(void *) < 8 || len >= RANDOM_BASE_HI - RANDOM_BASE_LO)
		return MAP_FAILED;
	span = (RANDOM_BASE_HI - RANDOM_BASE_LO - len) / SHMK_BASE_ALIGN;
	for (int i = 0; i < RANDOM_BASE_TRIES; i++) {
		void *want, *p;

		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			return MAP_FAILED;
		want = (void *)(uintptr_t)(RANDOM_BASE_LO +
					   (r % span) * SHMK_BASE_ALIGN);
		p = mmap(want, len, prot, flags | MAP_FIXED_NOREPLACE, fd, off);
		if (p == want)
			return p;
		if (p != MAP_FAILED)	/* a kernel without the flag */
			munmap(p, len);
	}
	return MAP_FAILED;
}

/*
 * Map at @hint when that range is free; otherwise at a random address (see
 * map_random()), or anywhere at a SHMK_BASE_ALIGN boundary (reserve a
 * larger range, map over its aligned part, trim), so that alignments up to
 * SHMK_BASE_ALIGN hold for pointers in every process, not only for offsets.
 * @flags adds mmap flags to MAP_SHARED (MAP_POPULATE).
 */
void *shmk__map_at(void *hint, size_t len, int prot, int flags, int fd,
		   off_t off, bool *at_hint)
{
	uint8_t *res, *a;
	void *p;

	flags |= MAP_SHARED;
	*at_hint = false;
	if (hint) {
		p = mmap(hint, len, prot, flags | MAP_FIXED_NOREPLACE, fd, off);
		if (p == hint) {
			*at_hint = true;
			return p;
		}
		if (p != MAP_FAILED)	/* a kernel without the flag */
			munmap(p, len);
	} else {
		p = map_random(len, prot, flags, fd, off);
		if (p != MAP_FAILED)
			return p;
	}
	res = mmap(NULL, len + SHMK_BASE_ALIGN, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return mmap(NULL, len, prot, flags, fd, off);
	a = (uint8_t *)ALIGN_UP((uintptr_t)res, (uintptr_t)SHMK_BASE_ALIGN);
	p = mmap(a, len, prot, flags | MAP_FIXED, fd, off);
	if (p == MAP_FAILED) {
		munmap(res, len + SHMK_BASE_ALIGN);
		return MAP_FAILED;
	}
	if (a > res)
		munmap(res, (size_t)(a - res));
	munmap(a + len, (size_t)(res + SHMK_BASE_ALIGN - a));
	return p;
}

/*
 * Claim the initialization of a segment of a backend without publish():
 * take init_lock without waiting. 0: ours, the header cleared but for the
 * lock (a claimant that died may have written it); 1: initialized
 * meanwhile, nothing to do; -ESTALE: given up by its creator (look the
 * name up again); -EBUSY: another claimant has it (-EDEADLK too: one whose
 * tid, in another pid namespace, is ours); or another -errno (this thread
 * cannot take an rlock).
 */
static int init_claim(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	int r = shmk__rlock_lock(&hd->init_lock, NULL, false);
	size_t lk = offsetof(struct shmk_hdr, init_lock);

	if (r == EDEADLK)
		return -EBUSY;
	if (r && r != EOWNERDEAD)
		return -r;
	if (r == EOWNERDEAD)
		shmk__rlock_consistent(&hd->init_lock);
	switch (__atomic_load_n(&hd->magic, __ATOMIC_ACQUIRE)) {
	case SHMK_HDR_MAGIC:
		shmk__rlock_unlock(&hd->init_lock, NULL);
		return 1;
	case SHMK_HDR_DEAD:
		/* Given up, and unlinked, by a creator killed since. */
		shmk__rlock_unlock(&hd->init_lock, NULL);
		return -ESTALE;
	}
	memset(h->base, 0, lk);
	memset(h->base + lk + sizeof(hd->init_lock), 0,
	       sizeof(*hd) - lk - sizeof(hd->init_lock));
	return 0;
}

static void init_release(struct shmk *h)
{
	shmk__rlock_unlock(&h->hdr->init_lock, NULL);
}

static int init_segment(struct shmk *h, uint64_t size)
{
	struct shmk_hdr *hd = h->hdr;
	int r;

	hd->version = SHMK_LAYOUT_VERSION;
	hd->hdr_size = SHMK_HEAP_START;
	hd->max_size = h->map_size;
	hd->base_addr = (uintptr_t)h->base;
	hd->ctime_ns = shmk__clock_ns(CLOCK_REALTIME);
	hd->page_size = (uint32_t)h->page_size;
	hd->mutex_size = sizeof(struct shmk_rlock);
	hd->log_cap = SHMK_LOG_CAP;
	hd->reg_slots = SHMK_REG_SLOTS;
	r = shmk__init_lock(h);
	if (r)
		return r;
	/* Nobody else sees the segment before the magic: no undo log. */
	h->tx_nolog = true;
	SHMK_FAULT_POINT();
	shmk__heap_init(h, size);
	SHMK_FAULT_POINT();
	r = shmk__dir_init(h);
	if (!r)
		r = shmk__small_init(h);
	h->tx_nolog = false;
	SHMK_FAULT_POINT();
	if (r)
		return r;
	h->free_index_changed = true;
	shmk__stats_publish(h);
	__atomic_store_n(&hd->magic, SHMK_HDR_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

/*
 * Whether this opener may take a half-made segment over: one that passes
 * SHMK_CREATE, on a backend that names a segment before it is whole (the
 * kernel backend), of a segment large enough for a heap and one that it
 * could have made (may_take_over(): asks the kernel).
 */
static bool may_take_over(struct shmk *h)
{
	return (h->flags & SHMK_CREATE) && !h->be->publish &&
	       h->be->may_take_over && h->map_size >= MIN_SIZE &&
	       h->be->may_take_over(h, h->create_mode);
}

/*
 * Wait (bounded) for the creator to publish the header. While it loads an
 * image, the bound runs from its last progress (tx_arg, image.c).
 *
 * With @h, the handle of an opener that may_take_over(), the wait takes
 * the initialization over from a claimant that died: 1, init_lock held.
 * The kernel marks init_lock's word when its holder dies; a creator killed
 * before it took the lock leaves the word clear for good. A creator that
 * was only slow finds the lock taken and waits in turn.
 */
static int wait_header(const uint64_t *magic, struct shmk *h)
{
	const struct shmk_hdr *hd = (const struct shmk_hdr *)magic;
	uint64_t deadline = 0, progress = 0, clear_since = 0;
	/* 1 yes, 0 no, -1 not asked yet (may_take_over() asks the kernel). */
	int may_claim = h ? -1 : 0;

	for (unsigned int i = 0;; i++) {
		uint64_t m = __atomic_load_n(magic, __ATOMIC_ACQUIRE), now;
		uint32_t w;

		if (m == SHMK_HDR_MAGIC)
			return 0;
		if (m == SHMK_HDR_DEAD)	/* given up: see shmk_open() */
			return h && !h->be->publish ? -ESTALE : -EPROTO;
		if (m == SHMK_HDR_LOADING &&
		    READ_ONCE(hd->tx_arg) != progress) {
			progress = READ_ONCE(hd->tx_arg);
			deadline = 0;
			clear_since = 0;	/* a loader that lives */
		} else if (m != 0 && m != SHMK_HDR_LOADING) {
			return -EPROTO;		/* not a shmk segment */
		}
		if (i < 100) {
			sched_yield();
			continue;
		}
		now = shmk__clock_ns(CLOCK_MONOTONIC);
		w = __atomic_load_n(&hd->init_lock.word, __ATOMIC_ACQUIRE);
		if (w)
			clear_since = 0;
		else if (!clear_since)
			clear_since = now;
		if (may_claim && ((w & FUTEX_OWNER_DIED) ||
				  (!w && now - clear_since >= ORPHAN_GRACE_NS))) {
			int c = -EBUSY;

			if (may_claim < 0)
				may_claim = may_take_over(h);
			if (may_claim)
				c = init_claim(h);
			if (c == 1)
				return 0;	/* whole meanwhile */
			if (c != -EBUSY)
				return c ? c : 1;
		}
		if (!deadline)
			deadline = now + READY_TIMEOUT_NS;
		else if (now > deadline)
			return -ETIMEDOUT;
		nanosleep(&(struct timespec){ 0, 200000 }, NULL);
	}
}

int shmk__wait_ready(const uint64_t *magic)
{
	return wait_header(magic, NULL);
}

/* 0, 1 (ours to initialize: init_lock held) or -errno. */
static int validate_segment(struct shmk *h)
{
	const struct shmk_hdr *hd = h->hdr;
	int r;

	/*
	 * No memory behind the header (a segment another tool made small, or
	 * a writer cut): not a shmk segment, and not to be read, unless it
	 * is ours to make.
	 */
	if (!h->be->publish && h->be->backing_size(h) < SHMK_HEAP_START) {
		if (!may_take_over(h))
			return -EPROTO;
		r = h->be->resize(h, MIN_SIZE);
		if (r)
			return r;
	}
	r = wait_header(&hd->magic, h);
	if (r)
		return r;
	if (hd->version != SHMK_LAYOUT_VERSION ||
	    hd->hdr_size != SHMK_HEAP_START || hd->log_cap != SHMK_LOG_CAP ||
	    hd->reg_slots != SHMK_REG_SLOTS ||
	    hd->mutex_size != sizeof(struct shmk_rlock) ||
	    hd->page_size != h->page_size)
		return -EPROTO;
	if (hd->max_size != h->map_size ||
	    READ_ONCE(hd->heap_end) > h->map_size ||
	    READ_ONCE(hd->heap_start) != SHMK_HEAP_START)
		return -EUCLEAN;
	return 0;
}

int shmk_open(const char *name, int flags, const struct shmk_opts *opts,
	      struct shmk **out)
{
	SHMK_KEEP_ERRNO;
	static const struct shmk_opts defaults;
	struct shmk_img_load ld = { .fd = -1 };
	const struct shmk_backend *be;
	uint64_t size, max, ps;
	bool created = false, named = false;
	struct shmk *h;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((flags & ~OPEN_FLAGS) ||
	    ((flags & SHMK_EXCL) && !(flags & SHMK_CREATE)) ||
	    ((flags & SHMK_RDONLY) && (flags & (SHMK_WRITER | SHMK_CREATE))))
		return -EINVAL;
	if ((r = check_name(name)))
		return r;
	if (!opts)
		opts = &defaults;
	if ((r = check_client_name(opts->client_name)))
		return r;
	if (opts->mode & ~0777U)
		return -EINVAL;
	if ((flags & SHMK_IMAGE_ONLY) &&
	    (!(flags & SHMK_CREATE) || !opts->image))
		return -EINVAL;

	size = opts->size ? opts->size : DEFAULT_SIZE;
	max = opts->max_size;
	if (!max)
		max = size > DEFAULT_MAX_SIZE ? size : DEFAULT_MAX_SIZE;
	else if (!opts->size && size > max)
		size = max;
	if (size > SIZE_LIMIT || max > SIZE_LIMIT)
		return -EFBIG;
	ps = (uint64_t)sysconf(_SC_PAGESIZE);
	size = ALIGN_UP(size < MIN_SIZE ? MIN_SIZE : size, ps);
	max = ALIGN_UP(max, ps);
	if (max < size)
		return -EINVAL;

	be = pick_backend(opts->backend);
	if (!be)
		return -EINVAL;
	/* An image to create it from: checked now, loaded if we create it. */
	r = shmk__image_open_prep(be, flags, opts, &ld, &size, &max);
	if (r)
		return r;
	h = calloc(1, sizeof(*h));
	if (!h) {
		shmk__image_release(&ld);
		return -ENOMEM;
	}
	h->be = be;
	h->schema = opts->schema;
	h->flags = flags;
	h->create_mode = opts->mode ? opts->mode : 0600;
	h->rdonly = flags & SHMK_RDONLY;
	h->page_size = ps;
	strcpy(h->name, name);
	if (opts->client_name)
		strcpy(h->client_name, opts->client_name);

	/* Before creating anything, then again once attached (races). */
	r = name_free_elsewhere(be, name);
	if (r) {
		free(h);
		return r;
	}
	for (uint64_t stale_until = 0;;) {
		bool make, claimed = false;

		created = false;
		h->origin = 0;
		r = be->attach(h, name, flags, opts, size, max, &created);
		if (r) {
			shmk__image_release(&ld);
			free(h);
			return r;
		}
		h->hdr = (struct shmk_hdr *)h->base;
		h->log = (struct shmk_log_entry *)(h->base + SHMK_LOG_OFF);
		named = !created || !be->publish;
		/*
		 * A backend that names a segment before it is whole: whoever
		 * initializes it holds init_lock (init_claim()).
		 */
		if (created && !be->publish) {
			r = init_claim(h);
			claimed = !r;
			/*
			 * Taken over by an opener that judged us dead: wait,
			 * as an opener does; with SHMK_EXCL the segment is not
			 * the one we asked for.
			 */
			if (r == 1 || r == -EBUSY)
				r = (flags & SHMK_EXCL) ? -EEXIST : 0;
			/*
			 * Not ours but for a claim: a thread that cannot take
			 * the lock writes nothing and unlinks nothing (the
			 * segment may be another's already), and leaves it
			 * to be taken over.
			 */
			created = claimed;
		}
		make = created;
		if (!r && !make) {
			r = validate_segment(h);
			if (r == 1) {
				/* Its creator died half way: ours to make. */
				make = claimed = true;
				/* Made by another tool, perhaps: room for a heap. */
				r = be->size(h) < MIN_SIZE ?
				    be->resize(h, MIN_SIZE) : 0;
			}
			/* Given up by its creator: look the name up again. */
			if (r == -ESTALE && !stale_until)
				stale_until = shmk__clock_ns(CLOCK_MONOTONIC) +
					      READY_TIMEOUT_NS;
			if (r == -ESTALE &&
			    shmk__clock_ns(CLOCK_MONOTONIC) < stale_until) {
				be->detach(h);
				memset(&h->m, 0, sizeof(h->m));
				nanosleep(&(struct timespec){ 0, 10000000 },
					  NULL);
				continue;
			}
			if (r == -ESTALE)
				r = -ETIMEDOUT;
		}
		if (!r && make && ld.fd >= 0) {
			/* A taker's image may need more than the dead made. */
			if (claimed && be->size(h) < size)
				r = size <= h->map_size ? be->resize(h, size)
							: -EFBIG;
			if (!r)
				r = shmk__image_load(h, &ld);
			shmk__image_release(&ld);
			h->origin = r ? 0 : SHMK_ORIGIN_IMAGE;
			if (r && !(flags & SHMK_IMAGE_ONLY) && claimed) {
				/* Damaged data: start again, empty, here. */
				r = init_segment(h, be->size(h));
			} else if (r && !(flags & SHMK_IMAGE_ONLY)) {
				/* Damaged data: start again, empty. */
				be->detach(h);
				if (named)
					be->unlink(name);
				memset(&h->m, 0, sizeof(h->m));
				shmk__image_open_prep(be, 0, opts, &ld, &size,
						      &max);
				continue;
			}
		} else {
			shmk__image_release(&ld);
			if (!r && make)
				r = init_segment(h, claimed ? be->size(h) : size);
		}
		if (claimed && r && created) {
			/*
			 * A creator that fails unlinks what it made, as on the
			 * other backends, and first tells those who wait on it
			 * to look the name up again rather than take over a
			 * segment that is losing its name; it holds the lock
			 * until the name is gone.
			 */
			__atomic_store_n(&h->hdr->magic, SHMK_HDR_DEAD,
					 __ATOMIC_RELEASE);
			be->unlink(name);
			created = false;	/* unlinked already */
		} else if (claimed && !r && !created) {
			/* Taken over: made here, but never unlinked here. */
			h->origin = h->origin ? h->origin : SHMK_ORIGIN_CREATED;
		}
		if (claimed)
			init_release(h);
		if (r || named)
			break;
		/* Whole: only now does the name lead to it. */
		r = be->publish(h);
		named = !r;
		if (r != -EEXIST || (flags & SHMK_EXCL))
			break;
		/*
		 * Another creator was first: open theirs, or, should it be
		 * gone by then, create again, from the image again.
		 */
		r = shmk__image_open_prep(be, flags, opts, &ld, &size, &max);
		if (r)
			break;
		be->detach(h);
		memset(&h->m, 0, sizeof(h->m));
	}
	/*
	 * Two openers on different backends racing for one name both saw
	 * it free above; each checks again now that its own segment is
	 * named, so at least one of them sees the other and backs off
	 * (undoing its creation). Both may: each then fails, and a retry
	 * finds one segment or none.
	 */
	if (!r && named)
		r = name_free_elsewhere(be, name);
	if (!r && !h->origin)
		h->origin = created ? SHMK_ORIGIN_CREATED : SHMK_ORIGIN_ATTACHED;
	if (!r)
		r = be->attached(h);
	if (!r && !h->rdonly && !created) {
		/* Recover now from a writer that died holding the lock. */
		r = shmk__lock(h);
		if (!r)
			shmk__unlock(h);
	}
	if (r) {
		be->detach(h);
		if (created && named)
			be->unlink(name);
		free(h);
		return r;
	}
	*out = h;
	return 0;
}

/*
 * The nsfs inode number of this process's namespace @kind ("pid", "time"),
 * which names the namespace on this machine; 0 when /proc cannot tell.
 */
uint32_t shmk__ns_ino(const char *kind)
{
	char path[32];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	if (stat(path, &st))
		return 0;
	return (uint32_t)st.st_ino;
}

int shmk_close(struct shmk *h)
{
	SHMK_KEEP_ERRNO;

	if (!h)
		return -EINVAL;
	/*
	 * A receiver queue holds a robust lock in the segment, linked into
	 * its thread's robust list: unmapping it would leave the list
	 * pointing into nothing (the next rlock that the thread takes or
	 * gives back writes there).
	 */
	if (__atomic_load_n(&h->recv_queues, __ATOMIC_ACQUIRE))
		return -EBUSY;
	h->be->detach(h);
	free(h);
	return 0;
}

int shmk_unlink(const char *name)
{
	SHMK_KEEP_ERRNO;
	const struct shmk_backend *be;
	int r = check_name(name);

	if (r)
		return r;
	be = pick_backend(NULL);
	if (!be)
		return -EINVAL;
	r = be->unlink(name);
	/* A name means one segment, on whichever backend holds it. */
	if ((r == -ENOENT || r == -ENODEV) && other_backend(be)) {
		int r2 = other_backend(be)->unlink(name);

		if (r2 != -ENOENT && r2 != -ENODEV)
			r = r2;
	}
	return r;
}

void *shmk_base(const struct shmk *h)
{
	if (!h)
		return shmk__fail_ptr(-EINVAL);
	return h->base;
}

size_t shmk_size(const struct shmk *h)
{
	return h ? h->be->size(h) : 0;
}

size_t shmk_max_size(const struct shmk *h)
{
	return h ? h->map_size : 0;
}

const char *shmk_backend(const struct shmk *h)
{
	if (!h)
		return shmk__fail_ptr(-EINVAL);
	return h->be->name;
}

int shmk_at_common_base(const struct shmk *h)
{
	return h ? h->at_common_base : -EINVAL;
}

int shmk_origin(const struct shmk *h)
{
	return h ? h->origin : -EINVAL;
}

uint64_t shmk_off(const struct shmk *h, const void *ptr)
{
	const uint8_t *p = ptr;

	if (!h || !p || p < h->base || p >= h->base + h->map_size)
		return 0;
	return (uint64_t)(p - h->base);
}

void *shmk_ptr(const struct shmk *h, uint64_t off)
{
	if (!h || !off || off >= h->map_size)
		return shmk__fail_ptr(-EINVAL);
	return h->base + off;
}

int shmk_clients(struct shmk *h, struct shmk_client *out, size_t max)
{
	SHMK_KEEP_ERRNO;

	if (!h || (!out && max))
		return -EINVAL;
	return h->be->clients(h, out, max);
}

int shmk_client_pid(struct shmk *h, const char *client_name)
{
	SHMK_KEEP_ERRNO;

	if (!h || !client_name || !*client_name ||
	    check_client_name(client_name))
		return -EINVAL;
	return h->be->client_pid(h, client_name);
}
