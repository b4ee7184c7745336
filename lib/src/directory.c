/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The named-object directory: an open-addressing hash table anchored in the
 * header, mapping a name to an entry. Its slots are a control byte each (the
 * hash's top seven bits, EMPTY or DELETED), scanned sixteen at a time, and a
 * 4-byte entry offset each (layout.h), so that a lookup among 100k names
 * reads about 640 KiB of table, not the entries of other names. An entry
 * and its object are one heap block:
 *
 *   [struct shmk_dir_entry, name, NUL][pad][DIR_OBJ_GUARD][object ...]
 *
 * so that removing the name frees the object, and shmk_free() refuses a
 * named object (its block header is the guard word).
 *
 * Writers change the table inside a transaction with the lock held, and
 * keep dir_seq odd meanwhile; lookups and iteration run lock-free against
 * dir_seq (recovery.c), which also serves read-only clients. The table grows by
 * rehashing into a new block allocated in the same transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "page_heap.h"
#include "tx.h"

static inline uint64_t hash_rotl(uint64_t x, unsigned int r)
{
	return x << r | x >> (64 - r);
}

/*
 * A word-at-a-time hash: eight bytes per step (unaligned loads through
 * memcpy, host byte order: a segment never leaves its machine), the
 * last partial word zero-padded, the length in the seed, then the murmur3
 * finalizer. Its top seven bits are the control bytes, and its low
 * bits place a name's first group: changing it needs a new
 * SHMK_LAYOUT_VERSION.
 */
uint64_t shmk__dir_hash(const char *name, size_t len)
{
	const uint64_t m = 0x9fb21c651e98df25ULL;
	uint64_t x = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * m), k;
	const char *p = name;
	size_t n = len;

	for (; n >= 8; n -= 8, p += 8) {
		memcpy(&k, p, 8);
		x = (hash_rotl(x, 23) ^ k) * m;
	}
	if (n) {
		k = 0;
		memcpy(&k, p, n);
		x = (hash_rotl(x, 23) ^ k) * m;
	}
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static int check_objname(const char *name, size_t *len)
{
	size_t n;

	if (!name)
		return -EINVAL;
	n = strnlen(name, SHMK_OBJ_NAME_MAX);
	if (n == 0 || n >= SHMK_OBJ_NAME_MAX)
		return -EINVAL;
	*len = n;
	return 0;
}

/*
 * shmk__dir_probe(), inlined into the lookup's read path. Groups are visited
 * in triangular order (g0, g0 + 1, g0 + 3, ...), which covers every group
 * of a power-of-two table; a name is absent once a group has an EMPTY slot.
 */
static inline __attribute__((always_inline)) int
dir_probe(const struct shmk *h, const char *name, size_t len, uint64_t hash,
	  struct dir_probe *pr)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t table = READ_ONCE(hd->dir_table), cap = READ_ONCE(hd->dir_cap);
	uint64_t he = READ_ONCE(hd->heap_end), gmask, g, ins = UINT64_MAX;
	const uint8_t *ctrl;
	const uint32_t *offs;
	uint8_t tag = dir_tag(hash);

	if (unlikely(!dir_table_ok(h, table, cap, he)))
		return -EUCLEAN;
	pr->table = table;
	pr->cap = cap;
	pr->he = he;
	ctrl = h->base + table;
	offs = (const void *)(h->base + DIR_OFFS(table, cap));
	gmask = cap / DIR_GROUP - 1;
	g = dir_group0(hash, cap);
	pr->entry = 0;
	for (uint64_t n = 0; n <= gmask; n++, g = (g + n) & gmask) {
		struct dir_masks m;

		dir_scan(ctrl + g * DIR_GROUP, tag, &m);
		for (uint32_t b = m.match; b; b &= b - 1) {
			uint64_t i = g * DIR_GROUP + (uint64_t)__builtin_ctz(b);
			uint64_t e = (uint64_t)READ_ONCE(offs[i]) * BLK_ALIGN;
			int l = dir_entry_check(h, e, he);

			if (unlikely(l < 0))
				return l;
			if ((size_t)l == len &&
			    memcmp(((const struct shmk_dir_entry *)
				    (h->base + e))->name, name, len) == 0) {
				pr->slot = i;
				pr->entry = e;
				return 0;
			}
		}
		if (ins == UINT64_MAX && m.avail) {
			ins = g * DIR_GROUP + (uint64_t)__builtin_ctz(m.avail);
			pr->was_deleted = !(m.empty & (m.avail & -m.avail));
		}
		if (m.empty)
			break;
	}
	pr->slot = ins;
	return -ENOENT;
}

