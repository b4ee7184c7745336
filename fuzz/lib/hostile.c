// SPDX-License-Identifier: GPL-2.0
/*
 * libshmk against a hostile or corrupted segment (issue 15, item 5): a
 * libFuzzer harness (make fuzz-lib, see fuzz/lib/README).
 *
 * Once per process: a segment on the posix backend (SHMK_FUZZ_BACKEND=kernel:
 * on /dev/shmk, in the test VM), populated with
 * allocations of mixed sizes (the small tier's runs, bins, the size-class
 * trees, aligned blocks), named objects (one removed), a queue with
 * messages in it; then a copy of its bytes (the pristine copy) and a list
 * of its metadata regions (header, undo log, every block's header, tree
 * links and footer, the run headers and bitmaps, the run map, the thread
 * heaps, the directory table and entries) and of anchors (offsets of
 * metadata that a forged link may point at).
 *
 * Per input: the pristine copy goes back into the segment (memcpy, and an
 * ftruncate when an earlier input grew it), the input's mutations are
 * written into the metadata regions, then shmk_check, shmk_stats,
 * shmk_foreach, shmk_find, alloc and free of both tiers, shmk_find_or_alloc,
 * shmk_remove, the queue (a receiver takes what is queued, a sender sends),
 * shmk_shrink and shmk_grow, and a re-open (validation and recovery, which
 * the mutations may ask for by leaving a transaction in the header) run on
 * it.
 * The library may fail them; it must not crash, hang or touch memory
 * outside the segment (ASan, UBSan, and SIGBUS past the segment's backing:
 * the mapping reserves 16 MiB, about 5 times what is backed).
 *
 * Not mutated: the words of the segment lock and of the queue receiver's
 * lock (a hostile client can always hold them forever; a forged owner is a
 * denial of service the library cannot tell from a busy one) and the
 * client registry. Their list links are mutated: the holder must never
 * write through a link that a client planted (rlock.h).
 *
 * An input is a list of records:
 *
 *   op:u8 region:u8 at:u16 ...
 *     op % 4 == 0  raw: len = (op >> 2) % 16 + 1 bytes follow, written at
 *                  region + at % region length
 *     op % 4 == 1  link: idx:u8 delta:i8 follow; the u64 at the 8-aligned
 *                  place becomes anchor[idx] + delta
 *     op % 4 == 2  add: delta:i8 follows; added to the u64 there
 *     op % 4 == 3  special: the u64 there becomes one of a few boundary
 *                  values ((op >> 2) selects)
 *
 * SHMK_FUZZ_STRICT=1: also abort when shmk_check() passed on the mutated
 * segment but fails after the operations (a corruption it missed).
 * SHMK_FUZZ_DEBUG=1: print what each input does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/shmk.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "directory.h"
#include "internal.h"
#include "page_heap.h"
#include "small.h"
#include "tx.h"

void __sanitizer_set_death_callback(void (*callback)(void));

#define SEG_SIZE	(1u << 20)
#define SEG_MAX		(16u << 20)
#define MAX_REGIONS	512
#define MAX_ANCHORS	256
#define MAX_PTRS	64

struct region {
	uint64_t off, len;
};

static struct shmk *h;
static const char *backend;
static char seg_name[64];
static uint8_t *pristine;
static uint64_t pristine_len;
static struct region regions[MAX_REGIONS];
static unsigned int nregions;
static uint64_t anchors[MAX_ANCHORS];
static unsigned int nanchors;
static uint64_t ptrs[MAX_PTRS];		/* live allocations, offsets */
static unsigned int nptrs;
static bool strict, debug;

static const char *const names[] = {
	"alpha", "beta", "gamma", "a-longer-object-name-for-the-table",
	"delta", "epsilon",
};

static void die(const char *what, int err)
{
	fprintf(stderr, "hostile: %s: %s\n", what, strerror(err < 0 ? -err : err));
	abort();
}

static void add_region(uint64_t off, uint64_t len)
{
	if (nregions < MAX_REGIONS && len && off + len <= pristine_len)
		regions[nregions++] = (struct region){ off, len };
}

static void add_anchor(uint64_t off)
{
	if (nanchors < MAX_ANCHORS)
		anchors[nanchors++] = off;
}

static void add_ptr(const void *p)
{
	if (p && nptrs < MAX_PTRS)
		ptrs[nptrs++] = shmk_off(h, p);
}

