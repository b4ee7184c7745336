// SPDX-License-Identifier: GPL-2.0
/*
 * shmk-fuzz: a struct-aware, coverage-guided fuzzer for the shmk uapi.
 *
 * Programs of up to MAX_CALLS calls, each call an operation and five 64-bit
 * words from which the call builds its arguments: every ioctl on control and
 * client handles (and on the wrong kind, with shorter, longer and garbage
 * size fields), mmap/munmap/mremap/mprotect/madvise/msync/touch on the
 * mappings and the status page, file operations a handle must refuse,
 * fork (children touch inherited mappings and handles, and are killed at
 * random), and every generic netlink command with valid, boundary and
 * garbage attributes. Several worker processes, each with several threads,
 * share their handles and mappings, so closes, unmaps and shrinks race with
 * everything else; the parent SIGKILLs a random worker now and then and
 * starts another; some workers run as an unprivileged user.
 *
 * With KCOV (/sys/kernel/debug/kcov; the module built with
 * KCOV_INSTRUMENT=y) each thread traces its own calls; a program that reaches
 * a PC or an edge of shmk.ko (between /sys/module/shmk/sections/.text and
 * the module's next section) not seen before joins the corpus, in memory
 * (mutated further) and in the corpus directory (reused by the next run).
 * Without KCOV it runs blind: random programs and mutations of the corpus.
 *
 * Ends after -n calls in all (default 10^6) or -d seconds, then unlinks
 * every segment it made and prints
 *   shmk-fuzz: <calls> calls, <programs> programs, <pcs> PCs, <edges> edges,
 *   <corpus> corpus entries (<new> new), <kills> kills, <mode>
 * It exits 1 if a worker died of an unexpected signal or the module's
 * counters do not return to zero. Kernel reports (KASAN, lockdep, WARNING,
 * kmemleak...) and the unload are checked by fuzz/run.sh and the VM rig.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/shmk.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK		270
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#define MADV_POPULATE_WRITE	23
#endif
#ifndef MADV_COLD
#define MADV_COLD		20
#define MADV_PAGEOUT		21
#endif

/* KCOV (include/uapi/linux/kcov.h). */
#define KCOV_INIT_TRACE		_IOR('c', 1, unsigned long)
#define KCOV_ENABLE		_IO('c', 100)
#define KCOV_DISABLE		_IO('c', 101)
#define KCOV_TRACE_PC		0
#define KCOV_WORDS		(1 << 16)

#define MAX_CALLS		16
#define NR_FDS			24
#define NR_MAPS			24
#define NR_NAMES		6
#define ARENA_SIZE		(256UL << 20)
#define PC_BITS			(1U << 22)	/* byte offsets into .text */
#define EDGE_BITS		(1U << 22)
#define CORPUS_MAX		4096
#define UNPRIV_UID		41004

enum op {
	OP_OPEN_CTL, OP_ATTACH, OP_UNLINK, OP_INFO, OP_GROW, OP_SHRINK,
	OP_CLIENTS, OP_LOOKUP, OP_IOCTL_RAW, OP_CLOSE, OP_DUP, OP_MMAP,
	OP_MUNMAP, OP_MREMAP, OP_MPROTECT, OP_MADVISE, OP_TOUCH, OP_STATUS,
	OP_FORK, OP_FILEOPS, OP_NL, OP_MSYNC,
	NR_OPS,
};

static const char *const op_names[NR_OPS] = {
	"open_ctl", "attach", "unlink", "info", "grow", "shrink", "clients",
	"lookup", "ioctl_raw", "close", "dup", "mmap", "munmap", "mremap",
	"mprotect", "madvise", "touch", "status", "fork", "fileops", "nl",
	"msync",
};

struct call {
	uint32_t op;
	uint32_t sel;
	uint64_t a[5];
};

struct prog {
	uint32_t n;
	uint32_t pad;
	struct call c[MAX_CALLS];
};

#define CORPUS_MAGIC	0x315a4653U	/* "SFZ1" */

/* State shared by every process: counters, coverage, the corpus. */
struct shared {
	uint64_t calls;
	uint64_t progs;
	uint64_t limit;
	uint64_t pcs;
	uint64_t edges;
	uint64_t new_entries;
	uint64_t kills;
	uint64_t ok[NR_OPS];	/* calls whose main syscall succeeded */
	uint32_t stop;
	uint32_t corpus_n;
	pthread_mutex_t lock;	/* corpus, process-shared */
	uint8_t pc_map[PC_BITS / 8];
	uint8_t edge_map[EDGE_BITS / 8];
	struct prog corpus[CORPUS_MAX];
};

static struct shared *sh;

#define COUNT_OK(op)	__atomic_fetch_add(&sh->ok[op], 1, __ATOMIC_RELAXED)
static const char *corpus_dir;
static uint64_t text_start, text_end;
static bool use_kcov;
static int nthreads = 3;
static size_t pg;

/* Per process: handles and mappings, shared by its threads. */
enum fd_kind { FD_NONE, FD_CTL, FD_CLIENT, FD_NL, FD_OTHER };

struct fd_slot {
	int fd;
	enum fd_kind kind;
	bool rdonly;
};

struct map_slot {
	char *addr;
	size_t len;
	bool status;
	bool writable;
};

static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fd_slot fds[NR_FDS];
static struct map_slot maps[NR_MAPS];
static char *arena;
static bool unpriv;
static uint16_t nl_family;
static uint32_t nl_mcgrp;

static __thread sigjmp_buf touch_jb;
static __thread volatile int in_touch;
static __thread uint64_t rnd_state;

/* ------------------------------------------------------------------ */
/* Randomness.                                                          */

