// SPDX-License-Identifier: GPL-2.0
/*
 * shmkctl: administer shmk segments over the "shmk" generic netlink family.
 *
 *   shmkctl [--json] list | show SEG | clients [SEG] | watch [--count N]
 *   shmkctl unlink SEG | kick SEG CLIENT
 *
 * SEG is a segment name, "id:N" for the segment with id N (linked or not),
 * or "name:NAME" for a name that itself begins with "id:" or "name:".
 *
 * See shmkctl(8) and Documentation/admin-guide/shmkctl.rst.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <grp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include <linux/shmk.h>

#include "json.h"
#include "shmkctl_image.h"
#include "shmkctl_queues.h"

#ifndef SHMKCTL_VERSION
#define SHMKCTL_VERSION "unknown"
#endif

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define EXIT_USAGE 2

static const char *prog = "shmkctl";

/* --- output helpers ------------------------------------------------------- */

static void err_msg(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void __attribute__((noreturn)) usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
	exit(EXIT_USAGE);
}

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size);
	if (!p) {
		err_msg("out of memory");
		exit(EXIT_FAILURE);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p) {
		err_msg("out of memory");
		exit(EXIT_FAILURE);
	}
	return p;
}

/* Sizes in IEC units: "512 B", "64 KiB", "1.5 MiB". */
static const char *fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char *const units[] = {
		"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"
	};
	unsigned int u = 0;
	uint64_t div = 1;

	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes / div >= 1024) {
		div *= 1024;
		u++;
	}
	if (bytes % div == 0)
		snprintf(buf, len, "%" PRIu64 " %s", bytes / div, units[u]);
	else
		snprintf(buf, len, "%.1f %s", (double)bytes / (double)div,
			 units[u]);
	return buf;
}

/* Local time, "2025-11-22 03:12:05", for people. */
static const char *fmt_time(char *buf, size_t len, uint64_t ns)
{
	time_t t = (time_t)(ns / 1000000000ULL);
	struct tm tm;

	if (!ns || !localtime_r(&t, &tm) ||
	    !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "-");
	return buf;
}

/* UTC, RFC 3339 with milliseconds, for JSON. */
static const char *fmt_time_json(char *buf, size_t len, uint64_t ns)
{
	time_t t = (time_t)(ns / 1000000000ULL);
	char date[32];
	struct tm tm;

	if (!gmtime_r(&t, &tm) ||
	    !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm))
		date[0] = '\0';
	snprintf(buf, len, "%s.%03uZ", date,
		 (unsigned int)(ns % 1000000000ULL / 1000000));
	return buf;
}

/* User and group names, looked up once per id (NSS can be slow). */
struct id_name {
	uint32_t id;
	char name[64];
};

#define ID_CACHE_SIZE 64

static const char *cached_name(struct id_name *cache, unsigned int *n,
			       uint32_t id, bool group, char *buf, size_t len)
{
	const char *name = NULL;
	struct passwd *pw;
	struct group *gr;
	unsigned int i;

	for (i = 0; i < *n; i++)
		if (cache[i].id == id) {
			snprintf(buf, len, "%s", cache[i].name);
			return buf;
		}
	if (group) {
		gr = getgrgid(id);
		if (gr)
			name = gr->gr_name;
	} else {
		pw = getpwuid(id);
		if (pw)
			name = pw->pw_name;
	}
	if (name)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "%u", id);
	if (*n < ID_CACHE_SIZE) {
		cache[*n].id = id;
		snprintf(cache[*n].name, sizeof(cache[*n].name), "%s", buf);
		(*n)++;
	}
	return buf;
}

static const char *fmt_user(char *buf, size_t len, uint32_t uid)
{
	static struct id_name cache[ID_CACHE_SIZE];
	static unsigned int n;

	return cached_name(cache, &n, uid, false, buf, len);
}

static const char *fmt_group(char *buf, size_t len, uint32_t gid)
{
	static struct id_name cache[ID_CACHE_SIZE];
	static unsigned int n;

	return cached_name(cache, &n, gid, true, buf, len);
}

/* Names are printable ASCII; comm-derived client names may not be. */
static const char *printable(char *buf, size_t len, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

static const char *access_name(uint32_t flags)
{
	if (flags & SHMK_CLIENT_WRITER)
		return "writer";
	if (flags & SHMK_CLIENT_RDONLY)
		return "read-only";
	return "read-write";
}

static void json_flags(FILE *f, uint32_t flags)
{
	const char *sep = "";

	fputc('[', f);
	if (flags & SHMK_CLIENT_RDONLY) {
		fprintf(f, "%s\"rdonly\"", sep);
		sep = ",";
	}
	if (flags & SHMK_CLIENT_WRITER)
		fprintf(f, "%s\"writer\"", sep);
	fputc(']', f);
}

static const char *reason_name(uint32_t reason)
{
	switch (reason) {
	case SHMK_DETACH_CLOSED:
		return "closed";
	case SHMK_DETACH_EXITED:
		return "exited";
	case SHMK_DETACH_KILLED:
		return "killed";
	case SHMK_DETACH_KICKED:
		return "kicked";
	default:
		return "unknown";
	}
}

/* --- aligned tables ------------------------------------------------------- */

#define TABLE_MAX_COLS 16

struct table {
	unsigned int ncols;
	const char *heads[TABLE_MAX_COLS];
	bool right[TABLE_MAX_COLS];
	char **cells;		/* rows * ncols */
	unsigned int rows;
};

static void table_init(struct table *t, const char *spec)
{
	/* spec: "ID>|NAME|SIZE>|..." where '>' marks a right-aligned column */
	char *copy = xstrdup(spec), *tok, *save = NULL;

	memset(t, 0, sizeof(*t));
	for (tok = strtok_r(copy, "|", &save); tok && t->ncols < TABLE_MAX_COLS;
	     tok = strtok_r(NULL, "|", &save)) {
		size_t n = strlen(tok);

		if (n && tok[n - 1] == '>') {
			tok[n - 1] = '\0';
			t->right[t->ncols] = true;
		}
		t->heads[t->ncols++] = xstrdup(tok);
	}
	free(copy);
}

static void table_row(struct table *t, ...)
{
	unsigned int c;
	va_list ap;

	t->cells = xrealloc(t->cells,
			    sizeof(char *) * t->ncols * (t->rows + 1));
	va_start(ap, t);
	for (c = 0; c < t->ncols; c++)
		t->cells[t->rows * t->ncols + c] = xstrdup(va_arg(ap, char *));
	va_end(ap);
	t->rows++;
}

static void table_print(struct table *t)
{
	size_t width[TABLE_MAX_COLS];
	unsigned int r, c;

	for (c = 0; c < t->ncols; c++)
		width[c] = strlen(t->heads[c]);
	for (r = 0; r < t->rows; r++)
		for (c = 0; c < t->ncols; c++) {
			size_t n = strlen(t->cells[r * t->ncols + c]);

			if (n > width[c])
				width[c] = n;
		}
	for (r = 0; r <= t->rows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *s = r ? t->cells[(r - 1) * t->ncols + c] :
					    t->heads[c];
			bool last = c + 1 == t->ncols;

			if (t->right[c])
				printf("%*s", (int)width[c], s);
			else if (last)
				printf("%s", s);
			else
				printf("%-*s", (int)width[c], s);
			if (!last)
				printf("  ");
		}
		putchar('\n');
	}
	for (r = 0; r < t->rows * t->ncols; r++)
		free(t->cells[r]);
	for (c = 0; c < t->ncols; c++)
		free((char *)t->heads[c]);
	free(t->cells);
}

