// SPDX-License-Identifier: GPL-2.0
/*
 * The "shmk" generic netlink family on a raw socket: malformed requests
 * (missing, oversize, wrong-type and unknown attributes, a bad header) are
 * refused with -EINVAL and an extended ack message; lookups and the
 * multi-message segment dump work; a kick leaves nothing mapped in the
 * kicked process, even with faults in flight. Needs the module loaded, and
 * root.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/shmk.h>

/* The 6.1 harness has an unused parameter that -Wextra -Werror refuses. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define BUF_SIZE	(64 * 1024)
#define NR_MANY		300
#define MANY_PREFIX	"nlraw-many-"

struct req {
	struct nlmsghdr nlh;
	struct genlmsghdr genl;
	char attrs[1024];
};

/* What came back for one request. */
struct answer {
	int error;		/* from NLMSG_ERROR or NLMSG_DONE */
	char msg[256];		/* NLMSGERR_ATTR_MSG */
	int miss_type;		/* NLMSGERR_ATTR_MISS_TYPE, or -1 */
	int offs;		/* NLMSGERR_ATTR_OFFS, or -1 */
	int nmsgs;		/* data messages */
	uint32_t client_ids[NR_MANY + 64];	/* SHMK_A_CLIENT_ID */
	int nrecvs;		/* recv() calls that returned data */
	uint32_t ids[NR_MANY + 64];	/* SHMK_A_SEGMENT_ID of each message */
	char names[NR_MANY + 64][SHMK_NAME_MAX];
};

static int add_attr(struct req *r, uint16_t type, const void *data,
		    uint16_t len)
{
	struct nlattr *nla = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->nlh.nlmsg_len));

	nla->nla_type = type;
	nla->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy((char *)nla + NLA_HDRLEN, data, len);
	r->nlh.nlmsg_len = NLMSG_ALIGN(r->nlh.nlmsg_len) + NLA_ALIGN(nla->nla_len);
	return (int)((char *)nla - (char *)r);
}

static int add_str(struct req *r, uint16_t type, const char *s)
{
	return add_attr(r, type, s, (uint16_t)(strlen(s) + 1));
}

static int add_u32(struct req *r, uint16_t type, uint32_t v)
{
	return add_attr(r, type, &v, sizeof(v));
}

static void init_req(struct req *r, uint16_t family, uint8_t cmd,
		     uint16_t flags)
{
	static uint32_t seq = 1;

	memset(r, 0, sizeof(*r));
	r->nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r->nlh.nlmsg_type = family;
	r->nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	r->nlh.nlmsg_seq = seq++;
	r->genl.cmd = cmd;
	r->genl.version = 1;
}

static void parse_tlvs(struct answer *a, const char *p, int len)
{
	const struct nlattr *nla;

	for (nla = (const struct nlattr *)p; len >= NLA_HDRLEN &&
	     nla->nla_len >= NLA_HDRLEN && nla->nla_len <= len;
	     len -= NLA_ALIGN(nla->nla_len),
	     nla = (const struct nlattr *)((const char *)nla + NLA_ALIGN(nla->nla_len))) {
		const char *data = (const char *)nla + NLA_HDRLEN;
		int dlen = nla->nla_len - NLA_HDRLEN;

		switch (nla->nla_type & NLA_TYPE_MASK) {
		case NLMSGERR_ATTR_MSG:
			snprintf(a->msg, sizeof(a->msg), "%.*s", dlen, data);
			break;
		case NLMSGERR_ATTR_MISS_TYPE:
			memcpy(&a->miss_type, data, 4);
			break;
		case NLMSGERR_ATTR_OFFS:
			memcpy(&a->offs, data, 4);
			break;
		}
	}
}

static void parse_data(struct answer *a, const struct nlmsghdr *nlh)
{
	const char *p = (const char *)NLMSG_DATA(nlh) + GENL_HDRLEN;
	int len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	const struct nlattr *nla;
	int i = a->nmsgs++;

	if (i >= (int)(sizeof(a->ids) / sizeof(a->ids[0])))
		return;
	for (nla = (const struct nlattr *)p; len >= NLA_HDRLEN &&
	     nla->nla_len >= NLA_HDRLEN && nla->nla_len <= len;
	     len -= NLA_ALIGN(nla->nla_len),
	     nla = (const struct nlattr *)((const char *)nla + NLA_ALIGN(nla->nla_len))) {
		const char *data = (const char *)nla + NLA_HDRLEN;

		if (nla->nla_type == SHMK_A_SEGMENT_ID)
			memcpy(&a->ids[i], data, 4);
		else if (nla->nla_type == SHMK_A_CLIENT_ID)
			memcpy(&a->client_ids[i], data, 4);
		else if (nla->nla_type == SHMK_A_SEGMENT_NAME)
			snprintf(a->names[i], SHMK_NAME_MAX, "%s", data);
	}
}