static uint64_t rnd(void)
{
	uint64_t x = rnd_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rnd_state = x;
	return x;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Boundary values of sizes, offsets, counts and flags. */
static const uint64_t interesting[] = {
	0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 65, 127, 128, 255, 256,
	511, 512, 1023, 1024, 4095, 4096, 4097, 8192, 65535, 65536,
	(2 << 20) - 4096, 2 << 20, (2 << 20) + 4096, 4 << 20, 1 << 30,
	0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL,
	(1ULL << 43) - 4096, 1ULL << 43, (1ULL << 43) + 4096, 16ULL << 30,
	(16ULL << 30) + 4096, 1ULL << 47, 0x7fffffffffffffffULL,
	0x8000000000000000ULL, 0xfffffffffffff000ULL, ~0ULL,
};

#define NR_INTERESTING	(sizeof(interesting) / sizeof(interesting[0]))

/*
 * A field's value from word @w: mostly the sensible value @valid, else a
 * boundary value, a bit flip of @valid, or @w itself.
 */
static uint64_t pick(uint64_t w, uint64_t valid)
{
	switch (w & 15) {
	case 12:
		return interesting[(w >> 4) % NR_INTERESTING];
	case 13:
		return valid ^ (1ULL << ((w >> 4) & 63));
	case 14:
		return w >> 4;
	case 15:
		return valid + ((w >> 4) & 7) - 3;
	default:
		return valid;
	}
}

/* A size of 0..16 pages, usually page aligned. */
static uint64_t pick_size(uint64_t w)
{
	uint64_t valid = ((w >> 8) % 17) * pg;

	if ((w & 0xf0) == 0xf0)	/* now and then a 2 MiB multiple */
		valid = ((w >> 12) % 3) * (2 << 20);
	return pick(w, valid);
}

/* ------------------------------------------------------------------ */
/* Resource tables.                                                     */

static int fd_add(int fd, enum fd_kind kind, bool rdonly)
{
	int i, victim = -1;

	if (fd < 0)
		return -1;
	pthread_mutex_lock(&st_lock);
	for (i = 0; i < NR_FDS; i++)
		if (fds[i].kind == FD_NONE)
			break;
	if (i == NR_FDS) {
		i = (int)rnd_below(NR_FDS);
		victim = fds[i].fd;
	}
	fds[i].fd = fd;
	fds[i].kind = kind;
	fds[i].rdonly = rdonly;
	pthread_mutex_unlock(&st_lock);
	if (victim >= 0)
		close(victim);
	return i;
}

/* A handle of @kind (FD_NONE: any), chosen by @w; -1 if none. */
static int fd_pick(uint64_t w, enum fd_kind kind, bool *rdonly)
{
	int i, n, fd = -1;

	pthread_mutex_lock(&st_lock);
	for (n = 0; n < NR_FDS; n++) {
		i = (int)((w + n) % NR_FDS);
		if (fds[i].kind != FD_NONE &&
		    (kind == FD_NONE || fds[i].kind == kind)) {
			fd = fds[i].fd;
			if (rdonly)
				*rdonly = fds[i].rdonly;
			break;
		}
	}
	pthread_mutex_unlock(&st_lock);
	return fd;
}

static void map_add(void *addr, size_t len, bool status, bool writable)
{
	int i;

	if (addr == MAP_FAILED)
		return;
	pthread_mutex_lock(&st_lock);
	for (i = 0; i < NR_MAPS; i++)
		if (!maps[i].addr)
			break;
	if (i == NR_MAPS)
		i = (int)rnd_below(NR_MAPS);	/* forget one: it stays mapped */
	maps[i].addr = addr;
	maps[i].len = len;
	maps[i].status = status;
	maps[i].writable = writable;
	pthread_mutex_unlock(&st_lock);
}

static bool map_pick(uint64_t w, struct map_slot *out, int *idx)
{
	int i, n;

	pthread_mutex_lock(&st_lock);
	for (n = 0; n < NR_MAPS; n++) {
		i = (int)((w + n) % NR_MAPS);
		if (maps[i].addr) {
			*out = maps[i];
			if (idx)
				*idx = i;
			pthread_mutex_unlock(&st_lock);
			return true;
		}
	}
	pthread_mutex_unlock(&st_lock);
	return false;
}

static void map_forget(int i)
{
	pthread_mutex_lock(&st_lock);
	maps[i].addr = NULL;
	pthread_mutex_unlock(&st_lock);
}

/* A segment name: shared by all workers, so they meet. */
static void pick_name(uint64_t w, char *buf, size_t size)
{
	size_t n;

	memset(buf, 0, size);
	switch (w & 31) {
	case 28:	/* the longest valid name, and one too long */
	case 29:
		n = (w & 31) == 28 ? SHMK_NAME_MAX - 1 : SHMK_NAME_MAX;
		memset(buf, 'f', n < size ? n : size);
		if (n < size)
			buf[n] = 0;
		break;
	case 30:	/* empty, slashes, control characters */
		snprintf(buf, size, "%s", (w >> 5) & 1 ? "" :
			 (w >> 6) & 1 ? "fz/x" : "fz\x01\x7f");
		break;
	case 31:	/* garbage, maybe unterminated */
		for (n = 0; n < size; n++)
			buf[n] = (char)(rnd() | 1);
		if ((w >> 5) & 1)
			buf[size - 1] = 0;
		break;
	default:
		snprintf(buf, size, "fz-%u", (unsigned int)((w >> 5) % NR_NAMES));
	}
}

/* ------------------------------------------------------------------ */
/* Argument placement: where an ioctl's struct lives.                  */

static __thread char argbuf[16384] __attribute__((aligned(64)));

/*
 * The address the kernel gets for an argument of @len bytes prepared in
 * @buf: mostly @buf; else NULL, a kernel address, unmapped memory, a struct
 * straddling into a PROT_NONE page, or a copy inside a shmk mapping (the
 * ioctl then faults on the segment it works on).
 */
static void *place_arg(uint64_t w, void *buf, size_t len)
{
	struct map_slot m;

	switch (w & 31) {
	case 24:
		return NULL;
	case 25:
		return (void *)0xffff888000000000ULL;
	case 26:
		return arena + ARENA_SIZE - pg;	/* PROT_NONE */
	case 27:
		/* The last bytes of a writable page before PROT_NONE. */
		if (len > pg)
			return buf;
		memcpy(arena + pg - (len / 2), buf, len / 2);
		return arena + pg - (len / 2);
	case 28:
	case 29:
		if (!map_pick(w >> 5, &m, NULL) || m.len < len)
			return buf;
		in_touch = 1;
		if (sigsetjmp(touch_jb, 1)) {
			in_touch = 0;
			return m.addr;	/* unmapped since, or SIGBUS */
		}
		if (m.writable)
			memcpy(m.addr, buf, len);
		in_touch = 0;
		return m.addr;
	default:
		return buf;
	}
}

/* An ioctl command for @base with its size field varied by @w. */
static unsigned long vary_cmd(uint64_t w, unsigned long base, size_t len,
			      char *buf)
{
	static const int deltas[] = { -8, 8, 64, -16, 4, 4096 };
	long size = (long)len;

	if ((w & 7) != 7)
		return base;
	size += deltas[(w >> 3) % 6];
	if ((w >> 6) & 1)
		size = (long)((w >> 7) & 0x3fff);
	if (size < 0)
		size = 0;
	if (size > 0x3fff)
		size = 0x3fff;
	/* The tail past the struct: zero, or a stray nonzero byte. */
	if ((size_t)size > len) {
		memset(buf + len, 0, (size_t)size - len);
		if ((w >> 21) & 1)
			buf[len + ((w >> 22) % ((size_t)size - len))] = 1;
	}
	return _IOC(_IOC_DIR(base), _IOC_TYPE(base), _IOC_NR(base),
		    (unsigned long)size);
}

/* ------------------------------------------------------------------ */
/* Netlink.                                                             */

struct nlreq {
	struct nlmsghdr nlh;
	struct genlmsghdr genl;
	char attrs[2048];
};

static void nl_put(struct nlreq *r, uint16_t type, const void *data,
		   uint16_t len)
{
	struct nlattr *nla;

	if (NLMSG_ALIGN(r->nlh.nlmsg_len) + NLA_HDRLEN + NLA_ALIGN(len) >
	    sizeof(*r))
		return;
	nla = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->nlh.nlmsg_len));
	nla->nla_type = type;
	nla->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy((char *)nla + NLA_HDRLEN, data, len);
	r->nlh.nlmsg_len = NLMSG_ALIGN(r->nlh.nlmsg_len) +
			   NLA_ALIGN(nla->nla_len);
}

static void nl_drain(int fd)
{
	static __thread char buf[65536];
	int i;

	for (i = 0; i < 64; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
}

/* Resolve the family id and the events group, as root or not. */
static void nl_resolve(void)
{
	static char buf[16384];
	struct nlmsghdr *nlh;
	struct nlreq r;
	ssize_t n;
	int fd, rem;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return;
	memset(&r, 0, sizeof(r));
	r.nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r.nlh.nlmsg_type = GENL_ID_CTRL;
	r.nlh.nlmsg_flags = NLM_F_REQUEST;
	r.genl.cmd = CTRL_CMD_GETFAMILY;
	r.genl.version = 1;
	nl_put(&r, CTRL_ATTR_FAMILY_NAME, SHMK_GENL_NAME,
	       sizeof(SHMK_GENL_NAME));
	if (send(fd, &r, r.nlh.nlmsg_len, 0) < 0)
		goto out;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0)
		goto out;
	rem = (int)n;
	for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, rem);
	     nlh = NLMSG_NEXT(nlh, rem)) {
		char *p = (char *)NLMSG_DATA(nlh) + GENL_HDRLEN;
		int len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
		struct nlattr *nla;

		if (nlh->nlmsg_type == NLMSG_ERROR)
			break;
		for (nla = (struct nlattr *)p; len >= NLA_HDRLEN &&
		     nla->nla_len >= NLA_HDRLEN && nla->nla_len <= len;
		     len -= NLA_ALIGN(nla->nla_len),
		     nla = (struct nlattr *)((char *)nla + NLA_ALIGN(nla->nla_len))) {
			char *d = (char *)nla + NLA_HDRLEN;

			if (nla->nla_type == CTRL_ATTR_FAMILY_ID)
				memcpy(&nl_family, d, 2);
			if ((nla->nla_type & NLA_TYPE_MASK) ==
			    CTRL_ATTR_MCAST_GROUPS) {
				/* [ [ ID, NAME ] ... ]: the first id. */
				struct nlattr *g = (struct nlattr *)d;
				struct nlattr *a = (struct nlattr *)((char *)g + NLA_HDRLEN);

				if (g->nla_len >= 2 * NLA_HDRLEN + 4 &&
				    a->nla_type == CTRL_ATTR_MCAST_GRP_ID)
					memcpy(&nl_mcgrp, (char *)a + NLA_HDRLEN, 4);
			}
		}
	}
