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
 * within their array. Segment ids are 32-bit values everywhere (netlink
 * sends them as u32); the __u64 segment_id fields of the ioctls and the
 * status page leave room and always have their upper half zero. Pids are
 * signed (pid_t) everywhere, netlink included (s32).
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

/*
 * mmap() offset of the status page on a client handle: 8 TiB, which a
 * 32-bit process reaches through mmap2() (mmap64(), or mmap() with
 * _FILE_OFFSET_BITS=64).
 */
#define SHMK_STATUS_OFFSET		_BITULL(43)
/* No segment can be larger than this (it must stay below the status page). */
#define SHMK_SIZE_LIMIT			SHMK_STATUS_OFFSET

/*
 * Flags of __u32 fields are unsigned int constants, so that they have the
 * field's width on every architecture; features, a __u64, uses _BITULL.
 */

/* struct shmk_attach.flags */
#define SHMK_ATTACH_CREATE		0x1U /* create if absent */
#define SHMK_ATTACH_EXCL		0x2U /* with CREATE: fail if present */
#define SHMK_ATTACH_RDONLY		0x4U /* reader: read-only mapping */
#define SHMK_ATTACH_WRITER		0x8U /* the one exclusive writer */
#define SHMK_ATTACH_SMALL_PAGES		0x10U /* with CREATE: 4 KiB pages only */

/* struct shmk_attach.out_flags */
#define SHMK_ATTACH_CREATED		0x1U /* this call created it */

/* struct shmk_client_info.flags */
#define SHMK_CLIENT_RDONLY		0x1U
#define SHMK_CLIENT_WRITER		0x2U

/* struct shmk_resize.flags, SHMK_IOC_GROW only */
#define SHMK_GROW_LAZY			0x1U /* pages appear on first touch */

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
	__u64 segment_id;			/* out: < 2^32, see below */
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

/*
 * struct shmk_info.features: what this module does, for a library that must
 * work with several versions.
 */
#define SHMK_FEATURE_LAZY_GROW		_BITULL(0) /* SHMK_GROW_LAZY */
/*
 * A mapping is an ordinary shared mapping of the segment's shmem file: it
 * maps nothing by itself at mmap() time (populate it with MAP_POPULATE or
 * MADV_POPULATE_READ/WRITE); grows are installed into it.
 */
#define SHMK_FEATURE_SHMEM_MAPPING	_BITULL(1)
/* Status page pids are in the pid namespace the client attached from. */
#define SHMK_FEATURE_STATUS_PIDNS	_BITULL(2)
/*
 * Ioctl argument structs may be longer (from newer headers) with zeroes past
 * what the module knows; a struct shorter than its first version is
 * invalid.
 */
#define SHMK_FEATURE_EXTENSIBLE_IOCTLS	_BITULL(3)
/*
 * Segments are backed by 2 MiB pages (transparent huge pages) wherever size,
 * alignment and free memory allow, unless created with
 * SHMK_ATTACH_SMALL_PAGES or while the module's huge_pages parameter is off;
 * shmk_info reports seg_flags and huge_size. Set whenever this module knows
 * the flag, even on a machine without huge pages (seg_flags tells).
 */
#define SHMK_FEATURE_HUGE_PAGES		_BITULL(4)
/*
 * A load inside a range that a shrink cut off (between the active size and
 * the largest the segment has been) maps a page of the segment's own
 * instead of raising SIGBUS, so that a reader that still holds an offset
 * there can notice the shrink and retry: zeroes in a read-only client, and
 * in a writer zeroes or what a writer stored there since the last grow. A
 * first access that stores still raises SIGBUS.
 */
#define SHMK_FEATURE_CUT_READS_ZERO	_BITULL(5)

/* struct shmk_info.seg_flags */
#define SHMK_SEG_HUGE_PAGES		0x1U /* may use 2 MiB pages */

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
	__u64 features;				/* out: SHMK_FEATURE_* */
	__u64 huge_size;			/* out: active bytes in 2 MiB pages */
	__u32 seg_flags;			/* out: SHMK_SEG_* */
	__u32 reserved1;			/* in: zero; out: zero */
	__u64 reserved[1];			/* in: zero; out: zero */
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
 * @seq changed meanwhile. Pids are in the pid namespace the mapping client
 * attached from (0 for a client not visible there).
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

/*
 * Ioctl numbers. The command's size field is the size of the caller's
 * struct: a newer struct may be longer (its extra bytes must then be zero,
 * or the call fails with E2BIG), so that old and new binaries both work
 * with old and new modules.
 */
#define SHMK_IOC_MAGIC			0xC5