/* recv() size: small reads make the kernel build small dump skbs. */
static size_t read_size = BUF_SIZE;

/* Send @r (of @len bytes) and collect the answer. */
static int transact(int fd, const void *r, size_t len, struct answer *a)
{
	static char buf[BUF_SIZE];
	bool done = false;

	memset(a, 0, sizeof(*a));
	a->miss_type = -1;
	a->offs = -1;
	if (send(fd, r, len, 0) != (ssize_t)len)
		return -errno;
	while (!done) {
		/* MSG_TRUNC: the real length, to catch a short buffer. */
		ssize_t n = recv(fd, buf, read_size, MSG_TRUNC);
		struct nlmsghdr *nlh;
		int rem;

		if (n < 0)
			return -errno;
		if ((size_t)n > read_size)
			return -EMSGSIZE;
		a->nrecvs++;
		rem = (int)n;
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, rem);
		     nlh = NLMSG_NEXT(nlh, rem)) {
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(nlh);
				size_t off = NLMSG_HDRLEN + sizeof(*e);

				a->error = e->error;
				if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
					off += e->msg.nlmsg_len - sizeof(e->msg);
				if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
					parse_tlvs(a, (char *)nlh + NLMSG_ALIGN(off),
						   (int)(nlh->nlmsg_len - NLMSG_ALIGN(off)));
				done = true;
			} else if (nlh->nlmsg_type == NLMSG_DONE) {
				memcpy(&a->error, NLMSG_DATA(nlh), 4);
				if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
					parse_tlvs(a, (char *)NLMSG_DATA(nlh) + 4,
						   (int)nlh->nlmsg_len - NLMSG_HDRLEN - 4);
				done = true;
			} else {
				parse_data(a, nlh);
			}
		}
	}
	return 0;
}

static int transact_req(int fd, struct req *r, struct answer *a)
{
	return transact(fd, r, r->nlh.nlmsg_len, a);
}

static int open_genl(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	int one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	return fd;
}

/* The family id, or a negative errno. */
static int resolve(int fd)
{
	static char buf[BUF_SIZE];
	struct req r;
	ssize_t n;
	struct nlmsghdr *nlh;
	int rem;

	init_req(&r, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0);
	r.nlh.nlmsg_flags = NLM_F_REQUEST;
	add_str(&r, CTRL_ATTR_FAMILY_NAME, SHMK_GENL_NAME);
	if (send(fd, &r, r.nlh.nlmsg_len, 0) < 0)
		return -errno;
	n = recv(fd, buf, read_size, 0);
	if (n < 0)
		return -errno;
	rem = (int)n;
	for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, rem);
	     nlh = NLMSG_NEXT(nlh, rem)) {
		const char *p = (const char *)NLMSG_DATA(nlh) + GENL_HDRLEN;
		int len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
		const struct nlattr *nla;

		if (nlh->nlmsg_type == NLMSG_ERROR)
			return ((struct nlmsgerr *)NLMSG_DATA(nlh))->error;
		for (nla = (const struct nlattr *)p; len >= NLA_HDRLEN;
		     len -= NLA_ALIGN(nla->nla_len),
		     nla = (const struct nlattr *)((const char *)nla + NLA_ALIGN(nla->nla_len)))
			if (nla->nla_type == CTRL_ATTR_FAMILY_ID)
				return *(const uint16_t *)((const char *)nla + NLA_HDRLEN);
	}
	return -ENOENT;
}

/* Create (and leave, linked) a segment through the ioctl uapi. */
static int make_segment(const char *name, uint32_t *id)
{
	struct shmk_attach a;
	int ctl, fd;

	ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	memset(&a, 0, sizeof(a));
	a.flags = SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL;
	a.mode = 0600;
	a.size = 4096;
	a.max_size = 65536;
	snprintf(a.name, sizeof(a.name), "%s", name);
	fd = ioctl(ctl, SHMK_IOC_ATTACH, &a);
	close(ctl);
	if (fd < 0)
		return -errno;
	close(fd);
	if (id)
		*id = (uint32_t)a.segment_id;
	return 0;
}

