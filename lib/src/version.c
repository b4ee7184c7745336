/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/* The library's version at run time. */
#include <errno.h>

#include "shmk.h"

int shmk_version_major(void)
{
	return SHMK_VERSION_MAJOR;
}

int shmk_version_minor(void)
{
	return SHMK_VERSION_MINOR;
}

int shmk_version_patch(void)
{
	return SHMK_VERSION_PATCH;
}

/* 0 when this library is at least major.minor, -ENOTSUP otherwise. */
int shmk_check_version(int major, int minor)
{
	if (SHMK_VERSION_MAJOR > major ||
	    (SHMK_VERSION_MAJOR == major && SHMK_VERSION_MINOR >= minor))
		return 0;
	return -ENOTSUP;
}
