/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The directory's table (directory.h): the portable group scan against
 * SSE2 and a byte-by-byte reference; random creates and removes against a
 * set kept here, with the EMPTY-or-DELETED rule of a remove and the purge
 * of DELETED slots by a rehash; a probe reaching every group; a table with
 * no EMPTY slot left; and an entry past the reach of a slot's 4-byte
 * offset.
 */
#include "internal.h"
#include "directory.h"
#include "harness.h"

static void scan_reference(const uint8_t *g, uint8_t tag, struct dir_masks *m)
{
	*m = (struct dir_masks){ 0 };
	for (unsigned int i = 0; i < DIR_GROUP; i++) {
		m->match |= (uint32_t)(g[i] == tag) << i;
		m->empty |= (uint32_t)(g[i] == DIR_CTRL_EMPTY) << i;
		m->avail |= (uint32_t)(g[i] >> 7) << i;
	}
}

static uint8_t ctrl_byte(void)
{
	switch (rnd_below(4)) {
	case 0:
		return DIR_CTRL_EMPTY;
	case 1:
		return DIR_CTRL_DELETED;
	case 2:
		return (uint8_t)rnd_below(0x80);
	default:
		return (uint8_t)rnd();
	}
}

static void group_scan(void)
{
	_Alignas(16) uint8_t g[DIR_GROUP];

	for (int k = 0; k < 200000; k++) {
		struct dir_masks a, b, ref;
		uint8_t tag = (uint8_t)rnd_below(0x80);

		for (unsigned int i = 0; i < DIR_GROUP; i++)
			g[i] = rnd_below(3) ? ctrl_byte() : tag;
		scan_reference(g, tag, &ref);
		dir_scan(g, tag, &a);
		dir_scan_portable(g, tag, &b);
		CHECK(a.match == ref.match && a.empty == ref.empty &&
		      a.avail == ref.avail);
		CHECK(b.match == ref.match && b.empty == ref.empty &&
		      b.avail == ref.avail);
	}
}

#define NAMES	8000

/* test_name() unlinks what a test of this process left under the name. */
static struct shmk *fresh(void)
{
	return test_open(test_name("dtab"), SHMK_CREATE | SHMK_EXCL, 1 << 20,
			 256 << 20);
}

static void done(struct shmk *h)
{
	CHECK_OK(shmk_close(h));
	test_name("dtab");
}

static void name_of(char *buf, size_t n, unsigned int i)
{
	snprintf(buf, n, "churn/%u", i);
}

static uint64_t count_ctrl(const struct shmk *h, uint8_t c)
{
	const uint8_t *ctrl = h->base + h->hdr->dir_table;
	uint64_t n = 0;

	for (uint64_t i = 0; i < h->hdr->dir_cap; i++)
		n += ctrl[i] == c;
	return n;
}

struct churn_counts {
	uint64_t deleted;	/* removes that left a DELETED slot */
	uint64_t reused;	/* creates that took one */
	uint64_t purges;	/* rehashes that dropped some */
};

/*
 * Creates, removes and lookups against the set kept here, with the live
 * count held just under 7/8 of the table up to 4096 slots: removes from
 * full groups leave DELETED slots, creates take them again, and the
 * rehash they force purges them. After every operation, dir_count and
 * dir_tombs match the control bytes.
 */