/* --- netlink -------------------------------------------------------------- */

struct nl_ctx {
	struct nl_sock *sk;
	int family;		/* shmk family id */
	int events_grp;		/* "events" multicast group id */
	uint32_t version;	/* kernel's family version */
};

/* The outcome of one request. */
struct req_state {
	bool done;
	int error;		/* 0 or a negative errno */
	char msg[256];		/* the kernel's extended ack message */
	int (*on_msg)(struct nl_msg *msg, void *arg);
	void *arg;
};

/* Extended ack attributes after an nlmsgerr or a NLMSG_DONE errno. */
static void parse_ext_ack(struct req_state *st, const struct nlmsghdr *nlh,
			  size_t offset)
{
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	struct nlattr *attrs;
	int len;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || nlh->nlmsg_len <= offset)
		return;
	attrs = (struct nlattr *)((char *)nlh + offset);
	len = (int)(nlh->nlmsg_len - offset);
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, attrs, len, NULL) < 0)
		return;
	if (tb[NLMSGERR_ATTR_MSG]) {
		int n = (int)strnlen(nla_data(tb[NLMSGERR_ATTR_MSG]),
				     (size_t)nla_len(tb[NLMSGERR_ATTR_MSG]));

		snprintf(st->msg, sizeof(st->msg), "%.*s", n,
			 (char *)nla_data(tb[NLMSGERR_ATTR_MSG]));
	}
}

static int cb_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	/* libnl hands us the payload of the NLMSG_ERROR message. */
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)e - 1;
	struct req_state *st = arg;
	size_t offset = NLMSG_HDRLEN + sizeof(e->error) + sizeof(e->msg);

	(void)nla;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		offset += e->msg.nlmsg_len - sizeof(e->msg);
	offset = NLMSG_ALIGN(offset);
	st->error = e->error;
	st->done = true;
	parse_ext_ack(st, nlh, offset);
	return NL_STOP;
}

static int cb_ack(struct nl_msg *msg, void *arg)
{
	struct req_state *st = arg;

	(void)msg;
	st->done = true;
	return NL_STOP;
}

/* NLMSG_DONE carries the dump's errno, and its extended ack. */
static int cb_finish(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct req_state *st = arg;
	int error = 0;

	if (nlh->nlmsg_len >= NLMSG_HDRLEN + sizeof(int))
		memcpy(&error, nlmsg_data(nlh), sizeof(int));
	if (error < 0) {
		st->error = error;
		parse_ext_ack(st, nlh, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(int)));
	}
	st->done = true;
	return NL_STOP;
}

static int cb_valid(struct nl_msg *msg, void *arg)
{
	struct req_state *st = arg;

	return st->on_msg ? st->on_msg(msg, st->arg) : NL_OK;
}

static struct nl_sock *nl_open(void)
{
	struct nl_sock *sk = nl_socket_alloc();
	int one = 1;

	if (!sk) {
		err_msg("out of memory");
		exit(EXIT_FAILURE);
	}
	if (genl_connect(sk) < 0) {
		err_msg("cannot open a generic netlink socket: %s",
			strerror(errno));
		exit(EXIT_FAILURE);
	}
	/* Error messages from the kernel, and acks without the request. */
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one,
		   sizeof(one));
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one,
		   sizeof(one));
	nl_socket_enable_msg_peek(sk);
	return sk;
}

/* Send @msg (consumed) and process answers until the final ack or error. */
static int nl_request(struct nl_sock *sk, struct nl_msg *msg,
		      struct req_state *st)
{
	struct nl_cb *cb;
	int ret;

	ret = nl_send_auto(sk, msg);
	nlmsg_free(msg);
	if (ret < 0) {
		st->error = -EIO;
		snprintf(st->msg, sizeof(st->msg), "cannot send: %s",
			 nl_geterror(ret));
		return st->error;
	}
	cb = nl_cb_alloc(NL_CB_CUSTOM);
	if (!cb) {
		err_msg("out of memory");
		exit(EXIT_FAILURE);
	}
	nl_cb_err(cb, NL_CB_CUSTOM, cb_error, st);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, cb_ack, st);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, cb_finish, st);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, cb_valid, st);
	while (!st->done) {
		ret = nl_recvmsgs(sk, cb);
		if (ret < 0 && !st->done) {
			st->error = -EIO;
			snprintf(st->msg, sizeof(st->msg),
				 "netlink receive failed: %s", nl_geterror(ret));
			break;
		}
	}
	nl_cb_put(cb);
	return st->error;
}

/* Report a failed request in one line: "what: message (strerror)". */
static void report(const char *what, const struct req_state *st)
{
	if (st->msg[0])
		err_msg("%s: %s (%s)", what, st->msg, strerror(-st->error));
	else
		err_msg("%s: %s", what, strerror(-st->error));
}

struct family_info {
	int id;
	uint32_t version;
	int events_grp;
};

