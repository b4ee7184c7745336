/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libshmk: a growable shared-memory heap with a named-object directory.
 *
 * Conventions (as in liburing):
 *  - functions returning int return 0 (or a count) on success and a negative
 *    errno value on failure; they never set errno;
 *  - functions returning a pointer return NULL and set errno on failure,
 *    like malloc(3).
 *
 * Offsets (shmk_off(), shmk_ptr()) are valid in every attached process;
 * pointers are valid in every process only while shmk_at_common_base() is
 * true in all of them.
 */
#ifndef SHMK_H
#define SHMK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmk_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* shmk_open() flags */
#define SHMK_CREATE	(1 << 0)	/* create the segment if absent */
#define SHMK_EXCL	(1 << 1)	/* with SHMK_CREATE: fail if present */
#define SHMK_RDONLY	(1 << 2)	/* a reader: read-only mapping */
#define SHMK_WRITER	(1 << 3)	/* the one exclusive writer */
#define SHMK_IMAGE_ONLY	(1 << 4)	/* with SHMK_CREATE and opts.image:
					   fail unless the image loads */

/* shmk_origin() */
#define SHMK_ORIGIN_CREATED	1	/* created empty by this open */
#define SHMK_ORIGIN_IMAGE	2	/* created from opts.image */
#define SHMK_ORIGIN_ATTACHED	3	/* it existed: attached to it */

/* Segment names: 1..63 printable bytes without '/'. */
#ifndef SHMK_NAME_MAX
#define SHMK_NAME_MAX		64
#endif
/* Client descriptive names: 0..31 printable bytes; empty means comm. */
#ifndef SHMK_CLIENT_NAME_MAX
#define SHMK_CLIENT_NAME_MAX	32
#endif
/* Named objects: 1..255 bytes (SHMK_OBJ_NAME_MAX with the NUL). */
#define SHMK_OBJ_NAME_MAX	256

/* struct shmk_client.flags */
#ifndef SHMK_CLIENT_RDONLY
#define SHMK_CLIENT_RDONLY	(1U << 0)
#endif
#ifndef SHMK_CLIENT_WRITER
#define SHMK_CLIENT_WRITER	(1U << 1)
#endif

struct shmk;

/*
 * Options for shmk_open(); NULL means all defaults, and so does a zero field.
 * Sizes are rounded up to the page size. size and max_size are used only
 * when the call creates the segment.
 */
struct shmk_opts {
	size_t size;			/* initial active size; default 1 MiB */
	size_t max_size;		/* reservation; default max(1 GiB, size) */
	mode_t mode;			/* permission bits; default 0600 */
	const char *client_name;	/* descriptive name; default comm */
	const char *backend;		/* "kernel", "memfd", "file";
					   default: see shmk_open(3) */
	union {				/* 8 bytes on every ABI */
		const char *image;	/* image path: see shmk_open(3) */
		uint64_t image_u64_;
	};
	uint64_t schema;		/* the application's layout version,
					   saved in and checked against
					   images */
	uint64_t reserved[2];		/* zero */
};

struct shmk_client {
	uint32_t id;			/* client id, unique per segment */
	int32_t pid;			/* 0 when not visible to the caller */
	uint32_t flags;			/* SHMK_CLIENT_* */
	uint32_t reserved;
	char name[SHMK_CLIENT_NAME_MAX];
};

struct shmk_stats {
	uint64_t total_size;		/* active size of the segment */
	uint64_t max_size;		/* reservation */
	uint64_t heap_size;		/* bytes managed by the allocator */
	uint64_t used_bytes;		/* allocations: blocks (headers
					   included) and small slots */
	uint64_t free_bytes;		/* free blocks */
	uint64_t free_blocks;
	uint64_t largest_free;		/* largest free block */
	uint64_t live_allocs;		/* shmk_alloc() blocks not yet freed */
	uint64_t named_objects;
	uint64_t clients;		/* attached clients (see shmk_clients) */
	uint64_t grows;			/* segment growths by the allocator */
	uint64_t recoveries;		/* recoveries after a dead lock owner */
	uint64_t cached_bytes;		/* free slots in the small tier's runs,
					   kept message blocks */
	uint64_t reserved[3];
};

/* Segments */
int shmk_open(const char *name, int flags, const struct shmk_opts *opts,
	      struct shmk **out);
int shmk_close(struct shmk *shmk);
int shmk_unlink(const char *name);

