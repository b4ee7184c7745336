// SPDX-License-Identifier: GPL-2.0
/*
 * The "shmk" generic netlink family: administration without attaching.
 *
 *  - SEGMENT_GET (do: one segment, by name or id; dump: every live segment)
 *  - CLIENT_GET (dump: the clients of one segment, or of all)
 *  - SEGMENT_UNLINK, CLIENT_KICK (the segment's owner or CAP_SYS_ADMIN)
 *  - the "events" multicast group: segments created and destroyed, clients
 *    attached and detached, segments grown and shrunk.
 *
 * Documentation/netlink/specs/shmk.yaml describes the messages,
 * Documentation/admin-guide/shmkctl.rst the behaviour.
 *
 * Every command has its own attribute policy, validated strictly by the
 * genetlink core (resv_start_op is 0): unknown attributes, attributes outside
 * the command's policy, bad lengths and a nonzero reserved header field are
 * rejected with -EINVAL and an extended ack.
 *
 * Namespaces: the family exists in the initial network namespace only
 * (netnsok = false). Answers to requests are in the requester's view: pids
 * in its pid namespace (0 when not visible there), uid and gid in its user
 * namespace, segment names looked up in its IPC namespace.
 *
 * Visibility: a requester sees only the segments it could attach to for
 * reading from its IPC namespace (shmk_segment_visible()), unless it has
 * CAP_SYS_ADMIN in the initial user namespace; others answer -ENOENT and
 * are left out of dumps. Mapping addresses (SHMK_A_BASE_ADDR) go to
 * CAP_SYS_ADMIN only. The events group can be joined with CAP_SYS_ADMIN
 * only (GENL_MCAST_CAP_SYS_ADMIN), since one event goes to every listener
 * at once; events carry pids, uids and gids of the initial namespaces.
 * Every check uses the credentials of the calling task.
 *
 * Dumps keep their cursor in cb->ctx: the next segment id for SEGMENT_GET;
 * the segment id and the first client id not yet sent for CLIENT_GET
 * (clients are kept in attach order, which is client id order).
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/nsproxy.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/uidgid.h>
#include <linux/user_namespace.h>
#include <net/genetlink.h>
#include <net/netlink.h>

#include "shmk.h"

enum shmk_genl_mcgrp {
	SHMK_MCGRP_EVENTS,
};

static struct genl_family shmk_genl_family;

/* Set while the family is registered: events may be sent. */
static bool shmk_genl_registered;

/* Room for the largest message we send, a reply or an event. */
#define SHMK_NL_MSG_SIZE						\
	(nla_total_size(SHMK_NAME_MAX) +				\
	 nla_total_size(SHMK_CLIENT_NAME_MAX) +				\
	 10 * nla_total_size(sizeof(u32)) +				\
	 8 * nla_total_size_64bit(sizeof(u64)) +			\
	 nla_total_size(0))

/* Per-command policies: only the attributes each command takes. */
static const struct nla_policy shmk_segment_get_policy[SHMK_A_SEGMENT_NAME + 1] = {
	[SHMK_A_SEGMENT_ID]	= { .type = NLA_U32 },
	[SHMK_A_SEGMENT_NAME]	= { .type = NLA_NUL_STRING,
				    .len = SHMK_NAME_MAX - 1 },
};

static const struct nla_policy shmk_client_get_policy[SHMK_A_SEGMENT_NAME + 1] = {
	[SHMK_A_SEGMENT_ID]	= { .type = NLA_U32 },
	[SHMK_A_SEGMENT_NAME]	= { .type = NLA_NUL_STRING,
				    .len = SHMK_NAME_MAX - 1 },
};

static const struct nla_policy shmk_segment_unlink_policy[SHMK_A_SEGMENT_NAME + 1] = {
	[SHMK_A_SEGMENT_NAME]	= { .type = NLA_NUL_STRING,
				    .len = SHMK_NAME_MAX - 1 },
};

static const struct nla_policy shmk_client_kick_policy[SHMK_A_CLIENT_ID + 1] = {
	[SHMK_A_SEGMENT_ID]	= { .type = NLA_U32 },
	[SHMK_A_SEGMENT_NAME]	= { .type = NLA_NUL_STRING,
				    .len = SHMK_NAME_MAX - 1 },
	[SHMK_A_CLIENT_ID]	= { .type = NLA_U32 },
};

static int shmk_nl_put_u64(struct sk_buff *skb, int attr, u64 value)
{
	return nla_put_u64_64bit(skb, attr, value, SHMK_A_PAD);
}

