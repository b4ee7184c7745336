/* SPDX-License-Identifier: GPL-2.0 */
/*
 * shmk internal interfaces, shared by the files of the module.
 *
 * Lock order, outermost first:
 *   shmk_registry_lock -> segment.lock -> peer mmap_lock (read, trylock
 *   only) -> i_mmap_rwsem, page locks
 *   segment.lock -> hole_page's lock -> scratch_page's lock (a grow's
 *   i_size update); a fault takes one of them under its mmap_lock (or
 *   VMA lock) alone
 *   segment.status_lock and shmk_users_lock are innermost (spinlocks).
 * segment.lock is never taken with an mmap_lock held, so ->mmap and ->fault
 * read the active size locklessly: it is the backing file's i_size. A kick
 * takes the kicked process's mmap lock for writing after dropping
 * segment.lock.
 */
#ifndef SHMK_INTERNAL_H
#define SHMK_INTERNAL_H

#include <linux/fs.h>
#include <linux/ioctl.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>
#include <linux/shmk.h>

struct ipc_namespace;
struct mm_struct;
struct pid_namespace;

/* What SHMK_IOC_INFO reports in features. */
#define SHMK_FEATURES	(SHMK_FEATURE_LAZY_GROW | SHMK_FEATURE_SHMEM_MAPPING | \
			 SHMK_FEATURE_STATUS_PIDNS | \
			 SHMK_FEATURE_EXTENSIBLE_IOCTLS | \
			 SHMK_FEATURE_HUGE_PAGES | SHMK_FEATURE_CUT_READS_ZERO)

/*
 * Whether @cmd is @ref, whatever struct size it encodes: the number, type
 * and direction must match.
 */
static inline bool shmk_ioc_is(unsigned int cmd, unsigned int ref)
{
	return _IOC_TYPE(cmd) == _IOC_TYPE(ref) &&
	       _IOC_NR(cmd) == _IOC_NR(ref) && _IOC_DIR(cmd) == _IOC_DIR(ref);
}

/*
 * Copy in an ioctl argument of the size @cmd encodes. Every struct is at its
 * first version, so a shorter one is invalid; a longer one (from a newer
 * binary) must have only zeroes past what this module knows (else -E2BIG).
 */
static inline int shmk_arg_in(void *dst, size_t ksize, unsigned int cmd,
			      const void __user *argp)
{
	size_t usize = _IOC_SIZE(cmd);

	if (usize < ksize)
		return -EINVAL;
	return copy_struct_from_user(dst, ksize, argp, usize);
}

/* Copy out the part of an ioctl argument that the caller's struct holds. */
static inline int shmk_arg_out(void __user *argp, const void *src,
			       size_t ksize, unsigned int cmd)
{
	return copy_to_user(argp, src, min_t(size_t, ksize, _IOC_SIZE(cmd))) ?
	       -EFAULT : 0;
}

/* Module parameters (main.c). */
extern unsigned long shmk_max_segment_size;
extern unsigned long shmk_max_pages;
extern unsigned int shmk_max_segments;
extern unsigned int shmk_max_clients;
extern unsigned int shmk_grow_threads;
extern unsigned long shmk_max_pages_per_user;
extern unsigned int shmk_max_segments_per_user;
extern bool shmk_huge_pages;

/* Live objects, for sysfs and the leak check at unload (main.c). */
extern atomic_t shmk_nr_segments;
extern atomic_long_t shmk_nr_pages;
extern atomic_t shmk_nr_clients;

struct shmk_segment {
	struct kref ref;		/* registry link + one per client */
	u32 id;
	char name[SHMK_NAME_MAX];

	/*
	 * Backing tmpfs file. Its i_size is the active size; its page cache
	 * holds the segment's pages; every client VMA sits in its mapping's
	 * i_mmap tree, so rmap, truncation and unmap_mapping_range() see
	 * them all.
	 */
	struct file *shm;
	unsigned long max_size;

	/*
	 * A load between the active size and @high_size (the largest active
	 * size so far: the range that shrinks cut off) maps a page of the
	 * segment's own rather than raising SIGBUS, so that a lock-free
	 * reader holding an offset there sees the shrink and retries:
	 * @hole_page, zeroed, in mappings that can never write, and
	 * @scratch_page in those that may (what they store there stays
	 * among them until a grow clears it). The lock of the page a fault
	 * maps orders it against the i_size update of a grow, which holds
	 * both and then unmaps them (@holes_mapped says whether any may
	 * exist) before it installs the new pages. @resize_seq changes
	 * before i_size does, so that a fault can tell a resize in between
	 * from a failure of its own.
	 */
	struct page *hole_page;
	struct page *scratch_page;
	unsigned long high_size;	/* READ_ONCE outside seg->lock */
	unsigned long resize_seq;	/* written under seg->lock */
	/* Set under either page's lock, cleared under both. */
	bool holes_mapped;

	struct mutex lock;		/* size changes, clients, generation */
	unsigned long size;		/* active size; READ_ONCE outside lock */
	u64 generation;
	struct list_head clients;
	unsigned int nr_clients;
	u32 next_client_id;
	bool has_writer;
	bool linked;			/* reachable by name; holds a ref */

	unsigned long base_addr;	/* first mapping of offset 0, or 0 */
	struct ipc_namespace *ipc_ns;	/* names are scoped by it; held */
	struct shmk_user *user;		/* the creator, charged for pages */
	unsigned long charged;		/* pages charged to @user */
	kuid_t uid, cuid;
	kgid_t gid, cgid;
	umode_t mode;
	u64 ctime_ns;

