/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Segment images: shmk_save(), shmk_image_check(), and the loader that
 * shmk_open() runs when it creates a segment with opts.image set. The
 * format is in image.h; Documentation/userspace-api/libshmk.rst describes
 * it field by field.
 *
 * Save: under the segment lock (a read-only client: under the metadata
 * sequence count, retried), into an unnamed file in the target's directory
 * (O_TMPFILE; a mkstemp() name where the file system has none): the
 * segment's header page with the lock and the sequence counters zeroed,
 * the heap straight from the mapping, then the image header with the
 * CRC32C of each region; fsync; the "complete" word; fsync; a name; rename
 * over the target; fsync of the directory. A saver killed at any point
 * leaves the previous image as it was.
 *
 * Load: every check but the data's CRC first (header, fingerprint, schema,
 * sizes, the header page's and the directory's CRC), then the data is read
 * with pread() straight into the new segment's pages, its CRC computed
 * chunk by chunk while the chunk is in cache, then the header page, then
 * the magic (release): other processes see nothing or the whole segment.
 */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "directory.h"
#include "image.h"
#include "tx.h"

#define IO_CHUNK	(4ULL << 20)
/*
 * Loading: each chunk's CRC is computed right after pread() copied it in,
 * while its lines and its pages' TLB entries are still there.
 */
#define LOAD_CHUNK	(256ULL << 10)
#define SIZE_LIMIT	(1ULL << 43)

_Static_assert(sizeof(struct shmk_hdr) <= SHMK_IMG_META_LEN, "meta page");
#if UINTPTR_MAX == UINT64_MAX
/* opts.image and opts.schema came out of reserved[4]: same size and ABI. */
_Static_assert(sizeof(struct shmk_opts) == 72 &&
	       offsetof(struct shmk_opts, backend) == 32 &&
	       offsetof(struct shmk_opts, image) == 40 &&
	       offsetof(struct shmk_opts, schema) == 48 &&
	       offsetof(struct shmk_opts, reserved) == 56, "shmk_opts ABI");
#endif

/* ---- messages ------------------------------------------------------------ */

