/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82f63b78), as used by iSCSI,
 * ext4 and btrfs: the image format's checksum (image.c).
 *
 * On x86-64 with SSE4.2 the crc32 instruction does eight bytes a step; its
 * latency (3 cycles) rather than its throughput bounds one stream, so long
 * buffers run three interleaved streams over three equal thirds and join
 * them with the shift operator below (multiplication by x^(8n) modulo the
 * polynomial, from a small table of x^(2^k)). Elsewhere a slicing-by-8
 * table, built once, does eight bytes a step.
 *
 * shmk__crc32c(crc, buf, len) continues @crc (0 to start) over @buf: the
 * conventional pre- and post-inversion are inside, so that
 * crc(crc(0, a), b) == crc(0, a || b).
 */
#include <pthread.h>
#include <string.h>

#include "image.h"

#define POLY		0x82f63b78U

static uint32_t tbl[8][256];
static uint32_t x2n[64];	/* x^(2^k) mod P, k = 0..63 */
static pthread_once_t tbl_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		tbl[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int s = 1; s < 8; s++)
			tbl[s][i] = (tbl[s - 1][i] >> 8) ^
				    tbl[0][tbl[s - 1][i] & 0xff];
	/* In the reflected domain x^0 is 0x80000000, x^1 is 0x40000000. */
	x2n[0] = 0x40000000U;
	for (int k = 1; k < 64; k++) {
		uint32_t a = x2n[k - 1], b = a, p = 0;

		/* p = a * b mod P (reflected) */
		for (uint32_t m = 0x80000000U; m; m >>= 1) {
			if (b & m)
				p ^= a;
			a = a & 1 ? (a >> 1) ^ POLY : a >> 1;
		}
		x2n[k] = p;
	}
}

/* a * b modulo P, reflected. */
static uint32_t gf_mul(uint32_t a, uint32_t b)
{
	uint32_t p = 0;

	for (uint32_t m = 0x80000000U; m; m >>= 1) {
		if (b & m)
			p ^= a;
		a = a & 1 ? (a >> 1) ^ POLY : a >> 1;
	}
	return p;
}

/* The raw (un-inverted) register @crc advanced over @len zero bytes. */
static uint32_t shift_zeros(uint32_t crc, uint64_t len)
{
	uint64_t bits = len * 8;

	for (int k = 0; bits; k++, bits >>= 1)
		if (bits & 1)
			crc = gf_mul(crc, x2n[k]);
	return crc;
}

static uint32_t sw_raw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n && ((uintptr_t)p & 7)) {
		c = (c >> 8) ^ tbl[0][(c ^ *p++) & 0xff];
		n--;
	}
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		if (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
			w = __builtin_bswap64(w);
		w ^= c;
		c = tbl[7][w & 0xff] ^ tbl[6][(w >> 8) & 0xff] ^
		    tbl[5][(w >> 16) & 0xff] ^ tbl[4][(w >> 24) & 0xff] ^
		    tbl[3][(w >> 32) & 0xff] ^ tbl[2][(w >> 40) & 0xff] ^
		    tbl[1][(w >> 48) & 0xff] ^ tbl[0][w >> 56];
	}
	while (n--)
		c = (c >> 8) ^ tbl[0][(c ^ *p++) & 0xff];
	return c;
}

#if defined(__x86_64__)
#define HW_STRIPE	(32u << 10)	/* bytes per stream per round */

__attribute__((target("sse4.2")))
static uint32_t hw_one(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t c64 = c;

	while (n && ((uintptr_t)p & 7)) {
		c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
		n--;
	}
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c64 = __builtin_ia32_crc32di(c64, w);
	}
	while (n--)
		c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
	return (uint32_t)c64;
}

/* Three streams over [p, p+3s): each s bytes, s a multiple of 8. */
__attribute__((target("sse4.2")))
static uint32_t hw_three(uint32_t c, const uint8_t *p, size_t s)
{
	uint64_t a = c, b = 0, d = 0;
	const uint8_t *q = p + s, *r = p + 2 * s;

	for (size_t i = 0; i < s; i += 8) {
		uint64_t x, y, z;

		memcpy(&x, p + i, 8);
		memcpy(&y, q + i, 8);
		memcpy(&z, r + i, 8);
		a = __builtin_ia32_crc32di(a, x);
		b = __builtin_ia32_crc32di(b, y);
		d = __builtin_ia32_crc32di(d, z);
	}
	/* crc(A||B||D) = shift(shift(a, s) ^ b, s) ^ d for raw registers. */
	a = shift_zeros((uint32_t)a, s) ^ (uint32_t)b;
	return shift_zeros((uint32_t)a, s) ^ (uint32_t)d;
}

static uint32_t hw_raw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n >= 3 * HW_STRIPE) {
		c = hw_three(c, p, HW_STRIPE);
		p += 3 * HW_STRIPE;
		n -= 3 * HW_STRIPE;
	}
	return hw_one(c, p, n);
}

static int have_hw = -1;
#endif

uint32_t shmk__crc32c(uint32_t crc, const void *buf, size_t len)
{
	uint32_t c = ~crc;

	pthread_once(&tbl_once, build_tables);
#if defined(__x86_64__)
	if (have_hw < 0) {
		__builtin_cpu_init();
		have_hw = __builtin_cpu_supports("sse4.2") &&
			  !getenv("SHMK_CRC32C_SOFT");
	}
	if (have_hw)
		return ~hw_raw(c, buf, len);
#endif
	return ~sw_raw(c, buf, len);
}

/* The software path alone, for the tests. */
uint32_t shmk__crc32c_soft(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&tbl_once, build_tables);
	return ~sw_raw(~crc, buf, len);
}
