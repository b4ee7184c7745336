/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The file backend: the segment is an image file (image.h), mapped
 * MAP_SHARED from its data_off by every process, so the page cache is the
 * shared memory: nothing is copied at open, pages come in on first touch.
 * Chosen with opts.backend = "file" or SHMK_BACKEND=file; the file is
 * opts.image, else $SHMK_FILE_DIR/shmk.NAME (default directory /var/tmp).
 *
 * It is the posix backend on another file: growth by ftruncate, the client
 * registry in the segment (the posix backend's functions serve it). What
 * differs:
 *
 *  - who is first: every attached process holds a shared flock(2) on the
 *    file; an opener that gets it exclusive is alone, and starts a session:
 *    it checks the image header (and, after a system crash, every CRC),
 *    initializes the lock, empties the registry, marks the header LIVE with
 *    this boot's id (durably) and only then shares the lock;
 *  - durability: shmk_sync() and the last close write the data (msync),
 *    then the header with fresh CRCs (the last close clears LIVE), and
 *    fsync. A file that is LIVE from an earlier boot was not closed: its
 *    CRCs say whether it still is as of its last shmk_sync(); if not, the
 *    open fails with -EBADMSG. A LIVE file from this boot was left by
 *    crashed processes: the page cache is whole, and the usual recovery
 *    (the undo log) runs.
 *
 * A new file is created unnamed (O_TMPFILE) in the target's directory and
 * linked once initialized, as the posix backend does in /dev/shm.
 */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"

#define FILE_PREFIX	"shmk."
#define FILE_DIR	"/var/tmp"

static int default_path(char *buf, size_t n, const char *name)
{
	const char *dir = getenv("SHMK_FILE_DIR");

	if (!dir || !*dir)
		dir = FILE_DIR;
	return (size_t)snprintf(buf, n, "%s/" FILE_PREFIX "%s", dir, name) >= n
	       ? -ENAMETOOLONG : 0;
}

static void boot_id(uint8_t id[16])
{
	char buf[64];
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	unsigned int k = 0;

	if (fd >= 0)
		close(fd);
	memset(id, 0, 16);
	for (ssize_t i = 0; i < n && k < 32; i++) {
		int c = buf[i], v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			continue;
		id[k / 2] |= (uint8_t)(k & 1 ? v : v << 4);
		k++;
	}
}

static int full_io(int fd, void *buf, size_t n, uint64_t off, bool wr)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = wr ? pwrite(fd, p, n, (off_t)off)
			       : pread(fd, p, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ENODATA;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/*
 * Write the image header from the segment as it is now (the caller holds
 * the segment lock or is alone), with every CRC, then fsync. @live: keep
 * the file marked attached.
 */
static int write_header(struct shmk *h, bool live)
{
	struct shmk_image_hdr ih;
	uint8_t *meta = aligned_alloc(64, SHMK_IMG_META_LEN);
	int r;

	if (!meta)
		return -ENOMEM;
	shmk__image_fill(h, &ih, h->schema, h->page_size);
	memcpy(meta, h->base, SHMK_IMG_META_LEN);
	shmk__image_sanitize(meta);
	ih.crc_meta = shmk__crc32c(0, meta, SHMK_IMG_META_LEN);
	free(meta);
	ih.crc_dir = shmk__crc32c(0, h->base + ih.dir_table, ih.dir_len);
	ih.crc_data = shmk__crc32c(0, h->base + ih.heap_start,
				   ih.heap_end - ih.heap_start);
	if (live) {
		ih.flags |= SHMK_IMG_F_LIVE;
		boot_id(ih.boot_id);
	}
	ih.complete = SHMK_IMG_COMPLETE;
	ih.crc_hdr = shmk__image_hdr_crc(&ih);
	if (msync(h->base, ih.heap_end, MS_SYNC))
		return -errno;
	r = full_io(h->m.fd, &ih, sizeof(ih), 0, true);
	if (!r && fsync(h->m.fd))
		r = -errno;
	return r;
}

/* Mark the header LIVE (this boot) without touching anything else. */
static int mark_live(int fd, struct shmk_image_hdr *ih)
{
	ih->flags |= SHMK_IMG_F_LIVE;
	boot_id(ih->boot_id);
	ih->crc_hdr = shmk__image_hdr_crc(ih);
	if (full_io(fd, ih, sizeof(*ih), 0, true))
		return -errno;
	return fdatasync(fd) ? -errno : 0;
}

/*
 * Checks of an existing file before mapping it: its header; when @alone
 * and the file was LIVE in an earlier boot, every CRC as well.
 */
static int check_existing(int fd, const struct shmk_opts *opts, bool alone,
			  struct shmk_image_hdr *ih)
{
	uint8_t id[16];
	struct stat st;
	int r;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size < sizeof(*ih))
		return -ENODATA;
	r = full_io(fd, ih, sizeof(*ih), 0, false);
	if (r)
		return r;
	r = shmk__image_check_hdr(ih, (uint64_t)st.st_size, opts->schema, true,
				  NULL, 0);
	if (r || !alone || !(ih->flags & SHMK_IMG_F_LIVE))
		return r;
	boot_id(id);
	if (!memcmp(id, ih->boot_id, 16))
		return 0;	/* processes died: the page cache is whole */
	/* Not closed before the system went down: as of a sync, or torn. */
	return shmk__image_verify_fd(fd, opts->schema, true, NULL, 0);
}

static int map_file(struct shmk *h, int fd, uint64_t max, uint64_t hint,
		    bool rdonly)
{
	bool at = false;
	void *base = shmk__map_at((void *)(uintptr_t)hint, max,
				  rdonly ? PROT_READ : PROT_READ | PROT_WRITE,
				  0, fd, (off_t)h->page_size, &at);

	if (base == MAP_FAILED)
		return -errno;
	madvise(base, max, MADV_DONTFORK);
	h->base = base;
	h->map_size = max;
	h->at_common_base = at || !hint;
	h->m.slot = -1;
	h->m.reg = rdonly ? NULL : (struct shmk_registry *)(h->base +
							    SHMK_REG_OFF);
	return 0;
}

static int file_create(struct shmk *h, const char *path, mode_t mode,
		       size_t size, size_t max)
{
	char dirbuf[PATH_MAX];
	int fd, r;

	if (strlen(path) >= sizeof(dirbuf))
		return -ENAMETOOLONG;
	strcpy(dirbuf, path);
	fd = open(dirname(dirbuf), O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	h->m.unnamed = fd >= 0;
	if (fd < 0)
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) || flock(fd, LOCK_SH) ||
	    ftruncate(fd, (off_t)(h->page_size + size))) {
		r = -errno;
		goto fail;
	}
	r = map_file(h, fd, max, 0, false);
	if (r)
		goto fail;
	h->m.fd = fd;
	return 0;
fail:
	close(fd);
	if (!h->m.unnamed)
		unlink(path);
	return r;
}

