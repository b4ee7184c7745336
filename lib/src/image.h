/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Segment images (image.c): the on-disk format, shared by shmk_save(), the
 * loader in shmk_open(), shmk_image_check() and the file backend
 * (segment_file.c). Documentation/userspace-api/libshmk.rst describes every
 * field.
 *
 *   0          struct shmk_image_hdr, zero-padded to data_off
 *   data_off   the segment from its offset 0: its header page (the lock and
 *              the sequence counters zeroed), the rest of the first
 *              SHMK_HEAP_START bytes (zeros in a saved image; the undo log
 *              and the client registry in a file backend's file), then the
 *              heap [SHMK_HEAP_START, heap_end)
 *
 * All integers are in the saver's byte order (byte_order says which); the
 * segment stores offsets only, so the image maps or loads at any base.
 */
#ifndef SHMK_IMAGE_H
#define SHMK_IMAGE_H

#include <stdlib.h>

#include "internal.h"

#define SHMK_IMG_MAGIC		"SHMKIMG\0"
#define SHMK_IMG_BYTE_ORDER	0x0102030405060708ULL
#define SHMK_IMG_VERSION	1u
#define SHMK_IMG_COMPLETE	0x4554454c504d4f43ULL	/* "COMPLETE" */
#define SHMK_IMG_META_LEN	SHMK_LOG_OFF	/* the segment header page */
/* The segment's magic while an image loads into it (see shmk__wait_ready). */
#define SHMK_HDR_LOADING	0x474e4944414f4c53ULL	/* "SLOADING" */

/* flags */
#define SHMK_IMG_F_LIVE		1u	/* a file backend's file, attached */

/* The layout fingerprint's facts, in this order (image.c). */
#define SHMK_IMG_NFACTS		28u

struct shmk_image_hdr {
	char magic[8];			/* SHMK_IMG_MAGIC */
	uint64_t byte_order;		/* SHMK_IMG_BYTE_ORDER */
	uint32_t version;		/* SHMK_IMG_VERSION */
	uint32_t hdr_size;		/* sizeof(struct shmk_image_hdr) */
	uint32_t page_size;
	uint32_t flags;			/* SHMK_IMG_F_* */
	uint32_t lib_major, lib_minor, lib_patch;
	uint32_t nfacts;		/* SHMK_IMG_NFACTS */
	uint64_t schema;		/* the application's */
	uint32_t fingerprint;		/* CRC32C of facts[] */
	uint32_t facts[SHMK_IMG_NFACTS];
	uint32_t pad0;
	/* Sizes, in bytes */
	uint64_t data_off;		/* the segment's offset in the file */
	uint64_t file_size;		/* data_off + heap_end at the save */
	uint64_t seg_size;		/* active size */
	uint64_t max_size;		/* reservation */
	uint64_t meta_len;		/* SHMK_IMG_META_LEN */
	uint64_t heap_start;		/* SHMK_HEAP_START */
	uint64_t heap_end;
	uint64_t dir_table;		/* the directory's slot array ... */
	uint64_t dir_len;		/* ... and its length */
	/* Informational */
	uint64_t named_objects;
	uint64_t live_allocs;
	uint64_t used_bytes;
	uint64_t save_time_ns;		/* CLOCK_REALTIME */
	char seg_name[64];		/* the segment saved */
	uint8_t boot_id[16];		/* file backend: the boot attached in */
	/* Checksums (CRC32C) */
	uint32_t crc_meta;		/* the header page, sanitized */
	uint32_t crc_dir;		/* [dir_table, dir_table + dir_len) */
	uint32_t crc_data;		/* [heap_start, heap_end) */
	uint32_t crc_hdr;		/* this struct, crc_hdr and complete 0 */
	uint64_t complete;		/* SHMK_IMG_COMPLETE, written last */
	uint64_t reserved[16];		/* zero */
};

_Static_assert(sizeof(struct shmk_image_hdr) == 512, "image header");

/* crc32c.c */
uint32_t shmk__crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t shmk__crc32c_soft(uint32_t crc, const void *buf, size_t len);

/* image.c */
struct shmk_img_load {
	int fd;
	struct shmk_image_hdr ih;
	uint8_t *meta;			/* SHMK_IMG_META_LEN bytes, checked */
	uint64_t orig_size, orig_max;	/* shmk_open()'s, without the image */
};

extern const struct shmk_backend shmk__backend_file;

/*
 * shmk_open(): with SHMK_CREATE and opts.image, check the image and take
 * the segment's sizes from it; an error only with SHMK_IMAGE_ONLY. Called
 * again with @flags 0 after a failed load: back to the sizes without it.
 */
int shmk__image_open_prep(const struct shmk_backend *be, int flags,
			  const struct shmk_opts *opts,
			  struct shmk_img_load *ld, uint64_t *size,
			  uint64_t *max);

/* Checks of the header and of the small regions; the data's CRC is left. */
int shmk__image_prepare(const char *path, uint64_t schema,
			struct shmk_img_load *ld, char *why, size_t len);
/* Load into h (created, not yet visible): the data, then the header. */
int shmk__image_load(struct shmk *h, struct shmk_img_load *ld);
void shmk__image_release(struct shmk_img_load *ld);
/* Every check, CRCs included, of an open image; @live_ok: file backend. */
int shmk__image_verify_fd(int fd, uint64_t schema, bool live_ok, char *why,
			  size_t len);
/* segment_file.c: durable now (@last: the last client, leaving). */
int shmk__file_sync(struct shmk *h, bool last);
/* Header checks for the file backend (no data CRC unless @full). */
void shmk__image_fill(const struct shmk *h, struct shmk_image_hdr *ih,
		      uint64_t schema, uint64_t data_off);
void shmk__image_sanitize(uint8_t *meta);
int shmk__image_check_hdr(const struct shmk_image_hdr *ih, uint64_t fsize,
			  uint64_t schema, bool live_ok, char *why,
			  size_t len);
uint32_t shmk__image_hdr_crc(const struct shmk_image_hdr *ih);

#endif /* SHMK_IMAGE_H */
