// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection over the module's entry points: create, attach, mmap of
 * the data area and of the status page, grow (eager and lazy, with a mapped
 * peer), shrink, the netlink SEGMENT_GET do/dump and CLIENT_GET dump, and
 * the events sent while an attach runs.
 *
 * Mechanism: /proc/thread-self/fail-nth. Writing N there makes the N-th
 * fault-injection site that the task then reaches fail, once; the value
 * counts down at every site and reads back 0 once the fault was taken
 * (lib/fault-inject.c, should_fail_ex()). fail-nth bypasses probability,
 * interval, times, space and task-filter, but each kind's own filters run
 * before it, so failslab and fail_page_alloc are set to let every
 * allocation reach it (ignore-gfp-wait=N, ignore-gfp-highmem=N, min-order=0,
 * cache-filter=N). probability=0 and task-filter=Y keep every other task
 * free of failures, and verbose=0 on every fail* attribute keeps the
 * kernel log quiet (verbose dumps a stack, which the VM rig treats as a
 * failure). copy_{from,to}_user sites (fail_usercopy, when the kernel has
 * it) count too, so EFAULT is a possible answer everywhere.
 *
 * Each attempt runs in a forked child: it sets up what it needs, arms
 * fail-nth, makes the one call, and reads fail-nth back at once. A sweep
 * runs nth = 1, 2, ... and ends with the first attempt that succeeded
 * without taking the fault: every site on that path has then failed once.
 * Each outcome must be a success or a clean errno from the list of the
 * entry point, with no side effect left by a failure, and the segment must
 * stay usable. Each test ends with /sys/class/misc/shmk/{segments,pages,
 * clients} at 0.
 *
 * Kernels without CONFIG_FAILSLAB / CONFIG_FAIL_PAGE_ALLOC (the Debian
 * ones) have no /sys/kernel/debug/{failslab,fail_page_alloc}: the tests
 * skip there. SHMK_FI_VERBOSE=1 prints every attempt.
 */
#include <dirent.h>
#include <sys/socket.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "shmk_test.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK		270
#endif

#define FI_DEBUGFS		"/sys/kernel/debug"
#define FI_NTH_PATH		"/proc/thread-self/fail-nth"
/* A sweep that does not end by then is a failure. */
#define FI_MAX_NTH		1500
#define FI_CHILD_MS		120000
#define FI_BLOCK		MiB(2)

/* ------------------------------------------------------------------ */
/* debugfs knobs: saved by the harness parent, restored at its exit.   */

struct fi_knob {
	char path[128];
	const char *val;
	bool required;
	bool saved;
	char orig[32];
};

#define FI_MAX_KNOBS		48

static struct fi_knob fi_knobs[FI_MAX_KNOBS];
static unsigned int fi_nknobs;
static char fi_skip_why[200];
static pid_t fi_main_pid;
static bool fi_verbose;

static int fi_read_str(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

static int fi_write_str(const char *path, const char *val)
{
	ssize_t n, len = (ssize_t)strlen(val);
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	return n == len ? 0 : -EIO;
}

static void fi_knob(const char *dir, const char *file, const char *val,
		    bool required)
{
	struct fi_knob *k;

	if (fi_nknobs == FI_MAX_KNOBS)
		return;
	k = &fi_knobs[fi_nknobs++];
	snprintf(k->path, sizeof(k->path), FI_DEBUGFS "/%s/%s", dir, file);
	k->val = val;
	k->required = required;
}

static void fi_restore(void)
{
	unsigned int i;

	for (i = 0; i < fi_nknobs; i++)
		if (fi_knobs[i].saved &&
		    fi_write_str(fi_knobs[i].path, fi_knobs[i].orig))
			fprintf(stderr, "# cannot restore %s to %s\n",
				fi_knobs[i].path, fi_knobs[i].orig);
}

/* Sets every knob; returns 0 or -errno (the knob in *bad). */
static int fi_apply(const char **bad)
{
	unsigned int i;
	int ret;

	for (i = 0; i < fi_nknobs; i++) {
		if (!fi_knobs[i].saved)
			continue;
		ret = fi_write_str(fi_knobs[i].path, fi_knobs[i].val);
		if (ret) {
			*bad = fi_knobs[i].path;
			return ret;
		}
	}
	return 0;
}

static void fi_restore_at_exit(void)
{
	if (getpid() == fi_main_pid)
		fi_restore();
}

static void __attribute__((constructor)) fi_init(void)
{
	struct dirent *de;
	unsigned int i;
	DIR *d;

	fi_main_pid = getpid();
	fi_verbose = getenv("SHMK_FI_VERBOSE") &&
		     strcmp(getenv("SHMK_FI_VERBOSE"), "0");
	if (access(FI_DEBUGFS "/failslab", F_OK) ||
	    access(FI_DEBUGFS "/fail_page_alloc", F_OK)) {
		snprintf(fi_skip_why, sizeof(fi_skip_why),
			 "kernel lacks CONFIG_FAILSLAB/CONFIG_FAIL_PAGE_ALLOC (no %s/failslab or %s/fail_page_alloc)",
			 FI_DEBUGFS, FI_DEBUGFS);
		return;
	}
	if (access(FI_NTH_PATH, F_OK)) {
		snprintf(fi_skip_why, sizeof(fi_skip_why),
			 "kernel lacks CONFIG_FAULT_INJECTION (no %s)",
			 FI_NTH_PATH);
		return;
	}

	fi_knob("failslab", "probability", "0", true);
	fi_knob("failslab", "task-filter", "Y", true);
	fi_knob("failslab", "verbose", "0", true);
	fi_knob("failslab", "ignore-gfp-wait", "N", true);
	fi_knob("failslab", "cache-filter", "N", false);
	fi_knob("fail_page_alloc", "probability", "0", true);
	fi_knob("fail_page_alloc", "task-filter", "Y", true);
	fi_knob("fail_page_alloc", "verbose", "0", true);
	fi_knob("fail_page_alloc", "ignore-gfp-wait", "N", true);
	fi_knob("fail_page_alloc", "ignore-gfp-highmem", "N", true);
	fi_knob("fail_page_alloc", "min-order", "0", true);
	/* Every other fault attribute reaches fail-nth too: keep it quiet. */
	d = opendir(FI_DEBUGFS);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "fail", 4) ||
		    !strcmp(de->d_name, "failslab") ||
		    !strcmp(de->d_name, "fail_page_alloc"))
			continue;
		fi_knob(de->d_name, "verbose", "0", false);
	}
	if (d)
		closedir(d);

	for (i = 0; i < fi_nknobs; i++) {
		struct fi_knob *k = &fi_knobs[i];

		if (!fi_read_str(k->path, k->orig, sizeof(k->orig))) {
			k->saved = true;
		} else if (k->required) {
			snprintf(fi_skip_why, sizeof(fi_skip_why),
				 "cannot read %s", k->path);
			return;
		}
	}
	atexit(fi_restore_at_exit);
}

/* ------------------------------------------------------------------ */
/* The armed window, in a child.                                        */

struct fi_result {
	long ret;		/* the call's result, or -errno */
	int injected;		/* the armed fault was taken in the window */
	int nth_err;		/* reading fail-nth back failed oddly */
	int stage;
};

static int fi_nth_fd = -1;

/* Dirty the stack: copy-on-write faults in the window would take sites. */
static __attribute__((noinline)) void fi_prefault_stack(void)
{
	volatile char buf[64 * 1024];
	size_t i;

	for (i = 0; i < sizeof(buf); i += 256)
		buf[i] = 0;
}

static int fi_arm(unsigned int nth)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", nth);

	errno = 0;
	return pwrite(fi_nth_fd, buf, len, 0) == len ? 0 : -1;
}

/*
 * Ends the window; returns 1 when the armed fault was taken in it, 0 when
 * it was not, -1 when fail-nth cannot be read. The read snapshots the
 * count before its own copy_to_user(), which is a site too: a count of 1
 * left makes the read fail with EFAULT (not taken in the window). The
 * final write clears what is left, possibly by failing the same way.
 */
