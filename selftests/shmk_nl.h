/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The "shmk" generic netlink family on a raw socket, for the selftests that
 * need a few requests (perm_test, storm_test); selftests/netlink/ tests the
 * family itself. Helpers return 0 or -errno, as in shmk_test.h.
 */
#ifndef SHMK_NL_H
#define SHMK_NL_H

#include <sys/socket.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/shmk.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK	270
#endif

struct nlreq {
	struct nlmsghdr nlh;
	struct genlmsghdr genl;
	char attrs[512];
};

static inline void nl_init(struct nlreq *r, __u16 family, __u8 cmd, __u16 flags)
{
	memset(r, 0, sizeof(*r));
	r->nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r->nlh.nlmsg_type = family;
	r->nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	r->nlh.nlmsg_seq = 1;
	r->genl.cmd = cmd;
	r->genl.version = SHMK_GENL_VERSION;
}

static inline void nl_put(struct nlreq *r, __u16 type, const void *data, __u16 len)
{
	struct nlattr *nla = (struct nlattr *)((char *)r +
					       NLMSG_ALIGN(r->nlh.nlmsg_len));

	nla->nla_type = type;
	nla->nla_len = NLA_HDRLEN + len;
	memcpy((char *)nla + NLA_HDRLEN, data, len);
	r->nlh.nlmsg_len = NLMSG_ALIGN(r->nlh.nlmsg_len) +
			   NLA_ALIGN(nla->nla_len);
}

static inline void nl_put_str(struct nlreq *r, __u16 type, const char *s)
{
	nl_put(r, type, s, (__u16)(strlen(s) + 1));
}

static inline void nl_put_u32(struct nlreq *r, __u16 type, __u32 v)
{
	nl_put(r, type, &v, sizeof(v));
}

/* What a request returned: the error, and the clients a dump listed. */
struct nlans {
	int error;
	int nmsgs;
	int nclients;
	__u32 client_id[16];
	__s32 pid[16];
};

static inline void nl_parse(struct nlans *a, const struct nlmsghdr *nlh)
{
	const char *p = (const char *)NLMSG_DATA(nlh) + GENL_HDRLEN;
	int len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	const struct nlattr *nla;
	int i = a->nclients;
	bool client = false;

	a->nmsgs++;
	if (i >= 16)
		return;
	for (nla = (const struct nlattr *)p; len >= NLA_HDRLEN &&
	     nla->nla_len >= NLA_HDRLEN && nla->nla_len <= len;
	     len -= NLA_ALIGN(nla->nla_len),
	     nla = (const struct nlattr *)((const char *)nla +
					   NLA_ALIGN(nla->nla_len))) {
		const char *data = (const char *)nla + NLA_HDRLEN;

		if (nla->nla_type == SHMK_A_CLIENT_ID) {
			memcpy(&a->client_id[i], data, 4);
			client = true;
		} else if (nla->nla_type == SHMK_A_PID) {
			memcpy(&a->pid[i], data, 4);
		}
	}
	if (client)
		a->nclients++;
}

static inline int nl_transact(int fd, struct nlreq *r, struct nlans *a)
{
	static char buf[32768];

	memset(a, 0, sizeof(*a));
	if (send(fd, r, r->nlh.nlmsg_len, 0) != (ssize_t)r->nlh.nlmsg_len)
		return -errno;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *nlh;
		int rem;

		if (n < 0)
			return -errno;
		rem = (int)n;
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, rem);
		     nlh = NLMSG_NEXT(nlh, rem)) {
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				a->error = ((struct nlmsgerr *)NLMSG_DATA(nlh))->error;
				return 0;
			}
			if (nlh->nlmsg_type == NLMSG_DONE) {
				memcpy(&a->error, NLMSG_DATA(nlh), 4);
				return 0;
			}
			nl_parse(a, nlh);
		}
	}
}

/* A generic netlink socket; *family gets the shmk family id. */
static inline int nl_open(__u16 *family)
{
	static char buf[8192];
	struct nlmsghdr *nlh;
	struct nlreq r;
	ssize_t n;
	int fd, rem;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	nl_init(&r, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0);
	r.nlh.nlmsg_flags = NLM_F_REQUEST;
	nl_put_str(&r, CTRL_ATTR_FAMILY_NAME, SHMK_GENL_NAME);
	if (send(fd, &r, r.nlh.nlmsg_len, 0) < 0)
		goto err;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0)
		goto err;
	rem = (int)n;
	for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, rem);
	     nlh = NLMSG_NEXT(nlh, rem)) {
		const char *p = (const char *)NLMSG_DATA(nlh) + GENL_HDRLEN;
		int len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
		const struct nlattr *nla;

		if (nlh->nlmsg_type == NLMSG_ERROR)
			break;
		for (nla = (const struct nlattr *)p; len >= NLA_HDRLEN &&
		     nla->nla_len >= NLA_HDRLEN;
		     len -= NLA_ALIGN(nla->nla_len),
		     nla = (const struct nlattr *)((const char *)nla +
						   NLA_ALIGN(nla->nla_len))) {
			if (nla->nla_type == CTRL_ATTR_FAMILY_ID) {
				memcpy(family, (const char *)nla + NLA_HDRLEN,
				       2);
				return fd;
			}
		}
	}
	errno = ENOENT;
err:
	n = -errno;
	close(fd);
	return (int)n;
}

/* One netlink "do" request about segment @name; -errno or 0. */
static inline int nl_do(__u8 cmd, const char *name, __u32 client_id)
{
	struct nlreq r;
	struct nlans a;
	__u16 family;
	int fd, ret;

	fd = nl_open(&family);
	if (fd < 0)
		return fd;
	nl_init(&r, family, cmd, 0);
	nl_put_str(&r, SHMK_A_SEGMENT_NAME, name);
	if (cmd == SHMK_CMD_CLIENT_KICK)
		nl_put_u32(&r, SHMK_A_CLIENT_ID, client_id);
	ret = nl_transact(fd, &r, &a);
	close(fd);
	return ret ? ret : a.error;
}

/* CLIENT_GET dump of segment @name into @a; -errno or 0. */
static inline int nl_clients(const char *name, struct nlans *a)
{
	struct nlreq r;
	__u16 family;
	int fd, ret;

	fd = nl_open(&family);
	if (fd < 0)
		return fd;
	nl_init(&r, family, SHMK_CMD_CLIENT_GET, NLM_F_DUMP);
	nl_put_str(&r, SHMK_A_SEGMENT_NAME, name);
	ret = nl_transact(fd, &r, a);
	close(fd);
	return ret ? ret : a->error;
}

#endif /* SHMK_NL_H */
