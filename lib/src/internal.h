/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/* Private declarations shared by the library's source files. */
#ifndef SHMK_INTERNAL_H
#define SHMK_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "shmk.h"
#include "layout.h"

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define barrier()	__asm__ __volatile__("" ::: "memory")
#define READ_ONCE(x)	(*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define ALIGN_UP(x, a)	(((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Mappings start at this boundary when not at the common base. */
#define SHMK_BASE_ALIGN	(2UL << 20)

struct shmk;

/* One way to obtain and resize the shared memory of a segment. */
struct shmk_backend {
	const char *name;
	/* Usable on this system (automatic selection). */
	bool (*available)(void);
	/*
	 * Attach to (or create) @name and map it read-write (read-only for
	 * SHMK_RDONLY) at h->base, h->map_size bytes. Sets *created when this
	 * call created the segment: the caller then initializes the header.
	 * @size and @max_size are page multiples (used when creating).
	 */
	int (*attach)(struct shmk *h, const char *name, int flags,
		      const struct shmk_opts *opts, size_t size,
		      size_t max_size, bool *created);
	/*
	 * Optional: make a segment this process created and initialized
	 * visible under its name. Backends that create it unnamed (so that
	 * a creator killed half way leaves nothing behind) link it here;
	 * -EEXIST when another creator was first.
	 */
	int (*publish)(struct shmk *h);
	/* Called once the header is initialized or validated. */
	int (*attached)(struct shmk *h);
	void (*detach)(struct shmk *h);
	/* Set the active size (page multiple); grow or shrink. */
	int (*resize)(struct shmk *h, uint64_t size);
	/* The active size, fast (shmk_size()). */
	uint64_t (*size)(const struct shmk *h);
	/* The size of the backing memory, which a crash can leave larger. */
	uint64_t (*backing_size)(const struct shmk *h);
	/*
	 * backing_size() reads memory that only the kernel writes (no system
	 * call): it is asked again at every lock, so that a shrink by another
	 * client is seen before any offset is followed (shmk__heap_bounds()).
	 */
	bool backing_size_cheap;
	int (*clients)(struct shmk *h, struct shmk_client *out, size_t max);
	int (*client_pid)(struct shmk *h, const char *client_name);
	int (*unlink)(const char *name);
	/*
	 * Whether this backend has a segment named @name that another
	 * backend's shmk_open() must not shadow: 1 yes, 0 no, or -errno.
	 * Called on the backend an open does not use (shmk_open()).
	 */
	int (*exists)(const char *name);
	/*
	 * Optional, for a backend without publish(): whether a segment that
	 * its creator left half made may be initialized by this caller, who
	 * would have created it with @mode (owned by the caller, no wider).
	 */
	bool (*may_take_over)(struct shmk *h, uint32_t mode);
};

extern const struct shmk_backend shmk__backend_kernel;
extern const struct shmk_backend shmk__backend_memfd;

struct shmk {
	uint8_t *base;			/* the segment's mapping */
	struct shmk_hdr *hdr;		/* == base */
	struct shmk_log_entry *log;	/* base + SHMK_LOG_OFF */
	size_t map_size;		/* == max size */
	size_t page_size;
	const struct shmk_backend *be;
	int flags;			/* SHMK_* given to shmk_open */
	uint32_t create_mode;		/* opts.mode, or the default 0600 */
	bool rdonly;
	bool at_common_base;
	bool tx_nolog;			/* recovery's rebuild: no undo log */
	bool free_index_changed;	/* since the last publication */
	bool msg_flushing;		/* the transaction flushed the message
					   cache (msg_cache.c) */
	/*
	 * Under the lock: the operation in progress found the metadata it
	 * follows corrupt (a hostile or broken client wrote it). It stops
	 * following it, its transaction is rolled back at the commit, and it
	 * fails with -EUCLEAN. Cleared by shmk__tx_begin().
	 */
	bool corrupt;
	/*
	 * The derived counters as shmk__tx_begin() found them (tx_counted):
	 * they are not logged, so an operation undone for corruption puts
	 * them back from here.
	 */
	bool tx_counted;
	/*
	 * The transaction record as this handle last wrote it: the undo
	 * log's count comes from here, never back from the segment, where
	 * another client could raise it to the log's end.
	 */
	uint64_t tx_state;
	struct {
		uint64_t used_bytes, free_bytes, free_blocks, nallocs;
		uint64_t run_blocks, run_bytes, small_bytes;
	} tx_counters;
	uint64_t backed;		/* backing memory, as last asked
					   (shmk__backed()) */
	uint64_t theaps;		/* the thread heap table's offset, as
					   last checked (small.c) */
	/*
	 * Locked: the heap's end as shmk__heap_bounds() checked it at this
	 * lock, or as this holder moved it since (extend, cut). The page
	 * heap bounds its blocks and nodes by this copy, never by the
	 * header's, which another client may raise past the memory.
	 */
	uint64_t heap_ok;
	char name[SHMK_NAME_MAX];
	char client_name[SHMK_CLIENT_NAME_MAX];
	int origin;			/* SHMK_ORIGIN_* */
	uint64_t schema;		/* opts.schema, for shmk_save() */
	char *file_path;		/* file backend: the segment's file */
	int recv_queues;		/* receiver queues open (atomic) */

