/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Deterministic allocation traces for alloc_bench: every implementation
 * replays the very same list of operations.
 *
 * A trace is a list of ops on slots: { slot, size } allocates size bytes
 * into slot, { slot, 0 } frees the block in slot. Slots are reused, so a
 * replayer needs an array of trace.nslots pointers. A trace has three
 * phases:
 *
 *   ramp    grow to @live blocks, with one free for every four allocs
 *   steady  @steady ops, each an alloc or a free of a uniformly chosen live
 *           block with even odds, the live count held within +-10% of @live
 *   drain   free what is left, in random order
 *
 * Sizes are log-uniform between @lo and @hi: an octave is picked uniformly,
 * then a size uniformly within it.
 *
 * Header-only, usable from C and C++; all memory is allocated with mmap so
 * that it stays out of the malloc heap that one of the replayers measures.
 */
#ifndef ALLOC_TRACE_H
#define ALLOC_TRACE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct trace_op {
	uint32_t slot;
	uint32_t size;		/* 0: free the block in slot */
};

struct trace {
	struct trace_op *ops;
	size_t nops;
	size_t map_bytes;		/* of the ops mapping */
	uint32_t nslots;
	uint64_t peak_live_bytes;	/* requested bytes, at the peak */
};

/* splitmix64: small, fast and good enough for a trace. */
static inline uint64_t trace_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (the modulo bias is negligible for our n). */
static inline uint64_t trace_below(uint64_t *s, uint64_t n)
{
	return trace_rand(s) % n;
}

static inline uint32_t trace_size(uint64_t *s, uint32_t lo, uint32_t hi)
{
	unsigned int elo = 31 - __builtin_clz(lo), ehi = 31 - __builtin_clz(hi);
	unsigned int e;
	uint64_t base, v;

	if (ehi == elo)
		return lo + (uint32_t)trace_below(s, hi - lo + 1);
	e = elo + (unsigned int)trace_below(s, ehi - elo);
	base = 1ULL << e;
	v = base + trace_below(s, base);
	if (v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	return (uint32_t)v;
}

static inline void *trace_mmap(size_t bytes)
{
	void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static inline void trace_free(struct trace *t)
{
	if (t->ops)
		munmap(t->ops, t->map_bytes);
	memset(t, 0, sizeof(*t));
}

/*
 * Build a trace; returns 0, or -1 when out of memory. @live >= 10.
 * The same arguments always give the same trace.
 */
static inline int trace_make(struct trace *t, uint64_t seed, uint32_t lo,
			     uint32_t hi, uint32_t live, size_t steady)
{
	/* Capacity: the ramp takes about 5/3 * live ops, the drain <= 1.1 live. */
	size_t cap = (size_t)live * 4 + steady + 16, n = 0;
	uint32_t nslots = live + live / 10 + 2;
	uint32_t *live_slots, *where, *free_slots, *sizes;
	uint32_t nlive = 0, nfree = 0, lo_mark = live - live / 10;
	uint32_t hi_mark = live + live / 10;
	uint64_t s = seed, bytes = 0, peak = 0;
	struct trace_op *ops;
	size_t aux = (size_t)nslots * sizeof(uint32_t);
	int phase = 0;
	size_t steady_done = 0;

	memset(t, 0, sizeof(*t));
	ops = (struct trace_op *)trace_mmap(cap * sizeof(*ops));
	live_slots = (uint32_t *)trace_mmap(aux * 4);
	if (!ops || !live_slots) {
		if (ops)
			munmap(ops, cap * sizeof(*ops));
		if (live_slots)
			munmap(live_slots, aux * 4);
		return -1;
	}
	where = live_slots + nslots;	/* slot -> index in live_slots */
	free_slots = where + nslots;
	sizes = free_slots + nslots;
	for (uint32_t i = 0; i < nslots; i++)
		free_slots[nfree++] = nslots - 1 - i;

	while (phase < 2 || nlive) {
		int do_alloc;

		if (phase == 0) {
			do_alloc = !nlive || trace_below(&s, 5) != 0;
			if (nlive >= live)
				phase = 1;
		} else if (phase == 1) {
			if (steady_done++ == steady) {
				phase = 2;
				continue;
			}
			if (nlive <= lo_mark)
				do_alloc = 1;
			else if (nlive >= hi_mark)
				do_alloc = 0;
			else
				do_alloc = trace_below(&s, 2);
		} else {
			do_alloc = 0;
		}
		if (n == cap)
			break;	/* cannot happen with the capacity above */
		if (do_alloc) {
			uint32_t slot = free_slots[--nfree];
			uint32_t size = trace_size(&s, lo, hi);

			sizes[slot] = size;
			where[slot] = nlive;
			live_slots[nlive++] = slot;
			ops[n++] = (struct trace_op){ slot, size };
			bytes += size;
			if (bytes > peak)
				peak = bytes;
		} else {
			uint32_t i = (uint32_t)trace_below(&s, nlive);
			uint32_t slot = live_slots[i], last;

			last = live_slots[--nlive];
			live_slots[i] = last;
			where[last] = i;
			free_slots[nfree++] = slot;
			bytes -= sizes[slot];
			ops[n++] = (struct trace_op){ slot, 0 };
		}
	}
	munmap(live_slots, aux * 4);
	t->ops = ops;
	t->nops = n;
	t->map_bytes = cap * sizeof(*ops);
	t->nslots = nslots;
	t->peak_live_bytes = peak;
	return 0;
}

#endif /* ALLOC_TRACE_H */