int shmk__dir_probe(const struct shmk *h, const char *name, size_t len,
		    uint64_t hash, struct dir_probe *pr)
{
	return dir_probe(h, name, len, hash, pr);
}

/* A fresh table of @cap slots at @t: every slot EMPTY. */
static void dir_table_clear(struct shmk *h, uint64_t t, uint64_t cap)
{
	memset(h->base + t, DIR_CTRL_EMPTY, cap);
	memset(h->base + DIR_OFFS(t, cap), 0, cap * 4);
}

int shmk__dir_init(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t t;
	int r = shmk__heap_alloc(h, dir_table_bytes(DIR_MIN_CAP), BLK_ALIGN,
				 false, &t);

	if (r)
		return r;
	dir_table_clear(h, t, DIR_MIN_CAP);
	hd->dir_table = t;
	hd->dir_cap = DIR_MIN_CAP;
	hd->dir_count = 0;
	hd->dir_tombs = 0;
	return 0;
}

/*
 * Slot @i's control byte and offset in the table @pr checked, written
 * through the undo log: each lies in a logged word of the table.
 */
static void dir_set_ctrl(struct shmk *h, const struct dir_probe *pr,
			 uint64_t i, uint8_t c)
{
	uint64_t off = pr->table + (i & ~7ULL), w = shmk__rd(h, off);

	memcpy((uint8_t *)&w + (i & 7), &c, 1);
	shmk__tx_set(h, off, w);
}

static void dir_set_off(struct shmk *h, const struct dir_probe *pr,
			uint64_t i, uint32_t o)
{
	uint64_t off = DIR_OFFS(pr->table, pr->cap) + i * 4;
	uint64_t w = shmk__rd(h, off & ~7ULL);

	memcpy((uint8_t *)&w + (off & 7), &o, 4);
	shmk__tx_set(h, off & ~7ULL, w);
}

/*
 * Move every entry of the table at @old (@ocap slots, checked against
 * @he) to a new table of @cap slots (in a transaction), hashing each name
 * again. Every entry is checked on the way, and the new table's size
 * bounds the copy.
 */
static int dir_rehash(struct shmk *h, uint64_t old, uint64_t ocap,
		      uint64_t he, uint64_t cap)
{
	const uint32_t *ooffs = (const void *)(h->base + DIR_OFFS(old, ocap));
	const uint8_t *octrl = h->base + old;
	uint8_t *nctrl;
	uint32_t *noffs;
	uint64_t t;
	int r = shmk__heap_alloc(h, dir_table_bytes(cap), BLK_ALIGN, true, &t);

	if (r)
		return r;
	/* Plain stores: a block allocated in this transaction (tx.h). */
	dir_table_clear(h, t, cap);
	nctrl = h->base + t;
	noffs = (void *)(h->base + DIR_OFFS(t, cap));
	for (uint64_t i = 0, n = 0; i < ocap; i++) {
		const struct shmk_dir_entry *de;
		uint64_t e = (uint64_t)READ_ONCE(ooffs[i]) * BLK_ALIGN, hash, g, k;
		struct dir_masks m;
		int len;

		if (READ_ONCE(octrl[i]) & 0x80)
			continue;
		len = dir_entry_check(h, e, he);
		/* More entries than dir_count said: the new table is full. */
		if (len < 0 || ++n >= cap) {
			shmk__corrupt(h);
			return -EUCLEAN;
		}
		de = (const void *)(h->base + e);
		hash = shmk__dir_hash(de->name, (size_t)len);
		g = dir_group0(hash, cap);
		for (k = 1;; g = (g + k++) & (cap / DIR_GROUP - 1)) {
			dir_scan(nctrl + g * DIR_GROUP, 0, &m);
			if (m.empty)
				break;
		}
		g = g * DIR_GROUP + (uint64_t)__builtin_ctz(m.empty);
		nctrl[g] = dir_tag(hash);
		noffs[g] = (uint32_t)(e / BLK_ALIGN);
	}
	tx_set_hdr(h, dir_table, t);
	tx_set_hdr(h, dir_cap, cap);
	tx_set_hdr(h, dir_tombs, 0);
	return shmk__heap_free(h, old);
}