out:
	close(fd);
}

/* One attribute: valid, boundary or garbage, chosen by @w. */
static void nl_attr(struct nlreq *r, uint64_t w)
{
	uint16_t type = (uint16_t)((w >> 8) % (SHMK_A_MAX + 3));
	char data[128], name[SHMK_NAME_MAX + 8];
	uint64_t v = pick(w >> 16, (w >> 24) % 64);
	uint16_t len;

	switch (w & 7) {
	case 0:
	case 1:
		pick_name(w >> 12, name, sizeof(name) - 8);
		nl_put(r, (w & 1) ? SHMK_A_CLIENT_NAME : SHMK_A_SEGMENT_NAME,
		       name, (uint16_t)(strnlen(name, SHMK_NAME_MAX + 1) + 1));
		break;
	case 2:
		nl_put(r, SHMK_A_SEGMENT_ID, &v, 4);
		break;
	case 3:
		nl_put(r, SHMK_A_CLIENT_ID, &v, 4);
		break;
	case 4:	/* a right-looking type with a random width */
		len = (uint16_t)((w >> 40) % 12);
		memcpy(data, &v, 8);
		memset(data + 8, 0, 8);
		nl_put(r, type, data, len);
		break;
	case 5:	/* garbage */
		len = (uint16_t)((w >> 40) % sizeof(data));
		for (uint16_t i = 0; i < len; i++)
			data[i] = (char)rnd();
		nl_put(r, (uint16_t)(type | ((w >> 50) & 1 ? NLA_F_NESTED : 0)),
		       data, len);
		break;
	case 6:	/* a bad header: length past the message or short */
		nl_put(r, type, &v, 8);
		if (r->nlh.nlmsg_len >= NLMSG_LENGTH(GENL_HDRLEN) + 12) {
			struct nlattr *nla = (struct nlattr *)((char *)r +
				r->nlh.nlmsg_len - 12);

			nla->nla_len = (w >> 40) & 1 ? 2 : 400;
		}
		break;
	default:
		nl_put(r, SHMK_A_PID, &v, 4);
	}
}

