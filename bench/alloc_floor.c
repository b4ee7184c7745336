// SPDX-License-Identifier: GPL-2.0
/*
 * The page-map floor for alloc_bench (-i pagemap): what a page heap that
 * keeps all its metadata out of the blocks can do at best on the same
 * traces, the design issue 11 sketches for libshmk's tier 0, without any
 * of what libshmk pays for (no undo log, no recovery, no checks on what
 * another client wrote, no growth, no small tier). A measuring stick, not
 * an allocator: nothing but alloc_bench uses it.
 *
 * One POSIX shared memory object of the size alloc_bench asks for, sized
 * up front like Boost's. Its first pages hold a header (a process-shared
 * mutex, a bitmap of the non-empty bins, their heads), a page map (a word
 * per heap page: the span's length, used or free, on its first and its
 * last page) and a node per page (a free span's list links, on its first
 * page's node); the heap follows, in pages. An allocation takes ceil(size /
 * 4 KiB) pages, best fit by page count (bins of each count up to 511, then
 * one list searched for the smallest); a free coalesces with both
 * neighbours through the page map. Neither ever touches a heap page.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc_impl.h"

#define FL_PAGE		4096u
#define FL_NBINS	512u		/* bin n: spans of n pages; 0: larger */
#define FL_FIRST	1u
#define FL_USED		2u
#define FL_LEN_SHIFT	2

struct fl_hdr {
	pthread_mutex_t lock;
	uint32_t npages;		/* of the heap */
	uint32_t heap_off;		/* pages from the mapping's start */
	uint64_t binmap[FL_NBINS / 64];
	uint32_t bins[FL_NBINS];	/* first span's page + 1, 0: empty */
};

struct fl_node {
	uint32_t next, prev;		/* page + 1, 0: none */
};

struct fl {
	struct fl_hdr *hdr;
	uint32_t *map;
	struct fl_node *node;
	char *heap;
	size_t size;
};

static size_t fl_meta_bytes(uint32_t npages)
{
	size_t b = sizeof(struct fl_hdr) + (size_t)npages *
		   (sizeof(uint32_t) + sizeof(struct fl_node));

	return (b + FL_PAGE - 1) / FL_PAGE * FL_PAGE;
}

static struct fl *fl_map(int fd, size_t size)
{
	struct fl *f = malloc(sizeof(*f));
	char *base;

	if (!f)
		return NULL;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		free(f);
		return NULL;
	}
	f->hdr = (struct fl_hdr *)base;
	f->map = (uint32_t *)(f->hdr + 1);
	f->node = (struct fl_node *)(f->map + f->hdr->npages);
	f->heap = base + (size_t)f->hdr->heap_off * FL_PAGE;
	f->size = size;
	return f;
}

static uint32_t fl_len(uint32_t w)
{
	return w >> FL_LEN_SHIFT;
}

static void fl_mark(struct fl *f, uint32_t s, uint32_t len, bool used)
{
	uint32_t w = len << FL_LEN_SHIFT | (used ? FL_USED : 0);

	f->map[s] = w | FL_FIRST;
	if (len > 1)
		f->map[s + len - 1] = w;
}

static unsigned int fl_bin(uint32_t len)
{
	return len < FL_NBINS ? len : 0;
}

static void fl_push(struct fl *f, uint32_t s, uint32_t len)
{
	struct fl_hdr *h = f->hdr;
	unsigned int b = fl_bin(len);
	uint32_t head = h->bins[b];

	fl_mark(f, s, len, false);
	f->node[s].next = head;
	f->node[s].prev = 0;
	if (head)
		f->node[head - 1].prev = s + 1;
	h->bins[b] = s + 1;
	h->binmap[b / 64] |= 1ULL << (b % 64);
}

static void fl_unlink(struct fl *f, uint32_t s, uint32_t len)
{
	struct fl_hdr *h = f->hdr;
	unsigned int b = fl_bin(len);
	struct fl_node *n = &f->node[s];

	if (n->prev)
		f->node[n->prev - 1].next = n->next;
	else
		h->bins[b] = n->next;
	if (n->next)
		f->node[n->next - 1].prev = n->prev;
	if (!h->bins[b])
		h->binmap[b / 64] &= ~(1ULL << (b % 64));
}