static int fi_disarm(void)
{
	char buf[16];
	ssize_t n;
	int hit;

	n = pread(fi_nth_fd, buf, sizeof(buf) - 1, 0);
	if (n > 0) {
		buf[n] = 0;
		hit = strtoul(buf, NULL, 10) == 0;
	} else {
		hit = n < 0 && errno == EFAULT ? 0 : -1;
	}
	if (pwrite(fi_nth_fd, "0", 1, 0) < 0 && errno != EFAULT)
		hit = -1;
	return hit;
}

static void fi_record(struct fi_result *res, long ret, int hit)
{
	res->ret = ret;
	res->injected = hit > 0;
	res->nth_err = hit < 0;
}

/* ------------------------------------------------------------------ */
/* Address ranges with their page table present.                       */

/*
 * A free range of up to 2 MiB minus a page, 2 MiB aligned, whose page table
 * already exists: an anonymous page at the end of the block keeps it. A
 * mapping placed there needs no page-table allocation, so the sweeps reach
 * the module's allocations and those of the calls around it rather than
 * spending sites on page tables (and a peer's pages get installed).
 */
static char *fi_hole(void)
{
	size_t pg = page_size();
	char *p, *a, *end;

	p = mmap(NULL, 2 * FI_BLOCK, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + FI_BLOCK - 1) &
		     ~(uintptr_t)(FI_BLOCK - 1));
	end = p + 2 * FI_BLOCK;
	if (a > p)
		munmap(p, a - p);
	munmap(a + FI_BLOCK, end - (a + FI_BLOCK));
	if (madvise(a, FI_BLOCK, MADV_NOHUGEPAGE))
		return NULL;
	a[FI_BLOCK - pg] = 1;
	if (munmap(a, FI_BLOCK - pg))
		return NULL;
	return a;
}

static void *fi_map_at(char *hole, size_t len, int prot, int fd, off_t off)
{
	void *p = mmap(hole, len, prot, MAP_SHARED | MAP_FIXED_NOREPLACE,
		       fd, off);

	if (p != MAP_FAILED && p != hole) {
		munmap(p, len);
		errno = EEXIST;
		return MAP_FAILED;
	}
	return p;
}

/* Whether [p, p + len) is entirely unmapped. */
static bool fi_unmapped(void *p, size_t len)
{
	size_t pg = page_size(), off;
	unsigned char v;

	for (off = 0; off < len; off += pg)
		if (!mincore((char *)p + off, pg, &v) || errno != ENOMEM)
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* Page patterns.                                                       */

static void fi_fill(char *base, unsigned int first, unsigned int last,
		    __u64 salt)
{
	size_t pg = page_size(), j;
	unsigned int i;

	for (i = first; i < last; i++) {
		__u64 *w = (__u64 *)(base + i * pg);

		for (j = 0; j < pg / 8; j++)
			w[j] = salt ^ ((__u64)i << 40) ^ j;
	}
}

/* First page of [first, last) not holding the pattern (salt 0: zeroes). */
static long fi_bad_page(const char *base, unsigned int first,
			unsigned int last, __u64 salt)
{
	size_t pg = page_size(), j;
	unsigned int i;

	for (i = first; i < last; i++) {
		const volatile __u64 *w = (const __u64 *)(base + i * pg);

		for (j = 0; j < pg / 8; j++)
			if (w[j] != (salt ? salt ^ ((__u64)i << 40) ^ j : 0))
				return i;
	}
	return -1;
}

/*
 * Page @i of a mapping at @base lies beyond the active size: a read raises
 * SIGBUS where the segment never reached (@was_active false), and sees
 * zeroes where a shrink cut it off. 0 if so, -1 if not.
 */
static int fi_cut_page(const char *base, unsigned int i, bool was_active)
{
	const char *p = base + (size_t)i * page_size();

	if (!was_active)
		return shmk_probe_read(p) == SIGBUS ? 0 : -1;
	if (shmk_probe_read(p))
		return -1;
	return fi_bad_page(base, i, i + 1, 0) < 0 ? 0 : -1;
}

#define SALT_A		0xa5a5f00d00000000ULL
#define SALT_B		0x5a5acafe00000000ULL

/* ------------------------------------------------------------------ */
/* Raw generic netlink.                                                 */

struct fi_nl {
	int fd;
	__u16 family;
	__u32 mcgrp;
	__u32 seq;
};

struct fi_nl_req {
	struct nlmsghdr nlh;
	struct genlmsghdr genl;
	char attrs[256];
};

/* One message of the family, the attributes the tests look at. */
struct fi_nl_msg {
	__u8 cmd;
	__u32 seg_id;
	__u32 client_id;
	__u64 pages;
	char name[SHMK_NAME_MAX];
};

#define FI_NL_BUF		(32 * 1024)

static char fi_nl_buf[FI_NL_BUF] __attribute__((aligned(8)));

typedef void (*fi_nl_cb)(const struct fi_nl_msg *m, void *arg);

static void fi_nl_init(struct fi_nl_req *r, __u16 type, __u8 cmd,
		       __u16 flags)
{
	memset(r, 0, sizeof(*r));
	r->nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r->nlh.nlmsg_type = type;
	r->nlh.nlmsg_flags = NLM_F_REQUEST | flags;
	r->genl.cmd = cmd;
	r->genl.version = type == GENL_ID_CTRL ? 2 : SHMK_GENL_VERSION;
}

static void fi_nl_put(struct fi_nl_req *r, __u16 type, const void *data,
		      __u16 len)
{
	struct nlattr *nla = (struct nlattr *)((char *)r +
					       NLMSG_ALIGN(r->nlh.nlmsg_len));

	nla->nla_type = type;
	nla->nla_len = NLA_HDRLEN + len;
	memcpy((char *)nla + NLA_HDRLEN, data, len);
	r->nlh.nlmsg_len = NLMSG_ALIGN(r->nlh.nlmsg_len) +
			   NLA_ALIGN(nla->nla_len);
}

static void fi_nl_put_str(struct fi_nl_req *r, __u16 type, const char *s)
{
	fi_nl_put(r, type, s, (__u16)(strlen(s) + 1));
}

/* Calls @fn(type, data, len, arg) for each attribute in [p, p + len). */
static void fi_nla_walk(const char *p, long len,
			void (*fn)(__u16, const char *, long, void *),
			void *arg)
{
	while (len >= (long)NLA_HDRLEN) {
		const struct nlattr *nla = (const struct nlattr *)p;

		if (nla->nla_len < NLA_HDRLEN || nla->nla_len > len)
			break;
		fn(nla->nla_type & NLA_TYPE_MASK, p + NLA_HDRLEN,
		   nla->nla_len - NLA_HDRLEN, arg);
		len -= NLA_ALIGN(nla->nla_len);
		p += NLA_ALIGN(nla->nla_len);
	}
}

static void fi_nl_msg_attr(__u16 type, const char *data, long len,
			   void *arg)
{
	struct fi_nl_msg *m = arg;

	if (type == SHMK_A_SEGMENT_ID && len == 4)
		memcpy(&m->seg_id, data, 4);
	else if (type == SHMK_A_CLIENT_ID && len == 4)
		memcpy(&m->client_id, data, 4);
	else if (type == SHMK_A_PAGES && len == 8)
		memcpy(&m->pages, data, 8);
	else if (type == SHMK_A_SEGMENT_NAME && len > 0)
		snprintf(m->name, sizeof(m->name), "%.*s", (int)len, data);
}

static void fi_nl_parse(const struct nlmsghdr *nlh, struct fi_nl_msg *m)
{
	const struct genlmsghdr *g = NLMSG_DATA(nlh);

	memset(m, 0, sizeof(*m));
	m->cmd = g->cmd;
	fi_nla_walk((const char *)g + GENL_HDRLEN,
		    (long)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN,
		    fi_nl_msg_attr, m);
}

/*
 * Handles every message in @n bytes of fi_nl_buf. Returns 1 to go on, or
 * the error of an NLMSG_ERROR (0 for an ack) or NLMSG_DONE.
 */
static int fi_nl_handle(__u32 seq, ssize_t n, fi_nl_cb cb, void *arg)
{
	const char *p = fi_nl_buf;

	while (n >= (ssize_t)NLMSG_HDRLEN) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)p;
		struct fi_nl_msg m;
		int err;

		if (nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > n)
			return -EBADMSG;
		if (seq && nlh->nlmsg_seq != seq) {
			/* Not ours: skip it. */
		} else if (nlh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(nlh);

			return e->error;
		} else if (nlh->nlmsg_type == NLMSG_DONE) {
			memcpy(&err, NLMSG_DATA(nlh), sizeof(err));
			return err;
		} else if (cb) {
			fi_nl_parse(nlh, &m);
			cb(&m, arg);
		}
		n -= NLMSG_ALIGN(nlh->nlmsg_len);
		p += NLMSG_ALIGN(nlh->nlmsg_len);
	}
	return 1;
}

