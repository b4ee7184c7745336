/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Alignment: 16 bytes by default, shmk_alloc_aligned() for powers of two
 * (pointers aligned up to 2 MiB in every process, offsets beyond), bad
 * alignments refused, aligned blocks that do not overlap and free cleanly.
 */
#include "harness.h"

#define BASE_ALIGN	(2UL << 20)

static const char *seg;

struct rec {
	uint64_t off;
	size_t size;
};

static int child_checks(void *arg)
{
	const struct rec *r = arg;
	struct shmk *h;

	if (shmk_open(seg, 0, NULL, &h))
		return 2;
	/* Any base of this process is 2 MiB aligned: pointers stay aligned. */
	if ((uintptr_t)shmk_base(h) % BASE_ALIGN)
		return 3;
	for (int i = 0; r[i].size; i++)
		if (((uint8_t *)shmk_ptr(h, r[i].off))[0] != (uint8_t)i)
			return 4;
	return shmk_close(h) ? 5 : 0;
}

int main(void)
{
	static struct rec recs[64];
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 100, 4095, 4096,
					 70000 };
	struct shmk *h, *h2;
	int nrec = 0;

	test_seed();
	seg = test_name("align");
	h = test_open(seg, SHMK_CREATE, 1 << 20, 256 << 20);
	CHECK_EQ((uintptr_t)shmk_base(h) % BASE_ALIGN, 0);

	/* Default alignment */
	for (int i = 0; i < 2000; i++) {
		void *p = shmk_alloc(h, rnd_below(3000));

		CHECK(p && (uintptr_t)p % 16 == 0);
		if (rnd_below(2))
			shmk_free(h, p);
	}

	/* Bad alignments */
	CHECK_NULL_ERRNO(shmk_alloc_aligned(h, 10, 0), EINVAL);
	CHECK_NULL_ERRNO(shmk_alloc_aligned(h, 10, 24), EINVAL);
	CHECK_NULL_ERRNO(shmk_alloc_aligned(h, 10, 3), EINVAL);
	CHECK_NULL_ERRNO(shmk_alloc_aligned(h, 10, 1ULL << 40), ENOMEM);

	/* Small alignments mean 16 */
	for (size_t a = 1; a <= 16; a *= 2) {
		void *p = shmk_alloc_aligned(h, 33, a);

		CHECK(p && (uintptr_t)p % 16 == 0);
	}

	/* Every power of two up to 1 MiB, every size */
	for (size_t a = 32; a <= (1 << 20); a *= 2) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			uint8_t *p = shmk_alloc_aligned(h, sizes[s], a);

			CHECK(p != NULL);
			CHECK_EQ((uintptr_t)p % a, 0);
			CHECK((size_t)shmk_usable_size(h, p) >= sizes[s]);
			memset(p, 0xa5, sizes[s]);
			if (nrec < 63 && rnd_below(3) == 0) {
				p[0] = (uint8_t)nrec;
				recs[nrec++] = (struct rec){ shmk_off(h, p),
							     sizes[s] + 1 };
			} else {
				shmk_free(h, p);
			}
		}
		CHECK_OK(shmk_check(h));
	}

	/* 2 MiB: still the pointer; 4 MiB: the offset */
	{
		uint8_t *p = shmk_alloc_aligned(h, 1000, BASE_ALIGN);
		uint8_t *q = shmk_alloc_aligned(h, 1000, 2 * BASE_ALIGN);

		CHECK(p && (uintptr_t)p % BASE_ALIGN == 0);
		CHECK(q && shmk_off(h, q) % (2 * BASE_ALIGN) == 0);
		shmk_free(h, p);
		shmk_free(h, q);
	}

	/* Another handle here (elsewhere) and another process */
	CHECK_OK(shmk_open(seg, 0, NULL, &h2));
	CHECK_EQ((uintptr_t)shmk_base(h2) % BASE_ALIGN, 0);
	for (int i = 0; i < nrec; i++)
		CHECK_EQ(((uint8_t *)shmk_ptr(h2, recs[i].off))[0], i);
	CHECK_OK(shmk_close(h2));
	CHECK_EQ(test_wait(test_fork(child_checks, recs)), 0);

	for (int i = 0; i < nrec; i++)
		shmk_free(h, shmk_ptr(h, recs[i].off));
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_close(h));
	test_pass("align");
	return 0;
}