static int why_set(char *why, size_t len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int why_set(char *why, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* ---- the layout fingerprint ---------------------------------------------- */

/* The lock's kind: an rlock (rlock.h); 1 was pthread's robust mutex. */
#define LOCK_KIND_SHMK_RLOCK		2u

static const char *const fact_names[SHMK_IMG_NFACTS] = {
	"the pointer size", "the segment layout version",
	"sizeof(struct shmk_hdr)", "alignof(struct shmk_hdr)",
	"the offset of the lock", "the offset of the sequence count",
	"sizeof(struct shmk_run)", "alignof(struct shmk_run)",
	"sizeof(struct shmk_pub_stats)", "alignof(struct shmk_pub_stats)",
	"sizeof(struct shmk_log_entry)", "sizeof(struct shmk_reg_slot)",
	"sizeof(struct shmk_registry)", "the directory's bytes per slot",
	"sizeof(struct shmk_dir_entry)", "alignof(struct shmk_dir_entry)",
	"the lock's type", "sizeof the lock", "alignof the lock",
	"the undo log's offset", "the registry's offset",
	"the heap's start", "the block alignment", "the number of bins",
	"the number of small classes", "the largest small request",
	"the run chunk size", "the undo log's capacity",
};

static void layout_facts(uint32_t f[SHMK_IMG_NFACTS])
{
	uint32_t v[SHMK_IMG_NFACTS] = {
		sizeof(void *), SHMK_LAYOUT_VERSION,
		sizeof(struct shmk_hdr), _Alignof(struct shmk_hdr),
		offsetof(struct shmk_hdr, lock), offsetof(struct shmk_hdr, seq),
		sizeof(struct shmk_run), _Alignof(struct shmk_run),
		sizeof(struct shmk_pub_stats), _Alignof(struct shmk_pub_stats),
		sizeof(struct shmk_log_entry), sizeof(struct shmk_reg_slot),
		sizeof(struct shmk_registry), DIR_SLOT_BYTES,
		sizeof(struct shmk_dir_entry), _Alignof(struct shmk_dir_entry),
		LOCK_KIND_SHMK_RLOCK, sizeof(struct shmk_rlock),
		_Alignof(struct shmk_rlock),
		SHMK_LOG_OFF, SHMK_REG_OFF, SHMK_HEAP_START, BLK_ALIGN,
		SHMK_NBINS, SHMK_NCLASSES, SMALL_MAX, RUN_CHUNK, SHMK_LOG_CAP,
	};

	memcpy(f, v, sizeof(v));
}

/* ---- the header ---------------------------------------------------------- */

uint32_t shmk__image_hdr_crc(const struct shmk_image_hdr *ih)
{
	struct shmk_image_hdr c = *ih;

	c.crc_hdr = 0;
	c.complete = 0;
	return shmk__crc32c(0, &c, sizeof(c));
}

/* Zero what is this session's, not the segment's: lock, counters, base. */
void shmk__image_sanitize(uint8_t *meta)
{
	struct shmk_hdr *hd = (struct shmk_hdr *)meta;

	memset(&hd->lock, 0, sizeof(hd->lock));
	/* The last initializer's links (addresses of its thread). */
	memset(&hd->init_lock, 0, sizeof(hd->init_lock));
	hd->seq = 0;
	hd->dir_seq = 0;
	hd->base_addr = 0;
	hd->recoveries &= ~1ULL;
}

void shmk__image_fill(const struct shmk *h, struct shmk_image_hdr *ih,
		      uint64_t schema, uint64_t data_off)
{
	const struct shmk_hdr *hd = h->hdr;
	struct shmk_stats st;

	memset(ih, 0, sizeof(*ih));
	memcpy(ih->magic, SHMK_IMG_MAGIC, sizeof(ih->magic));
	ih->byte_order = SHMK_IMG_BYTE_ORDER;
	ih->version = SHMK_IMG_VERSION;
	ih->hdr_size = sizeof(*ih);
	ih->page_size = (uint32_t)h->page_size;
	ih->lib_major = SHMK_VERSION_MAJOR;
	ih->lib_minor = SHMK_VERSION_MINOR;
	ih->lib_patch = SHMK_VERSION_PATCH;
	ih->nfacts = SHMK_IMG_NFACTS;
	ih->schema = schema;
	layout_facts(ih->facts);
	ih->fingerprint = shmk__crc32c(0, ih->facts, sizeof(ih->facts));
	ih->data_off = data_off;
	ih->seg_size = READ_ONCE(hd->seg_size);
	ih->max_size = h->map_size;
	ih->meta_len = SHMK_IMG_META_LEN;
	ih->heap_start = SHMK_HEAP_START;
	ih->heap_end = READ_ONCE(hd->heap_end);
	ih->file_size = data_off + ih->heap_end;
	ih->dir_table = READ_ONCE(hd->dir_table);
	ih->dir_len = READ_ONCE(hd->dir_cap) * DIR_SLOT_BYTES;
	if (!shmk_stats((struct shmk *)h, &st)) {
		ih->named_objects = st.named_objects;
		ih->used_bytes = st.used_bytes;
		ih->live_allocs = st.live_allocs;
	}
	ih->save_time_ns = shmk__clock_ns(CLOCK_REALTIME);
	memcpy(ih->seg_name, h->name, sizeof(ih->seg_name) - 1);
}

/*
 * The header's own checks, in the order shmk_image_check(3) lists them.
 * @fsize: the file's size. @live_ok: the file backend opening its file.
 */
int shmk__image_check_hdr(const struct shmk_image_hdr *ih, uint64_t fsize,
			  uint64_t schema, bool live_ok, char *why, size_t len)
{
	uint32_t facts[SHMK_IMG_NFACTS];
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);

	if (memcmp(ih->magic, SHMK_IMG_MAGIC, sizeof(ih->magic)))
		return why_set(why, len, -ENOMSG,
			       "not a shmk image: the magic number is wrong");
	if (ih->byte_order != SHMK_IMG_BYTE_ORDER)
		return why_set(why, len, -ENOEXEC,
			       "the image was written with another byte order");
	if (ih->version != SHMK_IMG_VERSION || ih->hdr_size != sizeof(*ih))
		return why_set(why, len, -EPROTONOSUPPORT,
			       "image format version %u (header %u bytes) is not "
			       "version %u (header %zu bytes), the one this "
			       "library reads", ih->version, ih->hdr_size,
			       SHMK_IMG_VERSION, sizeof(*ih));
	if (ih->crc_hdr != shmk__image_hdr_crc(ih))
		return why_set(why, len, -EBADMSG,
			       "the image header's CRC32C does not match: the "
			       "header is damaged");
	if (ih->flags & SHMK_IMG_F_LIVE && !live_ok)
		return why_set(why, len, -EBUSY,
			       "the file is the segment of the file backend, "
			       "attached or left by a crash: open it with that "
			       "backend");
	if (ih->complete != SHMK_IMG_COMPLETE)
		return why_set(why, len, -EINPROGRESS,
			       "the image is incomplete: its write did not "
			       "finish");
	if (ih->page_size != ps)
		return why_set(why, len, -EOPNOTSUPP,
			       "the image has %u-byte pages, this system %llu",
			       ih->page_size, (unsigned long long)ps);
	layout_facts(facts);
	if (ih->nfacts != SHMK_IMG_NFACTS)
		return why_set(why, len, -EPROTO,
			       "layout fingerprint: %u facts, not %u",
			       ih->nfacts, SHMK_IMG_NFACTS);
	for (unsigned int i = 0; i < SHMK_IMG_NFACTS; i++)
		if (ih->facts[i] != facts[i])
			return why_set(why, len, -EPROTO,
				       "layout fingerprint: %s is %u in the "
				       "image, %u in this library",
				       fact_names[i], ih->facts[i], facts[i]);
	if (ih->fingerprint != shmk__crc32c(0, facts, sizeof(facts)))
		return why_set(why, len, -EPROTO,
			       "layout fingerprint: the checksum of the facts "
			       "differs");
	if (ih->lib_major != SHMK_VERSION_MAJOR)
		return why_set(why, len, -ELIBBAD,
			       "the image was written by libshmk %u.x, this is "
			       "libshmk %d.x", ih->lib_major, SHMK_VERSION_MAJOR);
	if (ih->schema != schema)
		return why_set(why, len, -ESTALE,
			       "application schema %llu in the image, %llu "
			       "expected", (unsigned long long)ih->schema,
			       (unsigned long long)schema);
	if (ih->data_off != ps || ih->meta_len != SHMK_IMG_META_LEN ||
	    ih->heap_start != SHMK_HEAP_START ||
	    ih->heap_end <= ih->heap_start + 16 || ih->heap_end % BLK_ALIGN ||
	    ih->seg_size < ih->heap_end || ih->seg_size % ps ||
	    ih->max_size < ih->seg_size || ih->max_size > SIZE_LIMIT ||
	    ih->max_size % ps || ih->file_size != ih->data_off + ih->heap_end ||
	    ih->dir_table < ih->heap_start || !ih->dir_len ||
	    ih->dir_len > ih->heap_end || ih->dir_table + ih->dir_len >
	    ih->heap_end)
		return why_set(why, len, -EMSGSIZE,
			       "the image's sizes and offsets are inconsistent");
	if (fsize < ih->file_size)
		return why_set(why, len, -EMSGSIZE,
			       "the file is truncated: %llu bytes, its header "
			       "says %llu", (unsigned long long)fsize,
			       (unsigned long long)ih->file_size);
	return 0;
}

/* ---- reading ------------------------------------------------------------- */

static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);

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