/* The segment with this id, referenced, or NULL. */
static struct shmk_segment *shmk_nl_lookup_id(u32 id)
{
	unsigned long next = id;
	struct shmk_segment *seg;

	seg = shmk_segment_next(&next);
	if (seg && seg->id != id) {
		shmk_segment_put(seg);
		seg = NULL;
	}
	return seg;
}

/*
 * Segment owner (or creator), or CAP_SYS_ADMIN in the initial user ns: both
 * from the calling task's credentials.
 */
static bool shmk_nl_may_admin(const struct shmk_segment *seg)
{
	kuid_t euid = current_euid();

	if (uid_eq(euid, seg->uid) || uid_eq(euid, seg->cuid))
		return true;
	return capable(CAP_SYS_ADMIN);
}

/*
 * Whether the caller may act on @seg: it may see it, or, with @admin, it
 * owns it (or created it) from the segment's IPC namespace, whatever the
 * mode says about reading it.
 */
static bool shmk_nl_may_find(const struct shmk_segment *seg, bool admin)
{
	if (shmk_segment_visible(seg))
		return true;
	return admin && seg->ipc_ns == current->nsproxy->ipc_ns &&
	       shmk_nl_may_admin(seg);
}

/*
 * The segment a request names by SHMK_A_SEGMENT_NAME (linked segments) or
 * SHMK_A_SEGMENT_ID (any live segment), or both (they must agree), if the
 * caller may find it (shmk_nl_may_find(): @admin for a request that
 * administers the segment). Returns it referenced, or an ERR_PTR with the
 * extack filled in.
 */
static struct shmk_segment *shmk_nl_find(struct nlattr **tb,
					 struct netlink_ext_ack *extack,
					 bool in_dump, bool admin)
{
	struct nlattr *name = tb[SHMK_A_SEGMENT_NAME];
	struct nlattr *id = tb[SHMK_A_SEGMENT_ID];
	struct shmk_segment *seg;

	if (!name && !id) {
		NL_SET_ERR_MSG(extack, "missing segment name or id");
		NL_SET_ERR_ATTR_MISS(extack, NULL, SHMK_A_SEGMENT_NAME);
		return ERR_PTR(-EINVAL);
	}
	if (name)
		seg = shmk_segment_lookup(nla_data(name));
	else
		seg = shmk_nl_lookup_id(nla_get_u32(id));
	if (seg && ((name && id && seg->id != nla_get_u32(id)) ||
		    !shmk_nl_may_find(seg, admin))) {
		shmk_segment_put(seg);
		seg = NULL;
	}
	if (!seg) {
		NL_SET_ERR_MSG(extack, "segment not found");
		/* A dump's extack reports the message only. */
		if (!in_dump)
			NL_SET_BAD_ATTR(extack, name ?: id);
		return ERR_PTR(-ENOENT);
	}
	return seg;
}

/* Whether the caller may see where clients mapped segments. */
static bool shmk_nl_may_see_addresses(void)
{
	return ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN);
}

/* One SEGMENT_GET message, in the reader's user namespace. */
static int shmk_nl_fill_segment(struct sk_buff *skb, struct shmk_segment *seg,
				u32 portid, u32 seq, int flags)
{
	struct user_namespace *ns = current_user_ns();
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &shmk_genl_family, flags,
			  SHMK_CMD_SEGMENT_GET);
	if (!hdr)
		return -EMSGSIZE;

	mutex_lock(&seg->lock);
	if (nla_put_u32(skb, SHMK_A_SEGMENT_ID, seg->id) ||
	    nla_put_string(skb, SHMK_A_SEGMENT_NAME, seg->name) ||
	    shmk_nl_put_u64(skb, SHMK_A_SIZE, seg->size) ||
	    shmk_nl_put_u64(skb, SHMK_A_MAX_SIZE, seg->max_size) ||
	    shmk_nl_put_u64(skb, SHMK_A_PAGES,
			    READ_ONCE(seg->shm->f_mapping->nrpages)) ||
	    nla_put_u32(skb, SHMK_A_NR_CLIENTS, seg->nr_clients) ||
	    nla_put_u32(skb, SHMK_A_UID, from_kuid_munged(ns, seg->uid)) ||
	    nla_put_u32(skb, SHMK_A_GID, from_kgid_munged(ns, seg->gid)) ||
	    nla_put_u32(skb, SHMK_A_MODE, seg->mode) ||
	    shmk_nl_put_u64(skb, SHMK_A_CTIME, seg->ctime_ns) ||
	    shmk_nl_put_u64(skb, SHMK_A_GENERATION, seg->generation) ||
	    (seg->linked && nla_put_flag(skb, SHMK_A_LINKED))) {
		mutex_unlock(&seg->lock);
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	mutex_unlock(&seg->lock);
	genlmsg_end(skb, hdr);
	return 0;
}