/*
 * Sends @r and reads the answer up to its ack, NLMSG_DONE or error,
 * calling @cb for each data message. Returns 0 or a negative errno from a
 * syscall or from the kernel's answer.
 */
static int fi_nl_exchange(struct fi_nl *nl, struct fi_nl_req *r, fi_nl_cb cb,
			  void *arg)
{
	ssize_t n;
	int ret;

	r->nlh.nlmsg_seq = ++nl->seq;
	if (send(nl->fd, r, r->nlh.nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		n = recv(nl->fd, fi_nl_buf, sizeof(fi_nl_buf), MSG_TRUNC);
		if (n < 0)
			return -errno;
		if (n > (ssize_t)sizeof(fi_nl_buf))
			return -EMSGSIZE;
		ret = fi_nl_handle(nl->seq, n, cb, arg);
		if (ret <= 0)
			return ret;
	}
}

struct fi_ctrl {
	__u16 family;
	__u32 mcgrp;
};

struct fi_grp {
	__u32 id;
	bool match;
};

static void fi_ctrl_grp_attr(__u16 type, const char *data, long len,
			     void *arg)
{
	struct fi_grp *g = arg;

	if (type == CTRL_ATTR_MCAST_GRP_ID && len == 4)
		memcpy(&g->id, data, 4);
	else if (type == CTRL_ATTR_MCAST_GRP_NAME &&
		 !strncmp(data, SHMK_GENL_MCGRP_EVENTS, len))
		g->match = true;
}

static void fi_ctrl_grps(__u16 type, const char *data, long len, void *arg)
{
	struct fi_ctrl *c = arg;
	struct fi_grp g = { 0, false };

	(void)type;
	fi_nla_walk(data, len, fi_ctrl_grp_attr, &g);
	if (g.match)
		c->mcgrp = g.id;
}

static void fi_ctrl_attr(__u16 type, const char *data, long len, void *arg)
{
	struct fi_ctrl *c = arg;

	if (type == CTRL_ATTR_FAMILY_ID && len >= 2)
		memcpy(&c->family, data, 2);
	else if (type == CTRL_ATTR_MCAST_GROUPS)
		fi_nla_walk(data, len, fi_ctrl_grps, c);
}

/* Opens a socket and looks the family up. Returns 0 or -errno. */
static int fi_nl_open(struct fi_nl *nl)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = 20 };
	struct fi_ctrl ctrl = { 0, 0 };
	const struct nlmsghdr *nlh;
	struct fi_nl_req r;
	ssize_t n;

	memset(nl, 0, sizeof(*nl));
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl->fd < 0)
		return -errno;
	if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		goto err;
	fi_nl_init(&r, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0);
	fi_nl_put_str(&r, CTRL_ATTR_FAMILY_NAME, SHMK_GENL_NAME);
	r.nlh.nlmsg_seq = ++nl->seq;
	if (send(nl->fd, &r, r.nlh.nlmsg_len, 0) < 0)
		goto err;
	n = recv(nl->fd, fi_nl_buf, sizeof(fi_nl_buf), 0);
	if (n < (ssize_t)(NLMSG_HDRLEN + GENL_HDRLEN))
		goto err;
	nlh = (const struct nlmsghdr *)fi_nl_buf;
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		errno = -((const struct nlmsgerr *)NLMSG_DATA(nlh))->error;
		goto err;
	}
	fi_nla_walk(fi_nl_buf + NLMSG_HDRLEN + GENL_HDRLEN,
		    (long)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN,
		    fi_ctrl_attr, &ctrl);
	if (!ctrl.family || !ctrl.mcgrp) {
		errno = ENOENT;
		goto err;
	}
	nl->family = ctrl.family;
	nl->mcgrp = ctrl.mcgrp;
	return 0;
err:
	n = -errno;
	close(nl->fd);
	nl->fd = -1;
	return (int)n;
}

static void fi_nl_pages_cb(const struct fi_nl_msg *m, void *arg)
{
	if (m->cmd == SHMK_CMD_SEGMENT_GET)
		*(long long *)arg = (long long)m->pages;
}

/* SHMK_A_PAGES of segment @name (pages present), or -errno. */
static long long fi_nl_pages(struct fi_nl *nl, const char *name)
{
	struct fi_nl_req r;
	long long pages = -ENODATA;
	int ret;

	fi_nl_init(&r, nl->family, SHMK_CMD_SEGMENT_GET, NLM_F_ACK);
	fi_nl_put_str(&r, SHMK_A_SEGMENT_NAME, name);
	ret = fi_nl_exchange(nl, &r, fi_nl_pages_cb, &pages);
	return ret ? ret : pages;
}

/* ------------------------------------------------------------------ */
/* The fixture and the sweep.                                           */

#define NL_NSEG		20	/* segments for the netlink dumps */
#define NL_NEXTRA	24	/* extra clients of segment 0 */
#define NL_DO_IDX	7	/* the one SEGMENT_GET do asks for */

enum { NL_SEG_DO, NL_SEG_DUMP, NL_CLIENT_DUMP };

/* What a netlink child saw; reset in the child before arming. */
struct fi_nl_seen {
	unsigned int segs[NL_NSEG];
	unsigned int clients[NL_NSEG];
	__u64 client_ids[NL_NSEG];	/* bit per client id < 64 */
	unsigned int bad;		/* wrong id for a name, dup client */
};

static struct fi_nl_seen fi_seen;

/* Peer commands. */
enum { PEER_CHECK = 1, PEER_CUT, PEER_QUIT };

struct fi_peer_cmd {
	int op;
	unsigned int first, last;
	__u64 salt;
};

FIXTURE(fault) {
	int ctl;
	int fd;				/* the test's client handle */
	char name[SHMK_NAME_MAX];
	struct fi_result *res;		/* shared with the children */
	char *map;			/* the test's mapping of fd */
	size_t map_len;
	bool lazy;
	__u64 gen;
	unsigned int high;		/* the most pages the segment had */
	/* the peer */
	pid_t peer;
	int peer_cmd, peer_reply;
	/* netlink */
	struct fi_nl nl;		/* queries, or the events listener */
	int nl_kind;
	char nl_names[NL_NSEG][SHMK_NAME_MAX];
	__u32 nl_ids[NL_NSEG];
	int nl_fds[NL_NSEG + NL_NEXTRA];
};

typedef FIXTURE_DATA(fault) fi_self;

struct fi_stats {
	const char *what;
	unsigned int sites;	/* fault sites on the path, all swept */
	unsigned int failed;
	unsigned int absorbed;	/* fault taken, the call still succeeded */
	unsigned int err[256];
	__u64 start_ms;
};

typedef int (*fi_child_fn)(fi_self *self, unsigned int nth);
typedef int (*fi_check_fn)(fi_self *self, const struct fi_result *r);

static const char *fi_errname(long err)
{
	const char *s = err > 0 ? strerrorname_np((int)err) : NULL;

	return s ? s : "?";
}

static int fi_child_main(fi_self *self, fi_child_fn fn, unsigned int nth)
{
	fi_nth_fd = open(FI_NTH_PATH, O_RDWR | O_CLOEXEC);
	CHK(fi_nth_fd >= 0);
	self->res->stage = 1;
	fi_prefault_stack();
	return fn(self, nth);
}

static int fi_run_child(fi_self *self, fi_child_fn fn, unsigned int nth)
{
	pid_t parent = getpid(), pid;

	self->res->ret = -ECHILD;
	self->res->injected = -1;
	self->res->nth_err = 0;
	self->res->stage = 0;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		_exit(fi_child_main(self, fn, nth));
	}
	return shmk_status_ok(pid, shmk_wait(pid, FI_CHILD_MS)) ? 0 : -ECHILD;
}