static void populate(void)
{
	static const size_t sizes[] = {
		16, 24, 48, 100, 128, 200, 500, 1000, 1500, 3000, 5000, 8192,
		48, 64, 1056, 1100, 2000, 20000, 70000,
	};
	struct shmk_queue *q, *rq;
	void *p[ARRAY_SIZE(sizes) * 3];
	unsigned int n = 0;
	int r;

	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
			p[n] = shmk_alloc(h, sizes[i]);
			if (!p[n])
				die("alloc", errno);
			n++;
		}
	/* Free every third one: free blocks in bins and the large tree. */
	for (unsigned int i = 0; i < n; i++) {
		if (i % 3 == 1)
			shmk_free(h, p[i]);
		else
			add_ptr(p[i]);
	}
	add_ptr(shmk_alloc_aligned(h, 3000, 4096));
	add_ptr(shmk_alloc_aligned(h, 100, 256));
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!shmk_find_or_alloc(h, names[i], 64 + 300 * i, NULL))
			die("find_or_alloc", errno);
	if ((r = shmk_remove(h, "delta")))
		die("remove", r);
	/* Its receiver goes before the messages come: they wait for the next. */
	r = shmk_queue_open(h, "q", SHMK_QUEUE_RECV, &(struct shmk_queue_opts){
		.capacity = 16 }, &rq);
	if (r < 0)
		die("queue_open (receiver)", r);
	r = shmk_queue_open(h, "q", 0, NULL, &q);
	if (r)
		die("queue_open", r);
	for (int i = 0; i < 3; i++) {
		void *m = shmk_msg_alloc(h, 40 + 100 * (size_t)i);

		if (!m)
			die("msg_alloc", errno);
		if ((r = shmk_send(q, m, SHMK_NONBLOCK)))
			die("send", r);
	}
	if ((r = shmk_queue_close(q)) || (r = shmk_queue_close(rq)))
		die("queue_close", r);
	if ((r = shmk_check(h)))
		die("check after populating", r);
}

static int region_blk(uint64_t b, uint64_t w, void *arg)
{
	(void)arg;
	add_anchor(b);
	if (blk_tag(w) == BLK_TAG_END) {
		add_region(b, 8);
		return 0;
	}
	add_anchor(b + BLK_HDR);
	if (blk_used(w)) {
		add_region(b, 8);
		return 0;
	}
	add_region(b, 32);				/* header and links */
	add_region(b + blk_size(w) - 8, 8);		/* footer */
	return 0;
}

static uint64_t run_at_nslots(uint64_t r)
{
	return ((const struct shmk_run *)(h->base + r))->nslots;
}

static void find_regions(void)
{
	const struct shmk_hdr *hd = h->hdr;
	uint64_t len = hd->run_map_len;
	const uint32_t *offs;

	add_region(0, 64);				/* identity */
	add_region(HDR_OFF(lock.spare), 32);		/* the lock's links */
	add_region(128, sizeof(*hd) - 128);		/* all after the lock */
	add_region(HDR_OFF(tx_state), 16);
	add_region(HDR_OFF(heap_start), 8 * 4);
	add_region(HDR_OFF(bins), 8 * SHMK_NBINS);
	add_region(HDR_OFF(tree_map), 8 * (SHMK_NTREES / 64));
	add_region(HDR_OFF(trees), 8 * SHMK_NTREES);
	add_region(HDR_OFF(run_map), 8 * (3 + SHMK_NCLASSES));
	add_region(HDR_OFF(dir_table), 8 * 4);
	add_region(SHMK_LOG_OFF, 64 * sizeof(struct shmk_log_entry));
	add_region(SHMK_HEAP_START, 16);		/* guard, first block */
	if (shmk__heap_walk(h, region_blk, NULL))
		die("walk", EUCLEAN);
	add_region(hd->run_map, len);
	add_region(hd->theaps, SHMK_THEAPS * sizeof(struct shmk_theap));
	add_region(hd->theaps, 4 * sizeof(struct shmk_theap));
	add_anchor(hd->run_map);
	add_anchor(hd->theaps);
	for (uint64_t idx = 0; idx < len; idx++) {
		uint64_t r;

		if (h->base[hd->run_map + idx] != 1)
			continue;
		r = (idx << RUN_CHUNK_SHIFT) + 2 * BLK_HDR;
		add_region(r, 64 + 8 * ((run_at_nslots(r) + 63) / 64));
		add_anchor(r);
	}
	add_region(hd->dir_table, dir_table_bytes(hd->dir_cap));
	add_anchor(hd->dir_table);
	offs = (const void *)(h->base + DIR_OFFS(hd->dir_table, hd->dir_cap));
	for (uint64_t i = 0; i < hd->dir_cap; i++) {
		uint64_t e = (uint64_t)offs[i] * BLK_ALIGN, o;
		const struct shmk_dir_entry *de;

		if (h->base[hd->dir_table + i] & 0x80)
			continue;
		de = (const void *)(h->base + e);
		add_region(e, dir_obj_delta(de->name_len));
		add_anchor(e);
		if (strncmp(de->name, "shmk.queue/", 11))
			continue;
		/*
		 * A queue's header and its 16 slots, and the receiver's
		 * lock's links (its word and state are at 64): see the lock
		 * above.
		 */
		o = e + dir_obj_delta(de->name_len);
		add_region(o, 64);
		add_region(o + 64 + offsetof(struct shmk_rlock, spare), 32);
		add_region(o + 128, 128 + 16 * 8);
		add_anchor(o);
	}
	add_anchor(hd->heap_end);
	add_anchor(h->map_size);
	for (unsigned int i = 0; i < nptrs; i++)
		add_anchor(ptrs[i]);
}