/* One CLIENT_GET message. Caller holds seg->lock. */
static int shmk_nl_fill_client(struct sk_buff *skb,
			       const struct shmk_segment *seg,
			       const struct shmk_client *client,
			       struct pid_namespace *pidns, bool addresses,
			       u32 portid, u32 seq, int flags)
{
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &shmk_genl_family, flags,
			  SHMK_CMD_CLIENT_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_u32(skb, SHMK_A_SEGMENT_ID, seg->id) ||
	    nla_put_string(skb, SHMK_A_SEGMENT_NAME, seg->name) ||
	    nla_put_u32(skb, SHMK_A_CLIENT_ID, client->id) ||
	    nla_put_s32(skb, SHMK_A_PID, pid_nr_ns(client->pid, pidns)) ||
	    nla_put_string(skb, SHMK_A_CLIENT_NAME, client->name) ||
	    nla_put_u32(skb, SHMK_A_CLIENT_FLAGS, client->flags) ||
	    (addresses &&
	     shmk_nl_put_u64(skb, SHMK_A_BASE_ADDR,
			     READ_ONCE(client->base_addr))) ||
	    shmk_nl_put_u64(skb, SHMK_A_ATTACH_TIME, client->attach_ns)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/*
 * The request attributes of a dump. The core has validated them against the
 * command's policy already; parsing them again here works the same on every
 * kernel (6.1 keeps them in genl_dumpit_info(cb)->attrs, later kernels in
 * genl_info_dump(cb)->attrs).
 */
static int shmk_nl_dump_attrs(struct netlink_callback *cb,
			      const struct nla_policy *policy, int maxattr,
			      struct nlattr **tb)
{
	return nlmsg_parse(cb->nlh, GENL_HDRLEN, tb, maxattr, policy,
			   cb->extack);
}

static int shmk_nl_segment_get_doit(struct sk_buff *skb,
				    struct genl_info *info)
{
	struct shmk_segment *seg;
	struct sk_buff *msg;
	int ret;

	seg = shmk_nl_find(info->attrs, info->extack, false, false);
	if (IS_ERR(seg))
		return PTR_ERR(seg);

	msg = genlmsg_new(SHMK_NL_MSG_SIZE, GFP_KERNEL);
	if (!msg) {
		shmk_segment_put(seg);
		return -ENOMEM;
	}
	ret = shmk_nl_fill_segment(msg, seg, info->snd_portid, info->snd_seq,
				   0);
	shmk_segment_put(seg);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	return genlmsg_reply(msg, info);
}

struct shmk_nl_segment_ctx {
	unsigned long next_id;		/* first segment id not yet sent */
	bool started;
};

static_assert(sizeof(struct shmk_nl_segment_ctx) <=
	      sizeof_field(struct netlink_callback, ctx));

static int shmk_nl_segment_get_dumpit(struct sk_buff *skb,
				      struct netlink_callback *cb)
{
	struct shmk_nl_segment_ctx *ctx = (void *)cb->ctx;
	unsigned long id = ctx->next_id;
	struct shmk_segment *seg;
	int ret = 0;

	if (!ctx->started) {
		/* The dump lists everything: it takes no attributes. */
		if (nlmsg_attrlen(cb->nlh, GENL_HDRLEN)) {
			NL_SET_ERR_MSG(cb->extack,
				       "a segment dump takes no attributes");
			return -EINVAL;
		}
		ctx->started = true;
	}

	while ((seg = shmk_segment_next(&id))) {
		u32 seg_id = seg->id;

		if (!shmk_segment_visible(seg)) {
			shmk_segment_put(seg);
			ctx->next_id = id;
			continue;
		}
		ret = shmk_nl_fill_segment(skb, seg,
					   NETLINK_CB(cb->skb).portid,
					   cb->nlh->nlmsg_seq, NLM_F_MULTI);
		shmk_segment_put(seg);
		if (ret) {
			/* Full: resume at this segment. */
			ctx->next_id = seg_id;
			break;
		}
		ctx->next_id = id;
	}
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;
	return ret ?: skb->len;
}

struct shmk_nl_client_ctx {
	unsigned long seg_id;		/* segment being sent, or the next */
	u32 client_id;			/* first client id not yet sent */
	u32 only_id;			/* nonzero: dump this segment only */
	bool started;
};

static_assert(sizeof(struct shmk_nl_client_ctx) <=
	      sizeof_field(struct netlink_callback, ctx));

/* Send the clients of @seg from ctx->client_id on; -EMSGSIZE when full. */
static int shmk_nl_dump_seg_clients(struct sk_buff *skb,
				    struct netlink_callback *cb,
				    struct shmk_segment *seg,
				    struct shmk_nl_client_ctx *ctx)
{
	struct pid_namespace *pidns = task_active_pid_ns(current);
	bool addresses = shmk_nl_may_see_addresses();
	struct shmk_client *client;
	int ret = 0;

	mutex_lock(&seg->lock);
	list_for_each_entry(client, &seg->clients, node) {
		if (client->id < ctx->client_id)
			continue;
		ret = shmk_nl_fill_client(skb, seg, client, pidns, addresses,
					  NETLINK_CB(cb->skb).portid,
					  cb->nlh->nlmsg_seq, NLM_F_MULTI);
		if (ret) {
			ctx->client_id = client->id;
			break;
		}
	}
	mutex_unlock(&seg->lock);
	return ret;
}

static int shmk_nl_client_get_dumpit(struct sk_buff *skb,
				     struct netlink_callback *cb)
{
	struct shmk_nl_client_ctx *ctx = (void *)cb->ctx;
	struct shmk_segment *seg;
	unsigned long id;
	int ret = 0;

	if (!ctx->started) {
		struct nlattr *tb[ARRAY_SIZE(shmk_client_get_policy)];

		ret = shmk_nl_dump_attrs(cb, shmk_client_get_policy,
					 ARRAY_SIZE(shmk_client_get_policy) - 1,
					 tb);
		if (ret)
			return ret;
		if (tb[SHMK_A_SEGMENT_NAME] || tb[SHMK_A_SEGMENT_ID]) {
			seg = shmk_nl_find(tb, cb->extack, true, false);
			if (IS_ERR(seg))
				return PTR_ERR(seg);
			ctx->only_id = seg->id;
			ctx->seg_id = seg->id;
			shmk_segment_put(seg);
		}
		ctx->started = true;
	}

	id = ctx->seg_id;
	while ((seg = shmk_segment_next(&id))) {
		u32 seg_id = seg->id;

		if (ctx->only_id && seg_id != ctx->only_id) {
			/* Past the one segment asked for (or it has gone). */
			shmk_segment_put(seg);
			break;
		}
		if (seg_id != ctx->seg_id) {
			/* A new segment: start from its first client. */
			ctx->seg_id = seg_id;
			ctx->client_id = 0;
		}
		if (shmk_segment_visible(seg))
			ret = shmk_nl_dump_seg_clients(skb, cb, seg, ctx);
		shmk_segment_put(seg);
		if (ret)
			break;
		ctx->seg_id = id;
		ctx->client_id = 0;
	}
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;
	return ret ?: skb->len;
}

static int shmk_nl_segment_unlink_doit(struct sk_buff *skb,
				       struct genl_info *info)
{
	struct nlattr *name = info->attrs[SHMK_A_SEGMENT_NAME];
	struct shmk_segment *seg;
	int ret = 0;

	if (GENL_REQ_ATTR_CHECK(info, SHMK_A_SEGMENT_NAME)) {
		GENL_SET_ERR_MSG(info, "missing segment name");
		return -EINVAL;
	}
	seg = shmk_segment_lookup(nla_data(name));
	if (seg && !shmk_nl_may_find(seg, true)) {
		shmk_segment_put(seg);
		seg = NULL;
	}
	if (!seg) {
		NL_SET_ERR_MSG_ATTR(info->extack, name, "segment not found");
		return -ENOENT;
	}
	if (shmk_nl_may_admin(seg)) {
		shmk_segment_unlink_seg(seg);
	} else {
		NL_SET_ERR_MSG_ATTR(info->extack, name,
				    "not the owner of the segment");
		ret = -EPERM;
	}
	shmk_segment_put(seg);
	return ret;
}

static int shmk_nl_client_kick_doit(struct sk_buff *skb,
				    struct genl_info *info)
{
	struct nlattr *client_id = info->attrs[SHMK_A_CLIENT_ID];
	struct shmk_segment *seg;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, SHMK_A_CLIENT_ID)) {
		GENL_SET_ERR_MSG(info, "missing client id");
		return -EINVAL;
	}
	seg = shmk_nl_find(info->attrs, info->extack, false, true);
	if (IS_ERR(seg))
		return PTR_ERR(seg);
	if (!shmk_nl_may_admin(seg)) {
		GENL_SET_ERR_MSG(info, "not the owner of the segment");
		ret = -EPERM;
		goto out;
	}
	ret = shmk_client_kick(seg, nla_get_u32(client_id));
	if (ret == -ENOENT)
		NL_SET_ERR_MSG_ATTR(info->extack, client_id,
				    "client not found");