/* Start a session on a file nobody has attached: see the top. */
static int start_session(struct shmk *h, struct shmk_image_hdr *ih)
{
	struct shmk_hdr *hd = h->hdr;
	struct stat st;
	int r;

	if (fstat(h->m.fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < h->page_size + hd->seg_size &&
	    ftruncate(h->m.fd, (off_t)(h->page_size + hd->seg_size)))
		return -errno;
	if (hd->magic != SHMK_HDR_MAGIC)
		return -EUCLEAN;
	r = shmk__init_lock(h);
	if (r)
		return r;
	hd->seq &= ~1ULL;
	hd->dir_seq &= ~1ULL;
	hd->base_addr = (uintptr_t)h->base;
	memset(h->base + SHMK_REG_OFF, 0, SHMK_REG_SIZE);
	shmk__queue_new_session(h);
	return mark_live(h->m.fd, ih);
}

static int attach_path(struct shmk *h, const char *name, int flags,
		       const struct shmk_opts *opts, size_t size,
		       size_t max_size, bool *created)
{
	mode_t mode = opts->mode ? opts->mode : 0600;
	bool rdonly = flags & SHMK_RDONLY, alone;
	char pbuf[PATH_MAX];
	const char *path = opts->image;
	struct shmk_image_hdr ih;
	struct shmk_hdr shdr;
	int fd, r;

	if (!path) {
		r = default_path(pbuf, sizeof(pbuf), name);
		if (r)
			return r;
		path = pbuf;
	}
	if (!h->file_path) {
		h->file_path = strdup(path);
		if (!h->file_path)
			return -ENOMEM;
	}
	for (int tries = 0;; tries++) {
		fd = open(path, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && (flags & SHMK_CREATE)) {
			r = file_create(h, path, mode, size, max_size);
			if (r == -EEXIST && !(flags & SHMK_EXCL))
				continue;
			*created = !r;
			return r;
		}
		if (fd < 0)
			return -errno;
		if ((flags & SHMK_EXCL)) {
			close(fd);
			return -EEXIST;
		}
		alone = !flock(fd, LOCK_EX | LOCK_NB);
		if (!alone && flock(fd, LOCK_SH)) {
			r = -errno;
			goto fail;
		}
		r = check_existing(fd, opts, alone && !rdonly, &ih);
		if (r)
			goto fail;
		/* Shared, yet not LIVE: its last client just closed it. */
		if (!alone && !(ih.flags & SHMK_IMG_F_LIVE) && tries < 100) {
			close(fd);
			continue;
		}
		break;
	}
	r = full_io(fd, &shdr, sizeof(shdr), h->page_size, false);
	if (r)
		goto fail;
	if (shdr.max_size < shdr.seg_size || shdr.max_size > (1ULL << 46) ||
	    shdr.max_size % h->page_size || shdr.seg_size < SHMK_HEAP_START) {
		r = -EUCLEAN;
		goto fail;
	}
	r = map_file(h, fd, shdr.max_size, alone ? 0 : shdr.base_addr, rdonly);
	if (r)
		goto fail;
	h->m.fd = fd;
	h->hdr = (struct shmk_hdr *)h->base;
	if (alone && !rdonly) {
		r = start_session(h, &ih);
		if (r) {
			munmap(h->base, h->map_size);
			goto fail;
		}
		h->origin = SHMK_ORIGIN_IMAGE;
		flock(fd, LOCK_SH);	/* from exclusive */
	} else if (alone) {
		h->origin = SHMK_ORIGIN_IMAGE;
		flock(fd, LOCK_SH);
	}
	return 0;
fail:
	close(fd);
	return r;
}

static int file_attach(struct shmk *h, const char *name, int flags,
		       const struct shmk_opts *opts, size_t size,
		       size_t max_size, bool *created)
{
	int r = attach_path(h, name, flags, opts, size, max_size, created);

	if (r) {
		free(h->file_path);
		h->file_path = NULL;
	}
	return r;
}

/* Link the file created unnamed under its path, now that it is whole. */
static int file_publish(struct shmk *h)
{
	char self[64];
	int r = write_header(h, true);

	if (r)
		return r;
	if (!h->m.unnamed)
		return 0;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", h->m.fd);
	if (linkat(AT_FDCWD, self, AT_FDCWD, h->file_path, AT_SYMLINK_FOLLOW) &&
	    linkat(h->m.fd, "", AT_FDCWD, h->file_path, AT_EMPTY_PATH))
		return -errno;
	h->m.unnamed = false;
	return 0;
}

static int file_attached(struct shmk *h)
{
	return shmk__backend_memfd.attached(h);
}

static int file_clients(struct shmk *h, struct shmk_client *out, size_t max)
{
	return shmk__backend_memfd.clients(h, out, max);
}

static int file_client_pid(struct shmk *h, const char *client_name)
{
	return shmk__backend_memfd.client_pid(h, client_name);
}

/* Durable: the data, then the header with fresh CRCs. */
int shmk__file_sync(struct shmk *h, bool last)
{
	int r = shmk__lock(h);

	if (r)
		return r;
	r = write_header(h, !last);
	shmk__unlock(h);
	return r;
}

static void file_detach(struct shmk *h)
{
	if (!h->rdonly && !h->m.unnamed && h->hdr &&
	    READ_ONCE(h->hdr->magic) == SHMK_HDR_MAGIC) {
		/* The last one out (exclusive now) clears LIVE. */
		bool last = !flock(h->m.fd, LOCK_EX | LOCK_NB);

		shmk__file_sync(h, last);
	}
	shmk__backend_memfd.detach(h);
	free(h->file_path);
	h->file_path = NULL;
}

static int file_resize(struct shmk *h, uint64_t size)
{
	uint64_t want = h->page_size + size;
	struct stat st;

	if (fstat(h->m.fd, &st))
		return -errno;
	if (want > (uint64_t)st.st_size)
		return ftruncate(h->m.fd, (off_t)want) ? -errno : 0;
	if (want < (uint64_t)st.st_size &&
	    size <= READ_ONCE(h->hdr->heap_end) &&
	    fallocate(h->m.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)want, (off_t)((uint64_t)st.st_size - want)))
		return -errno;
	return 0;
}

