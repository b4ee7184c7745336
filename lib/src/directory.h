/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/* Named-object directory internals, shared with the checker. */
#ifndef SHMK_DIRECTORY_H
#define SHMK_DIRECTORY_H

#include "internal.h"

#include <string.h>

/* Offset of a named object from its entry's payload offset. */
static inline uint64_t dir_obj_delta(uint64_t name_len)
{
	return ALIGN_UP(sizeof(struct shmk_dir_entry) + name_len + 1 + 8,
			(uint64_t)BLK_ALIGN);
}

#define SLOT_SIZE	((uint64_t)sizeof(struct shmk_dir_slot))

static inline bool dir_table_ok(const struct shmk *h, uint64_t table, uint64_t cap,
		     uint64_t heap_end)
{
	return cap >= DIR_MIN_CAP && !(cap & (cap - 1)) &&
	       table % BLK_ALIGN == 0 && table >= SHMK_HEAP_START + 16 &&
	       heap_end <= h->map_size && cap <= heap_end / SLOT_SIZE &&
	       table <= heap_end - cap * SLOT_SIZE &&
	       shmk__backed(h, heap_end);
}

/* A valid entry at @e (bounds, magic, name length); returns its name_len. */
static inline int dir_entry_check(const struct shmk *h, uint64_t e, uint64_t heap_end)
{
	const struct shmk_dir_entry *de;
	uint32_t len;

	if (e % BLK_ALIGN || e < SHMK_HEAP_START + 16 ||
	    e > heap_end - sizeof(*de))
		return -EUCLEAN;
	de = (const void *)(h->base + e);
	len = READ_ONCE(de->name_len);
	if (READ_ONCE(de->magic) != (DIR_ENTRY_MAGIC ^ e) || len == 0 ||
	    len >= SHMK_OBJ_NAME_MAX || e + sizeof(*de) + len + 1 > heap_end)
		return -EUCLEAN;
	return (int)len;
}

uint64_t shmk__dir_hash(const char *name, size_t len);

struct dir_probe {
	uint64_t slot;		/* index of the match, or of the insert point */
	uint64_t entry;		/* the match's entry offset, or 0 */
};

/*
 * Look @name up in the table. Bounded and bounds-checked, so it is safe on
 * torn data. Returns 0 (found), -ENOENT (probe->slot: where to insert, or
 * UINT64_MAX when the table is full) or -EUCLEAN.
 */
int shmk__dir_probe(const struct shmk *h, const char *name, size_t len,
		    uint64_t hash, struct dir_probe *probe);

#endif /* SHMK_DIRECTORY_H */