static void cleanup(void)
{
	if (seg_name[0])
		shmk_unlink(seg_name);
}

/* Segments of earlier runs that crashed (names end in a dead pid). */
static void remove_stale(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[PATH_MAX];
		int pid;

		if (sscanf(e->d_name, "shmk.fuzzlib-%d", &pid) != 1 ||
		    pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d", pid);
		if (access(path, F_OK))
			shmk_unlink(e->d_name + 5);
	}
	closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct shmk_opts o = {
		.size = SEG_SIZE, .max_size = SEG_MAX,
	};
	int r;

	(void)argc;
	(void)argv;
	backend = getenv("SHMK_FUZZ_BACKEND") ? getenv("SHMK_FUZZ_BACKEND") :
						"posix";
	o.backend = backend;
	strict = getenv("SHMK_FUZZ_STRICT") && *getenv("SHMK_FUZZ_STRICT") == '1';
	debug = getenv("SHMK_FUZZ_DEBUG") != NULL;
	remove_stale();
	snprintf(seg_name, sizeof(seg_name), "fuzzlib-%d", (int)getpid());
	shmk_unlink(seg_name);
	r = shmk_open(seg_name, SHMK_CREATE | SHMK_EXCL, &o, &h);
	if (r)
		die("open", r);
	atexit(cleanup);
	__sanitizer_set_death_callback(cleanup);	/* a crash too */
	populate();
	pristine_len = h->be->backing_size(h);
	if (pristine_len != h->hdr->heap_end)
		die("backing size", EINVAL);
	pristine = malloc(pristine_len);
	if (!pristine)
		die("malloc", ENOMEM);
	memcpy(pristine, h->base, pristine_len);
	find_regions();
	if (debug)
		fprintf(stderr, "hostile: segment %llu bytes, %u regions, "
			"%u anchors, %u allocations\n",
			(unsigned long long)pristine_len, nregions, nanchors,
			nptrs);
	return 0;
}

static void restore(void)
{
	struct stat st;

	if (!strcmp(backend, "kernel")) {
		/* Through the module, as any writer may (-EBUSY: no change). */
		struct shmk_resize rs = { .size = pristine_len };
		uint64_t cur = h->be->backing_size(h);

		if (cur != pristine_len &&
		    ioctl(h->k.fd, cur < pristine_len ? SHMK_IOC_GROW :
			  SHMK_IOC_SHRINK, &rs))
			die("resize", errno);
		memcpy(h->base, pristine, pristine_len);
		return;
	}
	if (fstat(h->m.fd, &st))
		die("fstat", errno);
	if ((uint64_t)st.st_size != pristine_len) {
		if (ftruncate(h->m.fd, (off_t)pristine_len))
			die("ftruncate", errno);
		/*
		 * The library takes the posix backend's file to grow only (a
		 * shrink punches holes); this one shrank: forget its size.
		 */
		h->backed = 0;
	}
	memcpy(h->base, pristine, pristine_len);
}

/* Apply the input's mutations; returns how many. */
static unsigned int mutate(const uint8_t *d, size_t n)
{
	static const uint64_t special[] = {
		0, 1, 8, 16, 0xffffffffffffffffULL, 0x8000000000000000ULL,
		SHMK_HEAP_START, SEG_SIZE, SEG_MAX, 1ULL << 32,
		0x7fffffffffffffffULL, 24,
	};
	unsigned int count = 0;
	size_t i = 0;

	while (i + 4 <= n) {
		uint8_t op = d[i];
		const struct region *rg = &regions[d[i + 1] % nregions];
		uint64_t at = rg->off + (uint64_t)(d[i + 2] | d[i + 3] << 8) %
			      rg->len, w;

		i += 4;
		if (op % 4 == 0) {
			size_t len = (size_t)(op >> 2) % 16 + 1;

			if (len > n - i)
				len = n - i;
			if (at + len > rg->off + rg->len)
				len = (size_t)(rg->off + rg->len - at);
			memcpy(h->base + at, d + i, len);
			i += len;
			count++;
			continue;
		}
		at &= ~7ULL;	/* regions start 8-aligned: stays inside */
		memcpy(&w, h->base + at, 8);
		if (op % 4 == 1) {
			if (i + 2 > n)
				break;
			w = anchors[d[i] % nanchors] + (uint64_t)(int64_t)(int8_t)d[i + 1];
			i += 2;
		} else if (op % 4 == 2) {
			if (i + 1 > n)
				break;
			w += (uint64_t)(int64_t)(int8_t)d[i];
			i += 1;
		} else {
			w = special[(op >> 2) % ARRAY_SIZE(special)];
		}
		memcpy(h->base + at, &w, 8);
		count++;
	}
	return count;
}