#define SHMK_IOC_ATTACH		_IOWR(SHMK_IOC_MAGIC, 0x00, struct shmk_attach)
#define SHMK_IOC_UNLINK		_IOW(SHMK_IOC_MAGIC, 0x01, struct shmk_unlink)
#define SHMK_IOC_INFO		_IOWR(SHMK_IOC_MAGIC, 0x10, struct shmk_info)
#define SHMK_IOC_GROW		_IOWR(SHMK_IOC_MAGIC, 0x11, struct shmk_resize)
#define SHMK_IOC_SHRINK		_IOWR(SHMK_IOC_MAGIC, 0x12, struct shmk_resize)
#define SHMK_IOC_CLIENTS	_IOWR(SHMK_IOC_MAGIC, 0x13, struct shmk_clients)
#define SHMK_IOC_LOOKUP		_IOWR(SHMK_IOC_MAGIC, 0x14, struct shmk_lookup)

/*
 * Generic netlink family "shmk", for administration: see every segment and
 * client without attaching, watch events, unlink segments and kick clients.
 * Documentation/netlink/specs/shmk.yaml describes it; attributes form one
 * flat space.
 */
#define SHMK_GENL_NAME			"shmk"
#define SHMK_GENL_VERSION		1
#define SHMK_GENL_MCGRP_EVENTS		"events"

enum shmk_genl_cmd {
	SHMK_CMD_UNSPEC,
	SHMK_CMD_SEGMENT_GET,		/* do (by name) or dump */
	SHMK_CMD_CLIENT_GET,		/* dump, of one segment or all */
	SHMK_CMD_SEGMENT_UNLINK,	/* do: owner or CAP_SYS_ADMIN */
	SHMK_CMD_CLIENT_KICK,		/* do: owner or CAP_SYS_ADMIN */
	/* Notifications, on the "events" group. */
	SHMK_CMD_SEGMENT_CREATED,
	SHMK_CMD_SEGMENT_DESTROYED,
	SHMK_CMD_CLIENT_ATTACHED,
	SHMK_CMD_CLIENT_DETACHED,
	SHMK_CMD_SEGMENT_GROWN,
	SHMK_CMD_SEGMENT_SHRUNK,
	__SHMK_CMD_MAX,
};

#define SHMK_CMD_MAX			(__SHMK_CMD_MAX - 1)

enum shmk_genl_attr {
	SHMK_A_UNSPEC,
	SHMK_A_PAD,
	SHMK_A_SEGMENT_ID,		/* u32: segment ids are 32-bit */
	SHMK_A_SEGMENT_NAME,		/* string */
	SHMK_A_SIZE,			/* u64: active size */
	SHMK_A_MAX_SIZE,		/* u64 */
	SHMK_A_PAGES,			/* u64: pages present */
	SHMK_A_NR_CLIENTS,		/* u32 */
	SHMK_A_UID,			/* u32, in the reader's user namespace */
	SHMK_A_GID,			/* u32 */
	SHMK_A_MODE,			/* u32 */
	SHMK_A_CTIME,			/* u64: ns, CLOCK_REALTIME */
	SHMK_A_GENERATION,		/* u64 */
	SHMK_A_LINKED,			/* flag: reachable by name */
	SHMK_A_CLIENT_ID,		/* u32 */
	SHMK_A_PID,			/* s32, in the reader's pid namespace */
	SHMK_A_CLIENT_NAME,		/* string */
	SHMK_A_CLIENT_FLAGS,		/* u32: SHMK_CLIENT_* */
	SHMK_A_BASE_ADDR,		/* u64: the client's first mapping */
	SHMK_A_ATTACH_TIME,		/* u64: ns, CLOCK_REALTIME */
	SHMK_A_OLD_SIZE,		/* u64: grown, shrunk */
	SHMK_A_NEW_SIZE,		/* u64: grown, shrunk */
	SHMK_A_ACTOR_PID,		/* s32: the process that acted */
	SHMK_A_DETACH_REASON,		/* u32: enum shmk_detach_reason */
	__SHMK_A_MAX,
};

#define SHMK_A_MAX			(__SHMK_A_MAX - 1)

enum shmk_detach_reason {
	SHMK_DETACH_CLOSED,		/* handle closed, mappings gone */
	SHMK_DETACH_EXITED,		/* its process exited */
	SHMK_DETACH_KILLED,		/* its process was killed by a signal */
	SHMK_DETACH_KICKED,		/* SHMK_CMD_CLIENT_KICK */
};

#endif /* _UAPI_LINUX_SHMK_H */
