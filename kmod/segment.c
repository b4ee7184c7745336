// SPDX-License-Identifier: GPL-2.0
/*
 * Segments: the name registry, creation, permissions, lifetime and the
 * status page.
 */
#include <linux/cred.h>
#include <linux/capability.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/ipc_namespace.h>
#include <linux/mm.h>
#include <linux/nsproxy.h>
#include <linux/proc_ns.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/xarray.h>

#include "shmk.h"

/*
 * Every live segment by id, linked (named) or not; shmk_registry_lock
 * serializes changes, and a segment's last reference is dropped under it
 * (kref_put_mutex), so every segment found under the lock is alive.
 */
static DEFINE_XARRAY_ALLOC1(shmk_segments);
static DEFINE_MUTEX(shmk_registry_lock);
static u32 shmk_next_id;

/**
 * shmk_check_name - validate a NUL-terminated name in a fixed array
 * @name: the array
 * @size: its size
 * @flags: SHMK_NAME_EMPTY_OK, SHMK_NAME_SLASH_OK
 *
 * Names are printable ASCII, terminated within the array, and without '/'
 * unless SHMK_NAME_SLASH_OK.
 */
int shmk_check_name(const char *name, size_t size, unsigned int flags)
{
	size_t len = strnlen(name, size);
	size_t i;

	if (len == size || (!len && !(flags & SHMK_NAME_EMPTY_OK)))
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (name[i] < 0x20 || name[i] > 0x7e ||
		    (name[i] == '/' && !(flags & SHMK_NAME_SLASH_OK)))
			return -EINVAL;
	return 0;
}

/*
 * Names are scoped by IPC namespace, as SysV shared memory is. A segment
 * holds a reference to the namespace it was created in; the module cannot
 * call put_ipc_ns() (not exported), so it drops the reference through the
 * namespace's proc_ns_operations, which is what setns() and /proc use.
 */
static struct ipc_namespace *shmk_ipc_ns_get(void)
{
	return get_ipc_ns(current->nsproxy->ipc_ns);
}

static void shmk_ipc_ns_put(struct ipc_namespace *ns)
{
	/* Without CONFIG_IPC_NS there is only init_ipc_ns, never freed. */
	if (IS_ENABLED(CONFIG_IPC_NS) && ns)
		ns->ns.ops->put(&ns->ns);
}

static struct shmk_segment *shmk_find_locked(const char *name)
{
	struct ipc_namespace *ns = current->nsproxy->ipc_ns;
	struct shmk_segment *seg;
	unsigned long id;

	lockdep_assert_held(&shmk_registry_lock);
	xa_for_each(&shmk_segments, id, seg)
		if (seg->linked && seg->ipc_ns == ns && !strcmp(seg->name, name))
			return seg;
	return NULL;
}

/* Returns a referenced segment of the caller's IPC namespace, or NULL. */
struct shmk_segment *shmk_segment_lookup(const char *name)
{
	struct shmk_segment *seg;

	mutex_lock(&shmk_registry_lock);
	seg = shmk_find_locked(name);
	if (seg)
		kref_get(&seg->ref);
	mutex_unlock(&shmk_registry_lock);
	return seg;
}

/**
 * shmk_segment_next - iterate over live segments, for netlink dumps
 * @id: cursor: the first id to consider; advanced past the one returned
 *
 * Returns a referenced segment, or NULL at the end.
 */
struct shmk_segment *shmk_segment_next(unsigned long *id)
{
	struct shmk_segment *seg;

	mutex_lock(&shmk_registry_lock);
	seg = xa_find(&shmk_segments, id, ULONG_MAX, XA_PRESENT);
	if (seg) {
		kref_get(&seg->ref);
		(*id)++;
	}
	mutex_unlock(&shmk_registry_lock);
	return seg;
}

static void shmk_segment_free(struct shmk_segment *seg)
{
	if (seg->shm) {
		shmk_shm_unguard(seg->shm);
		fput(seg->shm);
	}
	shmk_status_free(seg);
	/* Mappings of them hold references of their own. */
	if (seg->hole_page)
		put_page(seg->hole_page);
	if (seg->scratch_page)
		put_page(seg->scratch_page);
	if (seg->user) {
		if (seg->charged)
			shmk_uncharge_pages(seg, seg->charged);
		shmk_uncharge_segment(seg->user);
		shmk_user_put(seg->user);
	}
	shmk_ipc_ns_put(seg->ipc_ns);
	kfree(seg);
}

static struct shmk_segment *shmk_segment_alloc(const struct shmk_attach *req)
{
	char shm_name[SHMK_NAME_MAX + 8];
	struct shmk_segment *seg;
	struct shmk_user *user;
	struct file *shm;
	int ret;

