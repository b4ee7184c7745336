/* SPDX-License-Identifier: GPL-2.0 */
/*
 * shmk internal interfaces, shared by the files of the module.
 *
 * Lock order, outermost first:
 *   shmk_registry_lock -> segment.lock -> peer mmap_lock (read)
 *   mmap_lock (write, in ->mmap) -> segment.resize_sem (read)
 *   segment.lock -> segment.resize_sem (write) -> i_mmap_rwsem, page locks
 *   segment.status_lock is innermost (a spinlock).
 * segment.lock is never taken with an mmap_lock held, so ->mmap and ->fault
 * read the active size locklessly: it is the backing file's i_size.
 */
#ifndef SHMK_INTERNAL_H
#define SHMK_INTERNAL_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/shmk.h>

/* Module parameters (main.c). */
extern unsigned long shmk_max_segment_size;
extern unsigned long shmk_max_pages;
extern unsigned int shmk_max_segments;
extern unsigned int shmk_max_clients;
extern unsigned int shmk_grow_threads;

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

	struct mutex lock;		/* size changes, clients, generation */
	struct rw_semaphore resize_sem;	/* shrink vs population in ->mmap */
	unsigned long size;		/* active size; READ_ONCE outside lock */
	u64 generation;
	struct list_head clients;
	unsigned int nr_clients;
	u32 next_client_id;
	bool has_writer;
	bool linked;			/* reachable by name; holds a ref */

	unsigned long base_addr;	/* first mapping of offset 0, or 0 */
	kuid_t uid, cuid;
	kgid_t gid, cgid;
	umode_t mode;
	u64 ctime_ns;

	spinlock_t status_lock;		/* serializes status page writers */
	struct page *status_page;
	struct shmk_status *status;
};

struct shmk_client {
	struct shmk_segment *seg;	/* holds a reference */
	struct mm_struct *mm;		/* mmgrab()ed attacher */
	struct pid *pid;		/* attacher's thread group */
	struct list_head node;		/* in seg->clients */
	u32 id;
	u32 flags;			/* SHMK_CLIENT_* */
	bool kicked;			/* detached by an administrator */
	u64 attach_ns;
	unsigned long base_addr;	/* its first mapping of offset 0 */
	char name[SHMK_CLIENT_NAME_MAX];
};

/* segment.c */
#define SHMK_NAME_EMPTY_OK	BIT(0)
#define SHMK_NAME_SLASH_OK	BIT(1)
int shmk_check_name(const char *name, size_t size, unsigned int flags);
struct shmk_segment *shmk_segment_lookup(const char *name);
struct shmk_segment *shmk_segment_next(unsigned long *id);
int shmk_segment_open(const struct shmk_attach *req, struct shmk_segment **out,
		      bool *created);
int shmk_segment_unlink(const char *name);
void shmk_segment_unlink_seg(struct shmk_segment *seg);
void shmk_segment_put(struct shmk_segment *seg);
bool shmk_segment_may(const struct shmk_segment *seg, bool write);
void shmk_status_update(struct shmk_segment *seg);
void shmk_status_set_base(struct shmk_segment *seg, unsigned long addr);
void shmk_registry_exit(void);

/* client.c */
long shmk_ioctl_attach(void __user *argp);
int shmk_client_kick(struct shmk_segment *seg, u32 client_id);
extern const struct file_operations shmk_client_fops;

/* The address spaces of a segment's clients, pinned for one operation. */
struct shmk_peers {
	unsigned int nr;
	struct mm_struct *mm[];
};

/* mmap.c */
int shmk_mmap(struct file *file, struct vm_area_struct *vma);
struct shmk_peers *shmk_peers_get(struct shmk_segment *seg);
void shmk_peers_put(struct shmk_peers *peers);
int shmk_segment_populate(struct shmk_segment *seg, struct shmk_peers *peers,
			  pgoff_t first, pgoff_t last);
int shmk_segment_grow(struct shmk_segment *seg, struct shmk_resize *rs);
int shmk_segment_shrink(struct shmk_segment *seg, struct shmk_resize *rs);
void shmk_segment_cut(struct shmk_segment *seg, struct shmk_peers *peers,
		      u64 from, u64 to);
void shmk_segment_evict(struct shmk_segment *seg, struct shmk_peers *peers);

/* netlink.c: the generic netlink family and its events */
int shmk_genl_init(void);
void shmk_genl_exit(void);
void shmk_event_segment(const struct shmk_segment *seg, u8 cmd);
void shmk_event_client(const struct shmk_segment *seg,
		       const struct shmk_client *client, u8 cmd, u32 reason);
void shmk_event_resize(const struct shmk_segment *seg, u8 cmd, u64 old_size,
		       u64 new_size);

#endif /* SHMK_INTERNAL_H */