static int parse_family(struct nl_msg *msg, void *arg)
{
	struct family_info *fi = arg;
	struct nlattr *tb[CTRL_ATTR_MAX + 1];
	struct nlattr *grp;
	int rem;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, CTRL_ATTR_MAX, NULL) < 0)
		return NL_SKIP;
	if (tb[CTRL_ATTR_FAMILY_ID])
		fi->id = nla_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	if (tb[CTRL_ATTR_VERSION])
		fi->version = nla_get_u32(tb[CTRL_ATTR_VERSION]);
	if (!tb[CTRL_ATTR_MCAST_GROUPS])
		return NL_OK;
	nla_for_each_nested(grp, tb[CTRL_ATTR_MCAST_GROUPS], rem) {
		struct nlattr *g[CTRL_ATTR_MCAST_GRP_MAX + 1];

		if (nla_parse_nested(g, CTRL_ATTR_MCAST_GRP_MAX, grp,
				     NULL) < 0 ||
		    !g[CTRL_ATTR_MCAST_GRP_NAME] || !g[CTRL_ATTR_MCAST_GRP_ID])
			continue;
		if (!strcmp(nla_get_string(g[CTRL_ATTR_MCAST_GRP_NAME]),
			    SHMK_GENL_MCGRP_EVENTS))
			fi->events_grp =
				(int)nla_get_u32(g[CTRL_ATTR_MCAST_GRP_ID]);
	}
	return NL_OK;
}

/* CTRL_CMD_GETFAMILY: the id, version and multicast groups of @name. */
static int resolve_family(struct nl_sock *sk, const char *name,
			  struct family_info *fi, struct req_state *st)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg || !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, GENL_ID_CTRL,
				 0, 0, CTRL_CMD_GETFAMILY, 1) ||
	    nla_put_string(msg, CTRL_ATTR_FAMILY_NAME, name) < 0) {
		err_msg("out of memory");
		exit(EXIT_FAILURE);
	}
	memset(fi, 0, sizeof(*fi));
	fi->events_grp = -1;
	st->on_msg = parse_family;
	st->arg = fi;
	return nl_request(sk, msg, st);
}

/*
 * libshmk's posix backend keeps its segments in /dev/shm, out of the
 * module's sight: say where, and how many there are now.
 */
static const char *posix_hint(void)
{
	static char buf[160];
	struct dirent *d;
	unsigned int n = 0;
	DIR *dir = opendir("/dev/shm");

	if (!dir)
		return "";
	while ((d = readdir(dir)))
		if (!strncmp(d->d_name, "shmk.", 5))
			n++;
	closedir(dir);
	if (!n)
		return "";
	snprintf(buf, sizeof(buf),
		 "; %u segment%s of libshmk's posix backend in /dev/shm: ls -l /dev/shm/shmk.*",
		 n, n == 1 ? "" : "s");
	return buf;
}

static void nl_connect_shmk(struct nl_ctx *ctx)
{
	struct req_state st = { 0 };
	struct family_info fi;

	ctx->sk = nl_open();
	if (resolve_family(ctx->sk, SHMK_GENL_NAME, &fi, &st) == -ENOENT) {
		/* Loaded but invisible: we are in another network namespace. */
		if (access("/sys/module/shmk", F_OK) == 0)
			err_msg("the generic netlink family \"%s\" is not visible in this network namespace (shmk serves the initial network namespace only)",
				SHMK_GENL_NAME);
		else
			err_msg("the shmk module is not loaded (no generic netlink family \"%s\")%s",
				SHMK_GENL_NAME, posix_hint());
		exit(EXIT_FAILURE);
	}
	if (st.error) {
		report("resolving the generic netlink family \"shmk\"", &st);
		exit(EXIT_FAILURE);
	}
	ctx->family = fi.id;
	ctx->version = fi.version;
	ctx->events_grp = fi.events_grp;
}

static struct nl_msg *shmk_msg(struct nl_ctx *ctx, uint8_t cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg || !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, ctx->family,
				 0, flags, cmd, SHMK_GENL_VERSION)) {
		err_msg("out of memory");
		exit(EXIT_FAILURE);
	}
	return msg;
}

static void put_name(struct nl_msg *msg, const char *name)
{
	if (nla_put_string(msg, SHMK_A_SEGMENT_NAME, name) < 0) {
		err_msg("out of memory");
		exit(EXIT_FAILURE);
	}
}

/* A segment as given on the command line: by name, or by id. */
struct segref {
	const char *name;	/* NULL: by id */
	uint32_t id;
	char label[SHMK_NAME_MAX + 16];	/* for messages */
};

static void put_segref(struct nl_msg *msg, const struct segref *ref)
{
	if (ref->name)
		put_name(msg, ref->name);
	else if (nla_put_u32(msg, SHMK_A_SEGMENT_ID, ref->id) < 0)
		exit(EXIT_FAILURE);
}

/* --- the objects ---------------------------------------------------------- */

static uint32_t get_u32(struct nlattr **tb, int type)
{
	return tb[type] && nla_len(tb[type]) >= 4 ? nla_get_u32(tb[type]) : 0;
}

static uint64_t get_u64(struct nlattr **tb, int type)
{
	return tb[type] && nla_len(tb[type]) >= 8 ? nla_get_u64(tb[type]) : 0;
}

static void get_str(char *buf, size_t len, struct nlattr **tb, int type)
{
	buf[0] = '\0';
	if (tb[type])
		snprintf(buf, len, "%.*s", nla_len(tb[type]),
			 (char *)nla_data(tb[type]));
}

struct segment {
	uint32_t id;
	char name[SHMK_NAME_MAX];
	uint64_t size, max_size, pages, ctime, generation;
	uint32_t nr_clients, uid, gid, mode;
	bool linked;
};

struct client {
	uint32_t seg_id;
	char seg_name[SHMK_NAME_MAX];
	uint32_t id, pid, flags;
	char name[SHMK_CLIENT_NAME_MAX];
	uint64_t base_addr, attach_time;
};

struct list {
	void *items;
	size_t n, size;
};

static void *list_add(struct list *l)
{
	l->items = xrealloc(l->items, l->size * (l->n + 1));
	memset((char *)l->items + l->size * l->n, 0, l->size);
	return (char *)l->items + l->size * l->n++;
}

static int parse_attrs(struct nl_msg *msg, struct nlattr **tb)
{
	return genlmsg_parse(nlmsg_hdr(msg), 0, tb, SHMK_A_MAX, NULL);
}