static int pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t r = pwrite(fd, p, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* The CRC32C of [off, off + n) of the file, through a bounce buffer. */
static int crc_file(int fd, uint64_t off, uint64_t n, uint32_t *crc)
{
	size_t bl = n < IO_CHUNK ? (size_t)n : IO_CHUNK;
	uint8_t *buf = malloc(bl ? bl : 1);
	uint32_t c = 0;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (n && !r) {
		size_t k = n < bl ? (size_t)n : bl;

		r = pread_full(fd, buf, k, off);
		if (!r)
			c = shmk__crc32c(c, buf, k);
		off += k;
		n -= k;
	}
	free(buf);
	*crc = c;
	return r;
}

/* The segment header page must agree with the image header. */
static int meta_agrees(const struct shmk_image_hdr *ih, const uint8_t *meta)
{
	const struct shmk_hdr *hd = (const void *)meta;

	return hd->magic == SHMK_HDR_MAGIC &&
	       hd->version == SHMK_LAYOUT_VERSION &&
	       hd->hdr_size == SHMK_HEAP_START &&
	       hd->page_size == ih->page_size &&
	       hd->mutex_size == sizeof(struct shmk_rlock) &&
	       hd->log_cap == SHMK_LOG_CAP && hd->reg_slots == SHMK_REG_SLOTS &&
	       hd->heap_start == ih->heap_start &&
	       hd->heap_end == ih->heap_end && hd->seg_size == ih->seg_size &&
	       hd->dir_table == ih->dir_table &&
	       hd->dir_cap * DIR_SLOT_BYTES == ih->dir_len &&
	       hd->tx_state == 0 && hd->unrecoverable == 0;
}

static int open_image(const char *path, struct stat *st, char *why, size_t len)
{
	int fd;

	/* O_NONBLOCK: a FIFO must not block the check. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return why_set(why, len, -errno, "cannot open the image: %s",
			       strerror(errno));
	if (fstat(fd, st)) {
		int e = -errno;

		close(fd);
		return why_set(why, len, e, "cannot stat the image");
	}
	if (S_ISDIR(st->st_mode)) {
		close(fd);
		return why_set(why, len, -EISDIR,
			       "the image path is a directory");
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return why_set(why, len, -EINVAL,
			       "the image is not a regular file");
	}
	fcntl(fd, F_SETFL, 0);
	if (st->st_size == 0) {
		close(fd);
		return why_set(why, len, -ENODATA, "the image file is empty");
	}
	if ((uint64_t)st->st_size < sizeof(struct shmk_image_hdr)) {
		close(fd);
		return why_set(why, len, -ENODATA,
			       "the image file is shorter than an image header");
	}
	return fd;
}

/*
 * Check the open image @fd up to, not including, the data's CRC. On success
 * @ld holds its header and its checked header page (ld->fd is not set).
 */
static int prepare_fd(int fd, uint64_t fsize, uint64_t schema, bool live_ok,
		      struct shmk_img_load *ld, char *why, size_t len)
{
	uint32_t c;
	int r;

	ld->meta = NULL;
	r = pread_full(fd, &ld->ih, sizeof(ld->ih), 0);
	if (r)
		return why_set(why, len, r, "cannot read the image header");
	r = shmk__image_check_hdr(&ld->ih, fsize, schema, live_ok, why, len);
	if (r)
		return r;
	ld->meta = aligned_alloc(64, SHMK_IMG_META_LEN);
	if (!ld->meta)
		return why_set(why, len, -ENOMEM, "out of memory");
	r = pread_full(fd, ld->meta, SHMK_IMG_META_LEN, ld->ih.data_off);
	if (r) {
		why_set(why, len, r, "cannot read the segment header");
		goto fail;
	}
	shmk__image_sanitize(ld->meta);
	if (shmk__crc32c(0, ld->meta, SHMK_IMG_META_LEN) != ld->ih.crc_meta) {
		r = why_set(why, len, -EBADMSG,
			    "the heap metadata's CRC32C does not match: the "
			    "segment header in the image is damaged");
		goto fail;
	}
	if (!meta_agrees(&ld->ih, ld->meta)) {
		r = why_set(why, len, -EBADMSG,
			    "the heap metadata disagrees with the image header");
		goto fail;
	}
	r = crc_file(fd, ld->ih.data_off + ld->ih.dir_table, ld->ih.dir_len,
		     &c);
	if (r) {
		why_set(why, len, r, "cannot read the directory");
		goto fail;
	}
	if (c != ld->ih.crc_dir) {
		r = why_set(why, len, -EBADMSG,
			    "the directory's CRC32C does not match: the "
			    "directory in the image is damaged");
		goto fail;
	}
	return 0;
fail:
	free(ld->meta);
	ld->meta = NULL;
	return r;
}

/* Every check, the data's CRC included, of the open image @fd. */
int shmk__image_verify_fd(int fd, uint64_t schema, bool live_ok, char *why,
			  size_t len)
{
	struct shmk_img_load ld;
	struct stat st;
	uint32_t c;
	int r;

	if (fstat(fd, &st))
		return why_set(why, len, -errno, "cannot stat the image");
	r = prepare_fd(fd, (uint64_t)st.st_size, schema, live_ok, &ld, why,
		       len);
	if (r)
		return r;
	free(ld.meta);
	r = crc_file(fd, ld.ih.data_off + ld.ih.heap_start,
		     ld.ih.heap_end - ld.ih.heap_start, &c);
	if (r)
		return why_set(why, len, r, "cannot read the data");
	if (c != ld.ih.crc_data)
		return why_set(why, len, -EBADMSG,
			       "the data's CRC32C does not match: the heap in "
			       "the image is damaged");
	return 0;
}

/*
 * Open and check @path up to, not including, the data's CRC. On success
 * @ld holds the open file, its header and its checked header page.
 */
int shmk__image_prepare(const char *path, uint64_t schema,
			struct shmk_img_load *ld, char *why, size_t len)
{
	struct stat st;
	int r;

	ld->fd = -1;
	ld->meta = NULL;
	if (!path || !*path)
		return why_set(why, len, -EINVAL, "no image path");
	r = open_image(path, &st, why, len);
	if (r < 0)
		return r;
	ld->fd = r;
	r = prepare_fd(ld->fd, (uint64_t)st.st_size, schema, false, ld, why,
		       len);
	if (r)
		shmk__image_release(ld);
	return r;
}

void shmk__image_release(struct shmk_img_load *ld)
{
	if (ld->fd >= 0)
		close(ld->fd);
	ld->fd = -1;
	free(ld->meta);
	ld->meta = NULL;
}

int shmk_image_check(const char *path, uint64_t schema, char *why, size_t len)
{
	SHMK_KEEP_ERRNO;
	struct stat st;
	int fd, r;

	if (why && len)
		why[0] = '\0';
	if (!path || !*path)
		return why_set(why, len, -EINVAL, "no image path");
	fd = open_image(path, &st, why, len);
	if (fd < 0)
		return fd;
	r = shmk__image_verify_fd(fd, schema, false, why, len);
	close(fd);
	return r;
}

/* ---- loading ------------------------------------------------------------- */

int shmk__image_open_prep(const struct shmk_backend *be, int flags,
			  const struct shmk_opts *opts,
			  struct shmk_img_load *ld, uint64_t *size,
			  uint64_t *max)
{
	uint64_t s, m;
	int r;

	if (ld->orig_size) {
		*size = ld->orig_size;
		*max = ld->orig_max;
		ld->orig_size = 0;
	}
	ld->fd = -1;
	ld->meta = NULL;
	if (!(flags & SHMK_CREATE) || !opts->image || be == &shmk__backend_file)
		return 0;
	r = shmk__image_prepare(opts->image, opts->schema, ld, NULL, 0);
	if (r)
		return flags & SHMK_IMAGE_ONLY ? r : 0;
	s = ld->ih.seg_size;
	m = opts->max_size ? *max : ld->ih.max_size;
	if (m < s) {
		shmk__image_release(ld);
		return flags & SHMK_IMAGE_ONLY ? -EFBIG : 0;
	}
	ld->orig_size = *size;
	ld->orig_max = *max;
	*size = s;
	*max = m;
	return 0;
}

/*
 * The posix backend's segment is a file too: the kernel copies the image
 * into its pages (sendfile(), page cache to page cache), and the
 * CRC is computed over the segment's own file through a small buffer, so
 * that exactly the loaded bytes are verified and the process touches none
 * of the new pages (they map on first use, as any page of a segment).
 * -EOPNOTSUPP when the kernel cannot copy between these files.
 */
static int load_by_copy(struct shmk *h, struct shmk_img_load *ld,
			uint32_t *crc)
{
	const struct shmk_image_hdr *ih = &ld->ih;
	uint64_t off = ih->heap_start, end = ih->heap_end;
	uint8_t *buf;
	uint32_t c = 0;
	int r = 0;

	if (h->be != &shmk__backend_memfd)
		return -EOPNOTSUPP;
	if (lseek(h->m.fd, (off_t)off, SEEK_SET) != (off_t)off)
		return -EOPNOTSUPP;
	while (off < end) {
		off_t in = (off_t)(ih->data_off + off);
		uint64_t k = end - off < (1ULL << 30) ? end - off : 1ULL << 30;
		/* Page cache to page cache; copy_file_range() would refuse
		 * a copy across file system types (EXDEV). */
		ssize_t n = sendfile(h->m.fd, ld->fd, &in, (size_t)k);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && off == ih->heap_start &&
		    (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
			return -EOPNOTSUPP;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		off += (uint64_t)n;
		__atomic_store_n(&h->hdr->tx_arg, off, __ATOMIC_RELEASE);
	}
	buf = malloc(LOAD_CHUNK);
	if (!buf)
		return -ENOMEM;
	for (off = ih->heap_start; off < end && !r;) {
		uint64_t k = end - off < LOAD_CHUNK ? end - off : LOAD_CHUNK;

		r = pread_full(h->m.fd, buf, (size_t)k, off);
		if (!r)
			c = shmk__crc32c(c, buf, (size_t)k);
		off += k;
		SHMK_FAULT_POINT();
	}
	free(buf);
	*crc = c;
	return r;
}

/*
 * Elsewhere (the kernel backend): pread() straight into the mapping, every
 * page faulted in at once first (Linux 5.14), each chunk's CRC computed
 * right after the copy, while the chunk is in cache.
 */
static int load_by_pread(struct shmk *h, struct shmk_img_load *ld,
			 uint32_t *crc)
{
	const struct shmk_image_hdr *ih = &ld->ih;
	uint64_t off = ih->heap_start, end = ih->heap_end;
	uint32_t c = 0;
	int r;

	madvise(h->base + off, end - off, MADV_POPULATE_WRITE);
	while (off < end) {
		uint64_t k = end - off < LOAD_CHUNK ? end - off : LOAD_CHUNK;

		r = pread_full(ld->fd, h->base + off, (size_t)k,
			       ih->data_off + off);
		if (r)
			return r;
		c = shmk__crc32c(c, h->base + off, (size_t)k);
		off += k;
		__atomic_store_n(&h->hdr->tx_arg, off, __ATOMIC_RELEASE);
		SHMK_FAULT_POINT();
	}
	*crc = c;
	return 0;
}

/*
 * Into a segment this process created and nobody else sees complete yet
 * (its magic is not set): the heap straight into its pages, then the
 * header page, then the magic. Attachers of a named segment (the kernel
 * backend) wait on SHMK_HDR_LOADING, and on tx_arg as the progress.
 */
int shmk__image_load(struct shmk *h, struct shmk_img_load *ld)
{
	struct shmk_hdr *hd = h->hdr;
	const struct shmk_image_hdr *ih = &ld->ih;
	const size_t lk = offsetof(struct shmk_hdr, init_lock);
	const size_t lk_end = lk + sizeof(hd->init_lock);
	uint32_t c = 0;
	int r;

	if (ih->seg_size > h->map_size ||
	    ih->heap_end > h->be->backing_size(h))
		return -EFBIG;
	__atomic_store_n(&hd->magic, SHMK_HDR_LOADING, __ATOMIC_RELEASE);
	r = load_by_copy(h, ld, &c);
	if (r == -EOPNOTSUPP)
		r = load_by_pread(h, ld, &c);
	if (r)
		return r;
	if (c != ih->crc_data)
		return -EBADMSG;
	/*
	 * Everything but the magic and the init_lock that the loader holds
	 * (segment.c), then the session's own fields.
	 */
	memcpy(h->base + 8, ld->meta + 8, lk - 8);
	memcpy(h->base + lk_end, ld->meta + lk_end,
	       SHMK_IMG_META_LEN - lk_end);
	hd->max_size = h->map_size;
	hd->base_addr = (uintptr_t)h->base;
	hd->ctime_ns = shmk__clock_ns(CLOCK_REALTIME);
	r = shmk__init_lock(h);
	if (r)
		return r;
	shmk__queue_new_session(h);
	h->free_index_changed = true;
	/* The loaded heap's end, for the largest free block published. */
	if (shmk__heap_bounds(h))
		return -EUCLEAN;
	shmk__stats_publish(h);
	__atomic_store_n(&hd->magic, SHMK_HDR_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

/* ---- saving -------------------------------------------------------------- */

/*
 * Tests: SHMK_IMAGE_KILL_STEP=N makes the saver SIGKILL itself at step N
 * (shmk_save(3) lists them); counted from 1.
 */
static void save_step(int n)
{
	const char *e = getenv("SHMK_IMAGE_KILL_STEP");

	if (e && atoi(e) == n)
		raise(SIGKILL);
}

struct save_ctx {
	int fd;
	struct shmk_image_hdr ih;
	uint8_t *meta;
};

/* Write the segment (data and header page) and fill in the header. */
static int save_body(struct shmk *h, void *arg)
{
	struct save_ctx *s = arg;
	struct shmk_image_hdr *ih = &s->ih;
	uint64_t off, end;
	uint32_t c = 0;
	int r;

	shmk__image_fill(h, ih, ih->schema, ih->data_off);
	end = ih->heap_end;
	/*
	 * Everything read below lies in backed memory: the header's words
	 * were read once into ih, and are checked there.
	 */
	if (end > h->map_size || end <= SHMK_HEAP_START ||
	    ih->dir_len % DIR_SLOT_BYTES ||
	    !dir_table_ok(h, ih->dir_table, ih->dir_len / DIR_SLOT_BYTES,
			  end))
		return -EUCLEAN;
	memcpy(s->meta, h->base, SHMK_IMG_META_LEN);
	shmk__image_sanitize(s->meta);
	ih->crc_meta = shmk__crc32c(0, s->meta, SHMK_IMG_META_LEN);
	ih->crc_dir = shmk__crc32c(0, h->base + ih->dir_table, ih->dir_len);
	if (ftruncate(s->fd, 0) || ftruncate(s->fd, (off_t)ih->file_size))
		return -errno;
	r = pwrite_full(s->fd, s->meta, SHMK_IMG_META_LEN, ih->data_off);
	if (r)
		return r;
	save_step(2);
	for (off = SHMK_HEAP_START; off < end;) {
		uint64_t k = end - off < IO_CHUNK ? end - off : IO_CHUNK;

		c = shmk__crc32c(c, h->base + off, (size_t)k);
		r = pwrite_full(s->fd, h->base + off, (size_t)k,
				ih->data_off + off);
		if (r)
			return r;
		off += k;
		if (off >= SHMK_HEAP_START + k)
			save_step(3);
	}
	ih->crc_data = c;
	return 0;
}

static int save_read_fn(struct shmk *h, void *arg)
{
	return save_body(h, arg);
}

/* An unnamed file in @dir, or a named temporary one (*tmp set). */
static int open_tmp(const char *dir, const char *path, mode_t mode,
		    char *tmp, size_t tmplen)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);

	tmp[0] = '\0';
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	if ((size_t)snprintf(tmp, tmplen, "%s.XXXXXX", path) >= tmplen)
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		tmp[0] = '\0';
		return -errno;
	}
	fchmod(fd, mode);
	return fd;
}

/* Give the unnamed file @fd a temporary name next to @path. */
static int link_tmp(int fd, const char *path, char *tmp, size_t tmplen)
{
	char self[64];

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	for (int i = 0; i < 100; i++) {
		unsigned int rnd = (unsigned int)(shmk__clock_ns(CLOCK_MONOTONIC) ^
						  (uint64_t)getpid() << 16) + i;

		if ((size_t)snprintf(tmp, tmplen, "%s.%08x.tmp", path, rnd) >=
		    tmplen)
			return -ENAMETOOLONG;
		if (!linkat(AT_FDCWD, self, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) ||
		    (errno != EEXIST &&
		     !linkat(fd, "", AT_FDCWD, tmp, AT_EMPTY_PATH)))
			return 0;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) && errno != EINVAL)
		r = -errno;
	close(fd);
	return r;
}

static int save_schema(struct shmk *h, const char *path, uint64_t schema)
{
	char dirbuf[PATH_MAX], tmp[PATH_MAX + 32];
	struct save_ctx s;
	const char *dir;
	bool locked = false;
	int r;

	if (strlen(path) >= sizeof(dirbuf))
		return -ENAMETOOLONG;
	strcpy(dirbuf, path);
	dir = dirname(dirbuf);
	memset(&s, 0, sizeof(s));
	s.ih.schema = schema;
	s.ih.data_off = h->page_size;
	s.meta = aligned_alloc(64, SHMK_IMG_META_LEN);
	if (!s.meta)
		return -ENOMEM;
	save_step(1);
	s.fd = open_tmp(dir, path, 0644, tmp, sizeof(tmp));
	if (s.fd < 0) {
		free(s.meta);
		return s.fd;
	}
	if (h->rdonly) {
		r = shmk__read(h, &h->hdr->seq, save_read_fn, &s);
	} else {
		r = shmk__lock(h);
		locked = !r;
		if (!r)
			r = save_body(h, &s);
	}
	if (locked)
		shmk__unlock(h);
	if (r)
		goto out;
	/* The header, incomplete; durable; then complete; durable. */
	s.ih.complete = 0;
	s.ih.crc_hdr = shmk__image_hdr_crc(&s.ih);
	r = pwrite_full(s.fd, &s.ih, sizeof(s.ih), 0);
	if (r)
		goto out;
	save_step(4);
	if (fsync(s.fd)) {
		r = -errno;
		goto out;
	}
	save_step(5);
	s.ih.complete = SHMK_IMG_COMPLETE;
	r = pwrite_full(s.fd, &s.ih.complete, sizeof(s.ih.complete),
			offsetof(struct shmk_image_hdr, complete));
	if (r)
		goto out;
	save_step(6);
	if (fsync(s.fd)) {
		r = -errno;
		goto out;
	}
	save_step(7);
	if (!tmp[0]) {
		r = link_tmp(s.fd, path, tmp, sizeof(tmp));
		if (r) {
			tmp[0] = '\0';
			goto out;
		}
	}
	save_step(8);
	if (rename(tmp, path)) {
		r = -errno;
		goto out;
	}
	tmp[0] = '\0';
	save_step(9);
	r = fsync_dir(dir);
out:
	if (tmp[0])
		unlink(tmp);
	close(s.fd);
	free(s.meta);
	return r;
}

int shmk_save(struct shmk *h, const char *path)
{
	SHMK_KEEP_ERRNO;

	struct stat a, b;

	if (!h || !path || !*path)
		return -EINVAL;
	/* Not over the file backend's own file: shmk_sync() is for that. */
	if (h->be == &shmk__backend_file && !stat(path, &a) &&
	    !fstat(h->m.fd, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return -EINVAL;
	return save_schema(h, path, h->schema);
}