static int unlink_segment(const char *name)
{
	struct shmk_unlink u;
	int ctl, ret = 0;

	ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	memset(&u, 0, sizeof(u));
	snprintf(u.name, sizeof(u.name), "%s", name);
	if (ioctl(ctl, SHMK_IOC_UNLINK, &u))
		ret = -errno;
	close(ctl);
	return ret;
}

static long read_param(const char *name)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/shmk/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int write_param(const char *name, long v)
{
	char path[128];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "/sys/module/shmk/parameters/%s", name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	ret = fprintf(f, "%ld\n", v) < 0 ? -EIO : 0;
	if (fclose(f))
		ret = -errno;
	return ret;
}

/*
 * A dump on a fresh socket read 8 KiB at a time: the kernel sizes dump skbs
 * after the largest read a socket has made, so these come in many skbs.
 */
static int small_dump(int family, uint8_t cmd, struct req *r, struct answer *a)
{
	int fd = open_genl(), ret;

	if (fd < 0)
		return -errno;
	read_size = 8192;
	init_req(r, (uint16_t)family, cmd, NLM_F_DUMP);
	ret = transact_req(fd, r, a);
	read_size = BUF_SIZE;
	close(fd);
	if (ret)
		a->error = ret;
	return ret;
}

FIXTURE(nl) {
	int fd;
	int family;
	struct req r;
	struct answer a;
};

FIXTURE_SETUP(nl)
{
	self->fd = open_genl();
	ASSERT_LE(0, self->fd);
	self->family = resolve(self->fd);
	if (self->family == -ENOENT)
		SKIP(return, "the shmk module is not loaded");
	ASSERT_LT(0, self->family);
	ASSERT_EQ(0, make_segment("nlraw", NULL));
}

FIXTURE_TEARDOWN(nl)
{
	unlink_segment("nlraw");
	if (self->fd >= 0)
		close(self->fd);
}

#define REQ(cmd, flags) init_req(&self->r, (uint16_t)self->family, (cmd), (flags))
#define DO() ASSERT_EQ(0, transact_req(self->fd, &self->r, &self->a))
#define EXPECT_ERR(err) do {						\
		DO();							\
		TH_LOG("error %d, message \"%s\"", self->a.error, self->a.msg); \
		ASSERT_EQ(err, self->a.error);				\
	} while (0)
#define EXPECT_MSG(text) ASSERT_STREQ(text, self->a.msg)

/* --- missing attributes --------------------------------------------------- */

TEST_F(nl, unlink_missing_name)
{
	REQ(SHMK_CMD_SEGMENT_UNLINK, 0);
	EXPECT_ERR(-EINVAL);
	EXPECT_MSG("missing segment name");
	ASSERT_EQ(SHMK_A_SEGMENT_NAME, self->a.miss_type);
}