static bool fi_errno_ok(long ret, const int *ok)
{
	for (; *ok; ok++)
		if (ret == -*ok)
			return true;
	return false;
}

/*
 * Runs @child with fail-nth = 1, 2, ... and @check after each attempt,
 * until an attempt succeeds without taking the fault. A failed call must
 * have taken the fault and answer an errno of @ok (zero-terminated).
 * Returns 0, or 1 with the reason printed.
 */
static int fi_sweep(fi_self *self, struct fi_stats *st, fi_child_fn child,
		    fi_check_fn check, const int *ok)
{
	unsigned int nth;

	st->start_ms = mono_ms();
	for (nth = 1; nth <= FI_MAX_NTH; nth++) {
		struct fi_result r;

		if (fi_run_child(self, child, nth)) {
			fprintf(stderr, "# %s: nth %u: child failed (stage %d)\n",
				st->what, nth, self->res->stage);
			return 1;
		}
		r = *self->res;
		if (fi_verbose)
			fprintf(stderr, "# %s: nth %u: %s%s\n", st->what, nth,
				r.ret < 0 ? fi_errname(-r.ret) : "ok",
				r.injected ? "" : " (no fault taken)");
		if (r.nth_err || r.injected < 0) {
			fprintf(stderr, "# %s: nth %u: cannot read %s back\n",
				st->what, nth, FI_NTH_PATH);
			return 1;
		}
		if (r.ret < 0 && !r.injected) {
			fprintf(stderr, "# %s: nth %u: failed with %s, but no fault was injected\n",
				st->what, nth, fi_errname(-r.ret));
			return 1;
		}
		if (r.ret < 0 && !fi_errno_ok(r.ret, ok)) {
			fprintf(stderr, "# %s: nth %u: unexpected error %s (%ld)\n",
				st->what, nth, fi_errname(-r.ret), r.ret);
			return 1;
		}
		if (check && check(self, &r)) {
			fprintf(stderr, "# %s: nth %u: check after %s failed\n",
				st->what, nth,
				r.ret < 0 ? fi_errname(-r.ret) : "success");
			return 1;
		}
		if (r.ret < 0) {
			st->failed++;
			if (-r.ret < (long)ARRAY_SIZE(st->err))
				st->err[-r.ret]++;
		} else if (r.injected) {
			st->absorbed++;
		} else {
			st->sites = nth - 1;
			return 0;
		}
	}
	fprintf(stderr, "# %s: no end of the sweep after %u sites\n", st->what,
		FI_MAX_NTH);
	return 1;
}

static void fi_report(const struct fi_stats *st)
{
	char errs[256] = "";
	size_t len = 0;
	unsigned int e;

	for (e = 1; e < ARRAY_SIZE(st->err); e++) {
		if (!st->err[e] || len >= sizeof(errs) - 1)
			continue;
		len += snprintf(errs + len, sizeof(errs) - len, "%s%s %u",
				len ? ", " : "", fi_errname(e), st->err[e]);
	}
	/* stderr: the harness's test process leaves by _exit(). */
	fprintf(stderr, "# %s: %u sites: %u failed%s%s%s, %u absorbed (%.1f s)\n",
		st->what, st->sites, st->failed, len ? " (" : "", errs,
		len ? ")" : "", st->absorbed,
		(mono_ms() - st->start_ms) / 1000.0);
}

static int fi_counters(long long segs, long long pages, long long clients)
{
	CHK_EQ(segs, shmk_counter("segments"));
	CHK_EQ(pages, shmk_counter("pages"));
	CHK_EQ(clients, shmk_counter("clients"));
	return 0;
}

#define FI_REQUIRE() do {						\
	if (fi_skip_why[0])						\
		SKIP(return, "%s", fi_skip_why);			\
} while (0)

/* The test's own segment: created, mapped in a hole, filled with SALT_A. */
static int fi_segment(fi_self *self, unsigned int pages,
		      unsigned int max_pages)
{
	size_t pg = page_size();
	char *hole;

	self->fd = shmk_create(self->ctl, self->name, pages * pg,
			       max_pages * pg);
	CHK(self->fd >= 0);
	hole = fi_hole();
	CHK(hole);
	self->map = fi_map_at(hole, max_pages * pg, PROT_READ | PROT_WRITE,
			      self->fd, 0);
	CHK(self->map != MAP_FAILED);
	self->map_len = max_pages * pg;
	fi_fill(self->map, 0, pages, SALT_A);
	return 0;
}

/* Unmaps and closes everything, unlinks, then the module must be empty. */
static int fi_finish(fi_self *self)
{
	unsigned int i;

	if (self->map && self->map != MAP_FAILED)
		munmap(self->map, self->map_len);
	self->map = NULL;
	if (self->fd >= 0)
		close(self->fd);
	self->fd = -1;
	for (i = 0; i < ARRAY_SIZE(self->nl_fds); i++) {
		if (self->nl_fds[i] > 0)
			close(self->nl_fds[i]);
		self->nl_fds[i] = 0;
	}
	shmk_cleanup();
	return fi_counters(0, 0, 0);
}

FIXTURE_SETUP(fault)
{
	self->fd = -1;
	self->peer = 0;
	self->nl.fd = -1;
	self->peer_cmd = -1;
	self->peer_reply = -1;
	if (fi_skip_why[0])
		return;
	{
		const char *bad = NULL;
		int ret = fi_apply(&bad);

		ASSERT_EQ(0, ret) TH_LOG("cannot set %s: %s", bad,
					 strerror(-ret));
	}
	ASSERT_EQ(0, fi_counters(0, 0, 0)) TH_LOG("module not empty at start");
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	self->res = mmap(NULL, page_size(), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->res);
	SHMK_NAME(self->name, "fi");
	shmk_track(self->name);
	shmk_probe_setup();
}

FIXTURE_TEARDOWN(fault)
{
	if (fi_skip_why[0])
		return;
	fi_restore();
	if (self->peer > 0) {
		kill(self->peer, SIGKILL);
		waitpid(self->peer, NULL, 0);
	}
	if (self->nl.fd >= 0)
		close(self->nl.fd);
	if (self->peer_cmd >= 0)
		close(self->peer_cmd);
	if (self->peer_reply >= 0)
		close(self->peer_reply);
	fi_finish(self);
	close(self->ctl);
}

/* ------------------------------------------------------------------ */
/* create: SHMK_IOC_ATTACH with SHMK_ATTACH_CREATE.                     */

#define CR_PAGES	4
#define CR_MAX		16

/*
 * ENOMEM: any allocation on the path (the segment, its status page, its
 * tmpfs file and pages, the client, the handle's file). EFAULT: copying
 * the argument in or the result out.
 */
static const int fi_ok_attach[] = { ENOMEM, EFAULT, 0 };

static int fi_child_create(fi_self *self, unsigned int nth)
{
	struct shmk_attach a;
	struct shmk_info info;
	int fd, e, hit;

	memset(&a, 0, sizeof(a));
	a.flags = SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL;
	a.mode = 0600;
	a.size = CR_PAGES * page_size();
	a.max_size = CR_MAX * page_size();
	set_str(a.name, sizeof(a.name), self->name);
	self->res->stage = 2;

	CHK(!fi_arm(nth));
	fd = ioctl(self->ctl, SHMK_IOC_ATTACH, &a);
	e = errno;
	hit = fi_disarm();
	fi_record(self->res, fd < 0 ? -e : fd, hit);

	if (fd < 0)
		return 0;
	CHK(a.out_flags & SHMK_ATTACH_CREATED);
	CHK_EQ(0, shmk_get_info(fd, &info));
	CHK_EQ(a.size, info.size);
	CHK_EQ(1, info.nr_clients);
	return 0;
}

