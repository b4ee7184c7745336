// SPDX-License-Identifier: GPL-2.0
/*
 * The module's private tmpfs mounts, on which segment files live.
 *
 * shmem_file_setup() creates its file on the kernel's internal mount, whose
 * transparent huge page policy is the system's (shmem_enabled, "never" by
 * default). Like i915's gemfs, shmk mounts tmpfs for itself instead: one
 * mount with huge=within_size, so that each 2 MiB-aligned 2 MiB of a
 * segment that lies below its active size is one PMD-mappable folio
 * whenever the allocator can find one (and 4 KiB pages otherwise, without
 * failing), and one with huge=never, for segments that ask for small pages.
 *
 * within_size rather than always: with always, growing to a size that is not
 * a multiple of 2 MiB would allocate a whole huge folio across the new end,
 * pages beyond the active size that no one can map and that the segment's
 * page charge would not count.
 *
 * Both are kernel mounts (SB_KERNMOUNT): no size or inode limit of their
 * own, no mount namespace, nothing visible to user space. shmk's own limits
 * (limits.c) and the memory cgroups bound what segments take.
 */
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/mount.h>
#include <linux/shmem_fs.h>

#include "shmk.h"

static struct vfsmount *shmk_mnt_small;
static struct vfsmount *shmk_mnt_huge;	/* NULL: no huge pages here */

static struct vfsmount *shmk_shmfs_mount(struct file_system_type *type,
					 const char *huge)
{
	char opts[32];

	/* The options are parsed in place. */
	snprintf(opts, sizeof(opts), "huge=%s", huge);
	return vfs_kern_mount(type, SB_KERNMOUNT, type->name, opts);
}

int shmk_shmfs_init(void)
{
	struct file_system_type *type;
	struct vfsmount *mnt;

	type = get_fs_type("tmpfs");
	if (!type)
		return -ENODEV;
	mnt = shmk_shmfs_mount(type, "never");
	if (IS_ERR(mnt))
		return PTR_ERR(mnt);
	shmk_mnt_small = mnt;

	/* tmpfs refuses huge= where the CPU or the kernel has no THP. */
	if (!IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE) ||
	    !has_transparent_hugepage())
		return 0;
	mnt = shmk_shmfs_mount(type, "within_size");
	if (IS_ERR(mnt)) {
		pr_info("no huge page mount (%ld): segments use 4 KiB pages\n",
			PTR_ERR(mnt));
		return 0;
	}
	shmk_mnt_huge = mnt;
	return 0;
}

/* At module unload; files still open elsewhere keep their mount alive. */
void shmk_shmfs_exit(void)
{
	if (shmk_mnt_huge)
		kern_unmount(shmk_mnt_huge);
	kern_unmount(shmk_mnt_small);
}

/**
 * shmk_shmfs_file - a new, unlinked file for a segment's pages
 * @name: its name in /proc/PID/maps and the like
 * @small: 4 KiB pages only, whatever the huge_pages parameter says
 *
 * VM_NORESERVE: pages are accounted as the segment grows, not for the whole
 * reservation up front. Returns the file or an ERR_PTR.
 */
struct file *shmk_shmfs_file(const char *name, bool small)
{
	struct vfsmount *mnt = shmk_mnt_huge;

	if (small || !mnt || !READ_ONCE(shmk_huge_pages))
		mnt = shmk_mnt_small;
	return shmem_file_setup_with_mnt(mnt, name, 0, VM_NORESERVE);
}

/* Whether @shm, a segment file, is on the huge page mount. */
bool shmk_shmfs_is_huge(const struct file *shm)
{
	return shmk_mnt_huge && shm->f_path.mnt == shmk_mnt_huge;
}