TEST_F(nl, kick_missing_client_id)
{
	REQ(SHMK_CMD_CLIENT_KICK, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	EXPECT_ERR(-EINVAL);
	EXPECT_MSG("missing client id");
	ASSERT_EQ(SHMK_A_CLIENT_ID, self->a.miss_type);
}

TEST_F(nl, kick_missing_segment)
{
	REQ(SHMK_CMD_CLIENT_KICK, 0);
	add_u32(&self->r, SHMK_A_CLIENT_ID, 1);
	EXPECT_ERR(-EINVAL);
	EXPECT_MSG("missing segment name or id");
}

TEST_F(nl, get_missing_name)
{
	REQ(SHMK_CMD_SEGMENT_GET, 0);
	EXPECT_ERR(-EINVAL);
	EXPECT_MSG("missing segment name or id");
	ASSERT_EQ(SHMK_A_SEGMENT_NAME, self->a.miss_type);
}

/* --- oversize attributes -------------------------------------------------- */

TEST_F(nl, oversize_name)
{
	char name[200];
	int off;

	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	REQ(SHMK_CMD_SEGMENT_UNLINK, 0);
	off = add_str(&self->r, SHMK_A_SEGMENT_NAME, name);
	EXPECT_ERR(-EINVAL);
	ASSERT_NE(0, self->a.msg[0]);
	ASSERT_EQ(off, self->a.offs);
}

TEST_F(nl, name_one_too_long)
{
	char name[SHMK_NAME_MAX + 1];

	/* 64 bytes and the NUL: one more than the policy allows. */
	memset(name, 'y', SHMK_NAME_MAX);
	name[SHMK_NAME_MAX] = '\0';
	REQ(SHMK_CMD_SEGMENT_GET, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, name);
	EXPECT_ERR(-EINVAL);
	ASSERT_NE(0, self->a.msg[0]);
}

TEST_F(nl, name_longest_is_valid)
{
	char name[SHMK_NAME_MAX];

	memset(name, 'z', SHMK_NAME_MAX - 1);
	name[SHMK_NAME_MAX - 1] = '\0';
	REQ(SHMK_CMD_SEGMENT_GET, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, name);
	EXPECT_ERR(-ENOENT);
	EXPECT_MSG("segment not found");
}

/* --- wrong types ---------------------------------------------------------- */

TEST_F(nl, u64_for_u32)
{
	uint64_t v = 1;
	int off;

	REQ(SHMK_CMD_SEGMENT_GET, 0);
	off = add_attr(&self->r, SHMK_A_SEGMENT_ID, &v, sizeof(v));
	EXPECT_ERR(-EINVAL);
	ASSERT_NE(0, self->a.msg[0]);
	ASSERT_EQ(off, self->a.offs);
}

TEST_F(nl, short_u32)
{
	uint16_t v = 1;

	REQ(SHMK_CMD_CLIENT_KICK, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	add_attr(&self->r, SHMK_A_CLIENT_ID, &v, sizeof(v));
	EXPECT_ERR(-EINVAL);
	ASSERT_NE(0, self->a.msg[0]);
}

TEST_F(nl, string_without_nul)
{
	REQ(SHMK_CMD_SEGMENT_UNLINK, 0);
	add_attr(&self->r, SHMK_A_SEGMENT_NAME, "nlraw", 5);
	EXPECT_ERR(-EINVAL);
	ASSERT_NE(0, self->a.msg[0]);
}

TEST_F(nl, nested_flag_on_string)
{
	REQ(SHMK_CMD_SEGMENT_UNLINK, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME | NLA_F_NESTED, "nlraw");
	EXPECT_ERR(-EINVAL);
	EXPECT_MSG("NLA_F_NESTED not expected");
}

/* --- unknown attributes --------------------------------------------------- */

TEST_F(nl, unknown_attribute)
{
	int off;

	REQ(SHMK_CMD_SEGMENT_GET, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	off = add_u32(&self->r, SHMK_A_MAX + 10, 1);
	EXPECT_ERR(-EINVAL);
	EXPECT_MSG("Unknown attribute type");
	ASSERT_EQ(off, self->a.offs);
}

TEST_F(nl, attribute_of_another_command)
{
	/* SHMK_A_CLIENT_ID is in the family, beyond SEGMENT_GET's policy. */
	REQ(SHMK_CMD_SEGMENT_GET, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	add_u32(&self->r, SHMK_A_CLIENT_ID, 1);
	EXPECT_ERR(-EINVAL);
	ASSERT_NE(0, self->a.msg[0]);
}

TEST_F(nl, attribute_inside_range_not_in_policy)
{
	/* SEGMENT_UNLINK takes a name only; SHMK_A_SEGMENT_ID sorts before it. */
	REQ(SHMK_CMD_SEGMENT_UNLINK, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	add_u32(&self->r, SHMK_A_SEGMENT_ID, 1);
	EXPECT_ERR(-EINVAL);
	EXPECT_MSG("Unsupported attribute");
	/* Refused before anything happened: the segment is still there. */
	REQ(SHMK_CMD_SEGMENT_GET, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	EXPECT_ERR(0);
	ASSERT_EQ(1, self->a.nmsgs);
}

TEST_F(nl, segment_dump_takes_no_attributes)
{
	REQ(SHMK_CMD_SEGMENT_GET, NLM_F_DUMP);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	EXPECT_ERR(-EINVAL);
	EXPECT_MSG("a segment dump takes no attributes");
}

/* --- headers and commands ------------------------------------------------- */

TEST_F(nl, reserved_header_field)
{
	REQ(SHMK_CMD_SEGMENT_GET, 0);
	self->r.genl.reserved = 1;
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	EXPECT_ERR(-EINVAL);
	ASSERT_NE(0, self->a.msg[0]);
}

TEST_F(nl, truncated_header)
{
	REQ(SHMK_CMD_SEGMENT_GET, 0);
	self->r.nlh.nlmsg_len = NLMSG_LENGTH(2);
	EXPECT_ERR(-EINVAL);
}

TEST_F(nl, trailing_garbage)
{
	REQ(SHMK_CMD_SEGMENT_GET, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	/* Four bytes that are not an attribute. */
	self->r.nlh.nlmsg_len += 4;
	EXPECT_ERR(-EINVAL);
}

TEST_F(nl, notification_is_not_a_request)
{
	REQ(SHMK_CMD_SEGMENT_CREATED, 0);
	EXPECT_ERR(-EOPNOTSUPP);
}

TEST_F(nl, client_get_is_dump_only)
{
	REQ(SHMK_CMD_CLIENT_GET, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	EXPECT_ERR(-EOPNOTSUPP);
}

/* --- lookups -------------------------------------------------------------- */

TEST_F(nl, get_by_name_and_id)
{
	uint32_t id;

	REQ(SHMK_CMD_SEGMENT_GET, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	EXPECT_ERR(0);
	ASSERT_EQ(1, self->a.nmsgs);
	ASSERT_STREQ("nlraw", self->a.names[0]);
	id = self->a.ids[0];

	REQ(SHMK_CMD_SEGMENT_GET, 0);
	add_u32(&self->r, SHMK_A_SEGMENT_ID, id);
	EXPECT_ERR(0);
	ASSERT_STREQ("nlraw", self->a.names[0]);

	/* Both: they must name the same segment. */
	REQ(SHMK_CMD_SEGMENT_GET, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	add_u32(&self->r, SHMK_A_SEGMENT_ID, id + 1000);
	EXPECT_ERR(-ENOENT);
	EXPECT_MSG("segment not found");
}

TEST_F(nl, clients_of_missing_segment)
{
	REQ(SHMK_CMD_CLIENT_GET, NLM_F_DUMP);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw-absent");
	EXPECT_ERR(-ENOENT);
	EXPECT_MSG("segment not found");
}

TEST_F(nl, kick_missing_client)
{
	REQ(SHMK_CMD_CLIENT_KICK, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw");
	add_u32(&self->r, SHMK_A_CLIENT_ID, 12345);
	EXPECT_ERR(-ENOENT);
	EXPECT_MSG("client not found");
}

/* --- a dump that needs several messages ----------------------------------- */

TEST_F(nl, dump_many_segments)
{
	long saved = read_param("max_segments");
	bool seen[NR_MANY] = { false };
	char name[SHMK_NAME_MAX];
	int i, found = 0, created = 0;

	ASSERT_LT(0, saved);
	if (saved < NR_MANY + 16)
		ASSERT_EQ(0, write_param("max_segments", NR_MANY + 16));
	for (i = 0; i < NR_MANY; i++) {
		snprintf(name, sizeof(name), MANY_PREFIX "%d", i);
		if (make_segment(name, NULL))
			break;
		created++;
	}
	if (created == NR_MANY)
		small_dump(self->family, SHMK_CMD_SEGMENT_GET, &self->r,
			   &self->a);
	for (i = 0; i < created; i++) {
		snprintf(name, sizeof(name), MANY_PREFIX "%d", i);
		unlink_segment(name);
	}
	if (saved < NR_MANY + 16)
		write_param("max_segments", saved);
	ASSERT_EQ(NR_MANY, created);

	TH_LOG("%d messages in %d reads", self->a.nmsgs, self->a.nrecvs);
	ASSERT_EQ(0, self->a.error);
	ASSERT_LT(4, self->a.nrecvs);	/* several skbs, then NLMSG_DONE */
	ASSERT_LE(NR_MANY + 1, self->a.nmsgs);
	for (i = 0; i < self->a.nmsgs; i++) {
		int n;

		/* Every id once, in increasing order. */
		if (i)
			ASSERT_LT(self->a.ids[i - 1], self->a.ids[i]);
		if (sscanf(self->a.names[i], MANY_PREFIX "%d", &n) == 1 &&
		    n >= 0 && n < NR_MANY) {
			ASSERT_FALSE(seen[n]);
			seen[n] = true;
			found++;
		}
	}
	ASSERT_EQ(NR_MANY, found);
}

#define NR_CSEGS	5
#define NR_PER_SEG	60

/* Clients across several messages: the (segment, client) cursor. */
TEST_F(nl, dump_many_clients)
{
	uint32_t seg_ids[NR_CSEGS], first[NR_CSEGS];
	int fds[NR_CSEGS][NR_PER_SEG];
	int ctl, s, c, i, n, ok = 1;
	char name[SHMK_NAME_MAX];
	struct shmk_attach at;

	ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, ctl);
	memset(fds, -1, sizeof(fds));
	for (s = 0; s < NR_CSEGS && ok; s++) {
		for (c = 0; c < NR_PER_SEG; c++) {
			memset(&at, 0, sizeof(at));
			at.flags = SHMK_ATTACH_CREATE;
			at.mode = 0600;
			at.max_size = 65536;
			snprintf(at.name, sizeof(at.name), "nlraw-cl-%d", s);
			snprintf(at.client_name, sizeof(at.client_name),
				 "c%d-%d", s, c);
			fds[s][c] = ioctl(ctl, SHMK_IOC_ATTACH, &at);
			if (fds[s][c] < 0) {
				TH_LOG("attach %d/%d: %s", s, c, strerror(errno));
				ok = 0;
				break;
			}
			if (!c) {
				seg_ids[s] = (uint32_t)at.segment_id;
				first[s] = at.client_id;
			}
		}
	}
	if (ok) {
		/* All clients, in small reads. */
		small_dump(self->family, SHMK_CMD_CLIENT_GET, &self->r,
			   &self->a);
	}
	for (s = 0; s < NR_CSEGS; s++) {
		for (c = 0; c < NR_PER_SEG; c++)
			if (fds[s][c] >= 0)
				close(fds[s][c]);
		snprintf(name, sizeof(name), "nlraw-cl-%d", s);
		unlink_segment(name);
	}
	close(ctl);
	ASSERT_TRUE(ok);

	TH_LOG("%d messages in %d reads", self->a.nmsgs, self->a.nrecvs);
	ASSERT_EQ(0, self->a.error);
	ASSERT_LT(4, self->a.nrecvs);
	/* Ours come in (segment id, client id) order, each exactly once. */
	n = 0;
	for (i = 0; i < self->a.nmsgs; i++) {
		for (s = 0; s < NR_CSEGS; s++)
			if (self->a.ids[i] == seg_ids[s])
				break;
		if (s == NR_CSEGS)
			continue;
		ASSERT_EQ(seg_ids[n / NR_PER_SEG], self->a.ids[i]);
		ASSERT_EQ(first[n / NR_PER_SEG] + (uint32_t)(n % NR_PER_SEG),
			  self->a.client_ids[i]);
		n++;
	}
	ASSERT_EQ(NR_CSEGS * NR_PER_SEG, n);
}

/* --- a kick racing with faults ------------------------------------------ */

/* Create a 0600 segment of @len bytes, all active; its client handle. */
static int create_held(int ctl, const char *name, uint32_t len)
{
	struct shmk_attach a;

	memset(&a, 0, sizeof(a));
	a.flags = SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL;
	a.mode = 0600;
	a.size = len;
	a.max_size = len;
	snprintf(a.name, sizeof(a.name), "%s", name);
	return ioctl(ctl, SHMK_IOC_ATTACH, &a);
}

#define KICK_LEN	(4u << 20)
#define KICK_ROUNDS	30
#define KICK_THREADS	2

struct kick_shared {
	volatile uint32_t client_id;
	volatile uintptr_t base;
	volatile int go;		/* round the faulting threads run in */
};

static __thread sigjmp_buf kick_env;

static void kick_sigbus(int sig)
{
	(void)sig;
	siglongjmp(kick_env, 1);
}

/* Drop the pages from the page tables and fault them back, until SIGBUS. */
static void *kick_toucher(void *arg)
{
	volatile char *p = arg;
	size_t off;

	if (sigsetjmp(kick_env, 1))
		return NULL;	/* kicked */
	for (;;) {
		madvise((void *)p, KICK_LEN, MADV_DONTNEED);
		for (off = 0; off < KICK_LEN; off += 4096)
			(void)p[off];
	}
	return NULL;
}

static int kick_victim(const char *name, struct kick_shared *sh)
{
	pthread_t th[KICK_THREADS];
	struct shmk_attach a;
	struct sigaction sa;
	int ctl, fd, i;
	char *p;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_sigbus;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return 1;
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	snprintf(a.client_name, sizeof(a.client_name), "victim");
	fd = ioctl(ctl, SHMK_IOC_ATTACH, &a);
	if (fd < 0)
		return 1;
	p = mmap(NULL, KICK_LEN, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED)
		return 1;
	for (i = 0; i < KICK_THREADS; i++)
		if (pthread_create(&th[i], NULL, kick_toucher, p))
			return 1;
	sh->base = (uintptr_t)p;
	__atomic_store_n(&sh->client_id, a.client_id, __ATOMIC_RELEASE);
	for (i = 0; i < KICK_THREADS; i++)
		pthread_join(th[i], NULL);
	pause();	/* until the parent has looked, and kills us */
	return 0;
}

/* Pages of [base, base + KICK_LEN) present in @pid's page tables. */
static int kick_present(pid_t pid, uintptr_t base)
{
	uint64_t ent[KICK_LEN / 4096];
	char path[64];
	int fd, n = 0;
	size_t i;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, ent, sizeof(ent), (off_t)(base / 4096 * 8)) !=
	    (ssize_t)sizeof(ent)) {
		close(fd);
		return -EIO;
	}
	close(fd);
	for (i = 0; i < KICK_LEN / 4096; i++)
		n += !!(ent[i] & (1ULL << 63));
	return n;
}

/*
 * A kick lands while two threads of the kicked process fault the segment
 * in as fast as they can. Once the kick returns, no page of the segment
 * may be mapped in that process: a fault that began before the kick must
 * not install its page after the kick unmapped the segment.
 */
TEST_F_TIMEOUT(nl, kick_leaves_nothing_mapped, 300)
{
	struct kick_shared *sh;
	int round, leaked = 0, ctl, fd;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, ctl);
	fd = create_held(ctl, "nlraw-kick", KICK_LEN);
	ASSERT_LE(0, fd);

	for (round = 0; round < KICK_ROUNDS; round++) {
		pid_t pid;
		int n, status;

		memset(sh, 0, sizeof(*sh));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(kick_victim("nlraw-kick", sh));
		while (!__atomic_load_n(&sh->client_id, __ATOMIC_ACQUIRE))
			usleep(1000);
		usleep(20000 + (round % 7) * 3000);	/* faults in full swing */
		REQ(SHMK_CMD_CLIENT_KICK, 0);
		add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw-kick");
		add_u32(&self->r, SHMK_A_CLIENT_ID, sh->client_id);
		DO();
		ASSERT_EQ(0, self->a.error);
		n = kick_present(pid, sh->base);
		if (n)
			TH_LOG("round %d: %d pages still mapped after the kick",
			       round, n);
		leaked += n != 0;
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_LE(0, n);
	}
	close(fd);
	close(ctl);
	unlink_segment("nlraw-kick");
	munmap(sh, sizeof(*sh));
	EXPECT_EQ(0, leaked);
}

#define BIG_LEN		(512u << 20)

/*
 * Mapping and kicking a large segment: 131072 PTEs installed by
 * MAP_POPULATE and zapped by the kick, which must reschedule as they go
 * (the debug kernel reports a soft lockup otherwise).
 */
TEST_F_TIMEOUT(nl, kick_large_mapping, 600)
{
	int ctl, fd, status, i;
	volatile uint32_t *id;
	pid_t pid;

	id = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, id);
	*id = 0;
	ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, ctl);
	fd = create_held(ctl, "nlraw-big", BIG_LEN);
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct shmk_attach b;
		char *p;
		int c;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		memset(&b, 0, sizeof(b));
		snprintf(b.name, sizeof(b.name), "nlraw-big");
		c = ioctl(ctl, SHMK_IOC_ATTACH, &b);
		if (c < 0)
			_exit(1);
		p = mmap(NULL, BIG_LEN, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_POPULATE, c, 0);
		if (p == MAP_FAILED)
			_exit(2);
		p[BIG_LEN - 1] = 1;
		__atomic_store_n(id, b.client_id, __ATOMIC_RELEASE);
		pause();
		_exit(0);
	}
	for (i = 0; i < 120000 && !__atomic_load_n(id, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	ASSERT_NE(0u, *id);
	REQ(SHMK_CMD_CLIENT_KICK, 0);
	add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw-big");
	add_u32(&self->r, SHMK_A_CLIENT_ID, *id);
	DO();
	EXPECT_EQ(0, self->a.error);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	close(fd);
	close(ctl);
	unlink_segment("nlraw-big");
	munmap((void *)id, 4096);
}

#define HUGE_MAX	(512ull << 20)
#define HUGE_ROUNDS	3

struct huge_peer {
	volatile uint32_t client_id;
	volatile uintptr_t base;
};

/* Attach to @name, map it all (2 MiB pages where it can), publish, wait. */
static int huge_peer(const char *name, struct huge_peer *hp)
{
	struct shmk_attach a;
	int ctl, fd;
	char *p;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return 1;
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	fd = ioctl(ctl, SHMK_IOC_ATTACH, &a);
	if (fd < 0)
		return 2;
	p = mmap(NULL, HUGE_MAX, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED)
		return 3;
	hp->base = (uintptr_t)p;
	__atomic_store_n(&hp->client_id, a.client_id, __ATOMIC_RELEASE);
	for (;;)
		pause();
}

struct huge_grow {
	int fd;
	int ret;
	volatile int started;
};

static void *huge_grower(void *arg)
{
	struct huge_grow *g = arg;
	struct shmk_resize r;

	memset(&r, 0, sizeof(r));
	r.size = HUGE_MAX;
	g->started = 1;
	g->ret = ioctl(g->fd, SHMK_IOC_GROW, &r) ? -errno : 0;
	return NULL;
}

/*
 * While a grow installs 512 MiB of 2 MiB folios into every client, one
 * client is kicked and another is killed. The grow completes; the kicked
 * client has nothing of the segment mapped (PMDs included) once the kick
 * returns; the rig checks that the kernel log stays clean.
 */
TEST_F_TIMEOUT(nl, kick_and_exit_during_huge_grow, 600)
{
	struct huge_peer *hp;
	struct shmk_attach a;
	struct huge_grow g;
	struct shmk_resize r;
	pthread_t th;
	int ctl, round, i, status;
	pid_t pid[2];

	hp = mmap(NULL, 2 * sizeof(*hp), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hp);
	ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, ctl);
	memset(&a, 0, sizeof(a));
	a.flags = SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL;
	a.mode = 0600;
	a.size = 2u << 20;
	a.max_size = HUGE_MAX;
	snprintf(a.name, sizeof(a.name), "nlraw-hgrow");
	g.fd = ioctl(ctl, SHMK_IOC_ATTACH, &a);
	ASSERT_LE(0, g.fd);
	for (round = 0; round < HUGE_ROUNDS; round++) {
		memset(hp, 0, 2 * sizeof(*hp));
		for (i = 0; i < 2; i++) {
			pid[i] = fork();
			ASSERT_LE(0, pid[i]);
			if (!pid[i])
				_exit(huge_peer("nlraw-hgrow", &hp[i]));
		}
		for (i = 0; i < 2; i++) {
			while (!__atomic_load_n(&hp[i].client_id,
						__ATOMIC_ACQUIRE))
				usleep(1000);
		}
		g.started = 0;
		ASSERT_EQ(0, pthread_create(&th, NULL, huge_grower, &g));
		while (!g.started)
			usleep(100);
		usleep(2000 + round * 5000);
		REQ(SHMK_CMD_CLIENT_KICK, 0);
		add_str(&self->r, SHMK_A_SEGMENT_NAME, "nlraw-hgrow");
		add_u32(&self->r, SHMK_A_CLIENT_ID, hp[0].client_id);
		DO();
		EXPECT_EQ(0, self->a.error);
		EXPECT_EQ(0, kick_present(pid[0], hp[0].base));
		kill(pid[1], SIGKILL);
		ASSERT_EQ(0, pthread_join(th, NULL));
		EXPECT_EQ(0, g.ret);
		for (i = 0; i < 2; i++) {
			kill(pid[i], SIGKILL);
			ASSERT_EQ(pid[i], waitpid(pid[i], &status, 0));
		}
		memset(&r, 0, sizeof(r));
		r.size = 2u << 20;
		ASSERT_EQ(0, ioctl(g.fd, SHMK_IOC_SHRINK, &r));
	}
	close(g.fd);
	close(ctl);
	unlink_segment("nlraw-hgrow");
	munmap(hp, 2 * sizeof(*hp));
}

TEST_HARNESS_MAIN