static int fi_check_create(fi_self *self, const struct fi_result *r)
{
	size_t pg = page_size();
	const struct shmk_status *st;
	char *p;
	int fd;

	if (r->ret < 0) {
		/* A failed create leaves no segment behind. */
		CHK_EQ(-ENOENT, shmk_open(self->ctl, self->name, 0, NULL));
		return fi_counters(0, 0, 0);
	}
	/* The child has gone; the segment stays, usable and zeroed. */
	CHK(fi_counters(1, CR_PAGES, 0) == 0);
	fd = shmk_open(self->ctl, self->name, 0, NULL);
	CHK(fd >= 0);
	p = shmk_map(fd, CR_MAX * pg, PROT_READ | PROT_WRITE);
	CHK(p != MAP_FAILED);
	CHK_EQ(-1, fi_bad_page(p, 0, CR_PAGES, 0));
	fi_fill(p, 0, CR_PAGES, SALT_A);
	CHK_EQ(-1, fi_bad_page(p, 0, CR_PAGES, SALT_A));
	st = shmk_map_status(fd);
	CHK(st);
	CHK_EQ(SHMK_STATUS_MAGIC, st->magic);
	CHK_EQ(CR_PAGES * pg, st->size);
	munmap((void *)st, pg);
	munmap(p, CR_MAX * pg);
	close(fd);
	CHK_EQ(0, shmk_unlink_name(self->ctl, self->name));
	return fi_counters(0, 0, 0);
}

TEST_F_TIMEOUT(fault, create, 240)
{
	struct fi_stats st = { .what = "create" };

	FI_REQUIRE();
	ASSERT_EQ(0, fi_sweep(self, &st, fi_child_create, fi_check_create,
			      fi_ok_attach));
	fi_report(&st);
	ASSERT_EQ(0, fi_finish(self));
}

/* ------------------------------------------------------------------ */
/* attach to an existing segment.                                       */

#define AT_PAGES	4

static int fi_child_attach(fi_self *self, unsigned int nth)
{
	struct shmk_attach a;
	struct shmk_info info;
	pid_t pid = 0;
	int fd, e, hit;
	char *p;

	memset(&a, 0, sizeof(a));
	set_str(a.name, sizeof(a.name), self->name);
	set_str(a.client_name, sizeof(a.client_name), "fi-attach");
	self->res->stage = 2;

	CHK(!fi_arm(nth));
	fd = ioctl(self->ctl, SHMK_IOC_ATTACH, &a);
	e = errno;
	hit = fi_disarm();
	fi_record(self->res, fd < 0 ? -e : fd, hit);

	if (fd < 0) {
		/* Nothing was registered. */
		CHK_EQ(0, shmk_get_info(self->fd, &info));
		CHK_EQ(1, info.nr_clients);
		CHK_EQ(-ENOENT, shmk_lookup(self->fd, "fi-attach", NULL,
					       NULL));
		return fi_counters(1, AT_PAGES, 1);
	}
	CHK(!(a.out_flags & SHMK_ATTACH_CREATED));
	CHK_EQ(0, shmk_get_info(fd, &info));
	CHK_EQ(2, info.nr_clients);
	CHK_EQ(a.client_id, info.client_id);
	CHK_EQ(0, shmk_lookup(self->fd, "fi-attach", &pid, NULL));
	CHK_EQ(getpid(), pid);
	p = shmk_map(fd, AT_PAGES * page_size(), PROT_READ | PROT_WRITE);
	CHK(p != MAP_FAILED);
	CHK_EQ(-1, fi_bad_page(p, 0, AT_PAGES, SALT_A));
	return 0;
}

static int fi_check_attach(fi_self *self, const struct fi_result *r)
{
	struct shmk_info info;

	(void)r;
	/* The child's client, if any, left with it. */
	CHK_EQ(0, shmk_get_info(self->fd, &info));
	CHK_EQ(1, info.nr_clients);
	CHK_EQ(-1, fi_bad_page(self->map, 0, AT_PAGES, SALT_A));
	return fi_counters(1, AT_PAGES, 1);
}

TEST_F_TIMEOUT(fault, attach, 240)
{
	struct fi_stats st = { .what = "attach" };

	FI_REQUIRE();
	ASSERT_EQ(0, fi_segment(self, AT_PAGES, AT_PAGES));
	ASSERT_EQ(0, fi_sweep(self, &st, fi_child_attach, fi_check_attach,
			      fi_ok_attach));
	fi_report(&st);
	ASSERT_EQ(0, fi_finish(self));
}

/* ------------------------------------------------------------------ */
/* mmap of the data area and of the status page.                       */

#define MM_PAGES	8
#define MM_MAX		16

/* ENOMEM: the VMA and the maple tree nodes of the mapping. */
static const int fi_ok_mmap[] = { ENOMEM, 0 };

