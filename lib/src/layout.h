/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The layout of a shmk segment. Everything here lives in shared memory and
 * refers to other parts of the segment by offset from its start, never by
 * pointer, so every process can use it at any base address.
 *
 *   0        struct shmk_hdr: identity, lock, sequence counters, the
 *            transaction record, allocator roots, directory root
 *   4 KiB    the undo log (struct shmk_log_entry[SHMK_LOG_CAP])
 *   48 KiB   the client registry (memfd backend; unused by the kernel one)
 *   64 KiB   the heap: blocks up to hdr->heap_end
 *
 * Heap blocks start at offsets that are 8 mod 16, so that the payload after
 * their 8-byte header is 16-byte aligned; their sizes are multiples of 16.
 *
 *   used block   [hdr: TAG_USED | size | flags] [payload ...]
 *   free block   [hdr: TAG_FREE | size | flags] [parent|color] [left] [right]
 *                ... [footer: TAG_FOOT | size]
 *
 * The 8 bytes at heap_start are a guard word; the last 8 bytes before
 * heap_end are an end sentinel (a zero-sized used block). Free blocks are
 * never adjacent: a free block always coalesces with its free neighbours.
 *
 * Small requests (up to SMALL_MAX bytes) are served by the small tier
 * (small.c): runs of equal slots, each run one used block of the heap with
 * BLK_F_RUN set, placed so that its block starts 8 bytes past a
 * RUN_CHUNK boundary:
 *
 *   chunk C   [8: block header] [struct shmk_run: header, bitmap] [slots ...]
 *
 * The run map (one used block with BLK_F_META, allocated with the heap)
 * holds a byte per RUN_CHUNK of the segment: 0 for a chunk that starts no
 * run and holds no part of one, else 1 + the chunk's index inside its run.
 * It says exactly whether an offset lies in a run, and in which. The same
 * block holds, 64-byte aligned after the map, the table of SHMK_THEAPS
 * thread heaps (struct shmk_theap).
 */
#ifndef SHMK_LAYOUT_H
#define SHMK_LAYOUT_H

#include <assert.h>
#include <stdint.h>

#include "rlock.h"

#define SHMK_HDR_MAGIC		0x5944414552484d53ULL	/* "SMHREADY" */
/* Given up by its creator, which unlinks it next: attach again by name. */
#define SHMK_HDR_DEAD		0x44414544444d4853ULL	/* "SHMDDEAD" */
/*
 * 5: rlocks, not pthread mutexes; 6: a queue's waiting words moved, the
 * header's init_lock; 7: a run's bitmap of slots freed by other threads,
 * the message cache; 8: a free tree per size class above the bins; 9: the
 * directory's control bytes and 4-byte offsets, 16-byte entry headers
 */
#define SHMK_LAYOUT_VERSION	9

#define SHMK_LOG_OFF		(4u << 10)
#define SHMK_LOG_CAP		2816u
#define SHMK_REG_OFF		(48u << 10)
#define SHMK_REG_SIZE		(16u << 10)	/* mapped alone by readers */
#define SHMK_HEAP_START		(64u << 10)

/* Blocks */
#define BLK_HDR			8u
#define BLK_ALIGN		16u
#define BLK_MIN			48u	/* header, three links, footer */
#define BLK_SIZE_MASK		0x0000fffffffffff0ULL
#define BLK_F_USED		1ULL
#define BLK_F_PREV_USED		2ULL
#define BLK_F_RUN		4ULL	/* used: a run of the small tier */
#define BLK_F_META		8ULL	/* used: the run map */
#define BLK_F_KIND		(BLK_F_RUN | BLK_F_META)
#define BLK_TAG_SHIFT		48
#define BLK_TAG_USED		0xa110ULL
#define BLK_TAG_FREE		0xf4eeULL
#define BLK_TAG_END		0xe4d0ULL
#define BLK_TAG_FOOT		0xf007ULL
#define BLK_GUARD		0x4452415547504548ULL	/* heap start guard */

/* Free-block node fields, offsets from the block start */
#define NODE_PARENT		8u	/* parent offset | color bit */
#define NODE_LEFT		16u
#define NODE_RIGHT		24u

/*
 * The free-block index: exact-size bins for small blocks, then a tree per
 * eighth of an octave of sizes (tree i holds the sizes whose top four
 * bits, at 2^(10 + i / 8), are 1 and then i % 8), the last one also all
 * larger sizes (from 64 MiB)
 */