static void churn_round(struct churn_counts *n)
{
	static uint8_t live[NAMES];
	struct shmk *h = fresh();
	uint64_t nlive = 0;
	char name[32];

	memset(live, 0, sizeof(live));
	for (int op = 0; op < 12000; op++) {
		uint64_t cap = h->hdr->dir_cap, table = h->hdr->dir_table;
		uint64_t tombs = h->hdr->dir_tombs;
		uint64_t target = (cap < 4096 ? cap : 4096) * 7 / 8 - cap / 32;
		unsigned int i = (unsigned int)rnd_below(NAMES);
		uint32_t *o;
		size_t sz;
		int created;

		name_of(name, sizeof(name), i);
		if (rnd_below(4) == 0) {
			if (live[i]) {
				o = shmk_find(h, name, &sz);
				CHECK(o && *o == i && sz == 4 + i % 64);
			} else {
				CHECK_NULL_ERRNO(shmk_find(h, name, &sz), ENOENT);
			}
		} else if (nlive < target) {
			o = shmk_find_or_alloc(h, name, 4 + i % 64, &created);
			CHECK(o && created == !live[i]);
			if (created)
				*o = i;
			CHECK_EQ(*o, i);
			nlive += !live[i];
			live[i] = 1;
			if (h->hdr->dir_table != table) {
				CHECK_EQ(h->hdr->dir_tombs, 0);
				n->purges += tombs > 0;
			} else {
				n->reused += h->hdr->dir_tombs < tombs;
			}
		} else {
			CHECK_EQ(shmk_remove(h, name), live[i] ? 0 : -ENOENT);
			nlive -= live[i];
			live[i] = 0;
			n->deleted += h->hdr->dir_tombs > tombs;
		}
		CHECK_EQ(h->hdr->dir_count, nlive);
		if (h->hdr->dir_cap <= 4096) {
			CHECK_EQ(count_ctrl(h, DIR_CTRL_DELETED),
				 h->hdr->dir_tombs);
			CHECK_EQ(h->hdr->dir_cap - count_ctrl(h, DIR_CTRL_EMPTY) -
				 h->hdr->dir_tombs, nlive);
		}
		if (op % 4000 == 0)
			CHECK_OK(shmk_check(h));
	}
	CHECK_OK(shmk_check(h));
	done(h);
}

static void churn(void)
{
	struct churn_counts n = { 0 };

	for (int round = 0; round < 4; round++)
		churn_round(&n);
	printf("# churn: %llu removes left a DELETED slot, %llu creates took one, %llu rehashes purged some\n",
	       (unsigned long long)n.deleted, (unsigned long long)n.reused,
	       (unsigned long long)n.purges);
	fflush(stdout);
	CHECK(n.deleted > 100 && n.reused > 50 && n.purges >= 4);
}

/*
 * The probe's order reaches every group: a name's only full slot moved to
 * the last group its probe visits, every other slot DELETED. The lookup
 * and shmk_check() find it there; one group fewer would miss it.
 */
static void probe_reaches_all(void)
{
	struct shmk *h = fresh();
	uint64_t cap, groups, g, hash = shmk__dir_hash("kept", 4), from = 0;
	static uint8_t seen[1024];
	uint8_t *ctrl;
	uint32_t *offs;

	CHECK(shmk_find_or_alloc(h, "kept", 8, NULL));
	/* A larger table: 64 groups. */
	for (int i = 0; i < 1000; i++) {
		char name[32];

		snprintf(name, sizeof(name), "tmp/%d", i % 500);
		if (i < 500)
			CHECK(shmk_find_or_alloc(h, name, 8, NULL));
		else
			CHECK_OK(shmk_remove(h, name));
	}
	cap = h->hdr->dir_cap;
	groups = cap / DIR_GROUP;
	CHECK(groups >= 8 && groups <= sizeof(seen));
	ctrl = h->base + h->hdr->dir_table;
	offs = (uint32_t *)(ctrl + cap);
	memset(seen, 0, sizeof(seen));
	g = dir_group0(hash, cap);
	for (uint64_t n = 0; n < groups; n++, g = (g + n) & (groups - 1)) {
		CHECK(!seen[g]);
		seen[g] = 1;
		if (n == groups - 1)
			break;
	}
	for (uint64_t i = 0; i < cap; i++)
		if (!(ctrl[i] & 0x80))
			from = i;
	ctrl[g * DIR_GROUP + 5] = ctrl[from];
	offs[g * DIR_GROUP + 5] = offs[from];
	for (uint64_t i = 0; i < cap; i++)
		if (i != g * DIR_GROUP + 5)
			ctrl[i] = DIR_CTRL_DELETED;
	h->hdr->dir_count = 1;
	h->hdr->dir_tombs = cap - 1;
	CHECK(shmk_find(h, "kept", NULL));
	CHECK_NULL_ERRNO(shmk_find(h, "absent", NULL), ENOENT);
	CHECK_OK(shmk_check(h));
	done(h);
}