out:
	shmk_segment_put(seg);
	return ret;
}

static const struct genl_ops shmk_genl_ops[] = {
	{
		.cmd		= SHMK_CMD_SEGMENT_GET,
		.doit		= shmk_nl_segment_get_doit,
		.dumpit		= shmk_nl_segment_get_dumpit,
		.policy		= shmk_segment_get_policy,
		.maxattr	= ARRAY_SIZE(shmk_segment_get_policy) - 1,
	},
	{
		.cmd		= SHMK_CMD_CLIENT_GET,
		.dumpit		= shmk_nl_client_get_dumpit,
		.policy		= shmk_client_get_policy,
		.maxattr	= ARRAY_SIZE(shmk_client_get_policy) - 1,
	},
	{
		/* Permission is checked per segment, not GENL_ADMIN_PERM. */
		.cmd		= SHMK_CMD_SEGMENT_UNLINK,
		.doit		= shmk_nl_segment_unlink_doit,
		.policy		= shmk_segment_unlink_policy,
		.maxattr	= ARRAY_SIZE(shmk_segment_unlink_policy) - 1,
	},
	{
		.cmd		= SHMK_CMD_CLIENT_KICK,
		.doit		= shmk_nl_client_kick_doit,
		.policy		= shmk_client_kick_policy,
		.maxattr	= ARRAY_SIZE(shmk_client_kick_policy) - 1,
	},
};

