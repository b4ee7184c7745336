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

/* The table's bytes for @cap slots, and where its offsets start. */
static inline uint64_t dir_table_bytes(uint64_t cap)
{
	return cap * DIR_SLOT_BYTES;
}

#define DIR_OFFS(table, cap)	((table) + (cap))

static inline bool dir_table_ok(const struct shmk *h, uint64_t table, uint64_t cap,
		     uint64_t heap_end)
{
	return cap >= DIR_MIN_CAP && !(cap & (cap - 1)) &&
	       table % BLK_ALIGN == 0 && table >= SHMK_HEAP_START + 16 &&
	       cap <= heap_end / DIR_SLOT_BYTES &&
	       table <= heap_end - dir_table_bytes(cap) &&
	       shmk__heap_end_ok(h, heap_end);
}

/* A full slot's control byte: the top seven bits of the hash. */
static inline uint8_t dir_tag(uint64_t hash)
{
	return (uint8_t)(hash >> 57);
}

/* The first group a name's probe visits, of @cap / DIR_GROUP. */
static inline uint64_t dir_group0(uint64_t hash, uint64_t cap)
{
	return hash & (cap / DIR_GROUP - 1);
}

/*
 * A group's masks, a bit per slot: control byte equal to the tag, EMPTY,
 * and EMPTY or DELETED (the top bit set). SSE2 where there is SSE2; the
 * portable version does the same in two words and is tested against it.
 */
struct dir_masks {
	uint32_t match;
	uint32_t empty;
	uint32_t avail;
};

static inline uint32_t dir_bytes_movemask(uint64_t hi_bits)
{
	/* Bit 8k + 7 of @hi_bits to bit k (no two products overlap). */
	return (uint32_t)(((hi_bits >> 7) * 0x0102040810204080ULL) >> 56);
}

static inline uint64_t dir_bytes_eq(uint64_t w, uint8_t b)
{
	const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL;
	uint64_t x = w ^ (0x0101010101010101ULL * b);

	/* The top bit of each byte of x that is zero, exactly. */
	return ~(((x & lo7) + lo7) | x) & ~lo7;
}

static inline void dir_scan_portable(const uint8_t *g, uint8_t tag,
				     struct dir_masks *m)
{
	uint32_t match = 0, empty = 0, avail = 0;

	for (unsigned int half = 0; half < 2; half++) {
		uint64_t w;

		memcpy(&w, g + 8 * half, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		w = __builtin_bswap64(w);
#endif
		match |= dir_bytes_movemask(dir_bytes_eq(w, tag)) << 8 * half;
		empty |= dir_bytes_movemask(dir_bytes_eq(w, DIR_CTRL_EMPTY))
			 << 8 * half;
		avail |= dir_bytes_movemask(w & ~0x7f7f7f7f7f7f7f7fULL)
			 << 8 * half;
	}
	m->match = match;
	m->empty = empty;
	m->avail = avail;
}

#ifdef __SSE2__
#include <emmintrin.h>

static inline void dir_scan(const uint8_t *g, uint8_t tag, struct dir_masks *m)
{
	__m128i v = _mm_load_si128((const __m128i *)(const void *)g);

	m->match = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v,
					_mm_set1_epi8((char)tag)));
	m->empty = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v,
					_mm_set1_epi8((char)DIR_CTRL_EMPTY)));
	m->avail = (uint32_t)_mm_movemask_epi8(v);
}
#else
#define dir_scan dir_scan_portable
#endif

/*
 * A valid entry at @e (bounds, magic, name length); returns its name_len.
 * @e is a multiple of BLK_ALIGN below DIR_ENTRY_LIMIT when it came from a
 * slot; the check holds for any @e.
 */
static inline int dir_entry_check(const struct shmk *h, uint64_t e, uint64_t heap_end)
{
	const struct shmk_dir_entry *de;
	uint32_t len;

	if (e % BLK_ALIGN || e < SHMK_HEAP_START + 16 ||
	    e >= DIR_ENTRY_LIMIT || e > heap_end - sizeof(*de))
		return -EUCLEAN;
	de = (const void *)(h->base + e);
	len = READ_ONCE(de->name_len);
	if (READ_ONCE(de->magic) !=
	    (DIR_ENTRY_MAGIC ^ (uint32_t)(e / BLK_ALIGN)) ||
	    len == 0 || len >= SHMK_OBJ_NAME_MAX ||
	    e + sizeof(*de) + len + 1 > heap_end)
		return -EUCLEAN;
	return (int)len;
}

uint64_t shmk__dir_hash(const char *name, size_t len);

struct dir_probe {
	uint64_t slot;		/* index of the match, or of the insert point */
	uint64_t entry;		/* the match's entry offset, or 0 */
	bool was_deleted;	/* the insert point is a DELETED slot */
	/*
	 * The table the probe checked and searched: a writer writes there,
	 * never where the header (any client may write it) says next.
	 */
	uint64_t table, cap, he;
};

/*
 * Look @name up in the table. Bounded and bounds-checked, so it is safe on
 * torn data. Returns 0 (found), -ENOENT (probe->slot: where to insert, or
 * UINT64_MAX when the table is full) or -EUCLEAN.
 */
int shmk__dir_probe(const struct shmk *h, const char *name, size_t len,
		    uint64_t hash, struct dir_probe *probe);

#endif /* SHMK_DIRECTORY_H */