void *shmk_base(const struct shmk *shmk);
size_t shmk_size(const struct shmk *shmk);
size_t shmk_max_size(const struct shmk *shmk);
int shmk_grow(struct shmk *shmk, size_t size);
int shmk_shrink(struct shmk *shmk, size_t size);
const char *shmk_backend(const struct shmk *shmk);
int shmk_at_common_base(const struct shmk *shmk);
int shmk_origin(const struct shmk *shmk);

/* Images: a segment in a file (see shmk_save(3)) */
int shmk_save(struct shmk *shmk, const char *path);
int shmk_image_check(const char *path, uint64_t schema, char *why,
		     size_t len);
int shmk_sync(struct shmk *shmk);

/* Clients */
int shmk_clients(struct shmk *shmk, struct shmk_client *out, size_t max);
int shmk_client_pid(struct shmk *shmk, const char *client_name);

/* Heap */
void *shmk_alloc(struct shmk *shmk, size_t size);
void *shmk_alloc_aligned(struct shmk *shmk, size_t size, size_t align);
void shmk_free(struct shmk *shmk, void *ptr);
size_t shmk_usable_size(const struct shmk *shmk, const void *ptr);
uint64_t shmk_off(const struct shmk *shmk, const void *ptr);
void *shmk_ptr(const struct shmk *shmk, uint64_t off);
int shmk_stats(struct shmk *shmk, struct shmk_stats *stats);
int shmk_check(struct shmk *shmk);

/* Named objects */
void *shmk_find(struct shmk *shmk, const char *name, size_t *size);
void *shmk_find_or_alloc(struct shmk *shmk, const char *name, size_t size,
			 int *created);
int shmk_remove(struct shmk *shmk, const char *name);
int shmk_foreach(struct shmk *shmk,
		 int (*fn)(const char *name, void *ptr, size_t size, void *arg),
		 void *arg);

/*
 * Zero-copy message queues (shmk_queue_open(3)): a message is written once
 * into the segment (shmk_msg_alloc()) and its offset crosses the queue.
 */
struct shmk_queue;

/* shmk_queue_open() flags */
#define SHMK_QUEUE_RECV		(1 << 0)	/* be the queue's one receiver */
#define SHMK_QUEUE_RECLAIM	(1 << 1)	/* free what a dead receiver left */

/* shmk_send() flags */
#define SHMK_NONBLOCK		(1 << 0)	/* a full queue: -EAGAIN */

/* busy_poll_ns: spin without ever sleeping */
#define SHMK_BUSY_POLL_FOREVER	UINT64_MAX

struct shmk_queue_opts {
	uint32_t capacity;		/* slots, a power of two; default 1024
					   (used when creating the queue) */
	uint32_t flags;			/* zero */
	uint64_t busy_poll_ns;		/* spin this long before sleeping */
	uint64_t reserved[3];		/* zero */
};

struct shmk_queue_stats {
	uint64_t capacity;
	uint64_t queued;		/* messages in the queue now */
	uint64_t sent;			/* ever queued */
	uint64_t received;		/* ever taken (by receivers, reclaim) */
	uint64_t high_water;		/* most queued, seen by the receiver */
	uint64_t senders_blocked;	/* sends that slept for room */
	int64_t receiver_pid;		/* 0: none; -1: another pid namespace */
	uint64_t reserved[3];
};

int shmk_queue_open(struct shmk *shmk, const char *name, int flags,
		    const struct shmk_queue_opts *opts,
		    struct shmk_queue **out);
int shmk_queue_close(struct shmk_queue *q);
void *shmk_msg_alloc(struct shmk *shmk, size_t size);
void shmk_msg_free(struct shmk *shmk, void *msg);
int shmk_send(struct shmk_queue *q, void *msg, int flags);
int shmk_broadcast(struct shmk_queue *const *qs, size_t n, void *msg,
		   int flags);
int shmk_recv(struct shmk_queue *q, void **msg, size_t *size,
	      int64_t timeout_ns);
int shmk_queue_stats(struct shmk_queue *q, struct shmk_queue_stats *st);

/* Library version, at run time (SHMK_VERSION_* give it at compile time). */
int shmk_version_major(void);
int shmk_version_minor(void);
int shmk_version_patch(void);
int shmk_check_version(int major, int minor);

#ifdef __cplusplus
}
#endif

#endif /* SHMK_H */