static uint64_t file_size(const struct shmk *h)
{
	return __atomic_load_n(&h->hdr->seg_size, __ATOMIC_ACQUIRE);
}

static uint64_t file_backing_size(const struct shmk *h)
{
	struct stat st;

	if (fstat(h->m.fd, &st) || (uint64_t)st.st_size < h->page_size)
		return 0;
	return (uint64_t)st.st_size - h->page_size;
}

static bool file_available(void)
{
	return true;
}

static int file_unlink(const char *name)
{
	char path[PATH_MAX];
	int r = default_path(path, sizeof(path), name);

	if (r)
		return r;
	return unlink(path) ? -errno : 0;
}

int shmk_sync(struct shmk *h)
{
	SHMK_KEEP_ERRNO;

	if (!h)
		return -EINVAL;
	if (h->be != &shmk__backend_file)
		return -EOPNOTSUPP;
	if (h->rdonly)
		return -EPERM;
	return shmk__file_sync(h, false);
}

const struct shmk_backend shmk__backend_file = {
	.name = "file",
	.available = file_available,
	.attach = file_attach,
	.publish = file_publish,
	.attached = file_attached,
	.detach = file_detach,
	.resize = file_resize,
	.size = file_size,
	.backing_size = file_backing_size,
	.clients = file_clients,
	.client_pid = file_client_pid,
	.unlink = file_unlink,
};