/*
 * The header's words are read once, checked, and only the checked copies
 * used: another client may change them meanwhile.
 */
static int dir_insert(struct shmk *h, const char *name, size_t len,
		      uint64_t hash, uint64_t size, uint64_t *obj)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t table = READ_ONCE(hd->dir_table), cap = READ_ONCE(hd->dir_cap);
	uint64_t he = READ_ONCE(hd->heap_end), count = READ_ONCE(hd->dir_count);
	uint64_t tombs = READ_ONCE(hd->dir_tombs), delta = dir_obj_delta(len), e;
	struct shmk_dir_entry *de;
	struct dir_probe pr;
	int r;

	shmk__dir_changing(h);
	/* The counts bound the growth below, the table the copy. */
	if (!dir_table_ok(h, table, cap, he) || count > cap || tombs > cap) {
		shmk__corrupt(h);
		return -EUCLEAN;
	}
	/* At most 7/8 of the slots full or deleted; at most half after. */
	if ((count + tombs + 1) * 8 > cap * 7) {
		uint64_t ncap = cap;

		while ((count + 1) * 2 > ncap)
			ncap *= 2;
		r = dir_rehash(h, table, cap, he, ncap);
		if (!r)
			tombs = 0;
		else if (r == -EUCLEAN || count + tombs + 1 >= cap)
			return r;
	}
	r = dir_probe(h, name, len, hash, &pr);
	if (r != -ENOENT)
		return r ? r : -EEXIST;
	if (pr.slot == UINT64_MAX)
		return -ENOMEM;
	if (size > h->map_size)
		return -ENOMEM;
	r = shmk__heap_alloc(h, delta + size, BLK_ALIGN, true, &e);
	if (r)
		return r;
	/* Past the reach of a slot's 4-byte offset (layout.h). */
	if (e >= DIR_ENTRY_LIMIT) {
		r = shmk__heap_free(h, e);
		return r ? r : -ENOMEM;
	}
	/* Plain stores: a block allocated in this transaction (tx.h). */
	de = (void *)(h->base + e);
	de->magic = DIR_ENTRY_MAGIC ^ (uint32_t)(e / BLK_ALIGN);
	de->name_len = (uint32_t)len;
	de->size = size;
	memcpy(de->name, name, len);
	de->name[len] = '\0';
	*shmk__w(h, e + delta - 8) = DIR_OBJ_GUARD;
	memset(h->base + e + delta, 0, size);

	if (pr.was_deleted && tombs)
		tx_set_hdr(h, dir_tombs, tombs - 1);
	dir_set_off(h, &pr, pr.slot, (uint32_t)(e / BLK_ALIGN));
	dir_set_ctrl(h, &pr, pr.slot, dir_tag(hash));
	tx_set_hdr(h, dir_count, count + 1);
	*obj = e + delta;
	return 0;
}

int shmk__dir_remove_locked(struct shmk *h, const char *name)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t count = READ_ONCE(hd->dir_count);
	uint64_t tombs = READ_ONCE(hd->dir_tombs);
	struct dir_probe pr;
	struct dir_masks m;
	size_t len;
	int r = check_objname(name, &len);

	if (r)
		return r;
	r = dir_probe(h, name, len, shmk__dir_hash(name, len), &pr);
	if (r)
		return r;
	shmk__dir_changing(h);
	/*
	 * A group with an EMPTY slot was never full since the table was
	 * made, so no probe went on past it: the slot can be EMPTY again.
	 */
	dir_scan(h->base + pr.table + (pr.slot & ~(DIR_GROUP - 1ULL)), 0, &m);
	if (m.empty) {
		dir_set_ctrl(h, &pr, pr.slot, DIR_CTRL_EMPTY);
	} else {
		dir_set_ctrl(h, &pr, pr.slot, DIR_CTRL_DELETED);
		tx_set_hdr(h, dir_tombs, tombs + 1);
	}
	tx_set_hdr(h, dir_count, count ? count - 1 : 0);
	return shmk__heap_free(h, pr.entry);
}