/*
 * Every EMPTY slot made DELETED (as a long run of removes from full
 * groups would): a lookup of an absent name visits every group and ends,
 * and the next create rehashes.
 */
static void no_empty_slot(void)
{
	struct shmk *h = fresh();
	uint8_t *ctrl;
	uint64_t n = 0;

	CHECK(shmk_find_or_alloc(h, "kept", 8, NULL));
	ctrl = h->base + h->hdr->dir_table;
	for (uint64_t i = 0; i < h->hdr->dir_cap; i++)
		if (ctrl[i] == DIR_CTRL_EMPTY) {
			ctrl[i] = DIR_CTRL_DELETED;
			n++;
		}
	h->hdr->dir_tombs = n;
	CHECK_OK(shmk_check(h));
	CHECK_NULL_ERRNO(shmk_find(h, "absent", NULL), ENOENT);
	CHECK(shmk_find(h, "kept", NULL));
	CHECK_ERR(shmk_remove(h, "absent"), ENOENT);
	CHECK(shmk_find_or_alloc(h, "new", 8, NULL));
	CHECK_EQ(h->hdr->dir_tombs, 0);
	CHECK_EQ(h->hdr->dir_count, 2);
	CHECK(shmk_find(h, "kept", NULL) && shmk_find(h, "new", NULL));
	CHECK_OK(shmk_check(h));
	done(h);
}

/*
 * A name whose block fits only past DIR_ENTRY_LIMIT: ENOMEM, and nothing
 * changed; a small one still fits below. Sparse: a block of 64 GiB whose
 * pages are never touched.
 */
static void past_the_reach(void)
{
	const char *seg = test_name("dreach");
	struct shmk_opts o = { .max_size = DIR_ENTRY_LIMIT + (64 << 20) };
	struct shmk_stats st0, st;
	struct shmk *h;
	void *hole, *low2;
	int r;

	r = shmk_open(seg, SHMK_CREATE | SHMK_EXCL, &o, &h);
	if (r == -EFBIG || r == -ENOMEM || r == -ENOSPC) {
		printf("# a name past 64 GiB: a reservation of %llu bytes refused (%s), not tested\n",
		       (unsigned long long)o.max_size, strerror(-r));
		return;
	}
	CHECK_OK(r);
	CHECK(shmk_find_or_alloc(h, "low", 8, NULL));
	hole = shmk_alloc(h, 64 << 10);
	CHECK(hole);
	if (!shmk_alloc(h, DIR_ENTRY_LIMIT)) {
		printf("# a name past 64 GiB: growing to it refused (%s), not tested\n",
		       strerror(errno));
		CHECK_OK(shmk_close(h));
		CHECK_OK(shmk_unlink(seg));
		return;
	}
	/* A hole of 64 KiB is all that is free below the limit. */
	shmk_free(h, hole);
	CHECK_OK(shmk_stats(h, &st0));
	CHECK_NULL_ERRNO(shmk_find_or_alloc(h, "high", 2 << 20, NULL), ENOMEM);
	CHECK_NULL_ERRNO(shmk_find(h, "high", NULL), ENOENT);
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.named_objects, 1);
	CHECK_EQ(st.used_bytes, st0.used_bytes);
	CHECK_OK(shmk_check(h));
	low2 = shmk_find_or_alloc(h, "low2", 8, NULL);
	CHECK(low2 && shmk_off(h, low2) < shmk_off(h, hole) + (64 << 10));
	CHECK(shmk_find(h, "low", NULL));
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
}

int main(void)
{
	test_seed();
	group_scan();
	churn();
	probe_reaches_all();
	no_empty_slot();
	past_the_reach();
	test_pass("dir_table");
	return 0;
}