static const struct genl_multicast_group shmk_genl_mcgrps[] = {
	/* Events name every segment and pid: for CAP_SYS_ADMIN only. */
	[SHMK_MCGRP_EVENTS] = { .name = SHMK_GENL_MCGRP_EVENTS,
				.flags = GENL_MCAST_CAP_SYS_ADMIN },
};

static struct genl_family shmk_genl_family = {
	.name		= SHMK_GENL_NAME,
	.version	= SHMK_GENL_VERSION,
	.maxattr	= SHMK_A_MAX,
	.netnsok	= false,	/* the initial network namespace only */
	.parallel_ops	= true,		/* handlers lock what they use */
	.module		= THIS_MODULE,
	.ops		= shmk_genl_ops,
	.n_ops		= ARRAY_SIZE(shmk_genl_ops),
	.mcgrps		= shmk_genl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(shmk_genl_mcgrps),
};

/*
 * Events. They are sent only when someone listens, allocated with
 * GFP_KERNEL (some callers hold seg->lock, a mutex) and dropped quietly when
 * memory is short: a listener that misses one sees a gap, never a warning.
 */
#define SHMK_EVENT_GFP		(GFP_KERNEL | __GFP_NOWARN)

static struct sk_buff *shmk_event_start(const struct shmk_segment *seg,
					u8 cmd, void **hdr)
{
	struct sk_buff *skb;

	if (!READ_ONCE(shmk_genl_registered) ||
	    !genl_has_listeners(&shmk_genl_family, &init_net,
				SHMK_MCGRP_EVENTS))
		return NULL;

	skb = genlmsg_new(SHMK_NL_MSG_SIZE, SHMK_EVENT_GFP);
	if (!skb)
		return NULL;
	*hdr = genlmsg_put(skb, 0, 0, &shmk_genl_family, 0, cmd);
	if (!*hdr)
		goto err;
	if (nla_put_u32(skb, SHMK_A_SEGMENT_ID, seg->id) ||
	    nla_put_string(skb, SHMK_A_SEGMENT_NAME, seg->name))
		goto err;
	/* The acting process; none when a kernel thread acts. */
	if (!(current->flags & PF_KTHREAD) &&
	    nla_put_s32(skb, SHMK_A_ACTOR_PID, task_tgid_nr(current)))
		goto err;
	return skb;
err:
	nlmsg_free(skb);
	return NULL;
}