static int on_segment(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[SHMK_A_MAX + 1];
	struct segment *s;

	if (parse_attrs(msg, tb) < 0 || !tb[SHMK_A_SEGMENT_ID])
		return NL_SKIP;
	s = list_add(arg);
	s->id = get_u32(tb, SHMK_A_SEGMENT_ID);
	get_str(s->name, sizeof(s->name), tb, SHMK_A_SEGMENT_NAME);
	s->size = get_u64(tb, SHMK_A_SIZE);
	s->max_size = get_u64(tb, SHMK_A_MAX_SIZE);
	s->pages = get_u64(tb, SHMK_A_PAGES);
	s->nr_clients = get_u32(tb, SHMK_A_NR_CLIENTS);
	s->uid = get_u32(tb, SHMK_A_UID);
	s->gid = get_u32(tb, SHMK_A_GID);
	s->mode = get_u32(tb, SHMK_A_MODE);
	s->ctime = get_u64(tb, SHMK_A_CTIME);
	s->generation = get_u64(tb, SHMK_A_GENERATION);
	s->linked = tb[SHMK_A_LINKED] != NULL;
	return NL_OK;
}

static int on_client(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[SHMK_A_MAX + 1];
	struct client *c;

	if (parse_attrs(msg, tb) < 0 || !tb[SHMK_A_CLIENT_ID])
		return NL_SKIP;
	c = list_add(arg);
	c->seg_id = get_u32(tb, SHMK_A_SEGMENT_ID);
	get_str(c->seg_name, sizeof(c->seg_name), tb, SHMK_A_SEGMENT_NAME);
	c->id = get_u32(tb, SHMK_A_CLIENT_ID);
	c->pid = get_u32(tb, SHMK_A_PID);
	get_str(c->name, sizeof(c->name), tb, SHMK_A_CLIENT_NAME);
	c->flags = get_u32(tb, SHMK_A_CLIENT_FLAGS);
	c->base_addr = get_u64(tb, SHMK_A_BASE_ADDR);
	c->attach_time = get_u64(tb, SHMK_A_ATTACH_TIME);
	return NL_OK;
}

static void json_segment_fields(const struct segment *s)
{
	char t[64];

	printf("\"segment_id\":%u,\"segment\":", s->id);
	json_str(stdout, s->name);
	printf(",\"linked\":%s,\"size\":%" PRIu64 ",\"max_size\":%" PRIu64
	       ",\"pages\":%" PRIu64 ",\"nr_clients\":%u,\"uid\":%u,\"gid\":%u"
	       ",\"mode\":\"%04o\",\"generation\":%" PRIu64
	       ",\"ctime\":\"%s\",\"ctime_ns\":%" PRIu64,
	       s->linked ? "true" : "false", s->size, s->max_size, s->pages,
	       s->nr_clients, s->uid, s->gid, s->mode, s->generation,
	       fmt_time_json(t, sizeof(t), s->ctime), s->ctime);
}

static void json_client(const struct client *c)
{
	char t[64];

	printf("{\"segment_id\":%u,\"segment\":", c->seg_id);
	json_str(stdout, c->seg_name);
	printf(",\"client_id\":%u,\"client\":", c->id);
	json_str(stdout, c->name);
	printf(",\"pid\":%u", c->pid);
	printf(",\"flags\":");
	json_flags(stdout, c->flags);
	printf(",\"base_addr\":%" PRIu64 ",\"attach_time\":\"%s\""
	       ",\"attach_time_ns\":%" PRIu64 "}",
	       c->base_addr, fmt_time_json(t, sizeof(t), c->attach_time),
	       c->attach_time);
}

static void print_clients_table(const struct list *l, bool with_segment)
{
	const struct client *c = l->items;
	struct table t;
	size_t i;

	if (with_segment)
		table_init(&t, "SEG ID>|SEGMENT|CLIENT>|PID>|NAME|ACCESS|BASE|ATTACHED");
	else
		table_init(&t, "CLIENT>|PID>|NAME|ACCESS|BASE|ATTACHED");
	for (i = 0; i < l->n; i++, c++) {
		char segid[16], id[16], pid[16], base[32], when[32];
		char seg[SHMK_NAME_MAX], name[SHMK_CLIENT_NAME_MAX];

		snprintf(segid, sizeof(segid), "%u", c->seg_id);
		snprintf(id, sizeof(id), "%u", c->id);
		snprintf(pid, sizeof(pid), "%u", c->pid);
		if (c->base_addr)
			snprintf(base, sizeof(base), "0x%" PRIx64, c->base_addr);
		else
			snprintf(base, sizeof(base), "-");
		fmt_time(when, sizeof(when), c->attach_time);
		printable(seg, sizeof(seg), c->seg_name);
		printable(name, sizeof(name), c->name);
		if (with_segment)
			table_row(&t, segid, seg, id, pid, name,
				  access_name(c->flags), base, when);
		else
			table_row(&t, id, pid, name, access_name(c->flags),
				  base, when);
	}
	table_print(&t);
}

/* --- commands ------------------------------------------------------------- */

struct opts {
	bool json;
	bool quiet;
	long count;		/* watch: stop after this many events; -1 all */
};

static int dump_segments(struct nl_ctx *ctx, struct list *l)
{
	struct req_state st = { .on_msg = on_segment, .arg = l };

	l->size = sizeof(struct segment);
	if (nl_request(ctx->sk, shmk_msg(ctx, SHMK_CMD_SEGMENT_GET, NLM_F_DUMP),
		       &st)) {
		report("listing segments", &st);
		return -1;
	}
	return 0;
}

/* Clients of the segment @ref, or of all (@ref NULL). */
static int dump_clients(struct nl_ctx *ctx, const struct segref *ref,
			struct list *l)
{
	struct req_state st = { .on_msg = on_client, .arg = l };
	struct nl_msg *msg = shmk_msg(ctx, SHMK_CMD_CLIENT_GET, NLM_F_DUMP);
	char what[128];

	l->size = sizeof(struct client);
	if (ref)
		put_segref(msg, ref);
	if (nl_request(ctx->sk, msg, &st)) {
		if (ref)
			snprintf(what, sizeof(what), "clients of %s",
				 ref->label);
		else
			snprintf(what, sizeof(what), "listing clients");
		report(what, &st);
		return -1;
	}
	return 0;
}