/* The smallest free span of at least @n pages (page + 1), or 0. */
static uint32_t fl_fit(const struct fl *f, uint32_t n)
{
	const struct fl_hdr *h = f->hdr;
	uint32_t best = 0, best_len = UINT32_MAX;

	for (unsigned int b = n < FL_NBINS ? n : FL_NBINS; b < FL_NBINS;
	     b = (b | 63) + 1) {
		uint64_t m = h->binmap[b / 64] & (~0ULL << (b % 64));

		if (m)
			return h->bins[b / 64 * 64 + __builtin_ctzll(m)];
	}
	for (uint32_t s = h->bins[0]; s; s = f->node[s - 1].next) {
		uint32_t len = fl_len(f->map[s - 1]);

		if (len >= n && len < best_len) {
			best = s;
			best_len = len;
		}
	}
	return best;
}

static void *fl_alloc(void *hp, size_t size)
{
	struct fl *f = hp;
	uint32_t n = (uint32_t)((size + FL_PAGE - 1) / FL_PAGE), s, len;
	void *p = NULL;

	if (!n)
		n = 1;
	pthread_mutex_lock(&f->hdr->lock);
	s = fl_fit(f, n);
	if (s) {
		s--;
		len = fl_len(f->map[s]);
		fl_unlink(f, s, len);
		if (len > n)
			fl_push(f, s + n, len - n);
		fl_mark(f, s, n, true);
		p = f->heap + (size_t)s * FL_PAGE;
	}
	pthread_mutex_unlock(&f->hdr->lock);
	return p;
}

static void fl_free(void *hp, void *p)
{
	struct fl *f = hp;
	uint32_t s = (uint32_t)(((char *)p - f->heap) / FL_PAGE), len, e, w;

	pthread_mutex_lock(&f->hdr->lock);
	len = fl_len(f->map[s]);
	e = s + len;
	if (s && !((w = f->map[s - 1]) & FL_USED)) {
		uint32_t pl = fl_len(w);

		s -= pl;
		len += pl;
		fl_unlink(f, s, pl);
	}
	if (e < f->hdr->npages && !((w = f->map[e]) & FL_USED)) {
		fl_unlink(f, e, fl_len(w));
		len += fl_len(w);
	}
	fl_push(f, s, len);
	pthread_mutex_unlock(&f->hdr->lock);
}

static void *fl_create(const char *seg, size_t size)
{
	pthread_mutexattr_t a;
	uint32_t npages = (uint32_t)(size / FL_PAGE);
	struct fl_hdr *h;
	struct fl *f;
	char *base;
	int fd;

	shm_unlink(seg);
	fd = shm_open(seg, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return NULL;
	while (npages && fl_meta_bytes(npages) / FL_PAGE + npages >
			 size / FL_PAGE)
		npages--;
	if (!npages || ftruncate(fd, (off_t)size)) {
		close(fd);
		return NULL;
	}
	base = mmap(NULL, FL_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		close(fd);
		return NULL;
	}
	h = (struct fl_hdr *)base;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&h->lock, &a);
	pthread_mutexattr_destroy(&a);
	h->npages = npages;
	h->heap_off = (uint32_t)(fl_meta_bytes(npages) / FL_PAGE);
	munmap(base, FL_PAGE);
	f = fl_map(fd, size);
	close(fd);
	if (f)
		fl_push(f, 0, npages);
	return f;
}

static void *fl_open(const char *seg)
{
	struct stat st;
	struct fl *f;
	int fd = shm_open(seg, O_RDWR, 0);

	if (fd < 0)
		return NULL;
	f = fstat(fd, &st) ? NULL : fl_map(fd, (size_t)st.st_size);
	close(fd);
	return f;
}

/* After a round everything was freed: one free span, the whole heap. */
static int fl_check(void *hp)
{
	struct fl *f = hp;
	uint32_t w = f->map[0];

	return (w & FL_FIRST) && !(w & FL_USED) &&
	       fl_len(w) == f->hdr->npages ? 0 : -1;
}

static void fl_close(void *hp)
{
	struct fl *f = hp;

	munmap(f->hdr, f->size);
	free(f);
}

static void fl_destroy(void *hp, const char *seg)
{
	fl_close(hp);
	shm_unlink(seg);
}

const struct alloc_impl floor_impl = {
	.name = "pagemap",
	.create = fl_create,
	.open = fl_open,
	.alloc = fl_alloc,
	.free = fl_free,
	.check = fl_check,
	.close = fl_close,
	.destroy = fl_destroy,
};
