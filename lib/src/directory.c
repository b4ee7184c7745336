/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The named-object directory: an open-addressing hash table (linear probing,
 * tombstones) anchored in the header, mapping a name to an entry. An entry
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
 * finalizer. Stored in entries and slots: changing it needs a new
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

/* shmk__dir_probe(), inlined into the lookup's read path. */
static inline __attribute__((always_inline)) int
dir_probe(const struct shmk *h, const char *name, size_t len, uint64_t hash,
	  struct dir_probe *pr)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t table = READ_ONCE(hd->dir_table), cap = READ_ONCE(hd->dir_cap);
	uint64_t he = READ_ONCE(hd->heap_end), mask, i, ins = UINT64_MAX;
	const struct shmk_dir_slot *s;

	if (!dir_table_ok(h, table, cap, he))
		return -EUCLEAN;
	s = (const void *)(h->base + table);
	mask = cap - 1;
	pr->entry = 0;
	i = hash & mask;
	for (uint64_t n = 0; n < cap; n++, i = (i + 1) & mask) {
		uint64_t e = READ_ONCE(s[i].entry);

		if (e == DIR_SLOT_EMPTY) {
			if (ins == UINT64_MAX)
				ins = i;
			break;
		}
		if (e == DIR_SLOT_TOMB) {
			if (ins == UINT64_MAX)
				ins = i;
			continue;
		}
		if (READ_ONCE(s[i].hash) == hash &&
		    dir_entry_check(h, e, he) == (int)len &&
		    memcmp(((const struct shmk_dir_entry *)(h->base + e))->name,
			   name, len) == 0) {
			pr->slot = i;
			pr->entry = e;
			return 0;
		}
	}
	pr->slot = ins;
	return -ENOENT;
}

int shmk__dir_probe(const struct shmk *h, const char *name, size_t len,
		    uint64_t hash, struct dir_probe *pr)
{
	return dir_probe(h, name, len, hash, pr);
}

int shmk__dir_init(struct shmk *h)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t t;
	int r = shmk__heap_alloc(h, DIR_MIN_CAP * SLOT_SIZE, BLK_ALIGN, false,
				 &t);

	if (r)
		return r;
	memset(h->base + t, 0, DIR_MIN_CAP * SLOT_SIZE);
	hd->dir_table = t;
	hd->dir_cap = DIR_MIN_CAP;
	hd->dir_count = 0;
	hd->dir_tombs = 0;
	return 0;
}

/* Move every entry to a new table of @cap slots (in a transaction). */
static int dir_rehash(struct shmk *h, uint64_t cap)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t old = hd->dir_table, ocap = hd->dir_cap, t;
	const struct shmk_dir_slot *os;
	struct shmk_dir_slot *ns;
	int r = shmk__heap_alloc(h, cap * SLOT_SIZE, BLK_ALIGN, true, &t);

	if (r)
		return r;
	/* Plain stores: a block allocated in this transaction (tx.h). */
	ns = (void *)(h->base + t);
	os = (const void *)(h->base + old);
	memset(ns, 0, cap * SLOT_SIZE);
	for (uint64_t i = 0, n = 0; i < ocap; i++) {
		uint64_t j;

		if (os[i].entry <= DIR_SLOT_TOMB)
			continue;
		/* More entries than dir_count said: the new table is full. */
		if (++n >= cap) {
			shmk__corrupt(h);
			return -EUCLEAN;
		}
		for (j = os[i].hash & (cap - 1); ns[j].entry;
		     j = (j + 1) & (cap - 1))
			;
		ns[j] = os[i];
	}
	tx_set_hdr(h, dir_table, t);
	tx_set_hdr(h, dir_cap, cap);
	tx_set_hdr(h, dir_tombs, 0);
	return shmk__heap_free(h, old);
}