/* The child attaches on its own: only the attacher may map. */
static int fi_child_mmap(fi_self *self, unsigned int nth)
{
	size_t pg = page_size(), len = MM_MAX * pg;
	int fd, e, hit;
	char *hole, *p;

	fd = shmk_open(self->ctl, self->name, 0, NULL);
	CHK(fd >= 0);
	hole = fi_hole();
	CHK(hole);
	self->res->stage = 2;

	CHK(!fi_arm(nth));
	p = mmap(hole, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	e = errno;
	hit = fi_disarm();
	fi_record(self->res, p == MAP_FAILED ? -e : 0, hit);

	if (p == MAP_FAILED) {
		/* Nothing is left mapped; a retry works. */
		CHK(fi_unmapped(hole, len));
		p = fi_map_at(hole, len, PROT_READ | PROT_WRITE, fd, 0);
		CHK(p != MAP_FAILED);
	}
	CHK(p == hole);
	CHK_EQ(-1, fi_bad_page(p, 0, MM_PAGES, SALT_A));
	/* Beyond the active size: SIGBUS, not some stale page. */
	CHK_EQ(SIGBUS, shmk_probe_read(p + MM_PAGES * pg));
	/* A write the parent checks in its own mapping. */
	fi_fill(p, MM_PAGES - 1, MM_PAGES, SALT_B);
	self->res->stage = 3;
	return 0;
}

static int fi_check_mmap(fi_self *self, const struct fi_result *r)
{
	struct shmk_info info;

	CHK_EQ(0, shmk_get_info(self->fd, &info));
	CHK_EQ(1, info.nr_clients);
	CHK_EQ(MM_PAGES * page_size(), info.size);
	if (r->stage == 3) {
		/* The mmap child wrote the last page through its mapping. */
		CHK_EQ(-1, fi_bad_page(self->map, MM_PAGES - 1, MM_PAGES,
					  SALT_B));
		fi_fill(self->map, MM_PAGES - 1, MM_PAGES, SALT_A);
	}
	CHK_EQ(-1, fi_bad_page(self->map, 0, MM_PAGES, SALT_A));
	return fi_counters(1, MM_PAGES, 1);
}

TEST_F_TIMEOUT(fault, mmap, 240)
{
	struct fi_stats st = { .what = "mmap" };

	FI_REQUIRE();
	ASSERT_EQ(0, fi_segment(self, MM_PAGES, MM_MAX));
	ASSERT_EQ(0, fi_sweep(self, &st, fi_child_mmap, fi_check_mmap,
			      fi_ok_mmap));
	fi_report(&st);
	ASSERT_EQ(0, fi_finish(self));
}

/* Maps the status page and reads it (its fault) inside the window. */
static int fi_child_status(fi_self *self, unsigned int nth)
{
	size_t pg = page_size();
	const struct shmk_status *st;
	struct shmk_status snap;
	struct shmk_info info;
	__u32 magic = 0;
	int fd, e, hit;
	char *hole;
	void *p;

	fd = shmk_open(self->ctl, self->name, 0, "fi-status");
	CHK(fd >= 0);
	hole = fi_hole();
	CHK(hole);
	self->res->stage = 2;

	CHK(!fi_arm(nth));
	p = mmap(hole, pg, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, fd,
		 (off_t)SHMK_STATUS_OFFSET);
	e = errno;
	if (p != MAP_FAILED)
		magic = ((const volatile struct shmk_status *)p)->magic;
	hit = fi_disarm();
	fi_record(self->res, p == MAP_FAILED ? -e : 0, hit);

	if (p == MAP_FAILED) {
		CHK(fi_unmapped(hole, pg));
		p = fi_map_at(hole, pg, PROT_READ, fd,
			      (off_t)SHMK_STATUS_OFFSET);
		CHK(p != MAP_FAILED);
		magic = ((const volatile struct shmk_status *)p)->magic;
	}
	CHK(p == hole);
	CHK_EQ(SHMK_STATUS_MAGIC, magic);
	st = p;
	CHK(shmk_status_read(st, &snap, 5000) >= 0);
	CHK_EQ(0, shmk_get_info(fd, &info));
	CHK_EQ(SHMK_STATUS_VERSION, snap.version);
	CHK_EQ(info.segment_id, snap.segment_id);
	CHK_EQ(MM_PAGES * pg, snap.size);
	CHK_EQ(2, snap.nr_clients);
	CHK_EQ(2, snap.table_len);
	CHK(!strcmp(snap.clients[1].name, "fi-status"));
	return 0;
}

TEST_F_TIMEOUT(fault, status_mmap, 240)
{
	struct fi_stats st = { .what = "status mmap" };

	FI_REQUIRE();
	ASSERT_EQ(0, fi_segment(self, MM_PAGES, MM_MAX));
	ASSERT_EQ(0, fi_sweep(self, &st, fi_child_status, fi_check_mmap,
			      fi_ok_mmap));
	fi_report(&st);
	ASSERT_EQ(0, fi_finish(self));
}

/* ------------------------------------------------------------------ */
/* grow and shrink, with a peer process attached and mapped.           */

#define RS_S0		4	/* pages */
#define RS_S1		12
#define RS_MAX		16

/*
 * ENOMEM: the peer table, the page batch, the pages, tmpfs' index nodes;
 * the resize is undone. EFAULT: the argument in (nothing done) or the
 * result out (done: the size tells).
 */
static const int fi_ok_resize[] = { ENOMEM, EFAULT, 0 };

static int fi_peer_main(fi_self *self, int cmd_fd, int reply_fd)
{
	size_t pg = page_size();
	struct fi_peer_cmd c;
	char *hole, *p;
	int fd, ok = 0;

	fd = shmk_open_simple(self->name, 0, "fi-peer");
	CHK(fd >= 0);
	hole = fi_hole();
	CHK(hole);
	p = fi_map_at(hole, RS_MAX * pg, PROT_READ | PROT_WRITE, fd, 0);
	CHK(p != MAP_FAILED);
	shmk_probe_setup();
	CHK(write(reply_fd, &ok, sizeof(ok)) == sizeof(ok));
	while (read(cmd_fd, &c, sizeof(c)) == sizeof(c)) {
		long bad = -1;

		switch (c.op) {
		case PEER_CHECK:
			bad = fi_bad_page(p, c.first, c.last, c.salt);
			ok = bad < 0 ? 0 : 1;
			if (bad >= 0)
				fprintf(stderr, "# peer: page %ld of [%u, %u) is wrong\n",
					bad, c.first, c.last);
			break;
		case PEER_CUT:
			ok = fi_cut_page(p, c.first, c.salt) ? 1 : 0;
			break;
		case PEER_QUIT:
			return 0;
		default:
			ok = 1;
		}
		CHK(write(reply_fd, &ok, sizeof(ok)) == sizeof(ok));
	}
	return 0;
}

static int fi_peer_cmd(fi_self *self, int op, unsigned int first,
		       unsigned int last, __u64 salt)
{
	struct fi_peer_cmd c = { op, first, last, salt };
	int reply = -1;

	if (write(self->peer_cmd, &c, sizeof(c)) != sizeof(c))
		return -1;
	if (read(self->peer_reply, &reply, sizeof(reply)) != sizeof(reply))
		return -1;
	return reply;
}

static int fi_peer_start(fi_self *self)
{
	int cmd[2], reply[2], ok = -1;
	pid_t parent = getpid();

	CHK(!pipe2(cmd, O_CLOEXEC) && !pipe2(reply, O_CLOEXEC));
	fflush(stdout);
	fflush(stderr);
	self->peer = fork();
	CHK(self->peer >= 0);
	if (!self->peer) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		close(cmd[1]);
		close(reply[0]);
		_exit(fi_peer_main(self, cmd[0], reply[1]));
	}
	close(cmd[0]);
	close(reply[1]);
	self->peer_cmd = cmd[1];
	self->peer_reply = reply[0];
	CHK(read(self->peer_reply, &ok, sizeof(ok)) == sizeof(ok));
	CHK_EQ(0, ok);
	return 0;
}

static int fi_peer_stop(fi_self *self)
{
	struct fi_peer_cmd c = { PEER_QUIT, 0, 0, 0 };
	int status;

	CHK(write(self->peer_cmd, &c, sizeof(c)) == sizeof(c));
	status = shmk_wait(self->peer, 30000);
	CHK(shmk_status_ok(self->peer, status));
	self->peer = 0;
	return 0;
}

/* The segment, its mapping, the peer and the query socket. */
static int fi_resize_setup(fi_self *self, unsigned int pages)
{
	struct shmk_info info;

	CHK_EQ(0, fi_segment(self, pages, RS_MAX));
	CHK_EQ(0, fi_peer_start(self));
	CHK_EQ(0, fi_peer_cmd(self, PEER_CHECK, 0, pages, SALT_A));
	CHK_EQ(0, fi_nl_open(&self->nl));
	CHK_EQ(pages, fi_nl_pages(&self->nl, self->name));
	CHK_EQ(0, shmk_get_info(self->fd, &info));
	self->gen = info.generation;
	self->high = pages;
	return fi_counters(1, pages, 2);
}

/* One GROW or SHRINK from @from to @to pages with fault nth armed. */
static int fi_child_resize(fi_self *self, unsigned int nth,
			   unsigned long cmd, unsigned int from,
			   unsigned int to, unsigned int flags)
{
	struct shmk_resize rs;
	int ret, e, hit;

	memset(&rs, 0, sizeof(rs));
	rs.size = to * page_size();
	rs.flags = flags;
	self->res->stage = 2;

	CHK(!fi_arm(nth));
	ret = ioctl(self->fd, cmd, &rs);
	e = errno;
	hit = fi_disarm();
	fi_record(self->res, ret < 0 ? -e : ret, hit);

	if (ret < 0)
		return 0;
	CHK_EQ(from * page_size(), rs.old_size);
	CHK_EQ(to * page_size(), rs.new_size);
	return 0;
}

static int fi_child_grow(fi_self *self, unsigned int nth)
{
	return fi_child_resize(self, nth, SHMK_IOC_GROW, RS_S0, RS_S1,
			       self->lazy ? SHMK_GROW_LAZY : 0);
}

static int fi_check_grow(fi_self *self, const struct fi_result *r)
{
	size_t pg = page_size();
	unsigned int pages;
	struct shmk_info info;

	CHK_EQ(0, shmk_get_info(self->fd, &info));
	pages = info.size / pg;
	if (r->ret == -EFAULT)
		CHK(pages == RS_S0 || pages == RS_S1);
	else
		CHK_EQ(r->ret < 0 ? RS_S0 : RS_S1, pages);
	if (pages == RS_S0) {
		/* Undone: same generation, no page left of the new range. */
		CHK_EQ(self->gen, info.generation);
		CHK_EQ(RS_S0, fi_nl_pages(&self->nl, self->name));
		CHK(fi_counters(1, RS_S0, 2) == 0);
	} else {
		CHK_EQ(self->gen + 1, info.generation);
		CHK_EQ(self->lazy ? RS_S0 : RS_S1,
			  fi_nl_pages(&self->nl, self->name));
	}
	/* The old range is intact everywhere. */
	CHK_EQ(-1, fi_bad_page(self->map, 0, RS_S0, SALT_A));
	CHK_EQ(0, fi_peer_cmd(self, PEER_CHECK, 0, RS_S0, SALT_A));

	if (pages == RS_S0) {
		/*
		 * Still cut at the old size (zeroes when an earlier attempt
		 * grew it, SIGBUS when none did); a retry without injection
		 * works.
		 */
		CHK_EQ(SIGBUS, shmk_probe_write(self->map + RS_S0 * pg, 1));
		CHK_EQ(0, fi_cut_page(self->map, RS_S0, self->high > RS_S0));
		CHK_EQ(0, fi_peer_cmd(self, PEER_CUT, RS_S0, 0,
				      self->high > RS_S0));
		CHK_EQ(0, shmk_grow(self->fd, RS_S1 * pg,
				       self->lazy ? SHMK_GROW_LAZY : 0, NULL));
		CHK_EQ(self->lazy ? RS_S0 : RS_S1,
			  fi_nl_pages(&self->nl, self->name));
	}
	/* The new range is zeroed and shared with the peer. */
	CHK_EQ(0, fi_peer_cmd(self, PEER_CHECK, RS_S0, RS_S1, 0));
	CHK_EQ(-1, fi_bad_page(self->map, RS_S0, RS_S1, 0));
	fi_fill(self->map, RS_S0, RS_S1, SALT_B);
	CHK_EQ(0, fi_peer_cmd(self, PEER_CHECK, RS_S0, RS_S1, SALT_B));
	CHK_EQ(RS_S1, fi_nl_pages(&self->nl, self->name));
	CHK(fi_counters(1, RS_S1, 2) == 0);
	self->high = RS_S1;

	/* Back to the start for the next attempt. */
	CHK_EQ(0, shmk_shrink(self->fd, RS_S0 * pg, NULL));
	CHK_EQ(RS_S0, fi_nl_pages(&self->nl, self->name));
	CHK_EQ(0, shmk_get_info(self->fd, &info));
	self->gen = info.generation;
	return fi_counters(1, RS_S0, 2);
}