	union {
		struct {
			int fd;			/* client handle */
			const struct shmk_status *status;
			uint32_t client_id;
		} k;
		struct {
			int fd;
			struct shmk_registry *reg;	/* NULL: unregistered */
			void *reg_map;			/* reader's RW window */
			int slot;			/* -1: none */
			uint64_t key;			/* our owner key */
			bool unnamed;			/* created, not linked yet */
		} m;
	};
};

uint64_t *shmk__w_scratch(void) __attribute__((cold));

/*
 * The metadata word at @off. Offsets come from the segment, which any
 * client with write access may change between a check and a use: one past
 * the mapping gets a thread-local scratch word instead (shmk__w_scratch()),
 * so that no access made through here leaves the segment, and the
 * transaction in progress is undone as corrupt (shmk__tx_bad()). Offsets
 * inside the mapping but past its memory are the checks' to refuse (the
 * heap's end as checked at the lock, h->heap_ok).
 */
static inline uint64_t *shmk__w(const struct shmk *h, uint64_t off)
{
	if (likely(off <= h->map_size - 8))
		return (uint64_t *)(h->base + off);
	return shmk__w_scratch();
}

static inline uint64_t shmk__rd(const struct shmk *h, uint64_t off)
{
	return *shmk__w(h, off);
}

/* Errno helpers: int-returning functions must leave errno alone. */
static inline void shmk__restore_errno(int *saved)
{
	errno = *saved;
}
#define SHMK_KEEP_ERRNO \
	int shmk__saved_errno __attribute__((cleanup(shmk__restore_errno), \
					     unused)) = errno

/*
 * futex(2) on a word that other processes share (no FUTEX_PRIVATE_FLAG):
 * its result, or a negative errno value; errno is left alone, so that a
 * call that waited on a lock or a queue and then succeeded leaves it as
 * the caller had it.
 */
static inline long shmk__futex(uint32_t *uaddr, int op, uint32_t val,
			       const struct timespec *ts, uint32_t val3)
{
	int saved = errno;
	long r = syscall(SYS_futex, uaddr, op, val, ts, NULL, val3);

	if (r < 0)
		r = -errno;
	errno = saved;
	return r;
}

static inline uint64_t shmk__clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline void shmk__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	barrier();
#endif
}

static inline void *shmk__fail_ptr(int neg_err)
{
	errno = -neg_err;
	return NULL;
}

/* Under the lock: the metadata is corrupt (see struct shmk); false. */
static inline bool shmk__corrupt(const struct shmk *h)
{
	((struct shmk *)h)->corrupt = true;
	return false;
}

/*
 * Whether [0, @end) of the segment has memory behind it: an offset that a
 * client overwrote may lie past it, in the reservation (SIGBUS). Cheap:
 * the backend is asked again only when @end lies past what it said last
 * (the segment grew since).
 */
bool shmk__backed_slow(const struct shmk *h, uint64_t end);
/* An access through shmk__w() fell outside the segment (page_heap.c). */
extern __thread __attribute__((tls_model("initial-exec"))) bool shmk__oob;