	if (req->max_size > min_t(u64, READ_ONCE(shmk_max_segment_size),
				  SHMK_SIZE_LIMIT))
		return ERR_PTR(-EFBIG);

	seg = kzalloc(sizeof(*seg), GFP_KERNEL_ACCOUNT);
	if (!seg)
		return ERR_PTR(-ENOMEM);
	kref_init(&seg->ref);
	mutex_init(&seg->lock);
	INIT_LIST_HEAD(&seg->clients);
	INIT_LIST_HEAD(&seg->status_views);
	strscpy(seg->name, req->name, sizeof(seg->name));
	seg->max_size = req->max_size;
	seg->next_client_id = 1;
	seg->uid = current_euid();
	seg->cuid = seg->uid;
	seg->gid = current_egid();
	seg->cgid = seg->gid;
	seg->mode = req->mode;
	seg->ctime_ns = ktime_get_real_ns();
	seg->ipc_ns = shmk_ipc_ns_get();

	ret = shmk_status_init(seg);
	if (ret)
		goto err;
	seg->hole_page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	seg->scratch_page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!seg->hole_page || !seg->scratch_page) {
		ret = -ENOMEM;
		goto err;
	}
	/* Limits before any page is allocated. */
	user = shmk_user_get(seg->uid);
	if (!user) {
		ret = -ENOMEM;
		goto err;
	}
	ret = shmk_charge_segment(user);
	if (ret) {
		shmk_user_put(user);
		goto err;
	}
	seg->user = user;
	if (req->size) {
		ret = shmk_charge_pages(seg, req->size >> PAGE_SHIFT);
		if (ret)
			goto err;
	}

	/*
	 * An unlinked tmpfs file gives the pages a real address_space,
	 * which futexes key on.
	 */
	snprintf(shm_name, sizeof(shm_name), "shmk:%s", seg->name);
	shm = shmk_shmfs_file(shm_name,
			      req->flags & SHMK_ATTACH_SMALL_PAGES);
	if (IS_ERR(shm)) {
		/*
		 * shmem says -ENOSPC when it cannot allocate the inode (the
		 * module's mounts have no inode limit); ENOSPC from ATTACH
		 * means max_segments or max_pages.
		 */
		ret = PTR_ERR(shm) == -ENOSPC ? -ENOMEM : PTR_ERR(shm);
		goto err;
	}
	/*
	 * The pages stay evictable, as on tmpfs and memfd: they are charged
	 * to the memory cgroups that allocate them and can be swapped out
	 * under memory pressure (a client then faults them back in). Nothing
	 * is pinned that RLIMIT_MEMLOCK would have to account.
	 */
	seg->shm = shm;
	shmk_shm_guard(shm);

	if (req->size) {
		i_size_write(file_inode(shm), req->size);
		ret = shmk_segment_populate(seg, NULL, 0,
					    req->size >> PAGE_SHIFT);
		if (ret) {
			shmk_segment_cut(seg, 0, req->size);
			goto err;
		}
		seg->size = req->size;
		seg->high_size = req->size;
	}
	return seg;
err:
	shmk_segment_free(seg);
	return ERR_PTR(ret);
}

/* Called with shmk_registry_lock held, which it releases. */
static void shmk_segment_release(struct kref *ref)
{
	struct shmk_segment *seg = container_of(ref, struct shmk_segment, ref);

	if (seg->id)
		xa_erase(&shmk_segments, seg->id);
	mutex_unlock(&shmk_registry_lock);

	WARN_ON_ONCE(!list_empty(&seg->clients));
	if (seg->id)
		shmk_event_segment(seg, SHMK_CMD_SEGMENT_DESTROYED);
	shmk_segment_free(seg);
}

void shmk_segment_put(struct shmk_segment *seg)
{
	kref_put_mutex(&seg->ref, shmk_segment_release, &shmk_registry_lock);
}

static int shmk_check_create(const struct shmk_attach *req)
{
	if (req->mode & ~0777U)
		return -EINVAL;
	if (!req->max_size || req->size > req->max_size ||
	    !PAGE_ALIGNED(req->size) || !PAGE_ALIGNED(req->max_size))
		return -EINVAL;
	return 0;
}

/**
 * shmk_segment_open - find or create the segment an attach request names
 * @req: the validated request
 * @out: the segment, referenced, on success
 * @created: set when this call created it
 */