/* ---- public API -------------------------------------------------------- */

struct find_args {
	const char *name;
	size_t len;
	uint64_t hash;
	uint64_t obj;
	uint64_t size;
};

/*
 * The size of the object at entry @e (name @len bytes), which must lie
 * inside the entry's block and below @he, a checked heap end: the caller
 * gets a pointer and a size to use, whatever a client wrote in the entry.
 * -EUCLEAN otherwise.
 */
static inline __attribute__((always_inline)) int
obj_size(const struct shmk *h, uint64_t e, uint64_t len, uint64_t he,
	 uint64_t *size)
{
	uint64_t w = READ_ONCE(*shmk__w(h, e - BLK_HDR));
	uint64_t delta = dir_obj_delta(len);
	uint64_t s = READ_ONCE(((const struct shmk_dir_entry *)
				(h->base + e))->size);

	if (blk_tag(w) != BLK_TAG_USED || blk_size(w) < BLK_HDR + delta ||
	    he < e || blk_size(w) > he - e ||
	    s > blk_size(w) - BLK_HDR - delta)
		return -EUCLEAN;
	*size = s;
	return 0;
}

static inline __attribute__((always_inline)) int
find_once(struct shmk *h, struct find_args *a)
{
	struct dir_probe pr;
	int r = dir_probe(h, a->name, a->len, a->hash, &pr);

	if (r)
		return r;
	r = obj_size(h, pr.entry, a->len, pr.he, &a->size);
	if (r)
		return r;
	a->obj = pr.entry + dir_obj_delta(a->len);
	return 0;
}

static int find_read(struct shmk *h, void *arg)
{
	return find_once(h, arg);
}

void *shmk_find(struct shmk *h, const char *name, size_t *size)
{
	struct find_args a = { .name = name };
	uint64_t seq;
	int r;

	if (!h)
		return shmk__fail_ptr(-EINVAL);
	r = check_objname(name, &a.len);
	if (r)
		return shmk__fail_ptr(r);
	a.hash = shmk__dir_hash(name, a.len);
	/*
	 * The first try inline, between two loads of dir_seq (see
	 * shmk__read(), which retries, waits or takes the lock).
	 */
	seq = __atomic_load_n(&h->hdr->dir_seq, __ATOMIC_ACQUIRE);
	if (likely(!(seq & 1) && !READ_ONCE(h->hdr->unrecoverable))) {
		r = find_once(h, &a);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (likely(__atomic_load_n(&h->hdr->dir_seq,
					   __ATOMIC_RELAXED) == seq))
			goto done;
	}
	r = shmk__read(h, &h->hdr->dir_seq, find_read, &a);
done:
	if (r)
		return shmk__fail_ptr(r);
	if (size)
		*size = a.size;
	return h->base + a.obj;
}

void *shmk_find_or_alloc(struct shmk *h, const char *name, size_t size,
			 int *created)
{
	struct find_args a = { .name = name };
	struct dir_probe pr;
	int r, made = 0;

	if (created)
		*created = 0;
	if (!h)
		return shmk__fail_ptr(-EINVAL);
	r = check_objname(name, &a.len);
	if (!r)
		r = shmk__writable(h);
	if (!r)
		r = shmk__lock(h);
	if (r)
		return shmk__fail_ptr(r);
	a.hash = shmk__dir_hash(name, a.len);
	r = shmk__dir_probe(h, name, a.len, a.hash, &pr);
	if (r == 0) {
		r = find_read(h, &a);
		if (!r && a.size < size)
			r = -EEXIST;
	} else if (r == -ENOENT) {
		shmk__tx_begin(h, TX_DIR_CREATE, size);
		r = dir_insert(h, name, a.len, a.hash, size, &a.obj);
		shmk__tx_commit(h);
		made = !r;
	}
	shmk__unlock(h);
	if (r)
		return shmk__fail_ptr(r);
	if (created)
		*created = made;
	return h->base + a.obj;
}