static int nl_socket(uint64_t w)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	int one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	if (w & 1)
		setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if ((w & 6) == 6 && nl_mcgrp)
		setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &nl_mcgrp,
			   sizeof(nl_mcgrp));
	{
		struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

static void do_nl(const struct call *c)
{
	static __thread char buf[65536];
	struct nlreq r;
	int fd, i, n;
	bool keep = false;

	if (!nl_family)
		return;
	fd = fd_pick(c->a[0], FD_NL, NULL);
	if (fd < 0 || (c->a[0] & 3) == 0) {
		fd = nl_socket(c->a[0] >> 2);
		keep = (c->a[0] >> 8) & 1;
		if (fd < 0)
			return;
	}
	memset(&r, 0, sizeof(r));
	r.nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r.nlh.nlmsg_type = (c->a[1] & 63) == 63 ? (uint16_t)(c->a[1] >> 6) :
			   nl_family;
	r.nlh.nlmsg_flags = NLM_F_REQUEST |
		((c->a[1] >> 16) & 1 ? NLM_F_ACK : 0) |
		((c->a[1] >> 17) & 1 ? NLM_F_DUMP : 0);
	r.nlh.nlmsg_seq = (uint32_t)c->a[1];
	r.genl.cmd = (uint8_t)pick(c->a[1] >> 20, 1 + (c->a[1] >> 24) %
				   SHMK_CMD_MAX);
	r.genl.version = (c->a[1] >> 30) & 7 ? SHMK_GENL_VERSION :
			 (uint8_t)(c->a[1] >> 33);
	n = (int)(c->a[2] % 5);
	for (i = 0; i < n; i++)
		nl_attr(&r, i == 0 ? c->a[3] : i == 1 ? c->a[4] :
			c->a[3] ^ (c->a[4] << i));
	if ((c->a[2] >> 8) % 16 == 15)	/* truncated message */
		r.nlh.nlmsg_len -= (uint32_t)((c->a[2] >> 12) % 8);
	send(fd, &r, r.nlh.nlmsg_len, MSG_DONTWAIT);
	/* Read the answer (all of a dump) or leave it to a later call. */
	if ((c->a[2] >> 16) & 3) {
		for (i = 0; i < 256; i++) {
			ssize_t got = recv(fd, buf, (c->a[2] >> 18) & 1 ? 512 :
					   sizeof(buf), 0);
			struct nlmsghdr *nlh = (struct nlmsghdr *)buf;

			if (got > 0 && ((nlh->nlmsg_type == NLMSG_ERROR &&
					 !((struct nlmsgerr *)NLMSG_DATA(nlh))->error) ||
					nlh->nlmsg_type == nl_family))
				COUNT_OK(OP_NL);
			if (got <= 0 || nlh->nlmsg_type == NLMSG_ERROR ||
			    nlh->nlmsg_type == NLMSG_DONE)
				break;
		}
	}
	if (keep)
		fd_add(fd, FD_NL, false);
	else if (fd_pick(c->a[0], FD_NL, NULL) != fd)
		close(fd);
	else
		nl_drain(fd);
}

/* ------------------------------------------------------------------ */
/* The calls.                                                           */

static void touch_range(char *p, size_t len, bool write, uint64_t w)
{
	volatile char *v = p;
	size_t off;
	int i;

	in_touch = 1;
	if (sigsetjmp(touch_jb, 1)) {
		in_touch = 0;
		return;
	}
	for (i = 0; i < 8 && len; i++) {
		off = (size_t)((w >> (i * 8)) % len) & ~(size_t)7;
		if (write)
			v[off] = (char)w;
		else
			(void)v[off];
	}
	in_touch = 0;
}

static void do_attach(const struct call *c)
{
	struct shmk_attach *a = (struct shmk_attach *)argbuf;
	unsigned long cmd;
	int ctl, fd;
	bool ro;

	ctl = fd_pick(c->a[0], (c->a[0] & 31) == 31 ? FD_NONE : FD_CTL, NULL);
	if (ctl < 0)
		return;
	memset(a, 0, sizeof(*a));
	a->flags = (uint32_t)pick(c->a[1], (c->a[1] >> 8) & 0x1f);
	a->mode = (uint32_t)pick(c->a[1] >> 16, 0600 | ((c->a[1] >> 24) & 077));
	a->size = pick_size(c->a[2]);
	a->max_size = pick_size(c->a[3]) + (((c->a[3] >> 10) & 1) ? a->size : 0);
	pick_name(c->a[4], a->name, sizeof(a->name));
	if ((c->a[4] >> 20) & 1)
		pick_name(c->a[4] >> 24, a->client_name,
			  sizeof(a->client_name));
	if ((c->a[4] >> 40) % 32 == 31)
		a->reserved[(c->a[4] >> 45) & 3] = 1;
	ro = a->flags & SHMK_ATTACH_RDONLY;
	cmd = vary_cmd(c->a[0] >> 8, SHMK_IOC_ATTACH, sizeof(*a), argbuf);
	fd = ioctl(ctl, cmd, place_arg(c->a[0] >> 16, a, sizeof(*a)));
	if (fd >= 0) {
		COUNT_OK(OP_ATTACH);
		fd_add(fd, FD_CLIENT, ro);
	}
}

static void do_unlink(const struct call *c)
{
	struct shmk_unlink *u = (struct shmk_unlink *)argbuf;
	int ctl = fd_pick(c->a[0], (c->a[0] & 31) == 31 ? FD_NONE : FD_CTL,
			  NULL);

	if (ctl < 0)
		return;
	memset(u, 0, sizeof(*u));
	pick_name(c->a[1], u->name, sizeof(u->name));
	u->flags = (uint32_t)pick(c->a[2], 0);
	u->reserved0 = (uint32_t)pick(c->a[2] >> 32, 0);
	ioctl(ctl, vary_cmd(c->a[0] >> 8, SHMK_IOC_UNLINK, sizeof(*u), argbuf),
	      place_arg(c->a[0] >> 16, u, sizeof(*u)));
}

static int client_fd(uint64_t w)
{
	return fd_pick(w, (w & 31) == 31 ? FD_NONE : FD_CLIENT, NULL);
}

static void do_info(const struct call *c)
{
	struct shmk_info *in = (struct shmk_info *)argbuf;
	int fd = client_fd(c->a[0]);

	if (fd < 0)
		return;
	memset(in, 0, sizeof(*in));
	in->flags = (uint32_t)pick(c->a[1], 0);
	in->reserved1 = (uint32_t)pick(c->a[1] >> 32, 0);
	if (!ioctl(fd, vary_cmd(c->a[0] >> 8, SHMK_IOC_INFO, sizeof(*in),
				argbuf), place_arg(c->a[0] >> 16, in, sizeof(*in))))
		COUNT_OK(OP_INFO);
}

static void do_resize(const struct call *c, bool grow)
{
	struct shmk_resize *rs = (struct shmk_resize *)argbuf;
	int fd = client_fd(c->a[0]);

	if (fd < 0)
		return;
	memset(rs, 0, sizeof(*rs));
	rs->size = pick_size(c->a[1]);
	rs->flags = (uint32_t)pick(c->a[2], grow ? (c->a[2] >> 8) & 1 : 0);
	rs->reserved0 = (uint32_t)pick(c->a[2] >> 16, 0);
	if ((c->a[2] >> 40) % 32 == 31)
		rs->reserved[(c->a[2] >> 45) & 1] = 1;
	if (!ioctl(fd, vary_cmd(c->a[0] >> 8, grow ? SHMK_IOC_GROW :
				SHMK_IOC_SHRINK, sizeof(*rs), argbuf),
		   place_arg(c->a[0] >> 16, rs, sizeof(*rs))))
		COUNT_OK(grow ? OP_GROW : OP_SHRINK);
}

static void do_clients(const struct call *c)
{
	static __thread struct shmk_client_info ci[96];
	struct shmk_clients *cl = (struct shmk_clients *)argbuf;
	int fd = client_fd(c->a[0]);
	struct map_slot m;

	if (fd < 0)
		return;
	memset(cl, 0, sizeof(*cl));
	cl->count = (uint32_t)pick(c->a[1], (c->a[1] >> 8) % 97);
	switch ((c->a[2] >> 4) & 7) {
	case 0:
		cl->clients = 0;
		break;
	case 1:
		cl->clients = 0xffff888000000000ULL;
		break;
	case 2:	/* the array in a segment mapping, or the status page */
		if (map_pick(c->a[2] >> 8, &m, NULL))
			cl->clients = (uint64_t)(uintptr_t)m.addr;
		break;
	case 3:
		cl->clients = (uint64_t)(uintptr_t)(arena + ARENA_SIZE - pg);
		break;
	default:
		cl->clients = (uint64_t)(uintptr_t)ci;
		if (cl->count > 96)
			cl->count = 96;
	}
	cl->flags = (uint32_t)pick(c->a[3], 0);
	cl->reserved0 = (uint32_t)pick(c->a[3] >> 32, 0);
	ioctl(fd, vary_cmd(c->a[0] >> 8, SHMK_IOC_CLIENTS, sizeof(*cl), argbuf),
	      place_arg(c->a[0] >> 16, cl, sizeof(*cl)));
}

static void do_lookup(const struct call *c)
{
	struct shmk_lookup *lk = (struct shmk_lookup *)argbuf;
	int fd = client_fd(c->a[0]);

	if (fd < 0)
		return;
	memset(lk, 0, sizeof(*lk));
	pick_name(c->a[1], lk->name, sizeof(lk->name));
	if (!((c->a[1] >> 40) & 3))
		snprintf(lk->name, sizeof(lk->name), "fz-c%u",
			 (unsigned int)((c->a[1] >> 42) % 4));
	lk->flags = (uint32_t)pick(c->a[2], 0);
	ioctl(fd, vary_cmd(c->a[0] >> 8, SHMK_IOC_LOOKUP, sizeof(*lk), argbuf),
	      place_arg(c->a[0] >> 16, lk, sizeof(*lk)));
}

/* Any command on any handle: numbers around the module's, any size. */
static void do_ioctl_raw(const struct call *c)
{
	int fd = fd_pick(c->a[0], FD_NONE, NULL);
	unsigned int nr = (unsigned int)((c->a[1] >> 8) & 0x1f);
	unsigned int dir = (unsigned int)((c->a[1] >> 16) & 3);
	unsigned int size = (unsigned int)pick(c->a[1] >> 20, 64) & 0x3fff;
	unsigned int type = (c->a[1] & 7) == 7 ? (unsigned int)(c->a[1] >> 3) &
			    0xff : SHMK_IOC_MAGIC;
	size_t i;

	if (fd < 0)
		return;
	for (i = 0; i < size && i < sizeof(argbuf); i++)
		argbuf[i] = (c->a[2] >> 8) & 1 ? (char)rnd() : 0;
	ioctl(fd, _IOC(dir, type, nr, size),
	      place_arg(c->a[3], argbuf, size));
}

static void do_close(const struct call *c)
{
	int i = (int)(c->a[0] % NR_FDS), fd = -1;

	pthread_mutex_lock(&st_lock);
	if (fds[i].kind != FD_NONE) {
		fd = fds[i].fd;
		fds[i].kind = FD_NONE;
	}
	pthread_mutex_unlock(&st_lock);
	if (fd >= 0)
		close(fd);
}

static void do_dup(const struct call *c)
{
	bool ro = false;
	int fd = fd_pick(c->a[0], FD_NONE, &ro);
	enum fd_kind kind = FD_OTHER;
	int i;

	if (fd < 0)
		return;
	pthread_mutex_lock(&st_lock);
	for (i = 0; i < NR_FDS; i++)
		if (fds[i].fd == fd && fds[i].kind != FD_NONE)
			kind = fds[i].kind;
	pthread_mutex_unlock(&st_lock);
	fd_add(fcntl(fd, F_DUPFD_CLOEXEC, 3), kind, ro);
}

static void do_mmap(const struct call *c)
{
	bool ro = false;
	int fd = fd_pick(c->a[0], (c->a[0] & 15) == 15 ? FD_NONE : FD_CLIENT,
			 &ro);
	bool status = (c->a[1] & 7) == 0;
	size_t len = status ? pick(c->a[2], pg) : pick_size(c->a[2]);
	off_t off = status ? (off_t)SHMK_STATUS_OFFSET :
		    (off_t)((c->a[3] & 7) == 7 ? pick(c->a[3] >> 3, 0) :
			    ((c->a[3] >> 3) % 8) * pg);
	int prot = (int)pick(c->a[1] >> 8, status || ro ? PROT_READ :
			      PROT_READ | PROT_WRITE) & 7;
	int flags = (c->a[1] >> 16) % 8 == 7 ? MAP_PRIVATE : MAP_SHARED;
	char *hint = NULL;
	void *p;

	if (fd < 0 || !len || len > (64UL << 20))
		return;
	if ((c->a[1] >> 20) & 1)
		flags |= MAP_POPULATE;
	if ((c->a[1] >> 21) % 4 == 3) {
		flags |= MAP_FIXED;
		hint = arena + 2 * pg + ((c->a[4] % (ARENA_SIZE / 2)) & ~(pg - 1));
	}
	p = mmap(hint, len, prot, flags, fd, off);
	if (p != MAP_FAILED)
		COUNT_OK(OP_MMAP);
	map_add(p, len, status, prot & PROT_WRITE);
}

/* PROT_NONE over [p, p + len): replaces whatever was mapped there. */
static void reserve(char *p, size_t len)
{
	mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |
	     MAP_NORESERVE, -1, 0);
}

