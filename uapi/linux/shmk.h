/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * shmk: growable shared-memory segments with kernel peer mapping.
 *
 * Two kinds of file descriptor:
 *
 *  - the control handle, from open("/dev/shmk"): SHMK_IOC_ATTACH and
 *    SHMK_IOC_UNLINK;
 *  - a client handle, returned by SHMK_IOC_ATTACH: one registered client of
 *    one segment. mmap() it at offset 0 to map the segment, at
 *    SHMK_STATUS_OFFSET to map the read-only status page, and use the
 *    remaining ioctls on it.
 *
 * Every argument struct has explicit sizes and padding. Unknown flags and
 * nonzero reserved fields are rejected with -EINVAL. Names are NUL-terminated
 * within their array.
 *
 * See Documentation/userspace-api/shmk.rst.
 */
#ifndef _UAPI_LINUX_SHMK_H
#define _UAPI_LINUX_SHMK_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#define SHMK_DEVICE			"/dev/shmk"

/* Segment names: 1..63 printable bytes, no '/', NUL-terminated. */
#define SHMK_NAME_MAX			64
/* Client descriptive names: 0..31 printable bytes; empty means comm. */
#define SHMK_CLIENT_NAME_MAX		32

/* mmap() offset of the status page on a client handle. */
#define SHMK_STATUS_OFFSET		_BITULL(46)
/* No segment can be larger than this (it must stay below the status page). */
#define SHMK_SIZE_LIMIT			SHMK_STATUS_OFFSET

/* struct shmk_attach.flags */
#define SHMK_ATTACH_CREATE		_BITUL(0) /* create if absent */
#define SHMK_ATTACH_EXCL		_BITUL(1) /* with CREATE: fail if present */
#define SHMK_ATTACH_RDONLY		_BITUL(2) /* reader: read-only mapping */
#define SHMK_ATTACH_WRITER		_BITUL(3) /* the one exclusive writer */

/* struct shmk_attach.out_flags */
#define SHMK_ATTACH_CREATED		_BITUL(0) /* this call created it */

/* struct shmk_client_info.flags */
#define SHMK_CLIENT_RDONLY		_BITUL(0)
#define SHMK_CLIENT_WRITER		_BITUL(1)

/* struct shmk_resize.flags, SHMK_IOC_GROW only */
#define SHMK_GROW_LAZY			_BITUL(0) /* pages appear on first touch */

/*
 * SHMK_IOC_ATTACH, on the control handle. Attaches the calling process to
 * the segment @name, creating it first with SHMK_ATTACH_CREATE. Returns a
 * new client handle (a file descriptor with O_CLOEXEC set).
 *
 * @size and @max_size must be multiples of the page size, with
 * size <= max_size and 0 < max_size; they and @mode are used only when the
 * call creates the segment. @mode holds permission bits (0777 at most).
 */
struct shmk_attach {
	__u32 flags;				/* in: SHMK_ATTACH_* */
	__u32 mode;				/* in: with CREATE */
	__u64 size;				/* in: with CREATE */
	__u64 max_size;				/* in: with CREATE */
	char name[SHMK_NAME_MAX];		/* in */
	char client_name[SHMK_CLIENT_NAME_MAX];	/* in: "" for comm */
	__u64 segment_id;			/* out */
	__u32 client_id;			/* out */
	__u32 out_flags;			/* out: SHMK_ATTACH_CREATED */
	__u64 reserved[4];			/* in: zero */
};

/*
 * SHMK_IOC_UNLINK, on the control handle. Removes @name; the segment is
 * freed when its last client has gone. Owner, creator or CAP_SYS_ADMIN.
 */
struct shmk_unlink {
	char name[SHMK_NAME_MAX];		/* in */
	__u32 flags;				/* in: zero */
	__u32 reserved0;			/* in: zero */
	__u64 reserved[2];			/* in: zero */
};

/* SHMK_IOC_INFO, on a client handle: the segment and this client. */
struct shmk_info {
	__u32 flags;				/* in: zero */
	__u32 reserved0;			/* in: zero */
	__u64 segment_id;			/* out */
	__u64 size;				/* out: active size */
	__u64 max_size;				/* out */
	__u64 generation;			/* out: bumped by grow, shrink */
	__u64 base_addr;			/* out: first mapping, or 0 */
	__u64 ctime_ns;				/* out: creation, CLOCK_REALTIME */
	__u32 uid;				/* out: owner, caller's userns */
	__u32 gid;				/* out */
	__u32 mode;				/* out */
	__u32 nr_clients;			/* out */
	__u32 client_id;			/* out: this handle's */
	__u32 client_flags;			/* out: SHMK_CLIENT_* */
	char name[SHMK_NAME_MAX];		/* out */
	__u64 reserved[4];			/* in: zero; out: zero */
};

