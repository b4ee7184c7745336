/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences between the kernels shmk supports (6.1 to 6.12).
 * Each HAVE_* comes from a probe of the kernel headers in kmod/Kbuild; each
 * shim names the release that changed the interface.
 */
#ifndef SHMK_COMPAT_H
#define SHMK_COMPAT_H

#include <linux/mm.h>

/* 6.3 made vm_flags read-only and added vm_flags_set()/vm_flags_clear(). */
#ifndef HAVE_VM_FLAGS_SET
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma,
				  vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/*
 * 6.4 added per-VMA locks: faults may run under a VMA's read lock rather
 * than the mmap lock, and vma_start_write() waits for them.
 */
#ifndef HAVE_VMA_START_WRITE
static inline void vma_start_write(struct vm_area_struct *vma)
{
}
#endif

/* 6.5 dropped the vmas argument of get_user_pages_remote(). */
static inline long shmk_gup_remote(struct mm_struct *mm, unsigned long start,
				   unsigned long nr_pages,
				   unsigned int gup_flags)
{
#ifdef HAVE_GUP_REMOTE_VMAS
	return get_user_pages_remote(mm, start, nr_pages, gup_flags, NULL,
				     NULL, NULL);
#else
	return get_user_pages_remote(mm, start, nr_pages, gup_flags, NULL,
				     NULL);
#endif
}

/* 6.3 replaced zap_page_range() by zap_page_range_single() for one VMA. */
static inline void shmk_zap_vma(struct vm_area_struct *vma)
{
#ifdef HAVE_ZAP_PAGE_RANGE
	zap_page_range(vma, vma->vm_start, vma->vm_end - vma->vm_start);
#else
	zap_page_range_single(vma, vma->vm_start, vma->vm_end - vma->vm_start,
			      NULL);
#endif
}

#endif /* SHMK_COMPAT_H */