/* PROT_NONE over [p, p + len) if nothing is mapped there (else nothing). */
static void reserve_free(char *p, size_t len)
{
	if (len)
		mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
		     MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
}

/*
 * No range that a table slot ever named goes back to the process's other
 * users of address space (libc's malloc arenas, thread stacks): another
 * thread may still hold a copy of the slot, and touch, protect, advise or
 * unmap through it after the range was unmapped, which would corrupt
 * whatever libc put there. So an unmap is PROT_NONE mapped over the range
 * (MAP_FIXED: the old mapping goes in the same step, through the module's
 * close and split paths as for munmap), and a mremap that moved a mapping
 * reserves the range it left at once.
 */
static void do_munmap(const struct call *c)
{
	struct map_slot m;
	size_t off, len;
	int i;

	if (!map_pick(c->a[0], &m, &i))
		return;
	off = ((c->a[1] % (m.len / pg + 1)) * pg);
	len = (c->a[1] >> 32) & 1 ? m.len : (c->a[2] % 4 + 1) * pg;
	if ((c->a[1] >> 33) & 1 || off >= m.len) {
		off = 0;
		len = m.len;
		map_forget(i);
	}
	if (len > m.len - off)
		len = m.len - off;
	reserve(m.addr + off, len);
}

static void do_mremap(const struct call *c)
{
	struct map_slot m;
	size_t nlen = pick_size(c->a[1]);
	int flags = (int)(c->a[2] & 3) & (MREMAP_MAYMOVE | MREMAP_FIXED);
	bool dontunmap = false;
	char *p;
	int i;

	if (!map_pick(c->a[0], &m, &i) || !nlen || nlen > (64UL << 20))
		return;
	if (flags & MREMAP_FIXED)
		flags |= MREMAP_MAYMOVE;
	if ((c->a[2] >> 2) % 8 == 7) {
		flags |= 4;	/* MREMAP_DONTUNMAP */
		dontunmap = true;
	}
	p = mremap(m.addr, m.len, nlen, flags,
		   arena + ARENA_SIZE / 2 + ((c->a[3] % (ARENA_SIZE / 4)) &
					     ~(pg - 1)));
	if (p == MAP_FAILED)
		return;
	map_forget(i);
	map_add(p, nlen, m.status, m.writable);
	/*
	 * Reserve what it left: the tail after a shrink in place, the old
	 * range outside the new one after a move (DONTUNMAP leaves it
	 * mapped). NOREPLACE: whatever took it in between stays.
	 */
	if (p == m.addr) {
		if (nlen < m.len)
			reserve_free(m.addr + nlen, m.len - nlen);
	} else if (!dontunmap) {
		/* The parts of the old range below and above the new one. */
		char *end = m.addr + m.len;
		char *lo = p < m.addr ? m.addr : p > end ? end : p;
		char *hi = p + nlen < m.addr ? m.addr : p + nlen;

		reserve_free(m.addr, (size_t)(lo - m.addr));
		if (hi < end)
			reserve_free(hi, (size_t)(end - hi));
	}
}

static void do_mprotect(const struct call *c)
{
	struct map_slot m;

	if (!map_pick(c->a[0], &m, NULL))
		return;
	mprotect(m.addr, (c->a[1] & 1) ? m.len : pg, (int)(c->a[1] >> 1) & 7);
}

static void do_madvise(const struct call *c)
{
	static const int advs[] = {
		MADV_DONTNEED, MADV_DOFORK, MADV_DONTFORK, MADV_POPULATE_READ,
		MADV_POPULATE_WRITE, MADV_REMOVE, MADV_FREE, MADV_COLD,
		MADV_PAGEOUT, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_WILLNEED,
		MADV_SEQUENTIAL, MADV_RANDOM, MADV_DONTDUMP, MADV_WIPEONFORK,
		MADV_MERGEABLE, MADV_NORMAL,
	};
	struct map_slot m;
	size_t off, len;

	if (!map_pick(c->a[0], &m, NULL))
		return;
	off = (c->a[2] % (m.len / pg + 1)) * pg;
	if (off >= m.len)
		off = 0;
	len = (c->a[2] >> 32) & 1 ? m.len - off : pg;
	madvise(m.addr + off, len, advs[c->a[1] % (sizeof(advs) / sizeof(advs[0]))]);
}

static void do_touch(const struct call *c)
{
	struct map_slot m;

	if (!map_pick(c->a[0], &m, NULL))
		return;
	touch_range(m.addr, m.len, (c->a[1] & 1) && m.writable, c->a[2]);
}

/* Read the status page as a reader would, sequence count and all. */
static void do_status(const struct call *c)
{
	static __thread struct shmk_status copy;
	struct map_slot m;
	volatile struct shmk_status *st;
	int tries;

	if (!map_pick(c->a[0], &m, NULL) || !m.status)
		return;
	st = (volatile struct shmk_status *)m.addr;
	in_touch = 1;
	if (sigsetjmp(touch_jb, 1)) {
		in_touch = 0;
		return;
	}
	for (tries = 0; tries < 100; tries++) {
		uint32_t seq = __atomic_load_n(&st->seq, __ATOMIC_ACQUIRE);

		if (seq & 1)
			continue;
		memcpy(&copy, (const void *)st, sizeof(copy));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (st->seq == seq)
			break;
	}
	in_touch = 0;
}

/* File operations a handle must refuse (or do harmlessly). */
static void do_fileops(const struct call *c)
{
	int fd = fd_pick(c->a[0], FD_NONE, NULL);
	char buf[64];
	struct stat stb;
	int p[2];

	if (fd < 0)
		return;
	switch (c->a[1] % 10) {
	case 0:
		read(fd, buf, sizeof(buf));
		break;
	case 1:
		write(fd, buf, sizeof(buf));
		break;
	case 2:
		fallocate(fd, (int)(c->a[2] & 3), 0, (off_t)pick_size(c->a[3]));
		break;
	case 3:
		ftruncate(fd, (off_t)pick_size(c->a[2]));
		break;
	case 4:
		fstat(fd, &stb);
		lseek(fd, (off_t)c->a[2], (int)(c->a[3] % 5));
		break;
	case 5:
		fcntl(fd, 1033 /* F_ADD_SEALS */, (int)(c->a[2] & 0x1f));
		fcntl(fd, 1034 /* F_GET_SEALS */);
		break;
	case 6:
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
			break;
		splice(fd, NULL, p[1], NULL, 4096, SPLICE_F_NONBLOCK);
		write(p[1], "x", 1);
		splice(p[0], NULL, fd, NULL, 1, SPLICE_F_NONBLOCK);
		close(p[0]);
		close(p[1]);
		break;
	case 7:
		fsync(fd);
		fdatasync(fd);
		break;
	case 8: {
		int out = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (out >= 0) {
			sendfile(out, fd, NULL, 4096);
			close(out);
		}
		break;
	}
	default:
		fcntl(fd, F_SETFL, (int)(c->a[2] & (O_NONBLOCK | O_APPEND)));
	}
}