static void shmk_event_send(struct sk_buff *skb, void *hdr)
{
	genlmsg_end(skb, hdr);
	/* -ESRCH (nobody listens any more) and -ENOBUFS are not our problem. */
	genlmsg_multicast(&shmk_genl_family, skb, 0, SHMK_MCGRP_EVENTS,
			  SHMK_EVENT_GFP);
}

/**
 * shmk_event_segment - SEGMENT_CREATED or SEGMENT_DESTROYED
 * @seg: the segment
 * @cmd: SHMK_CMD_SEGMENT_CREATED or SHMK_CMD_SEGMENT_DESTROYED
 *
 * Called without seg->lock.
 */
void shmk_event_segment(const struct shmk_segment *seg, u8 cmd)
{
	struct sk_buff *skb;
	void *hdr;

	skb = shmk_event_start(seg, cmd, &hdr);
	if (!skb)
		return;
	if (cmd == SHMK_CMD_SEGMENT_CREATED &&
	    (shmk_nl_put_u64(skb, SHMK_A_SIZE, READ_ONCE(seg->size)) ||
	     shmk_nl_put_u64(skb, SHMK_A_MAX_SIZE, seg->max_size) ||
	     nla_put_u32(skb, SHMK_A_UID,
			 from_kuid_munged(&init_user_ns, seg->uid)) ||
	     nla_put_u32(skb, SHMK_A_GID,
			 from_kgid_munged(&init_user_ns, seg->gid)) ||
	     nla_put_u32(skb, SHMK_A_MODE, seg->mode))) {
		nlmsg_free(skb);
		return;
	}
	shmk_event_send(skb, hdr);
}

/**
 * shmk_event_client - CLIENT_ATTACHED or CLIENT_DETACHED
 * @seg: the segment
 * @client: the client
 * @cmd: SHMK_CMD_CLIENT_ATTACHED or SHMK_CMD_CLIENT_DETACHED
 * @reason: for DETACHED, enum shmk_detach_reason
 *
 * Called with seg->lock held; seg->nr_clients is already updated.
 */
void shmk_event_client(const struct shmk_segment *seg,
		       const struct shmk_client *client, u8 cmd, u32 reason)
{
	struct sk_buff *skb;
	void *hdr;

	skb = shmk_event_start(seg, cmd, &hdr);
	if (!skb)
		return;
	if (nla_put_u32(skb, SHMK_A_CLIENT_ID, client->id) ||
	    nla_put_s32(skb, SHMK_A_PID, pid_nr(client->pid)) ||
	    nla_put_string(skb, SHMK_A_CLIENT_NAME, client->name) ||
	    nla_put_u32(skb, SHMK_A_CLIENT_FLAGS, client->flags) ||
	    nla_put_u32(skb, SHMK_A_NR_CLIENTS, seg->nr_clients) ||
	    (cmd == SHMK_CMD_CLIENT_DETACHED &&
	     nla_put_u32(skb, SHMK_A_DETACH_REASON, reason))) {
		nlmsg_free(skb);
		return;
	}
	shmk_event_send(skb, hdr);
}

/**
 * shmk_event_resize - SEGMENT_GROWN or SEGMENT_SHRUNK
 * @seg: the segment
 * @cmd: SHMK_CMD_SEGMENT_GROWN or SHMK_CMD_SEGMENT_SHRUNK
 * @old_size: active size before
 * @new_size: active size after
 *
 * Called with seg->lock held, after the generation was bumped.
 */
void shmk_event_resize(const struct shmk_segment *seg, u8 cmd, u64 old_size,
		       u64 new_size)
{
	struct sk_buff *skb;
	void *hdr;

	skb = shmk_event_start(seg, cmd, &hdr);
	if (!skb)
		return;
	if (shmk_nl_put_u64(skb, SHMK_A_OLD_SIZE, old_size) ||
	    shmk_nl_put_u64(skb, SHMK_A_NEW_SIZE, new_size) ||
	    shmk_nl_put_u64(skb, SHMK_A_GENERATION, seg->generation)) {
		nlmsg_free(skb);
		return;
	}
	shmk_event_send(skb, hdr);
}

int shmk_genl_init(void)
{
	int ret;

	ret = genl_register_family(&shmk_genl_family);
	if (ret)
		return ret;
	WRITE_ONCE(shmk_genl_registered, true);
	return 0;
}

void shmk_genl_exit(void)
{
	WRITE_ONCE(shmk_genl_registered, false);
	genl_unregister_family(&shmk_genl_family);
}