static int dir_insert(struct shmk *h, const char *name, size_t len,
		      uint64_t hash, uint64_t size, uint64_t *obj)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t delta = dir_obj_delta(len), e, slot;
	struct shmk_dir_entry *de;
	struct dir_probe pr;
	int r;

	shmk__dir_changing(h);
	/* The counts bound the growth below, the table the copy. */
	if (!dir_table_ok(h, hd->dir_table, hd->dir_cap, hd->heap_end) ||
	    hd->dir_count > hd->dir_cap || hd->dir_tombs > hd->dir_cap) {
		shmk__corrupt(h);
		return -EUCLEAN;
	}
	if ((hd->dir_count + hd->dir_tombs + 1) * 4 > hd->dir_cap * 3) {
		uint64_t cap = hd->dir_cap;

		while ((hd->dir_count + 1) * 2 > cap)
			cap *= 2;
		r = dir_rehash(h, cap);
		if (r && hd->dir_count + hd->dir_tombs + 1 >= hd->dir_cap)
			return r;
	}
	r = shmk__dir_probe(h, name, len, hash, &pr);
	if (r != -ENOENT)
		return r ? r : -EEXIST;
	if (pr.slot == UINT64_MAX)
		return -ENOMEM;
	if (size > h->map_size)
		return -ENOMEM;
	r = shmk__heap_alloc(h, delta + size, BLK_ALIGN, true, &e);
	if (r)
		return r;
	/* Plain stores: a block allocated in this transaction (tx.h). */
	de = (void *)(h->base + e);
	de->magic = DIR_ENTRY_MAGIC ^ e;
	de->hash = hash;
	de->size = size;
	de->name_len = (uint32_t)len;
	de->pad = 0;
	memcpy(de->name, name, len);
	de->name[len] = '\0';
	*shmk__w(h, e + delta - 8) = DIR_OBJ_GUARD;
	memset(h->base + e + delta, 0, size);

	slot = hd->dir_table + pr.slot * SLOT_SIZE;
	if (shmk__rd(h, slot) == DIR_SLOT_TOMB)
		tx_set_hdr(h, dir_tombs, hd->dir_tombs - 1);
	shmk__tx_set(h, slot + 8, hash);
	shmk__tx_set(h, slot, e);
	tx_set_hdr(h, dir_count, hd->dir_count + 1);
	*obj = e + delta;
	return 0;
}

int shmk__dir_remove_locked(struct shmk *h, const char *name)
{
	struct shmk_hdr *hd = h->hdr;
	uint64_t slot, next;
	struct dir_probe pr;
	size_t len;
	int r = check_objname(name, &len);

	if (r)
		return r;
	r = shmk__dir_probe(h, name, len, shmk__dir_hash(name, len), &pr);
	if (r)
		return r;
	shmk__dir_changing(h);
	slot = hd->dir_table + pr.slot * SLOT_SIZE;
	next = hd->dir_table + ((pr.slot + 1) & (hd->dir_cap - 1)) * SLOT_SIZE;
	if (shmk__rd(h, next) == DIR_SLOT_EMPTY) {
		shmk__tx_set(h, slot, DIR_SLOT_EMPTY);
	} else {
		shmk__tx_set(h, slot, DIR_SLOT_TOMB);
		tx_set_hdr(h, dir_tombs, hd->dir_tombs + 1);
	}
	tx_set_hdr(h, dir_count, hd->dir_count - 1);
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
 * inside the entry's block: the caller gets a pointer and a size to use,
 * whatever a client wrote in the entry. -EUCLEAN otherwise.
 */
static int obj_size(const struct shmk *h, uint64_t e, uint64_t len,
		    uint64_t *size)
{
	uint64_t w = READ_ONCE(*shmk__w(h, e - BLK_HDR));
	uint64_t delta = dir_obj_delta(len), he = READ_ONCE(h->hdr->heap_end);
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
	r = obj_size(h, pr.entry, a->len, &a->size);
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
	const struct shmk_dir_slot *slots;
	struct snap *s = arg;

	s->n = 0;
	s->nlen = 0;
	if (!dir_table_ok(h, table, cap, he))
		return -EUCLEAN;
	slots = (const void *)(h->base + table);
	for (uint64_t i = 0; i < cap; i++) {
		uint64_t e = READ_ONCE(slots[i].entry);
		const struct shmk_dir_entry *de;
		uint64_t size;
		int len, r;

		if (e <= DIR_SLOT_TOMB)
			continue;
		len = dir_entry_check(h, e, he);
		if (len < 0)
			return len;
		de = (const void *)(h->base + e);
		r = obj_size(h, e, (uint64_t)len, &size);
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