static void do_msync(const struct call *c)
{
	struct map_slot m;
	static const int fl[] = { MS_ASYNC, MS_SYNC, MS_INVALIDATE,
				  MS_SYNC | MS_INVALIDATE };

	if (!map_pick(c->a[0], &m, NULL))
		return;
	msync(m.addr, m.len, fl[c->a[1] & 3]);
}

static void run_call(const struct call *c);

/*
 * A child inherits every handle and mapping: it touches mappings (some
 * MADV_DOFORK ones raise SIGBUS), tries its parent's handles (mmap must
 * fail with EPERM) and runs a few calls, and is killed at a random point.
 */
static void do_fork(const struct call *c)
{
	pid_t pid;
	int status, i;

	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		struct call cc = *c;

		/* Another thread may have held it at fork(). */
		pthread_mutex_init(&st_lock, NULL);
		alarm(5);

		rnd_state ^= (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
		for (i = 0; i < (int)(c->a[1] % 8); i++) {
			cc.op = (uint32_t)(rnd() % NR_OPS);
			if (cc.op == OP_FORK)
				cc.op = OP_TOUCH;
			cc.a[0] = rnd();
			cc.a[1] = rnd();
			cc.a[2] = rnd();
			run_call(&cc);
		}
		_exit(0);
	}
	if ((c->a[2] & 3) != 0) {
		if ((c->a[2] >> 2) & 1)
			usleep((useconds_t)((c->a[2] >> 3) % 2000));
		kill(pid, SIGKILL);
	}
	waitpid(pid, &status, 0);
}

static void do_open_ctl(const struct call *c)
{
	int fd = open(SHMK_DEVICE, (c->a[0] & 3) == 3 ? O_RDONLY | O_CLOEXEC :
		      O_RDWR | O_CLOEXEC);

	fd_add(fd, FD_CTL, false);
}

static void run_call(const struct call *c)
{
	switch (c->op % NR_OPS) {
	case OP_OPEN_CTL: do_open_ctl(c); break;
	case OP_ATTACH: do_attach(c); break;
	case OP_UNLINK: do_unlink(c); break;
	case OP_INFO: do_info(c); break;
	case OP_GROW: do_resize(c, true); break;
	case OP_SHRINK: do_resize(c, false); break;
	case OP_CLIENTS: do_clients(c); break;
	case OP_LOOKUP: do_lookup(c); break;
	case OP_IOCTL_RAW: do_ioctl_raw(c); break;
	case OP_CLOSE: do_close(c); break;
	case OP_DUP: do_dup(c); break;
	case OP_MMAP: do_mmap(c); break;
	case OP_MUNMAP: do_munmap(c); break;
	case OP_MREMAP: do_mremap(c); break;
	case OP_MPROTECT: do_mprotect(c); break;
	case OP_MADVISE: do_madvise(c); break;
	case OP_TOUCH: do_touch(c); break;
	case OP_STATUS: do_status(c); break;
	case OP_FORK: do_fork(c); break;
	case OP_FILEOPS: do_fileops(c); break;
	case OP_NL: do_nl(c); break;
	case OP_MSYNC: do_msync(c); break;
	}
}

/* ------------------------------------------------------------------ */
/* Programs: generation and mutation.                                   */

/* Operation weights: attach and the resizes more often than the rest. */
static uint32_t gen_op(void)
{
	static const uint8_t w[NR_OPS] = {
		[OP_OPEN_CTL] = 3, [OP_ATTACH] = 10, [OP_UNLINK] = 3,
		[OP_INFO] = 3, [OP_GROW] = 7, [OP_SHRINK] = 6,
		[OP_CLIENTS] = 3, [OP_LOOKUP] = 2, [OP_IOCTL_RAW] = 3,
		[OP_CLOSE] = 4, [OP_DUP] = 1, [OP_MMAP] = 8, [OP_MUNMAP] = 3,
		[OP_MREMAP] = 3, [OP_MPROTECT] = 2, [OP_MADVISE] = 4,
		[OP_TOUCH] = 6, [OP_STATUS] = 2, [OP_FORK] = 1,
		[OP_FILEOPS] = 2, [OP_NL] = 7, [OP_MSYNC] = 1,
	};
	uint32_t total = 0, i, r;

	for (i = 0; i < NR_OPS; i++)
		total += w[i];
	r = (uint32_t)rnd_below(total);
	for (i = 0; i < NR_OPS; i++) {
		if (r < w[i])
			return i;
		r -= w[i];
	}
	return OP_TOUCH;
}

static void gen_call(struct call *c)
{
	int i;

	c->op = gen_op();
	c->sel = 0;
	for (i = 0; i < 5; i++)
		c->a[i] = rnd();
}

static void gen_prog(struct prog *p)
{
	uint32_t i;

	p->n = 1 + (uint32_t)rnd_below(MAX_CALLS);
	for (i = 0; i < p->n; i++)
		gen_call(&p->c[i]);
}

static void mutate(struct prog *p)
{
	int rounds = 1 + (int)rnd_below(4), k;
	struct call *c;
	uint32_t i;

	for (k = 0; k < rounds; k++) {
		if (!p->n)
			p->n = 1;
		i = (uint32_t)rnd_below(p->n);
		c = &p->c[i];
		switch (rnd_below(8)) {
		case 0:	/* a new call */
			if (p->n < MAX_CALLS) {
				memmove(&p->c[i + 1], &p->c[i],
					(p->n - i) * sizeof(*c));
				p->n++;
			}
			gen_call(c);
			break;
		case 1:	/* drop one */
			if (p->n > 1) {
				memmove(&p->c[i], &p->c[i + 1],
					(p->n - i - 1) * sizeof(*c));
				p->n--;
			}
			break;
		case 2:
			c->op = gen_op();
			break;
		case 3:	/* splice in a call of another corpus entry */
			if (sh->corpus_n) {
				const struct prog *o = &sh->corpus[rnd_below(
					__atomic_load_n(&sh->corpus_n, __ATOMIC_ACQUIRE))];

				if (o->n)
					*c = o->c[rnd_below(o->n)];
			}
			break;
		case 4:
			c->a[rnd_below(5)] ^= 1ULL << rnd_below(64);
			break;
		case 5:
			c->a[rnd_below(5)] = interesting[rnd_below(NR_INTERESTING)];
			break;
		default:
			c->a[rnd_below(5)] = rnd();
		}
	}
}

/* ------------------------------------------------------------------ */
/* Coverage.                                                            */

struct kcov {
	int fd;
	unsigned long *area;
};

static bool kcov_open(struct kcov *k)
{
	k->fd = open("/sys/kernel/debug/kcov", O_RDWR | O_CLOEXEC);
	if (k->fd < 0)
		return false;
	/* Out of the way of the fds the calls close. */
	{
		int hi = fcntl(k->fd, F_DUPFD_CLOEXEC, 900);

		if (hi >= 0) {
			close(k->fd);
			k->fd = hi;
		}
	}
	if (ioctl(k->fd, KCOV_INIT_TRACE, KCOV_WORDS))
		goto err;
	k->area = mmap(NULL, KCOV_WORDS * sizeof(unsigned long),
		       PROT_READ | PROT_WRITE, MAP_SHARED, k->fd, 0);
	if (k->area == MAP_FAILED)
		goto err;
	if (ioctl(k->fd, KCOV_ENABLE, KCOV_TRACE_PC))
		goto err;
	return true;
err:
	close(k->fd);
	k->fd = -1;
	return false;
}