/* The transaction in progress met corrupt metadata: it will be undone. */
static inline bool shmk__tx_bad(const struct shmk *h)
{
	return h->corrupt || shmk__oob;
}
static inline bool shmk__backed(const struct shmk *h, uint64_t end)
{
	return likely(end <= READ_ONCE(h->backed)) || shmk__backed_slow(h, end);
}

/* A heap end read from the header lies in the mapping and its memory. */
static inline bool shmk__heap_end_ok(const struct shmk *h, uint64_t he)
{
	return he <= h->map_size && shmk__backed(h, he);
}

/* segment.c */
int shmk__wait_ready(const uint64_t *magic);
uint32_t shmk__ns_ino(const char *kind);

/* queue.c: the segment's bytes start a new session (image, file) */
void shmk__queue_new_session(struct shmk *h);
void *shmk__map_at(void *hint, size_t len, int prot, int flags, int fd,
		   off_t off, bool *at_hint);

/* lock.c: the lock alone */
int shmk__init_lock(struct shmk *h);
int shmk__lock_raw(struct shmk *h);
void shmk__lock_consistent(struct shmk *h);
void shmk__unlock(struct shmk *h);
int shmk__writable(const struct shmk *h);

/* recovery.c: the lock with recovery, and lock-free reads */
int shmk__lock(struct shmk *h);
typedef int (*shmk_read_fn)(struct shmk *h, void *arg);
int shmk__read(struct shmk *h, const uint64_t *seq, shmk_read_fn fn,
	       void *arg);

/* tx.c */
void shmk__tx_begin(struct shmk *h, enum shmk_tx_op op, uint64_t arg);
void shmk__tx_commit(struct shmk *h);
void shmk__tx_rollback(struct shmk *h);
void shmk__dir_changing(struct shmk *h);

/* alloc.c: publish the statistics (a commit did; see layout.h) */
void shmk__stats_publish(struct shmk *h);

/* page_heap.c, alloc.c */
void shmk__heap_init(struct shmk *h, uint64_t heap_end);
int shmk__heap_alloc(struct shmk *h, uint64_t size, uint64_t align,
		     bool preserve, uint64_t *payload);
int shmk__heap_free(struct shmk *h, uint64_t payload);
/* Under the lock: whether a free block takes the request without growth. */
bool shmk__heap_fits(const struct shmk *h, uint64_t size, uint64_t align);
int shmk__heap_valid_used(const struct shmk *h, uint64_t payload);
/* Free an allocation of either tier; -EINVAL (and nothing done) if invalid. */
int shmk__free_locked(struct shmk *h, uint64_t payload);
/*
 * shmk_free() of a message's block by its last reference (queue.c): the
 * caller vouches that it is allocated and freed once, so a slot of another
 * thread's run is freed without taking its cache line (small.c), and a
 * page-heap block is kept for the next message (msg_cache.c).
 */
void shmk__free_msg(struct shmk *h, void *block);
int shmk__heap_extend(struct shmk *h, uint64_t new_end);
/* Under the lock: 0 when the heap's bounds are sane, else -EUCLEAN. */
int shmk__heap_bounds(struct shmk *h);
void shmk__heap_recount(struct shmk *h);
int shmk__heap_rebuild(struct shmk *h);
uint64_t shmk__blk_size_for(uint64_t size);

/* directory.c */
int shmk__dir_init(struct shmk *h);
int shmk__dir_remove_locked(struct shmk *h, const char *name);

/* check.c */
int shmk__check_locked(const struct shmk *h, bool quiescent);
/* Report a failed check (on stderr with SHMK_DEBUG); returns -EUCLEAN. */
int shmk__check_bad(const char *what, uint64_t at);

#ifdef SHMK_FAULT_INJECT
/* Tests: die (SIGKILL) at the Nth fault point; 0 disables. */
extern long shmk__fault_countdown;
extern long shmk__fault_hits;		/* fault points passed */
extern unsigned int shmk__read_attempts;	/* by the last shmk_stats() */
void shmk__fault_point(void);
#define SHMK_FAULT_POINT() shmk__fault_point()
#else
#define SHMK_FAULT_POINT() do { } while (0)
#endif

#endif /* SHMK_INTERNAL_H */