int shmk_remove(struct shmk *h, const char *name)
{
	SHMK_KEEP_ERRNO;
	struct shmk_hdr *hd;
	struct dir_probe pr;
	size_t len;
	int r;

	if (!h)
		return -EINVAL;
	r = check_objname(name, &len);
	if (!r)
		r = shmk__writable(h);
	if (!r)
		r = shmk__lock(h);
	if (r)
		return r;
	hd = h->hdr;
	r = shmk__dir_probe(h, name, len, shmk__dir_hash(name, len), &pr);
	if (r == 0) {
		/* The intent: recovery redoes the remove by name. */
		memcpy(hd->tx_name, name, len + 1);
		shmk__tx_begin(h, TX_DIR_REMOVE, pr.entry);
		r = shmk__dir_remove_locked(h, name);
		shmk__tx_commit(h);
	}
	shmk__unlock(h);
	return r;
}

struct snap_item {
	uint64_t obj;
	uint64_t size;
	size_t name;		/* offset in snap.names */
};

struct snap {
	struct snap_item *items;
	size_t n, cap;
	char *names;
	size_t nlen, ncap;
};

static int snap_add(struct snap *s, const char *name, size_t len,
		    uint64_t obj, uint64_t size)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		void *p = realloc(s->items, cap * sizeof(*s->items));

		if (!p)
			return -ENOMEM;
		s->items = p;
		s->cap = cap;
	}
	if (s->nlen + len + 1 > s->ncap) {
		size_t cap = s->ncap ? s->ncap * 2 : 4096;
		void *p;

		while (cap < s->nlen + len + 1)
			cap *= 2;
		p = realloc(s->names, cap);
		if (!p)
			return -ENOMEM;
		s->names = p;
		s->ncap = cap;
	}
	memcpy(s->names + s->nlen, name, len);
	s->names[s->nlen + len] = '\0';
	s->items[s->n++] = (struct snap_item){ obj, size, s->nlen };
	s->nlen += len + 1;
	return 0;
}

/* Copy the whole directory (a read function: restartable, bounded). */
static int snap_read(struct shmk *h, void *arg)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t table = READ_ONCE(hd->dir_table), cap = READ_ONCE(hd->dir_cap);
	uint64_t he = READ_ONCE(hd->heap_end);
	const uint32_t *offs;
	const uint8_t *ctrl;
	struct snap *s = arg;

	s->n = 0;
	s->nlen = 0;
	if (!dir_table_ok(h, table, cap, he))
		return -EUCLEAN;
	ctrl = h->base + table;
	offs = (const void *)(h->base + DIR_OFFS(table, cap));
	for (uint64_t i = 0; i < cap; i++) {
		uint64_t e, size;
		const struct shmk_dir_entry *de;
		int len, r;

		if (READ_ONCE(ctrl[i]) & 0x80)
			continue;
		e = (uint64_t)READ_ONCE(offs[i]) * BLK_ALIGN;
		len = dir_entry_check(h, e, he);
		if (len < 0)
			return len;
		de = (const void *)(h->base + e);
		r = obj_size(h, e, (uint64_t)len, he, &size);
		if (!r)
			r = snap_add(s, de->name, (size_t)len,
				     e + dir_obj_delta((uint64_t)len), size);
		if (r)
			return r;
	}
	return 0;
}

int shmk_foreach(struct shmk *h,
		 int (*fn)(const char *name, void *ptr, size_t size, void *arg),
		 void *arg)
{
	SHMK_KEEP_ERRNO;
	struct snap s = { 0 };
	int r;

	if (!h || !fn)
		return -EINVAL;
	r = shmk__read(h, &h->hdr->dir_seq, snap_read, &s);
	for (size_t i = 0; !r && i < s.n; i++)
		r = fn(s.names + s.items[i].name, h->base + s.items[i].obj,
		       s.items[i].size, arg);
	if (!r)
		r = (int)s.n;
	free(s.items);
	free(s.names);
	return r;
}