int shmk_segment_open(const struct shmk_attach *req, struct shmk_segment **out,
		      bool *created)
{
	bool create = req->flags & SHMK_ATTACH_CREATE;
	bool excl = req->flags & SHMK_ATTACH_EXCL;
	struct shmk_segment *seg, *fresh;
	int ret;

	*created = false;
	seg = shmk_segment_lookup(req->name);
	if (seg) {
		if (create && excl) {
			shmk_segment_put(seg);
			return -EEXIST;
		}
		*out = seg;
		return 0;
	}
	if (!create)
		return -ENOENT;

	ret = shmk_check_create(req);
	if (ret)
		return ret;
	/*
	 * Build the segment, pages included, without blocking the registry.
	 * The size limits are checked first, in shmk_segment_alloc(); a
	 * segment of this name that appeared meanwhile wins over ours.
	 */
	fresh = shmk_segment_alloc(req);
	if (IS_ERR(fresh))
		return PTR_ERR(fresh);

	mutex_lock(&shmk_registry_lock);
	seg = shmk_find_locked(req->name);
	if (seg) {
		/* Lost a race with another creator. */
		ret = excl ? -EEXIST : 0;
		if (!ret)
			kref_get(&seg->ref);
	} else {
		ret = xa_alloc_cyclic(&shmk_segments, &fresh->id, fresh,
				      xa_limit_32b, &shmk_next_id, GFP_KERNEL);
		if (ret >= 0) {
			ret = 0;
			fresh->linked = true;
			mutex_lock(&fresh->lock);
			shmk_status_update(fresh);
			mutex_unlock(&fresh->lock);
			/* The registry's reference, plus the caller's. */
			kref_get(&fresh->ref);
			seg = fresh;
			fresh = NULL;
			*created = true;
		} else {
			/*
			 * On -ENOMEM the id it tried is left in fresh->id:
			 * the release must neither erase that slot (someone
			 * may take it once the lock is dropped) nor announce
			 * the destruction of a segment never created.
			 */
			fresh->id = 0;
		}
	}
	mutex_unlock(&shmk_registry_lock);

	if (fresh)
		shmk_segment_put(fresh);
	if (ret)
		return ret;
	if (*created)
		shmk_event_segment(seg, SHMK_CMD_SEGMENT_CREATED);
	*out = seg;
	return 0;
}

static bool shmk_is_owner(const struct shmk_segment *seg)
{
	kuid_t euid = current_euid();

	return uid_eq(euid, seg->uid) || uid_eq(euid, seg->cuid);
}

/**
 * shmk_segment_may - SysV IPC style permission check for the caller
 * @seg: the segment
 * @write: whether write access is wanted besides read access
 */
bool shmk_segment_may(const struct shmk_segment *seg, bool write)
{
	umode_t granted = seg->mode;
	umode_t want = write ? 06 : 04;

	if (shmk_is_owner(seg))
		granted >>= 6;
	else if (in_group_p(seg->gid) || in_group_p(seg->cgid))
		granted >>= 3;
	if ((want & ~granted & 07) == 0)
		return true;
	return capable(CAP_IPC_OWNER);
}

/**
 * shmk_segment_visible - whether the caller may see @seg at all
 * @seg: the segment
 *
 * Through netlink, a segment and its clients are visible to those who
 * could attach to it for reading from their IPC namespace, and to
 * CAP_SYS_ADMIN in the initial user namespace. The check uses the calling
 * task's credentials, as every other check of the module does.
 */
bool shmk_segment_visible(const struct shmk_segment *seg)
{
	if (ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN))
		return true;
	return seg->ipc_ns == current->nsproxy->ipc_ns &&
	       shmk_segment_may(seg, false);
}

/* Remove @seg from the registry; returns whether it was linked. */
static bool shmk_unlink_locked(struct shmk_segment *seg)
{
	lockdep_assert_held(&shmk_registry_lock);
	if (!seg->linked)
		return false;
	mutex_lock(&seg->lock);
	seg->linked = false;
	mutex_unlock(&seg->lock);
	return true;
}

int shmk_segment_unlink(const char *name)
{
	struct shmk_segment *seg;
	int ret = 0;

	mutex_lock(&shmk_registry_lock);
	seg = shmk_find_locked(name);
	if (!seg)
		ret = -ENOENT;
	else if (!shmk_is_owner(seg) && !capable(CAP_SYS_ADMIN))
		ret = -EPERM;
	else
		shmk_unlink_locked(seg);
	mutex_unlock(&shmk_registry_lock);
	if (!ret)
		shmk_segment_put(seg);
	return ret;
}

/* Undo a creation whose attach failed; @seg stays referenced by the caller. */
void shmk_segment_unlink_seg(struct shmk_segment *seg)
{
	bool linked;

	mutex_lock(&shmk_registry_lock);
	linked = shmk_unlink_locked(seg);
	mutex_unlock(&shmk_registry_lock);
	if (linked)
		shmk_segment_put(seg);
}

/* Drop the registry's references at module unload: no client is left. */
void shmk_registry_exit(void)
{
	struct shmk_segment *seg;
	unsigned long id;

	for (id = 0; (seg = shmk_segment_next(&id)); shmk_segment_put(seg))
		shmk_segment_unlink_seg(seg);
}