#define SHMK_NBINS		64u
#define BIN_MAX_SIZE		(BLK_MIN + (SHMK_NBINS - 1) * BLK_ALIGN)
#define SHMK_NTREES		128u
#define TREE_MIN_SHIFT		10	/* tree 0 starts at 1 KiB */

/* The small tier */
#define SHMK_NCLASSES		32u
#define SMALL_MAX		8192u	/* largest small request */
#define RUN_CHUNK_SHIFT		16
#define RUN_CHUNK		(1u << RUN_CHUNK_SHIFT)	/* 64 KiB */
#define RUN_BIG_CHUNKS		4u	/* runs of classes above 1 KiB */
#define RUN_MAP_MAX		(32u << 10)	/* bytes: runs in the first 2 GiB */
#define RUN_MAGIC		0x4e55524c4c414d53ULL	/* xor'ed with offset */
#define RUN_RECIP_SHIFT		40

/*
 * A run's header, at the payload of its block. map has one bit per slot,
 * set when the slot is allocated, changed only by atomic OR (an alloc) and
 * AND (a free), never logged. After it, on a cache line of its own, xmap
 * (at the class's xmap offset from the header) has a bit per slot for a
 * message freed by a thread other than the run's owner: set by an atomic
 * OR, the slot is free but still set in map until the owner, when map has
 * no clear bit left, or anyone under the lock, folds xmap into map (AND
 * map, then AND xmap). A slot is allocated when its map bit is set and its
 * xmap bit clear. The bitmaps are the truth, every count is derived from
 * them. state (written under the lock, logged) says who may
 * allocate from the run: the thread heap it is the current run of
 * (RUN_OWNED | index << 8), anyone under the lock (RUN_LISTED: on its
 * class's list, hdr->runs[class], linked by next and prev, payload offsets,
 * 0 for none), or nobody (RUN_FULL: its owner found no free slot and let
 * it go). A run let go full goes back on its list (under the lock) once
 * the frees into it since reach an eighth of its slots (at least one), or
 * when one empties it; nfreed counts them (an atomic add, a hint that
 * nothing else trusts: zeroed when the run is let go full).
 */
#define RUN_LISTED		1ULL
#define RUN_FULL		2ULL
#define RUN_OWNED		3ULL
#define RUN_STATE_MASK		0xffULL
#define RUN_OWNER_SHIFT		8

struct shmk_run {
	uint64_t magic;			/* RUN_MAGIC ^ own payload offset */
	uint32_t cls;
	uint32_t nslots;
	uint32_t slot_size;
	uint32_t first;			/* slot 0, from the payload */
	uint64_t recip;			/* 2^RUN_RECIP_SHIFT / size, rounded up */
	uint64_t state;
	uint64_t next;
	uint64_t prev;
	uint64_t nfreed;		/* RUN_FULL: frees since, a hint */
	uint64_t map[];
};

/*
 * A thread heap: claimed by a thread (under the lock, logged) by writing
 * its namespaces, then its owner tag, tid << 32 | the low 32 bits of its
 * start time (from /proc/TID/stat), so that a dead owner, or a reused tid,
 * is recognised. A tid and a start time mean something only in the pid
 * and time namespaces they were read in: ns holds the owner's (the nsfs
 * inode numbers of its pid namespace << 32 | its time namespace), a
 * thread owns a heap only when both tag and ns match its own, and only a
 * thread of the same namespaces may judge an owner dead (a container
 * neighbour on the kernel backend cannot look the owner up in its /proc).
 * run[c] is the class's current run (written under the lock, logged);
 * only the owner allocates from it, lock-free. hint[c] is the bitmap word
 * where the owner looks first (owner only, unlogged, a hint).
 */
#define SHMK_THEAPS		64u

struct shmk_theap {
	uint64_t owner;
	uint32_t pid;			/* informational */
	uint32_t pad0;
	uint64_t run[SHMK_NCLASSES];
	uint8_t hint[SHMK_NCLASSES];
	uint64_t ns;			/* the owner's namespaces */
	uint64_t pad;
};

/*
 * The statistics as of the last commit, published by the committer into
 * the next of SHMK_PUB_BUFS buffers, under that buffer's seq (odd while
 * written), then pub_idx moves to it. A reader copies the buffer pub_idx
 * names: it never waits for a writer, even one preempted or killed inside
 * a transaction, and retries only when SHMK_PUB_BUFS - 1 commits overtook
 * its copy (shmk_stats()).
 */
