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

#endif /* SHMK_COMPAT_H */