static bool set_bit_new(uint8_t *map, uint64_t bit)
{
	uint8_t mask = (uint8_t)(1U << (bit & 7));
	uint8_t old = __atomic_fetch_or(&map[bit >> 3], mask, __ATOMIC_RELAXED);

	return !(old & mask);
}

/* New PCs or edges of the module in the trace? */
static bool kcov_collect(struct kcov *k)
{
	unsigned long n = __atomic_load_n(&k->area[0], __ATOMIC_RELAXED), i;
	uint64_t prev = 0;
	bool fresh = false;

	if (n > KCOV_WORDS - 1)
		n = KCOV_WORDS - 1;
	for (i = 0; i < n; i++) {
		uint64_t pc = k->area[i + 1];
		uint64_t off;

		if (pc < text_start || pc >= text_end)
			continue;
		off = pc - text_start;
		if (off < PC_BITS && set_bit_new(sh->pc_map, off)) {
			__atomic_fetch_add(&sh->pcs, 1, __ATOMIC_RELAXED);
			fresh = true;
		}
		if (set_bit_new(sh->edge_map,
				((prev * 0x9e3779b97f4a7c15ULL) ^ off) %
				EDGE_BITS)) {
			__atomic_fetch_add(&sh->edges, 1, __ATOMIC_RELAXED);
			fresh = true;
		}
		prev = off;
	}
	return fresh;
}

static uint64_t prog_hash(const struct prog *p)
{
	const uint8_t *b = (const uint8_t *)p;
	size_t len = offsetof(struct prog, c) + p->n * sizeof(struct call);
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static void corpus_save(const struct prog *p)
{
	char path[PATH_MAX];
	uint32_t magic = CORPUS_MAGIC;
	int fd;

	if (!corpus_dir)
		return;
	snprintf(path, sizeof(path), "%s/%016llx", corpus_dir,
		 (unsigned long long)prog_hash(p));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, &magic, 4) != 4 ||
	    write(fd, p, offsetof(struct prog, c) + p->n * sizeof(struct call)) < 0)
		unlink(path);
	close(fd);
}

static void corpus_add(const struct prog *p, bool save)
{
	uint32_t i;

	pthread_mutex_lock(&sh->lock);
	i = sh->corpus_n;
	if (i < CORPUS_MAX) {
		sh->corpus[i] = *p;
		__atomic_store_n(&sh->corpus_n, i + 1, __ATOMIC_RELEASE);
	} else {
		sh->corpus[rnd_below(CORPUS_MAX)] = *p;
	}
	if (save)
		sh->new_entries++;
	pthread_mutex_unlock(&sh->lock);
	if (save)
		corpus_save(p);
}

static int corpus_load(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct prog p;
		uint32_t magic;
		ssize_t got;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		memset(&p, 0, sizeof(p));
		if (read(fd, &magic, 4) == 4 && magic == CORPUS_MAGIC) {
			got = read(fd, &p, sizeof(p));
			if (got >= (ssize_t)offsetof(struct prog, c) &&
			    p.n >= 1 && p.n <= MAX_CALLS &&
			    got >= (ssize_t)(offsetof(struct prog, c) +
					     p.n * sizeof(struct call))) {
				corpus_add(&p, false);
				n++;
			}
		}
		close(fd);
	}
	closedir(d);
	return n;
}

/* [start, end) of the module's .text: up to the next section. */
static bool module_text(void)
{
	struct dirent *de;
	DIR *d = opendir("/sys/module/shmk/sections");
	unsigned long long start = 0, next = ~0ULL, v;
	char path[PATH_MAX], buf[64];
	FILE *f;

	if (!d)
		return false;
	f = fopen("/sys/module/shmk/sections/.text", "re");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		closedir(d);
		return false;
	}
	fclose(f);
	start = strtoull(buf, NULL, 16);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] ||
					     !strcmp(de->d_name, "..")))
			continue;
		snprintf(path, sizeof(path), "/sys/module/shmk/sections/%s",
			 de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f)) {
			v = strtoull(buf, NULL, 16);
			if (v > start && v < next)
				next = v;
		}
		fclose(f);
	}
	closedir(d);
	if (!start)
		return false;	/* addresses hidden (kptr_restrict) */
	text_start = start;
	text_end = next != ~0ULL ? next : start + (4 << 20);
	return true;
}

/* ------------------------------------------------------------------ */
/* Workers.                                                             */