/*
 * SHMK_IOC_GROW and SHMK_IOC_SHRINK, on a writable client handle. Set the
 * active size to @size if that grows (resp. shrinks) it; otherwise nothing
 * changes and the call succeeds. A grow installs the new pages into every
 * client's mappings before it returns, unless SHMK_GROW_LAZY is given. A
 * shrink unmaps the cut range from every client, then frees it.
 */
struct shmk_resize {
	__u64 size;				/* in: page multiple */
	__u32 flags;				/* in: SHMK_GROW_LAZY or zero */
	__u32 reserved0;			/* in: zero */
	__u64 old_size;				/* out */
	__u64 new_size;				/* out */
	__u64 generation;			/* out */
	__u64 reserved[2];			/* in: zero */
};

/* One client of a segment, as listed by SHMK_IOC_CLIENTS and the status page. */
struct shmk_client_info {
	__u32 client_id;
	__s32 pid;	/* thread group id; 0 when not visible to the reader */
	__u32 flags;	/* SHMK_CLIENT_* */
	__u32 reserved;
	char name[SHMK_CLIENT_NAME_MAX];
};

/*
 * SHMK_IOC_CLIENTS, on a client handle: copies up to @count entries to the
 * array at @clients, in attach order, and returns the number of attached
 * clients in @total (which can exceed @count). Pids are in the caller's pid
 * namespace.
 */
struct shmk_clients {
	__u64 clients;				/* in: struct shmk_client_info * */
	__u32 count;				/* in: capacity; out: written */
	__u32 total;				/* out */
	__u32 flags;				/* in: zero */
	__u32 reserved0;			/* in: zero */
	__u64 reserved[2];			/* in: zero */
};

/* SHMK_IOC_LOOKUP, on a client handle: the first client named @name. */
struct shmk_lookup {
	char name[SHMK_CLIENT_NAME_MAX];	/* in */
	__u32 flags;				/* in: zero */
	__s32 pid;				/* out */
	__u32 client_id;			/* out */
	__u32 reserved0;			/* in: zero */
	__u64 reserved[2];			/* in: zero */
};

/*
 * The status page, mapped read-only at SHMK_STATUS_OFFSET of a client
 * handle. The kernel updates it under a sequence count: a reader loads @seq
 * (acquire), retries while it is odd, copies what it needs, and retries if
 * @seq changed meanwhile. Pids are in the initial pid namespace.
 */
#define SHMK_STATUS_MAGIC		0x6b6d6873U	/* "shmk" */
#define SHMK_STATUS_VERSION		1
#define SHMK_STATUS_MAX_CLIENTS		80

struct shmk_status {
	__u32 magic;
	__u32 version;
	__u32 seq;
	__u32 nr_clients;	/* attached clients */
	__u64 segment_id;
	__u64 size;
	__u64 max_size;
	__u64 generation;
	__u64 base_addr;
	__u32 table_len;	/* valid entries in clients[] */
	__u32 reserved0;
	__u64 reserved[6];
	struct shmk_client_info clients[SHMK_STATUS_MAX_CLIENTS];
};

#define SHMK_IOC_MAGIC			0xB8

#define SHMK_IOC_ATTACH		_IOWR(SHMK_IOC_MAGIC, 0x00, struct shmk_attach)
#define SHMK_IOC_UNLINK		_IOW(SHMK_IOC_MAGIC, 0x01, struct shmk_unlink)
#define SHMK_IOC_INFO		_IOWR(SHMK_IOC_MAGIC, 0x10, struct shmk_info)
#define SHMK_IOC_GROW		_IOWR(SHMK_IOC_MAGIC, 0x11, struct shmk_resize)
#define SHMK_IOC_SHRINK		_IOWR(SHMK_IOC_MAGIC, 0x12, struct shmk_resize)
#define SHMK_IOC_CLIENTS	_IOWR(SHMK_IOC_MAGIC, 0x13, struct shmk_clients)
#define SHMK_IOC_LOOKUP		_IOWR(SHMK_IOC_MAGIC, 0x14, struct shmk_lookup)

#endif /* _UAPI_LINUX_SHMK_H */
