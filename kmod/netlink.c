// SPDX-License-Identifier: GPL-2.0
/* Placeholder until the generic netlink family lands (issue 4). */
#include "shmk.h"

int shmk_genl_init(void)
{
	return 0;
}

void shmk_genl_exit(void)
{
}

void shmk_event_segment(const struct shmk_segment *seg, u8 cmd)
{
}

void shmk_event_client(const struct shmk_segment *seg,
		       const struct shmk_client *client, u8 cmd, u32 reason)
{
}

void shmk_event_resize(const struct shmk_segment *seg, u8 cmd, u64 old_size,
		       u64 new_size)
{
}