#define SHMK_PUB_BUFS		8
struct shmk_pub_stats {
	uint64_t seq;
	uint64_t seg_size;
	uint64_t heap_end;
	uint64_t used_bytes;		/* page heap, runs included */
	uint64_t run_bytes;
	uint64_t small_bytes;		/* slots in runs, used or not */
	uint64_t pad1;
	uint64_t free_bytes;
	uint64_t free_blocks;
	uint64_t largest_free;
	uint64_t nallocs;		/* page heap, runs included */
	uint64_t pad2;
	uint64_t run_blocks;
	uint64_t internal;		/* the directory's blocks */
	uint64_t named;
	uint64_t grows;
	uint64_t recoveries;
	uint64_t pad;
};

#define SHMK_MSG_CACHE		8u

/* Transaction record: tx_state = count << TX_COUNT_SHIFT | op, 0 when idle */
#define TX_COUNT_SHIFT		8
#define TX_OP_MASK		0xffULL

enum shmk_tx_op {
	TX_NONE = 0,
	TX_ALLOC,	/* rolled back */
	TX_FREE,	/* rolled back, then replayed: arg = block offset */
	TX_GROW,	/* rolled back; the backend's extra size is adopted */
	TX_SHRINK,	/* rolled back */
	TX_DIR_CREATE,	/* rolled back */
	TX_DIR_REMOVE,	/* rolled back, then replayed: tx_name */
	TX_SMALL,	/* rolled back: a run or a thread heap changes hands */
	TX_FREE_KEPT,	/* rolled back: the message cache is flushed */
};

struct shmk_log_entry {
	uint64_t off;
	uint64_t old;
};

struct shmk_hdr {
	/* Identity: written by the creator, magic last (release). */
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;		/* = heap start */
	uint64_t max_size;
	uint64_t base_addr;		/* memfd: the creator's mapping */
	uint64_t ctime_ns;
	uint32_t page_size;
	uint32_t mutex_size;		/* sizeof(struct shmk_rlock) */
	uint32_t log_cap;
	uint32_t reg_slots;
	uint64_t pad0[1];

	/* 64: the robust, process-shared lock (rlock.h) */
	struct shmk_rlock lock __attribute__((aligned(64)));

	/* 128: sequence counters for lock-free readers (odd: changing) */
	uint64_t seq __attribute__((aligned(64)));	/* any metadata */
	uint64_t dir_seq;				/* the directory */

	/* 192: the transaction in progress */
	uint64_t tx_state __attribute__((aligned(64)));
	uint64_t tx_arg;

	/* Allocator (every write logged) */
	uint64_t heap_start;
	uint64_t heap_end;
	uint64_t seg_size;		/* active size as set by the library */
	uint64_t bin_map;		/* bit i: bins[i] not empty */
	uint64_t bins[SHMK_NBINS];	/* trees of blocks of one size */
	uint64_t tree_map[SHMK_NTREES / 64];	/* bit i: trees[i] not empty */
	uint64_t trees[SHMK_NTREES];	/* blocks > BIN_MAX_SIZE, by class */

	/* Small tier (every write logged) */
	uint64_t run_map;		/* payload offset of the run map */
	uint64_t run_map_len;		/* its length in bytes (chunks) */
	uint64_t theaps;		/* the thread heap table, after it */
	uint64_t runs[SHMK_NCLASSES];	/* RUN_LISTED runs, by class */

	/* Directory (every write logged) */
	uint64_t dir_table;		/* payload offset of the table */
	uint64_t dir_cap;		/* slots, a power of two */
	uint64_t dir_count;		/* full slots */
	uint64_t dir_tombs;		/* deleted slots */

	/*
	 * Derived counters: written unlogged, recomputed from the block walk
	 * by recovery.
	 */
	uint64_t used_bytes;
	uint64_t free_bytes;
	uint64_t free_blocks;
	uint64_t nallocs;		/* used blocks, internal ones included */
	uint64_t grow_target;		/* the size a growth asks the backend
					   for: recovery adopts backing memory
					   up to it, no further */
	uint64_t run_blocks;		/* runs and the run map: blocks */
	uint64_t run_bytes;		/* ... and their bytes */
	uint64_t small_bytes;		/* bytes of the runs' slots; how many
					   are used, the bitmaps say */

	/* History, informational (unlogged) */
	uint64_t grows;
	uint64_t recoveries;		/* count << 1 | 1 while one runs */

	/* Set for good when recovery could not prove the metadata consistent. */
	uint64_t unrecoverable;

	/* Intent argument of TX_DIR_REMOVE */
	char tx_name[256];