static int count_fn(const char *name, void *ptr, size_t size, void *arg)
{
	(void)name;
	(void)ptr;
	(void)size;
	++*(int *)arg;
	return 0;
}

static void reopen(void)
{
	struct shmk_opts o = { .backend = backend };
	struct shmk *h2;
	int r;

	/*
	 * A magic of 0 or "loading" is a segment being created: shmk_open()
	 * waits 5 s for its creator, by design. Not worth an input's time.
	 */
	if (h->hdr->magic != SHMK_HDR_MAGIC)
		return;
	r = shmk_open(seg_name, 0, &o, &h2);

	if (debug)
		fprintf(stderr, "hostile: reopen %d\n", r);
	if (!r) {
		if (debug)
			fprintf(stderr, "hostile: check (2nd handle) %d\n",
				shmk_check(h2));
		shmk_close(h2);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t asks[] = { 24, 200, 3000, 10000, 100000, 8192 };
	struct shmk_queue *q, *rq;
	struct shmk_stats st;
	void *got[ARRAY_SIZE(asks)];
	int r0, r, k = 0;
	size_t osz;

	restore();
	mutate(data, size);
	r0 = shmk_check(h);
	if (debug)
		fprintf(stderr, "hostile: check %d\n", r0);
	r = shmk_stats(h, &st);
	r = shmk_foreach(h, count_fn, &k);
	if (debug)
		fprintf(stderr, "hostile: stats %d, foreach %d (%d)\n",
			shmk_stats(h, &st), r, k);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		void *p = shmk_find(h, names[i], &osz);

		if (debug)
			fprintf(stderr, "hostile: find %s %p\n", names[i], p);
	}
	for (size_t i = 0; i < ARRAY_SIZE(asks); i++) {
		got[i] = shmk_alloc(h, asks[i]);
		if (debug)
			fprintf(stderr, "hostile: alloc %zu %p\n", asks[i],
				got[i]);
	}
	/* Free some of what the populated segment held. */
	for (unsigned int i = 0; i < nptrs; i += 3)
		shmk_free(h, h->base + ptrs[i]);
	for (size_t i = 0; i < ARRAY_SIZE(asks); i++)
		shmk_free(h, got[i]);
	got[0] = shmk_alloc_aligned(h, 500, 1024);
	shmk_free(h, got[0]);
	r = shmk_remove(h, names[size % ARRAY_SIZE(names)]);
	if (debug)
		fprintf(stderr, "hostile: remove %d\n", r);
	shmk_find_or_alloc(h, "newname", 100, NULL);
	shmk_find_or_alloc(h, names[(size + 1) % ARRAY_SIZE(names)], 10, NULL);
	r = shmk_remove(h, "newname");
	if (shmk_queue_open(h, "q", SHMK_QUEUE_RECV, NULL, &rq) >= 0) {
		for (int i = 0; i < 4; i++) {
			void *m;

			if (shmk_recv(rq, &m, &osz, 0))
				break;
			shmk_msg_free(h, m);
		}
		if (!shmk_queue_open(h, "q", 0, NULL, &q)) {
			struct shmk_queue_stats qs;
			void *m = shmk_msg_alloc(h, 50);

			if (m && shmk_send(q, m, SHMK_NONBLOCK))
				shmk_msg_free(h, m);
			shmk_queue_stats(q, &qs);
			shmk_queue_close(q);
		}
		r = shmk_queue_close(rq);
		if (r)	/* the robust list would point into the copy */
			die("queue_close (receiver)", r);
	}
	r = shmk_shrink(h, 0);
	if (debug)
		fprintf(stderr, "hostile: shrink %d\n", r);
	r = shmk_grow(h, pristine_len + (1 << 20));
	if (debug)
		fprintf(stderr, "hostile: grow %d\n", r);
	reopen();
	r = shmk_check(h);
	if (debug)
		fprintf(stderr, "hostile: check at the end %d\n", r);
	if (strict && r0 == 0 && r != 0) {
		fprintf(stderr, "hostile: shmk_check passed the mutated "
			"segment, failed after the operations (%d)\n", r);
		abort();
	}
	return 0;
}