static void on_fault(int sig)
{
	if (in_touch)
		siglongjmp(touch_jb, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void *thread_main(void *arg)
{
	struct kcov k = { .fd = -1 };
	bool cov = false;
	struct prog p;

	rnd_state = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ULL ^
		    ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	if (!rnd_state)
		rnd_state = 1;
	if (use_kcov)
		cov = kcov_open(&k);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
		uint32_t n = __atomic_load_n(&sh->corpus_n, __ATOMIC_ACQUIRE);
		uint32_t i;

		if (n && rnd_below(4)) {
			p = sh->corpus[rnd_below(n)];
			mutate(&p);
		} else {
			gen_prog(&p);
		}
		if (cov)
			__atomic_store_n(&k.area[0], 0, __ATOMIC_RELAXED);
		for (i = 0; i < p.n; i++)
			run_call(&p.c[i]);
		if (cov && kcov_collect(&k))
			corpus_add(&p, true);
		__atomic_fetch_add(&sh->progs, 1, __ATOMIC_RELAXED);
		if (__atomic_add_fetch(&sh->calls, p.n, __ATOMIC_RELAXED) >=
		    sh->limit)
			__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void worker(int idx)
{
	pthread_t tids[16];
	struct sigaction sa;
	long i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* One worker in four as an unprivileged user (permission paths). */
	unpriv = idx % 4 == 3;
	if (unpriv && (setgroups(0, NULL) || setresgid(UNPRIV_UID, UNPRIV_UID,
						       UNPRIV_UID) ||
		       setresuid(UNPRIV_UID, UNPRIV_UID, UNPRIV_UID)))
		_exit(3);
	arena = mmap(NULL, ARENA_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
		     MAP_NORESERVE, -1, 0);
	if (arena == MAP_FAILED)
		_exit(3);
	mprotect(arena, pg, PROT_READ | PROT_WRITE);
	for (i = 0; i < NR_FDS; i++)
		fds[i].kind = FD_NONE;
	fd_add(open(SHMK_DEVICE, O_RDWR | O_CLOEXEC), FD_CTL, false);
	for (i = 0; i < nthreads && i < 16; i++)
		pthread_create(&tids[i], NULL, thread_main,
			       (void *)(idx * 16 + i + 1));
	for (i = 0; i < nthreads && i < 16; i++)
		pthread_join(tids[i], NULL);
	_exit(0);
}

static pid_t spawn(int idx)
{
	pid_t pid = fork();

	if (pid == 0)
		worker(idx);
	return pid;
}

/* Unlink what the run left (as root: CAP_SYS_ADMIN). */
static void cleanup_names(void)
{
	struct shmk_unlink u;
	int ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC), i;

	if (ctl < 0)
		return;
	for (i = 0; i < NR_NAMES + 2; i++) {
		memset(&u, 0, sizeof(u));
		if (i < NR_NAMES)
			snprintf(u.name, sizeof(u.name), "fz-%d", i);
		else
			memset(u.name, 'f', i == NR_NAMES ? SHMK_NAME_MAX - 1 :
			       SHMK_NAME_MAX - 1);
		ioctl(ctl, SHMK_IOC_UNLINK, &u);
	}
	close(ctl);
}

static long long counter(const char *name)
{
	char path[128], buf[32];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/misc/shmk/%s", name);
	f = fopen(path, "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			v = strtoll(buf, NULL, 0);
		fclose(f);
	}
	return v;
}

/* A module parameter (-1 if unreadable); set it when @set >= 0. */
static long long param(const char *name, long long set)
{
	char path[128], buf[32];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/shmk/parameters/%s", name);
	f = fopen(path, "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			v = strtoll(buf, NULL, 0);
		fclose(f);
	}
	if (set >= 0) {
		f = fopen(path, "we");
		if (f) {
			fprintf(f, "%lld\n", set);
			fclose(f);
		}
	}
	return v;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-n calls] [-d seconds] [-p procs] [-t threads]\n"
		"          [-c corpus-dir] [-o new-corpus-dir] [-k kill-ms] [-b]\n"
		"          [-m max-pages]\n"
		"  -b: blind (no KCOV even if available)\n"
		"  -m: the module's max_pages for the run (default 16384: grows\n"
		"      of up to 64 MiB in all; restored at the end)\n", argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t limit = 1000000, deadline_ms = 0, start, last = 0;
	int procs = 4, kill_ms = 500, opt, i, rc = 0, loaded = 0;
	long long max_pages = 16384, saved_max_pages;
	const char *in_dir = NULL;
	pthread_mutexattr_t ma;
	bool blind = false;
	pid_t *pids;

	while ((opt = getopt(argc, argv, "n:d:p:t:c:o:k:bm:")) != -1) {
		switch (opt) {
		case 'n': limit = strtoull(optarg, NULL, 0); break;
		case 'd': deadline_ms = strtoull(optarg, NULL, 0) * 1000; break;
		case 'p': procs = atoi(optarg); break;
		case 't': nthreads = atoi(optarg); break;
		case 'c': in_dir = optarg; break;
		case 'o': corpus_dir = optarg; break;
		case 'k': kill_ms = atoi(optarg); break;
		case 'b': blind = true; break;
		case 'm': max_pages = strtoll(optarg, NULL, 0); break;
		default: usage(argv[0]);
		}
	}
	if (procs < 1 || nthreads < 1 || nthreads > 16)
		usage(argv[0]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	pg = (size_t)sysconf(_SC_PAGESIZE);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&sh->lock, &ma);
	sh->limit = limit;
	if (access(SHMK_DEVICE, R_OK | W_OK)) {
		fprintf(stderr, "shmk-fuzz: %s: %s\n", SHMK_DEVICE,
			strerror(errno));
		return 4;
	}
	if (!blind && module_text()) {
		struct kcov k;

		use_kcov = kcov_open(&k);
		if (use_kcov) {
			/* Does the module's code show up at all? */
			int ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
			struct shmk_info in;
			unsigned long n, j, hits = 0;

			k.area[0] = 0;
			memset(&in, 0, sizeof(in));
			ioctl(ctl, SHMK_IOC_INFO, &in);
			close(ctl);
			n = k.area[0];
			for (j = 0; j < n && j < KCOV_WORDS - 1; j++)
				hits += k.area[j + 1] >= text_start &&
					k.area[j + 1] < text_end;
			ioctl(k.fd, KCOV_DISABLE, 0);
			close(k.fd);
			munmap(k.area, KCOV_WORDS * sizeof(unsigned long));
			if (!hits) {
				fprintf(stderr, "shmk-fuzz: KCOV shows no PC of shmk.ko (built without KCOV_INSTRUMENT=y, or KASLR on: boot with nokaslr): blind\n");
				use_kcov = false;
			}
		}
	}
	if (in_dir)
		loaded += corpus_load(in_dir);
	if (corpus_dir && (!in_dir || strcmp(in_dir, corpus_dir)))
		loaded += corpus_load(corpus_dir);
	if (corpus_dir)
		mkdir(corpus_dir, 0755);
	nl_resolve();
	printf("shmk-fuzz: %s, %d processes x %d threads, %llu calls, corpus %d entries, module .text %#llx-%#llx, netlink family %u\n",
	       use_kcov ? "KCOV-guided" : "blind", procs, nthreads,
	       (unsigned long long)limit, loaded,
	       (unsigned long long)text_start, (unsigned long long)text_end,
	       nl_family);

	saved_max_pages = param("max_pages", max_pages);
	pids = calloc((size_t)procs, sizeof(*pids));
	for (i = 0; i < procs; i++)
		pids[i] = spawn(i);
	start = now_ms();
	srand((unsigned int)start);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
		int status;
		pid_t pid;

		usleep((useconds_t)(kill_ms > 0 ? kill_ms * 1000 : 200000));
		if (deadline_ms && now_ms() - start >= deadline_ms)
			__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
		/* Reap, and note workers that died of their own. */
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (i = 0; i < procs; i++)
				if (pids[i] == pid)
					break;
			if (i == procs)
				continue;
			if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL) {
				fprintf(stderr, "shmk-fuzz: worker %d died of signal %d\n",
					pid, WTERMSIG(status));
				rc = 1;
			} else if (WIFEXITED(status) && WEXITSTATUS(status) &&
				   !sh->stop) {
				fprintf(stderr, "shmk-fuzz: worker %d exited %d\n",
					pid, WEXITSTATUS(status));
				rc = 1;
			}
			pids[i] = sh->stop ? 0 : spawn(i);
		}
		if (kill_ms > 0 && !sh->stop) {
			i = rand() % procs;
			if (pids[i] > 0) {
				kill(pids[i], SIGKILL);
				sh->kills++;
			}
		}
		if (now_ms() - last >= 10000) {
			last = now_ms();
			printf("shmk-fuzz: %llu s: %llu calls, %llu PCs, %llu edges, corpus %u; module: %lld segments, %lld clients, %lld pages\n",
			       (unsigned long long)(last - start) / 1000,
			       (unsigned long long)sh->calls,
			       (unsigned long long)sh->pcs,
			       (unsigned long long)sh->edges, sh->corpus_n,
			       counter("segments"), counter("clients"),
			       counter("pages"));
		}
	}
	for (i = 0; i < procs; i++) {
		int status;

		if (pids[i] <= 0)
			continue;
		/* Give threads a moment to finish their program. */
		for (int t = 0; t < 100; t++) {
			if (waitpid(pids[i], &status, WNOHANG) == pids[i])
				goto reaped;
			usleep(20000);
		}
		kill(pids[i], SIGKILL);
		waitpid(pids[i], &status, 0);
reaped:
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL) {
			fprintf(stderr, "shmk-fuzz: worker %d died of signal %d\n",
				pids[i], WTERMSIG(status));
			rc = 1;
		}
	}
	while (waitpid(-1, NULL, 0) > 0)
		;
	cleanup_names();
	/* Detaches finish once the last process is gone. */
	for (i = 0; i < 50 && (counter("segments") || counter("pages") ||
			       counter("clients")); i++)
		usleep(100000);
	if (counter("segments") || counter("pages") || counter("clients")) {
		fprintf(stderr, "shmk-fuzz: the module still holds %lld segments, %lld pages, %lld clients\n",
			counter("segments"), counter("pages"),
			counter("clients"));
		rc = 1;
	}
	if (saved_max_pages >= 0)
		param("max_pages", saved_max_pages);
	printf("shmk-fuzz: %llu calls, %llu programs, %llu PCs, %llu edges, %u corpus entries (%llu new), %llu kills, %s, %llu s: %s\n",
	       (unsigned long long)sh->calls, (unsigned long long)sh->progs,
	       (unsigned long long)sh->pcs, (unsigned long long)sh->edges,
	       sh->corpus_n, (unsigned long long)sh->new_entries,
	       (unsigned long long)sh->kills,
	       use_kcov ? "KCOV-guided" : "blind",
	       (unsigned long long)(now_ms() - start) / 1000,
	       rc ? "FAILED" : "ok");
	printf("shmk-fuzz: succeeded:");
	for (i = 0; i < NR_OPS; i++)
		if (sh->ok[i])
			printf(" %s %llu", op_names[i],
			       (unsigned long long)sh->ok[i]);
	printf("\n");
	return rc;
}