	/* Published statistics */
	uint64_t pub_idx __attribute__((aligned(64)));
	struct shmk_pub_stats pub[SHMK_PUB_BUFS];

	/*
	 * The message cache (msg_cache.c): payload offsets of page-heap
	 * blocks freed as messages, kept for the next message of about their
	 * size; 0 when empty. Changed by compare-and-swap, never logged.
	 */
	uint64_t msg_cache[SHMK_MSG_CACHE] __attribute__((aligned(64)));

	/*
	 * Held by whoever initializes the segment, from before its first
	 * write to after the magic: its creator, or an opener that takes the
	 * work over from a creator that died half way (segment.c). Used for
	 * nothing once the magic is set.
	 */
	struct shmk_rlock init_lock __attribute__((aligned(64)));
};

_Static_assert(sizeof(struct shmk_hdr) <= SHMK_LOG_OFF, "header too big");
_Static_assert(SHMK_LOG_OFF + SHMK_LOG_CAP * sizeof(struct shmk_log_entry) <=
	       SHMK_REG_OFF, "log too big");
_Static_assert(BIN_MAX_SIZE == 1056, "bins");
_Static_assert(BIN_MAX_SIZE >> TREE_MIN_SHIFT == 1, "tree 0");
_Static_assert(sizeof(struct shmk_run) == 64, "run header");
_Static_assert(sizeof(struct shmk_pub_stats) == 144, "published stats");
_Static_assert(sizeof(struct shmk_theap) == 320, "thread heap");

/*
 * Client registry of the memfd backend, at SHMK_REG_OFF. Slots are claimed
 * and released lock-free: owner is a compare-and-swap word holding the pid
 * and the low 32 bits of its start time (from /proc/PID/stat), so a slot of
 * a dead process, or of a reused pid, is recognised and reaped by anyone.
 * Only the owner writes the other fields, under its seq (odd while writing).
 */
#define SHMK_REG_SLOTS		255u

struct shmk_reg_slot {
	uint64_t owner;			/* pid << 32 | start time, 0 = free */
	uint32_t seq;
	uint32_t client_id;
	uint32_t flags;			/* SHMK_CLIENT_* */
	int32_t pid;
	char name[32];
	uint64_t pad;
};

struct shmk_registry {
	uint64_t writer;		/* slot index + 1 of the writer, or 0 */
	uint32_t next_id;
	uint32_t pad[13];
	struct shmk_reg_slot slot[SHMK_REG_SLOTS];
};

_Static_assert(sizeof(struct shmk_reg_slot) == 64, "slot");
_Static_assert(sizeof(struct shmk_registry) <= SHMK_REG_SIZE, "registry");
_Static_assert(SHMK_REG_OFF + SHMK_REG_SIZE <= SHMK_HEAP_START, "layout");

/*
 * Directory: a table of dir_cap slots in one heap block, the control bytes
 * first, then a 4-byte offset per slot:
 *
 *   [u8 ctrl[cap]][u32 off[cap]]
 *
 * A control byte is DIR_CTRL_EMPTY, DIR_CTRL_DELETED or, for a full slot,
 * the top seven bits of the name's hash; the slot's offset is then its
 * entry's offset in units of BLK_ALIGN. Slots probe in aligned groups of
 * DIR_GROUP (directory.h).
 */
#define DIR_CTRL_EMPTY		0x80u
#define DIR_CTRL_DELETED	0xfeu
#define DIR_GROUP		16u
#define DIR_MIN_CAP		64u
#define DIR_SLOT_BYTES		5u		/* a control byte, an offset */
/* Entries lie below 2^32 BLK_ALIGN units, the reach of a slot's offset. */
#define DIR_ENTRY_LIMIT		((uint64_t)BLK_ALIGN << 32)
#define DIR_ENTRY_MAGIC		0x4e455244u	/* xor'ed with the offset */
#define DIR_OBJ_GUARD		0x4a424f44454d414eULL	/* before each object */

struct shmk_dir_entry {
	uint32_t magic;			/* DIR_ENTRY_MAGIC ^ own slot offset */
	uint32_t name_len;
	uint64_t size;			/* object size asked for */
	char name[];			/* name_len bytes and a NUL */
};

_Static_assert(sizeof(struct shmk_dir_entry) == 16, "entry");
_Static_assert(DIR_MIN_CAP % DIR_GROUP == 0 && DIR_MIN_CAP % 8 == 0, "cap");

#endif /* SHMK_LAYOUT_H */