static int cmd_list(struct nl_ctx *ctx, const struct opts *o)
{
	struct list l = { 0 };
	const struct segment *s;
	struct table t;
	size_t i;

	if (dump_segments(ctx, &l))
		return EXIT_FAILURE;
	s = l.items;
	if (o->json) {
		putchar('[');
		for (i = 0; i < l.n; i++) {
			printf("%s{", i ? "," : "");
			json_segment_fields(&s[i]);
			putchar('}');
		}
		printf("]\n");
	} else if (o->quiet) {
		for (i = 0; i < l.n; i++)
			if (s[i].linked)
				printf("%s\n", s[i].name);
	} else {
		table_init(&t, "ID>|NAME|SIZE>|MAX SIZE>|PAGES>|CLIENTS>|OWNER|GROUP|MODE|GEN>|LINKED|CREATED");
		for (i = 0; i < l.n; i++) {
			char id[16], size[32], max[32], pages[32], nc[16];
			char user[64], group[64], mode[8], gen[32], when[32];
			char name[SHMK_NAME_MAX];

			snprintf(id, sizeof(id), "%u", s[i].id);
			fmt_size(size, sizeof(size), s[i].size);
			fmt_size(max, sizeof(max), s[i].max_size);
			snprintf(pages, sizeof(pages), "%" PRIu64, s[i].pages);
			snprintf(nc, sizeof(nc), "%u", s[i].nr_clients);
			fmt_user(user, sizeof(user), s[i].uid);
			fmt_group(group, sizeof(group), s[i].gid);
			snprintf(mode, sizeof(mode), "%04o", s[i].mode);
			snprintf(gen, sizeof(gen), "%" PRIu64,
				 s[i].generation);
			fmt_time(when, sizeof(when), s[i].ctime);
			table_row(&t, id,
				  printable(name, sizeof(name), s[i].name),
				  size, max, pages, nc, user, group, mode, gen,
				  s[i].linked ? "yes" : "no", when);
		}
		table_print(&t);
		if (*posix_hint())
			printf("(not listed%s)\n", posix_hint());
	}
	free(l.items);
	return EXIT_SUCCESS;
}

/* The segment @ref, in @segs (one item); nonzero (reported) on failure. */
static int get_segment(struct nl_ctx *ctx, const struct segref *ref,
		       const char *verb, struct list *segs)
{
	struct req_state st = { .on_msg = on_segment, .arg = segs };
	struct nl_msg *msg = shmk_msg(ctx, SHMK_CMD_SEGMENT_GET, 0);
	char what[128];

	segs->size = sizeof(struct segment);
	put_segref(msg, ref);
	if (nl_request(ctx->sk, msg, &st) || segs->n != 1) {
		snprintf(what, sizeof(what), "%s %s", verb, ref->label);
		if (!st.error)
			st.error = -EPROTO;
		report(what, &st);
		return -1;
	}
	return 0;
}

static int cmd_show(struct nl_ctx *ctx, const struct opts *o,
		    const struct segref *ref)
{
	struct list segs = { 0 }, clients = { 0 };
	struct segref by_id = { 0 };
	const struct segment *s;
	char a[64], b[64];
	size_t i;

	if (get_segment(ctx, ref, "show", &segs))
		return EXIT_FAILURE;
	s = segs.items;
	/* By id: the segment we just described, even if unlinked meanwhile. */
	by_id.id = s->id;
	snprintf(by_id.label, sizeof(by_id.label), "id:%u", s->id);
	if (dump_clients(ctx, &by_id, &clients))
		return EXIT_FAILURE;

	if (o->json) {
		const struct client *c = clients.items;

		putchar('{');
		json_segment_fields(s);
		printf(",\"clients\":[");
		for (i = 0; i < clients.n; i++) {
			if (i)
				putchar(',');
			json_client(&c[i]);
		}
		printf("]}\n");
	} else {
		char n[SHMK_NAME_MAX];

		printf("segment:     %s\n", printable(n, sizeof(n), s->name));
		printf("id:          %u\n", s->id);
		printf("linked:      %s\n", s->linked ? "yes" : "no");
		printf("size:        %s (%" PRIu64 " bytes)\n",
		       fmt_size(a, sizeof(a), s->size), s->size);
		printf("max size:    %s (%" PRIu64 " bytes)\n",
		       fmt_size(a, sizeof(a), s->max_size), s->max_size);
		printf("pages:       %" PRIu64 " present\n", s->pages);
		printf("generation:  %" PRIu64 "\n", s->generation);
		printf("owner:       %s (%u), group %s (%u)\n",
		       fmt_user(a, sizeof(a), s->uid), s->uid,
		       fmt_group(b, sizeof(b), s->gid), s->gid);
		printf("mode:        %04o\n", s->mode);
		printf("created:     %s\n", fmt_time(a, sizeof(a), s->ctime));
		printf("clients:     %u\n", s->nr_clients);
		if (clients.n) {
			putchar('\n');
			print_clients_table(&clients, false);
		}
	}
	free(segs.items);
	free(clients.items);
	return EXIT_SUCCESS;
}

static int cmd_clients(struct nl_ctx *ctx, const struct opts *o,
		       const struct segref *ref)
{
	struct list l = { 0 };
	const struct client *c;
	size_t i;

	if (dump_clients(ctx, ref, &l))
		return EXIT_FAILURE;
	c = l.items;
	if (o->json) {
		putchar('[');
		for (i = 0; i < l.n; i++) {
			if (i)
				putchar(',');
			json_client(&c[i]);
		}
		printf("]\n");
	} else if (o->quiet) {
		for (i = 0; i < l.n; i++)
			printf("%u\n", c[i].id);
	} else {
		print_clients_table(&l, true);
	}
	free(l.items);
	return EXIT_SUCCESS;
}

/*
 * SEGMENT_UNLINK takes a name only (an unlinked segment has none to
 * remove): by id, look the name up first. Between the two requests the
 * name could be unlinked and reused; the unlink then hits the new segment.
 */