	/*
	 * The status page, one per pid namespace its clients attached from,
	 * so that every reader sees pids in its own namespace. The list
	 * changes under both segment.lock and status_lock; status_lock
	 * serializes the writers.
	 */
	spinlock_t status_lock;
	struct list_head status_views;
	unsigned int nr_status_views;
};

struct shmk_status_view {
	struct list_head node;		/* in seg->status_views */
	struct pid_namespace *pid_ns;	/* held; NULL: pids shown as 0 */
	unsigned int users;		/* clients; under segment.lock */
	struct page *page;
	struct shmk_status *status;
};

/* What one user (by kuid) has created and pinned, for the per-user limits. */
struct shmk_user {
	struct hlist_node node;
	kuid_t uid;
	refcount_t ref;			/* one per segment it created */
	unsigned int nr_segments;
	unsigned long nr_pages;
};

struct shmk_client {
	struct shmk_segment *seg;	/* holds a reference */
	struct file *file;		/* its handle, referenced by each VMA */
	struct mm_struct *mm;		/* mmgrab()ed attacher */
	struct pid *pid;		/* attacher's thread group */
	struct list_head node;		/* in seg->clients */
	u32 id;
	u32 flags;			/* SHMK_CLIENT_* */
	struct shmk_status_view *view;	/* its status page */
	bool kicked;			/* detached by an administrator */
	u64 attach_ns;
	unsigned long base_addr;	/* its first mapping of offset 0 */
	/* Its mappings lie in [map_lo, map_hi); under its mm's mmap lock. */
	unsigned long map_lo, map_hi;
	char name[SHMK_CLIENT_NAME_MAX];
};

/* segment.c */
#define SHMK_NAME_EMPTY_OK	BIT(0)
#define SHMK_NAME_SLASH_OK	BIT(1)
int shmk_check_name(const char *name, size_t size, unsigned int flags);
struct shmk_segment *shmk_segment_lookup(const char *name);
struct shmk_segment *shmk_segment_next(unsigned long *id);
bool shmk_segment_visible(const struct shmk_segment *seg);
int shmk_segment_open(const struct shmk_attach *req, struct shmk_segment **out,
		      bool *created);
int shmk_segment_unlink(const char *name);
void shmk_segment_unlink_seg(struct shmk_segment *seg);
void shmk_segment_put(struct shmk_segment *seg);
bool shmk_segment_may(const struct shmk_segment *seg, bool write);
void shmk_registry_exit(void);

/* limits.c: global and per-user limits */
struct shmk_user *shmk_user_get(kuid_t uid);
void shmk_user_put(struct shmk_user *user);
int shmk_charge_segment(struct shmk_user *user);
void shmk_uncharge_segment(struct shmk_user *user);
int shmk_charge_pages(struct shmk_segment *seg, unsigned long nr);
void shmk_uncharge_pages(struct shmk_segment *seg, unsigned long nr);
void shmk_limits_init(void);
void shmk_limits_exit(void);

/* status.c: the status page */
int shmk_status_init(struct shmk_segment *seg);
void shmk_status_free(struct shmk_segment *seg);
struct shmk_status_view *shmk_status_view_get(struct shmk_segment *seg);
struct shmk_status_view *shmk_status_view_put(struct shmk_segment *seg,
					      struct shmk_status_view *view);
void shmk_status_view_free(struct shmk_status_view *view);
void shmk_status_update(struct shmk_segment *seg);
void shmk_status_set_base(struct shmk_segment *seg, unsigned long addr);

/* client.c */
long shmk_ioctl_attach(unsigned int cmd, void __user *argp);
int shmk_client_kick(struct shmk_segment *seg, u32 client_id);
extern const struct file_operations shmk_client_fops;

/*
 * A segment's clients, their address spaces pinned for one operation. The
 * clients may be used only while segment.lock is held; the mm pointers are
 * kept apart because the pins are dropped after it is released.
 */
struct shmk_peer {
	struct shmk_client *client;
	struct mm_struct *mm;
};

struct shmk_peers {
	unsigned int nr;
	struct shmk_peer peer[];
};

/* shmfs.c: the private tmpfs mounts that segment files live on */
int shmk_shmfs_init(void);
void shmk_shmfs_exit(void);
struct file *shmk_shmfs_file(const char *name, bool small);
bool shmk_shmfs_is_huge(const struct file *shm);

/* mmap.c */
int shmk_mmap_init(void);
void shmk_mmap_exit(void);
void shmk_shm_guard(struct file *shm);
void shmk_shm_unguard(struct file *shm);
int shmk_mmap(struct file *file, struct vm_area_struct *vma);
struct shmk_peers *shmk_peers_get(struct shmk_segment *seg);
void shmk_peers_put(struct shmk_peers *peers);
int shmk_segment_populate(struct shmk_segment *seg, struct shmk_peers *peers,
			  pgoff_t first, pgoff_t last);
int shmk_segment_grow(struct shmk_segment *seg, struct shmk_resize *rs);
int shmk_segment_shrink(struct shmk_segment *seg, struct shmk_resize *rs);
void shmk_segment_cut(struct shmk_segment *seg, u64 from, u64 to);
u64 shmk_segment_huge_size(struct shmk_segment *seg, u64 size);
int shmk_evict_mm(struct shmk_segment *seg, struct mm_struct *mm,
		  const struct shmk_client *client);

/* netlink.c: the generic netlink family and its events */
int shmk_genl_init(void);
void shmk_genl_exit(void);
void shmk_event_segment(const struct shmk_segment *seg, u8 cmd);
void shmk_event_client(const struct shmk_segment *seg,
		       const struct shmk_client *client, u8 cmd, u32 reason);
void shmk_event_resize(const struct shmk_segment *seg, u8 cmd, u64 old_size,
		       u64 new_size);

#endif /* SHMK_INTERNAL_H */