static void fi_grow_test(struct __test_metadata *_metadata, fi_self *self,
			 bool lazy)
{
	struct fi_stats st = { .what = lazy ? "grow lazy" : "grow eager" };

	self->lazy = lazy;
	ASSERT_EQ(0, fi_resize_setup(self, RS_S0));
	ASSERT_EQ(0, fi_sweep(self, &st, fi_child_grow, fi_check_grow,
			      fi_ok_resize));
	fi_report(&st);
	ASSERT_EQ(0, fi_peer_stop(self));
	ASSERT_EQ(0, fi_finish(self));
}

TEST_F_TIMEOUT(fault, grow_eager, 240)
{
	FI_REQUIRE();
	fi_grow_test(_metadata, self, false);
}

TEST_F_TIMEOUT(fault, grow_lazy, 240)
{
	FI_REQUIRE();
	fi_grow_test(_metadata, self, true);
}

static int fi_child_shrink(fi_self *self, unsigned int nth)
{
	return fi_child_resize(self, nth, SHMK_IOC_SHRINK, RS_S1, RS_S0, 0);
}

static int fi_check_shrink(fi_self *self, const struct fi_result *r)
{
	size_t pg = page_size();
	struct shmk_info info;
	unsigned int pages;

	CHK_EQ(0, shmk_get_info(self->fd, &info));
	pages = info.size / pg;
	if (r->ret == -EFAULT)
		CHK(pages == RS_S0 || pages == RS_S1);
	else
		CHK_EQ(r->ret < 0 ? RS_S1 : RS_S0, pages);
	CHK_EQ(pages, fi_nl_pages(&self->nl, self->name));
	CHK(fi_counters(1, pages, 2) == 0);
	CHK_EQ(-1, fi_bad_page(self->map, 0, pages, SALT_A));
	CHK_EQ(0, fi_peer_cmd(self, PEER_CHECK, 0, pages, SALT_A));
	if (pages == RS_S1) {
		/* Not done: a shrink without injection works. */
		CHK_EQ(self->gen, info.generation);
		CHK_EQ(0, shmk_shrink(self->fd, RS_S0 * pg, NULL));
		CHK_EQ(RS_S0, fi_nl_pages(&self->nl, self->name));
	}
	/* Cut everywhere: writes raise SIGBUS, reads see zeroes. */
	CHK_EQ(SIGBUS, shmk_probe_write(self->map + RS_S0 * pg, 1));
	CHK_EQ(0, fi_cut_page(self->map, RS_S0, true));
	CHK_EQ(0, fi_peer_cmd(self, PEER_CUT, RS_S0, 0, 1));
	CHK_EQ(0, fi_peer_cmd(self, PEER_CUT, RS_S1 - 1, 0, 1));
	CHK_EQ(0, fi_peer_cmd(self, PEER_CUT, RS_MAX - 1, 0, 0));

	/* Back to the start for the next attempt. */
	CHK_EQ(0, shmk_grow(self->fd, RS_S1 * pg, 0, NULL));
	CHK_EQ(0, fi_peer_cmd(self, PEER_CHECK, RS_S0, RS_S1, 0));
	fi_fill(self->map, RS_S0, RS_S1, SALT_A);
	CHK_EQ(0, fi_peer_cmd(self, PEER_CHECK, 0, RS_S1, SALT_A));
	CHK_EQ(0, shmk_get_info(self->fd, &info));
	self->gen = info.generation;
	return fi_counters(1, RS_S1, 2);
}

TEST_F_TIMEOUT(fault, shrink, 240)
{
	struct fi_stats st = { .what = "shrink" };

	FI_REQUIRE();
	ASSERT_EQ(0, fi_resize_setup(self, RS_S1));
	ASSERT_EQ(0, fi_sweep(self, &st, fi_child_shrink, fi_check_shrink,
			      fi_ok_resize));
	fi_report(&st);
	ASSERT_EQ(0, fi_peer_stop(self));
	ASSERT_EQ(0, fi_finish(self));
}

/* ------------------------------------------------------------------ */
/* netlink: SEGMENT_GET do and dump, CLIENT_GET dump.                   */

/*
 * ENOMEM: the request's attribute table, the reply (the family's own
 * genlmsg_new()), the dump state. ENOBUFS: the socket layer's own
 * buffers, the ack, a dump skb (netlink reports those as a socket error).
 * EFAULT: copying the request in or an answer out.
 */
static const int fi_ok_nl[] = { ENOMEM, ENOBUFS, EFAULT, 0 };

static int fi_nl_index(fi_self *self, const char *name)
{
	int i;

	for (i = 0; i < NL_NSEG; i++)
		if (!strcmp(self->nl_names[i], name))
			return i;
	return -1;
}

static void fi_nl_collect(const struct fi_nl_msg *m, void *arg)
{
	fi_self *self = arg;
	int i = fi_nl_index(self, m->name);

	if (i < 0)
		return;
	if (m->seg_id != self->nl_ids[i])
		fi_seen.bad++;
	if (m->cmd == SHMK_CMD_SEGMENT_GET) {
		fi_seen.segs[i]++;
	} else if (m->cmd == SHMK_CMD_CLIENT_GET) {
		__u64 bit = m->client_id < 64 ? 1ULL << m->client_id : 0;

		if (!bit || (fi_seen.client_ids[i] & bit))
			fi_seen.bad++;
		fi_seen.client_ids[i] |= bit;
		fi_seen.clients[i]++;
	} else {
		fi_seen.bad++;
	}
}

static int fi_child_nl(fi_self *self, unsigned int nth)
{
	struct fi_nl_req r;
	struct fi_nl nl;
	int ret, hit, i;

	CHK_EQ(0, fi_nl_open(&nl));
	switch (self->nl_kind) {
	case NL_SEG_DO:
		fi_nl_init(&r, nl.family, SHMK_CMD_SEGMENT_GET, NLM_F_ACK);
		fi_nl_put_str(&r, SHMK_A_SEGMENT_NAME,
			      self->nl_names[NL_DO_IDX]);
		break;
	case NL_SEG_DUMP:
		fi_nl_init(&r, nl.family, SHMK_CMD_SEGMENT_GET, NLM_F_DUMP);
		break;
	default:
		fi_nl_init(&r, nl.family, SHMK_CMD_CLIENT_GET, NLM_F_DUMP);
		break;
	}
	memset(&fi_seen, 0, sizeof(fi_seen));
	memset(fi_nl_buf, 0, sizeof(fi_nl_buf));
	self->res->stage = 2;

	CHK(!fi_arm(nth));
	ret = fi_nl_exchange(&nl, &r, fi_nl_collect, self);
	hit = fi_disarm();
	fi_record(self->res, ret, hit);

	close(nl.fd);
	if (ret < 0)
		return 0;
	CHK_EQ(0, fi_seen.bad);
	for (i = 0; i < NL_NSEG; i++) {
		unsigned int clients = i ? 1 : 1 + NL_NEXTRA;

		switch (self->nl_kind) {
		case NL_SEG_DO:
			CHK_EQ(i == NL_DO_IDX, fi_seen.segs[i]);
			CHK_EQ(0, fi_seen.clients[i]);
			break;
		case NL_SEG_DUMP:
			CHK_EQ(1, fi_seen.segs[i]);
			CHK_EQ(0, fi_seen.clients[i]);
			break;
		default:
			CHK_EQ(0, fi_seen.segs[i]);
			CHK_EQ(clients, fi_seen.clients[i]);
		}
	}
	return 0;
}