static int cmd_unlink(struct nl_ctx *ctx, const struct segref *ref)
{
	struct nl_msg *msg;
	struct req_state st = { 0 };
	struct list segs = { 0 };
	const struct segment *s;
	char what[128], name[SHMK_NAME_MAX];

	if (ref->name) {
		snprintf(name, sizeof(name), "%s", ref->name);
	} else {
		if (get_segment(ctx, ref, "unlink", &segs))
			return EXIT_FAILURE;
		s = segs.items;
		if (!s->linked) {
			err_msg("unlink %s: the segment is already unlinked (it has no name to remove)",
				ref->label);
			free(segs.items);
			return EXIT_FAILURE;
		}
		snprintf(name, sizeof(name), "%s", s->name);
		free(segs.items);
	}
	msg = shmk_msg(ctx, SHMK_CMD_SEGMENT_UNLINK, 0);
	put_name(msg, name);
	if (nl_request(ctx->sk, msg, &st)) {
		snprintf(what, sizeof(what), "unlink %s", ref->label);
		report(what, &st);
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

static int cmd_kick(struct nl_ctx *ctx, const struct segref *ref,
		    uint32_t client)
{
	struct nl_msg *msg = shmk_msg(ctx, SHMK_CMD_CLIENT_KICK, 0);
	struct req_state st = { 0 };
	char what[128];

	put_segref(msg, ref);
	if (nla_put_u32(msg, SHMK_A_CLIENT_ID, client) < 0)
		exit(EXIT_FAILURE);
	if (nl_request(ctx->sk, msg, &st)) {
		snprintf(what, sizeof(what), "kick %s %u", ref->label, client);
		report(what, &st);
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

/* --- watch ---------------------------------------------------------------- */

struct watch_state {
	const struct opts *o;
	struct nl_ctx *ctx;
	long seen;
	bool gone;		/* the family was unregistered */
};

static const char *event_name(uint8_t cmd)
{
	switch (cmd) {
	case SHMK_CMD_SEGMENT_CREATED:
		return "created";
	case SHMK_CMD_SEGMENT_DESTROYED:
		return "destroyed";
	case SHMK_CMD_CLIENT_ATTACHED:
		return "attached";
	case SHMK_CMD_CLIENT_DETACHED:
		return "detached";
	case SHMK_CMD_SEGMENT_GROWN:
		return "grown";
	case SHMK_CMD_SEGMENT_SHRUNK:
		return "shrunk";
	default:
		return NULL;
	}
}

/* CLOCK_REALTIME now, in ns: when an event was received. */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void print_event_json(uint8_t cmd, struct nlattr **tb)
{
	char s[SHMK_CLIENT_NAME_MAX > SHMK_NAME_MAX ? SHMK_CLIENT_NAME_MAX :
	       SHMK_NAME_MAX];
	uint64_t t = now_ns();
	char when[64];

	printf("{\"event\":\"%s\",\"time\":\"%s\",\"time_ns\":%" PRIu64
	       ",\"segment_id\":%u,\"segment\":",
	       event_name(cmd) ?: "?", fmt_time_json(when, sizeof(when), t), t,
	       get_u32(tb, SHMK_A_SEGMENT_ID));
	get_str(s, sizeof(s), tb, SHMK_A_SEGMENT_NAME);
	json_str(stdout, s);
	switch (cmd) {
	case SHMK_CMD_SEGMENT_CREATED:
		printf(",\"size\":%" PRIu64 ",\"max_size\":%" PRIu64
		       ",\"uid\":%u,\"gid\":%u,\"mode\":\"%04o\"",
		       get_u64(tb, SHMK_A_SIZE), get_u64(tb, SHMK_A_MAX_SIZE),
		       get_u32(tb, SHMK_A_UID), get_u32(tb, SHMK_A_GID),
		       get_u32(tb, SHMK_A_MODE));
		break;
	case SHMK_CMD_CLIENT_ATTACHED:
	case SHMK_CMD_CLIENT_DETACHED:
		printf(",\"client_id\":%u,\"client\":",
		       get_u32(tb, SHMK_A_CLIENT_ID));
		get_str(s, sizeof(s), tb, SHMK_A_CLIENT_NAME);
		json_str(stdout, s);
		printf(",\"pid\":%u", get_u32(tb, SHMK_A_PID));
		printf(",\"flags\":");
		json_flags(stdout, get_u32(tb, SHMK_A_CLIENT_FLAGS));
		printf(",\"nr_clients\":%u", get_u32(tb, SHMK_A_NR_CLIENTS));
		if (cmd == SHMK_CMD_CLIENT_DETACHED)
			printf(",\"reason\":\"%s\"",
			       reason_name(get_u32(tb, SHMK_A_DETACH_REASON)));
		break;
	case SHMK_CMD_SEGMENT_GROWN:
	case SHMK_CMD_SEGMENT_SHRUNK:
		printf(",\"old_size\":%" PRIu64 ",\"new_size\":%" PRIu64
		       ",\"generation\":%" PRIu64,
		       get_u64(tb, SHMK_A_OLD_SIZE),
		       get_u64(tb, SHMK_A_NEW_SIZE),
		       get_u64(tb, SHMK_A_GENERATION));
		break;
	}
	if (tb[SHMK_A_ACTOR_PID])
		printf(",\"actor_pid\":%u", get_u32(tb, SHMK_A_ACTOR_PID));
	printf("}\n");
}

static void print_event_text(uint8_t cmd, struct nlattr **tb)
{
	char seg[SHMK_NAME_MAX], seg_p[SHMK_NAME_MAX];
	char cl[SHMK_CLIENT_NAME_MAX], cl_p[SHMK_CLIENT_NAME_MAX];
	char a[32], b[32], now[32];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(now, sizeof(now), "%H:%M:%S", &tm);
	get_str(seg, sizeof(seg), tb, SHMK_A_SEGMENT_NAME);
	printable(seg_p, sizeof(seg_p), seg);
	printf("%s.%03ld  %-9s  %s (id %u)", now, ts.tv_nsec / 1000000,
	       event_name(cmd) ?: "?", seg_p, get_u32(tb, SHMK_A_SEGMENT_ID));
	switch (cmd) {
	case SHMK_CMD_SEGMENT_CREATED:
		printf(" size %s, max %s, uid %u, gid %u, mode %04o",
		       fmt_size(a, sizeof(a), get_u64(tb, SHMK_A_SIZE)),
		       fmt_size(b, sizeof(b), get_u64(tb, SHMK_A_MAX_SIZE)),
		       get_u32(tb, SHMK_A_UID), get_u32(tb, SHMK_A_GID),
		       get_u32(tb, SHMK_A_MODE));
		break;
	case SHMK_CMD_CLIENT_ATTACHED:
	case SHMK_CMD_CLIENT_DETACHED:
		get_str(cl, sizeof(cl), tb, SHMK_A_CLIENT_NAME);
		printf(" client %u \"%s\" pid %u, %s",
		       get_u32(tb, SHMK_A_CLIENT_ID),
		       printable(cl_p, sizeof(cl_p), cl),
		       get_u32(tb, SHMK_A_PID),
		       access_name(get_u32(tb, SHMK_A_CLIENT_FLAGS)));
		if (cmd == SHMK_CMD_CLIENT_DETACHED)
			printf(", %s",
			       reason_name(get_u32(tb, SHMK_A_DETACH_REASON)));
		printf(", %u attached", get_u32(tb, SHMK_A_NR_CLIENTS));
		break;
	case SHMK_CMD_SEGMENT_GROWN:
	case SHMK_CMD_SEGMENT_SHRUNK:
		printf(" %s -> %s, generation %" PRIu64,
		       fmt_size(a, sizeof(a), get_u64(tb, SHMK_A_OLD_SIZE)),
		       fmt_size(b, sizeof(b), get_u64(tb, SHMK_A_NEW_SIZE)),
		       get_u64(tb, SHMK_A_GENERATION));
		break;
	}
	if (tb[SHMK_A_ACTOR_PID])
		printf(" [by pid %u]", get_u32(tb, SHMK_A_ACTOR_PID));
	putchar('\n');
}

static int on_event(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct genlmsghdr *gh = nlmsg_data(nlh);
	struct watch_state *ws = arg;
	struct nlattr *tb[SHMK_A_MAX + 1];

	if (nlh->nlmsg_type == GENL_ID_CTRL) {
		struct nlattr *ct[CTRL_ATTR_MAX + 1];

		/* nlctrl "notify": was our family unregistered? */
		if (gh->cmd == CTRL_CMD_DELFAMILY &&
		    genlmsg_parse(nlh, 0, ct, CTRL_ATTR_MAX, NULL) >= 0 &&
		    ct[CTRL_ATTR_FAMILY_NAME] &&
		    !strcmp(nla_get_string(ct[CTRL_ATTR_FAMILY_NAME]),
			    SHMK_GENL_NAME)) {
			ws->gone = true;
			return NL_STOP;
		}
		return NL_OK;
	}
	if (nlh->nlmsg_type != ws->ctx->family || !event_name(gh->cmd) ||
	    parse_attrs(msg, tb) < 0)
		return NL_OK;
	if (ws->o->json)
		print_event_json(gh->cmd, tb);
	else
		print_event_text(gh->cmd, tb);
	fflush(stdout);
	if (ws->o->count > 0 && ++ws->seen >= ws->o->count)
		return NL_STOP;
	return NL_OK;
}

static int no_seq_check(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;
	return NL_OK;
}

static int cmd_watch(struct nl_ctx *ctx, const struct opts *o)
{
	struct watch_state ws = { .o = o, .ctx = ctx };
	struct nl_cb *cb;
	int ctrl_grp, ret;

	if (o->count == 0)
		return EXIT_SUCCESS;
	if (ctx->events_grp < 0) {
		err_msg("the kernel's shmk family has no \"%s\" multicast group",
			SHMK_GENL_MCGRP_EVENTS);
		return EXIT_FAILURE;
	}
	/* Room for bursts: a full buffer loses events (ENOBUFS). */
	nl_socket_set_buffer_size(ctx->sk, 4 << 20, 0);
	ret = nl_socket_add_membership(ctx->sk, ctx->events_grp);
	if (ret < 0) {
		err_msg("cannot join the \"%s\" multicast group: %s%s",
			SHMK_GENL_MCGRP_EVENTS, nl_geterror(ret),
			ret == -NLE_PERM ?
			" (watching events needs CAP_SYS_ADMIN)" : "");
		return EXIT_FAILURE;
	}
	ctrl_grp = genl_ctrl_resolve_grp(ctx->sk, "nlctrl", "notify");
	if (ctrl_grp >= 0)
		nl_socket_add_membership(ctx->sk, ctrl_grp);

	cb = nl_cb_alloc(NL_CB_CUSTOM);
	if (!cb) {
		err_msg("out of memory");
		return EXIT_FAILURE;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_event, &ws);
	/* Events are unsolicited: no sequence numbers to check. */
	nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, no_seq_check, NULL);
	for (;;) {
		ret = nl_recvmsgs(ctx->sk, cb);
		if (ws.gone) {
			err_msg("the shmk module was unloaded");
			ret = EXIT_FAILURE;
			break;
		}
		if (o->count > 0 && ws.seen >= o->count) {
			ret = EXIT_SUCCESS;
			break;
		}
		if (ret == -NLE_NOMEM) {
			/* ENOBUFS: the socket overflowed; keep going. */
			err_msg("events were lost (receive buffer overrun)");
			continue;
		}
		if (ret < 0) {
			err_msg("receiving events: %s", nl_geterror(ret));
			ret = EXIT_FAILURE;
			break;
		}
	}
	nl_cb_put(cb);
	return ret;
}

/* --- main ----------------------------------------------------------------- */

static void help(void)
{
	printf("Usage: %s [OPTIONS] COMMAND [ARGS]\n"
	       "\n"
	       "Administer shmk shared-memory segments (generic netlink family \"shmk\").\n"
	       "\n"
	       "Commands:\n"
	       "  list                 every segment, linked or not\n"
	       "  show SEG             one segment and its clients\n"
	       "  clients [SEG]        the clients of one segment, or of all\n"
	       "  watch                print events as they happen\n"
	       "  unlink SEG           remove a segment's name (owner or CAP_SYS_ADMIN)\n"
	       "  kick SEG CLIENT      detach a client (owner or CAP_SYS_ADMIN)\n"
	       "  save SEG PATH        write an image of a segment (any backend)\n"
	       "  load PATH [SEG]      create a segment from an image (default: the\n"
	       "                       name it was saved from)\n"
	       "  image-info PATH      an image's header, checks and named objects\n"
	       "  queues SEG           a segment's message queues: receiver, counters\n"
	       "                       (any backend; attaches read-only)\n"
	       "\n"
	       "SEG is a segment name, id:N for the segment with id N (see list;\n"
	       "unlinked segments too), or name:NAME for a name beginning with\n"
	       "\"id:\" or \"name:\".\n"
	       "\n"
	       "Options:\n"
	       "  -j, --json           JSON output: an array (list, clients), an object\n"
	       "                       (show), one object per line (watch)\n"
	       "  -q, --quiet          list: linked segment names only; clients: ids only\n"
	       "  -c, --count N        watch: exit after N events\n"
	       "  -s, --schema N       save, load, image-info: the application schema\n"
	       "                       (default: 0 to save, the image's own to load)\n"
	       "  -h, --help           this help\n"
	       "  -V, --version        the version\n"
	       "\n"
	       "Exit status: 0 success, 1 failure, 2 usage error. See shmkctl(8).\n",
	       prog);
}

static void check_name(const char *name)
{
	if (!name[0])
		usage_error("empty segment name");
	if (strlen(name) >= SHMK_NAME_MAX)
		usage_error("segment name too long (%d bytes at most): %s",
			    SHMK_NAME_MAX - 1, name);
}

static uint32_t parse_u32(const char *s, const char *what);

/* NAME, id:N or name:NAME. */
static void parse_segref(struct segref *ref, const char *arg)
{
	memset(ref, 0, sizeof(*ref));
	if (!strncmp(arg, "id:", 3)) {
		ref->id = parse_u32(arg + 3, "segment id");
		snprintf(ref->label, sizeof(ref->label), "id:%u", ref->id);
		return;
	}
	if (!strncmp(arg, "name:", 5))
		arg += 5;
	check_name(arg);
	ref->name = arg;
	snprintf(ref->label, sizeof(ref->label), "%s", arg);
}

static uint32_t parse_u32(const char *s, const char *what)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v > UINT32_MAX || s[0] == '-')
		usage_error("invalid %s: %s", what, s);
	return (uint32_t)v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "count", required_argument, NULL, 'c' },
		{ "schema", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .count = -1 };
	struct nl_ctx ctx = { 0 };
	struct segref ref = { 0 };
	struct shmk_image_opts io = { 0 };
	bool count_given = false;
	const char *cmd;
	char *io_end;
	int c, nargs, ret;
	char **args;

	opterr = 0;	/* our own messages, named "shmkctl" */
	while ((c = getopt_long(argc, argv, ":jqc:s:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'c':
			o.count = parse_u32(optarg, "count");
			count_given = true;
			break;
		case 's':
			errno = 0;
			io.schema = strtoull(optarg, &io_end, 0);
			if (!*optarg || *io_end || errno || optarg[0] == '-')
				usage_error("invalid schema: %s", optarg);
			io.schema_given = true;
			break;
		case 'h':
			help();
			return EXIT_SUCCESS;
		case 'V':
			printf("%s %s (shmk generic netlink version %d)\n",
			       prog, SHMKCTL_VERSION, SHMK_GENL_VERSION);
			return EXIT_SUCCESS;
		case ':':
			usage_error("option '%s' needs an argument",
				    argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unknown option '-%c'", optopt);
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		usage_error("no command given");
	cmd = argv[optind];
	args = argv + optind + 1;
	nargs = argc - optind - 1;

#define NARGS(min, max) do {						\
		if (nargs < (min) || nargs > (max))			\
			usage_error("wrong number of arguments for '%s'", cmd); \
	} while (0)

	if (count_given && strcmp(cmd, "watch"))
		usage_error("--count applies to 'watch' only");
	if (o.quiet && o.json)
		usage_error("--quiet and --json exclude each other");
	if (o.quiet && strcmp(cmd, "list") && strcmp(cmd, "clients"))
		usage_error("--quiet applies to 'list' and 'clients' only");

	if (io.schema_given && strcmp(cmd, "save") && strcmp(cmd, "load") &&
	    strcmp(cmd, "image-info"))
		usage_error("--schema applies to save, load and image-info only");
	if (!strcmp(cmd, "save") || !strcmp(cmd, "load") ||
	    !strcmp(cmd, "image-info")) {
		if (!strcmp(cmd, "save")) {
			NARGS(2, 2);
			check_name(args[0]);
		} else if (!strcmp(cmd, "load")) {
			NARGS(1, 2);
			if (nargs > 1)
				check_name(args[1]);
		} else {
			NARGS(1, 1);
		}
		if (o.json && strcmp(cmd, "image-info"))
			usage_error("--json applies to listings, watch and image-info");
		io.json = o.json;
		return shmkctl_image(cmd, nargs, args, &io);
	}
	if (!strcmp(cmd, "queues")) {
		NARGS(1, 1);
		check_name(args[0]);
		return shmkctl_queues(args[0], o.json);
	}
	if (!strcmp(cmd, "list")) {
		NARGS(0, 0);
	} else if (!strcmp(cmd, "show")) {
		NARGS(1, 1);
		parse_segref(&ref, args[0]);
	} else if (!strcmp(cmd, "clients")) {
		NARGS(0, 1);
		if (nargs)
			parse_segref(&ref, args[0]);
	} else if (!strcmp(cmd, "watch")) {
		NARGS(0, 0);
	} else if (!strcmp(cmd, "unlink")) {
		NARGS(1, 1);
		parse_segref(&ref, args[0]);
		if (o.json)
			usage_error("--json applies to listings and watch");
	} else if (!strcmp(cmd, "kick")) {
		NARGS(2, 2);
		parse_segref(&ref, args[0]);
		parse_u32(args[1], "client id");
		if (o.json)
			usage_error("--json applies to listings and watch");
	} else {
		usage_error("unknown command '%s'", cmd);
	}

	/* Line-buffered, so that watch output reaches pipes at once. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	nl_connect_shmk(&ctx);

	if (!strcmp(cmd, "list"))
		ret = cmd_list(&ctx, &o);
	else if (!strcmp(cmd, "show"))
		ret = cmd_show(&ctx, &o, &ref);
	else if (!strcmp(cmd, "clients"))
		ret = cmd_clients(&ctx, &o, nargs ? &ref : NULL);
	else if (!strcmp(cmd, "watch"))
		ret = cmd_watch(&ctx, &o);
	else if (!strcmp(cmd, "unlink"))
		ret = cmd_unlink(&ctx, &ref);
	else
		ret = cmd_kick(&ctx, &ref, parse_u32(args[1], "client id"));

	nl_socket_free(ctx.sk);
	if (fflush(stdout) || ferror(stdout)) {
		err_msg("write error: %s", strerror(errno));
		return EXIT_FAILURE;
	}
	return ret;
}