static int fi_check_nl(fi_self *self, const struct fi_result *r)
{
	(void)self;
	(void)r;
	return fi_counters(NL_NSEG, NL_NSEG, NL_NSEG + NL_NEXTRA);
}

static void fi_nl_test(struct __test_metadata *_metadata, fi_self *self,
		       int kind, const char *what)
{
	struct fi_stats st = { .what = what };
	struct shmk_attach a;
	int i, n = 0;

	self->nl_kind = kind;
	for (i = 0; i < NL_NSEG; i++) {
		char tag[8];
		int fd;

		snprintf(tag, sizeof(tag), "nl%02d", i);
		SHMK_NAME(self->nl_names[i], tag);
		fd = shmk_attach_opts(self->ctl, self->nl_names[i],
				      SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL,
				      0600, page_size(), page_size(), NULL,
				      &a);
		ASSERT_LE(0, fd);
		self->nl_fds[n++] = fd;
		self->nl_ids[i] = (__u32)a.segment_id;
	}
	for (i = 0; i < NL_NEXTRA; i++) {
		int fd = shmk_open(self->ctl, self->nl_names[0], 0, NULL);

		ASSERT_LE(0, fd);
		self->nl_fds[n++] = fd;
	}
	ASSERT_EQ(0, fi_check_nl(self, NULL));
	ASSERT_EQ(0, fi_sweep(self, &st, fi_child_nl, fi_check_nl, fi_ok_nl));
	fi_report(&st);
	ASSERT_EQ(0, fi_finish(self));
}

TEST_F_TIMEOUT(fault, nl_segment_do, 240)
{
	FI_REQUIRE();
	fi_nl_test(_metadata, self, NL_SEG_DO, "netlink SEGMENT_GET do");
}

TEST_F_TIMEOUT(fault, nl_segment_dump, 240)
{
	FI_REQUIRE();
	fi_nl_test(_metadata, self, NL_SEG_DUMP, "netlink SEGMENT_GET dump");
}

TEST_F_TIMEOUT(fault, nl_client_dump, 240)
{
	FI_REQUIRE();
	fi_nl_test(_metadata, self, NL_CLIENT_DUMP, "netlink CLIENT_GET dump");
}

/* ------------------------------------------------------------------ */
/* events: a listener subscribed while a creating attach is injected.   */

#define EV_MAX		16

struct fi_events {
	unsigned int n;
	__u8 cmd[EV_MAX];
	__u32 seg_id[EV_MAX];
	unsigned int other;	/* events about other segments */
};

static void fi_ev_collect(const struct fi_nl_msg *m, void *arg)
{
	struct fi_events *ev = arg;

	if (ev->n < EV_MAX) {
		ev->cmd[ev->n] = m->cmd;
		ev->seg_id[ev->n] = m->seg_id;
	}
	ev->n++;
}

/* Reads every queued event about self->name. Returns 0 or -errno. */
static int fi_ev_drain(fi_self *self, struct fi_events *ev)
{
	memset(ev, 0, sizeof(*ev));
	for (;;) {
		ssize_t n = recv(self->nl.fd, fi_nl_buf, sizeof(fi_nl_buf),
				 MSG_DONTWAIT | MSG_TRUNC);
		const char *p = fi_nl_buf;

		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n > (ssize_t)sizeof(fi_nl_buf))
			return -EMSGSIZE;
		while (n >= (ssize_t)NLMSG_HDRLEN) {
			const struct nlmsghdr *nlh = (const void *)p;
			struct fi_nl_msg m;

			if (nlh->nlmsg_len < NLMSG_HDRLEN ||
			    nlh->nlmsg_len > n)
				return -EBADMSG;
			fi_nl_parse(nlh, &m);
			if (!strcmp(m.name, self->name))
				fi_ev_collect(&m, ev);
			else
				ev->other++;
			n -= NLMSG_ALIGN(nlh->nlmsg_len);
			p += NLMSG_ALIGN(nlh->nlmsg_len);
		}
	}
}

static const char *fi_ev_name(__u8 cmd)
{
	switch (cmd) {
	case SHMK_CMD_SEGMENT_CREATED:	return "CREATED";
	case SHMK_CMD_SEGMENT_DESTROYED: return "DESTROYED";
	case SHMK_CMD_CLIENT_ATTACHED:	return "ATTACHED";
	case SHMK_CMD_CLIENT_DETACHED:	return "DETACHED";
	default:			return "other";
	}
}

static int fi_check_events(fi_self *self, const struct fi_result *r)
{
	unsigned int created = 0, destroyed = 0, attached = 0, detached = 0;
	bool dropped_ok = r->ret >= 0 && r->injected;
	struct fi_events ev;
	__u32 id = 0;
	unsigned int i;
	int ret;

	/* The child has gone; the segment goes with the unlink. */
	ret = shmk_unlink_name(self->ctl, self->name);
	CHK(ret == (r->ret < 0 ? -ENOENT : 0));
	CHK(fi_counters(0, 0, 0) == 0);
	CHK_EQ(0, fi_ev_drain(self, &ev));
	CHK_EQ(0, ev.other);
	CHK(ev.n <= EV_MAX);
	for (i = 0; i < ev.n; i++) {
		if (fi_verbose)
			fprintf(stderr, "#   event %s segment %u\n",
				fi_ev_name(ev.cmd[i]), ev.seg_id[i]);
		switch (ev.cmd[i]) {
		case SHMK_CMD_SEGMENT_CREATED:
			CHK(!created && !destroyed && !attached);
			created++;
			id = ev.seg_id[i];
			break;
		case SHMK_CMD_CLIENT_ATTACHED:
			CHK(!attached && !destroyed);
			attached++;
			break;
		case SHMK_CMD_CLIENT_DETACHED:
			CHK(attached || dropped_ok);
			CHK(!detached && !destroyed);
			detached++;
			break;
		case SHMK_CMD_SEGMENT_DESTROYED:
			/* Only what was announced is destroyed. */
			CHK(created || dropped_ok);
			if (created)
				CHK_EQ(id, ev.seg_id[i]);
			CHK(!destroyed);
			destroyed++;
			break;
		default:
			CHK(!"unexpected event");
		}
		if (created && ev.seg_id[i] != id)
			CHK_EQ(id, ev.seg_id[i]);
	}
	if (r->ret < 0) {
		/*
		 * The injected fault failed the call, so no event was lost:
		 * whatever the call announced, it took back.
		 */
		CHK_EQ(created, destroyed);
		CHK_EQ(attached, detached);
	} else {
		/* Sent after the window: never lost. */
		CHK_EQ(1, detached);
		CHK_EQ(1, destroyed);
		if (!r->injected) {
			CHK_EQ(1, created);
			CHK_EQ(1, attached);
		}
	}
	return 0;
}

TEST_F_TIMEOUT(fault, events, 240)
{
	struct fi_stats st = { .what = "attach with a listener" };
	struct fi_events ev;

	FI_REQUIRE();
	ASSERT_EQ(0, fi_nl_open(&self->nl));
	ASSERT_EQ(0, setsockopt(self->nl.fd, SOL_NETLINK,
				NETLINK_ADD_MEMBERSHIP, &self->nl.mcgrp,
				sizeof(self->nl.mcgrp)));
	ASSERT_EQ(0, fi_ev_drain(self, &ev));
	ASSERT_EQ(0, fi_sweep(self, &st, fi_child_create, fi_check_events,
			      fi_ok_attach));
	fi_report(&st);
	ASSERT_EQ(0, fi_finish(self));
}

TEST_HARNESS_MAIN
