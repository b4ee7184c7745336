// SPDX-License-Identifier: GPL-2.0
/*
 * The permission matrix of Documentation/admin-guide/shmk.rst ("Permission
 * matrix"), one test per cell: who (owner, group member by primary or
 * supplementary group, other, CAP_SYS_ADMIN, CAP_IPC_OWNER, the owner and
 * another user as root of a user namespace of their own, and the owner from
 * another IPC namespace) against the
 * segment's mode (none, each of the nine bits alone, 0600, 0060, 0006,
 * 0777), for each operation (attach read-only and read-write, grow and
 * shrink, unlink through the ioctl and through netlink, kick and lookup
 * through netlink). Plus the pid namespace rules: pids in the reader's
 * namespace, nothing to those who may not attach.
 *
 * The segment of each cell is created by OWNER_UID:OWNER_GID with the cell's
 * mode; the subject is a forked child that switches to its numeric ids with
 * setresuid()/setresgid() (no user accounts needed) and keeps only the one
 * capability its row names. The expected result of each cell comes from
 * expect() below, which states the documented model, not from the module.
 * Needs root (to switch ids) and the module loaded.
 */
#include <grp.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include "shmk_test.h"
#include "shmk_nl.h"

#define OWNER_UID	41001
#define OWNER_GID	41001
#define GROUP_UID	41002	/* primary group OWNER_GID */
#define SUPP_UID	41003	/* own group, OWNER_GID supplementary */
#define SUPP_GID	41003
#define OTHER_UID	41004
#define OTHER_GID	41004
#define ADMIN_UID	41005	/* other, with CAP_SYS_ADMIN */
#define IPCOWN_UID	41006	/* other, with CAP_IPC_OWNER */

enum who {
	W_OWNER, W_GROUP, W_SUPP, W_OTHER, W_ADMIN, W_IPC_OWNER,
	W_USERNS_OWNER, W_USERNS_OTHER, W_IPCNS_OWNER, NR_WHO,
};

static const char *const who_name[NR_WHO] = {
	"owner", "group", "group_supp", "other", "cap_sys_admin",
	"cap_ipc_owner", "userns_owner", "userns_other", "ipcns_owner",
};

enum op {
	OP_ATTACH_RO, OP_ATTACH_RW, OP_GROW, OP_SHRINK, OP_UNLINK_IOCTL,
	OP_UNLINK_NL, OP_KICK_NL, OP_GET_NL, NR_OP,
};

static const char *const op_name[NR_OP] = {
	"attach_ro", "attach_rw", "grow", "shrink", "unlink_ioctl",
	"unlink_nl", "kick_nl", "get_nl",
};

static const unsigned int modes[] = {
	0000, 0400, 0200, 0100, 0040, 0020, 0010, 0004, 0002, 0001,
	0600, 0060, 0006, 0777,
};

#define NR_MODES	(sizeof(modes) / sizeof(modes[0]))

struct cell {
	enum who who;
	unsigned int mode;
	enum op op;
};

/* ------------------------------------------------------------------ */
/* The documented model.                                               */

/* The mode bits (rwx) that apply to @who: owner, group or other class. */
static unsigned int class_bits(enum who who, unsigned int mode)
{
	switch (who) {
	case W_OWNER:
	case W_USERNS_OWNER:	/* ownership is by kuid */
		return (mode >> 6) & 7;
	case W_GROUP:
	case W_SUPP:
		return (mode >> 3) & 7;
	default:
		return mode & 7;
	}
}

/* Attach: the class's r (and w) bits; CAP_IPC_OWNER overrides. */
static bool may_attach(enum who who, unsigned int mode, bool write)
{
	unsigned int want = write ? 6 : 4;

	if (who == W_IPC_OWNER)
		return true;
	return (class_bits(who, mode) & want) == want;
}

/* Unlink, kick: owner (creator) by euid, or CAP_SYS_ADMIN (initial ns). */
static bool may_admin(enum who who)
{
	return who == W_OWNER || who == W_USERNS_OWNER || who == W_ADMIN;
}

/* Netlink: those who could attach for reading, and CAP_SYS_ADMIN. */
static bool nl_visible(enum who who, unsigned int mode)
{
	return who == W_ADMIN || may_attach(who, mode, false);
}

/* 0 for success, else the errno the model gives. */
static int expect(const struct cell *c)
{
	/* Names are looked up in the caller's IPC namespace only. */
	if (c->who == W_IPCNS_OWNER)
		return ENOENT;
	switch (c->op) {
	case OP_ATTACH_RO:
		return may_attach(c->who, c->mode, false) ? 0 : EACCES;
	case OP_ATTACH_RW:
		return may_attach(c->who, c->mode, true) ? 0 : EACCES;
	case OP_GROW:
	case OP_SHRINK:
		/* Any writable client; a read-only one gets EPERM. */
		if (may_attach(c->who, c->mode, true))
			return 0;
		return may_attach(c->who, c->mode, false) ? EPERM : EACCES;
	case OP_UNLINK_IOCTL:
		return may_admin(c->who) ? 0 : EPERM;
	case OP_UNLINK_NL:
	case OP_KICK_NL:
		/* Others get ENOENT unless they may see the segment. */
		if (may_admin(c->who))
			return 0;
		return nl_visible(c->who, c->mode) ? EPERM : ENOENT;
	case OP_GET_NL:
		return nl_visible(c->who, c->mode) ? 0 : ENOENT;
	default:
		return -1;
	}
}

/* ------------------------------------------------------------------ */
/* Credentials.                                                        */

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	n = n < 0 ? -errno : 0;
	close(fd);
	return (int)n;
}

/* Keep exactly capability @cap (or none: -1) in the effective set. */
static int keep_only_cap(int cap)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (cap >= 0) {
		data[cap / 32].effective = 1U << (cap % 32);
		data[cap / 32].permitted = 1U << (cap % 32);
	}
	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

/* Switch to @uid/@gid with supplementary groups @groups; keep @cap. */
static int become(uid_t uid, gid_t gid, int ngroups, const gid_t *groups,
		  int cap)
{
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) ||
	    setgroups(ngroups, groups) || setresgid(gid, gid, gid) ||
	    setresuid(uid, uid, uid))
		return -errno;
	/* For /proc/self/{uid,gid}_map and setgroups after setresuid(). */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return keep_only_cap(cap);
}

/* Root (all capabilities) of a new user namespace, as the current ids. */
static int enter_userns(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int ret;

	if (unshare(CLONE_NEWUSER))
		return -errno;
	snprintf(map, sizeof(map), "0 %u 1\n", uid);
	ret = write_file("/proc/self/uid_map", map);
	if (!ret)
		ret = write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "0 %u 1\n", gid);
	if (!ret)
		ret = write_file("/proc/self/gid_map", map);
	if (!ret && geteuid() != 0)
		ret = -EINVAL;
	return ret;
}

static int become_who(enum who who)
{
	gid_t owner_gid = OWNER_GID;
	int ret;

	switch (who) {
	case W_OWNER:
		return become(OWNER_UID, OWNER_GID, 0, NULL, -1);
	case W_GROUP:
		return become(GROUP_UID, OWNER_GID, 0, NULL, -1);
	case W_SUPP:
		return become(SUPP_UID, SUPP_GID, 1, &owner_gid, -1);
	case W_OTHER:
		return become(OTHER_UID, OTHER_GID, 0, NULL, -1);
	case W_ADMIN:
		return become(ADMIN_UID, OTHER_GID, 0, NULL, CAP_SYS_ADMIN);
	case W_IPC_OWNER:
		return become(IPCOWN_UID, OTHER_GID, 0, NULL, CAP_IPC_OWNER);
	case W_USERNS_OWNER:
		ret = become(OWNER_UID, OWNER_GID, 0, NULL, -1);
		return ret ? ret : enter_userns();
	case W_USERNS_OTHER:
		ret = become(OTHER_UID, OTHER_GID, 0, NULL, -1);
		return ret ? ret : enter_userns();
	case W_IPCNS_OWNER:
		/* The owner itself, from another IPC namespace. */
		if (unshare(CLONE_NEWIPC))
			return -errno;
		return become(OWNER_UID, OWNER_GID, 0, NULL, -1);
	default:
		return -EINVAL;
	}
}

/* ------------------------------------------------------------------ */
/* One cell.                                                           */

/* Child exit status: 0, an errno, or SETUP_FAILED / SKIPPED. */
#define SETUP_FAILED	250
#define SKIPPED		251

static int attach(const char *name, bool write)
{
	int ctl = shmk_open_ctl();
	int fd;

	if (ctl < 0)
		return ctl;
	fd = shmk_open(ctl, name, write ? 0 : SHMK_ATTACH_RDONLY, "perm");
	close(ctl);
	return fd;
}

static int resize(int fd, unsigned long cmd, __u64 size)
{
	struct shmk_resize rs;

	memset(&rs, 0, sizeof(rs));
	rs.size = size;
	return shmk_ioctl(fd, cmd, &rs) < 0 ? -errno : 0;
}

/* The operation itself, as the subject; 0 or -errno. */
static int run_op(const struct cell *c, const char *name, __u32 victim)
{
	size_t pg = page_size();
	int fd, ret, ctl;

	switch (c->op) {
	case OP_ATTACH_RO:
	case OP_ATTACH_RW:
		fd = attach(name, c->op == OP_ATTACH_RW);
		if (fd < 0)
			return fd;
		/* The handle must map as its access allows, and no more. */
		if (mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
			return -ENOTRECOVERABLE;
		if ((mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			  0) == MAP_FAILED) != (c->op == OP_ATTACH_RO))
			return -ENOTRECOVERABLE;
		close(fd);
		return 0;
	case OP_GROW:
	case OP_SHRINK:
		fd = attach(name, true);
		if (fd == -EACCES)
			fd = attach(name, false);
		if (fd < 0)
			return fd;
		ret = resize(fd, c->op == OP_GROW ? SHMK_IOC_GROW :
			     SHMK_IOC_SHRINK, c->op == OP_GROW ? 3 * pg : pg);
		if (!ret && shmk_size(fd) != (long long)(c->op == OP_GROW ?
							  3 * pg : pg))
			ret = -ENOTRECOVERABLE;
		close(fd);
		return ret;
	case OP_UNLINK_IOCTL:
		ctl = shmk_open_ctl();
		if (ctl < 0)
			return ctl;
		ret = shmk_unlink_name(ctl, name);
		close(ctl);
		return ret;
	case OP_UNLINK_NL:
		return nl_do(SHMK_CMD_SEGMENT_UNLINK, name, 0);
	case OP_KICK_NL:
		return nl_do(SHMK_CMD_CLIENT_KICK, name, victim);
	case OP_GET_NL: {
		struct nlans a;
		int get = nl_do(SHMK_CMD_SEGMENT_GET, name, 0);

		/* The client dump must agree with the lookup. */
		ret = nl_clients(name, &a);
		if (ret != get || (!ret && a.nclients != 1))
			return -ENOTRECOVERABLE;
		return get;
	}
	default:
		return -EINVAL;
	}
}

static int subject(const struct cell *c, const char *name, __u32 victim)
{
	int ret = become_who(c->who);

	if (ret == -EPERM || ret == -ENOSPC || ret == -EINVAL)
		if (c->who == W_USERNS_OWNER || c->who == W_USERNS_OTHER)
			return SKIPPED;	/* no unprivileged user namespaces */
	if (ret)
		return SETUP_FAILED;
	ret = run_op(c, name, victim);
	if (ret == -ENOTRECOVERABLE)
		return SETUP_FAILED;
	return -ret;
}

static pid_t spawn_cell(const struct cell *c, const char *name, __u32 victim)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(subject(c, name, victim));
	}
	return pid;
}

/* Creates @name as OWNER_UID:OWNER_GID with @mode, 2 pages of 4. */
static int create_as_owner(const char *name, unsigned int mode)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		size_t pg = page_size();
		int ctl, fd;

		if (become(OWNER_UID, OWNER_GID, 0, NULL, -1))
			_exit(SETUP_FAILED);
		ctl = shmk_open_ctl();
		if (ctl < 0)
			_exit(SETUP_FAILED);
		fd = shmk_attach_opts(ctl, name, SHMK_ATTACH_CREATE |
				      SHMK_ATTACH_EXCL, mode, 2 * pg, 4 * pg,
				      "creator", NULL);
		_exit(fd < 0 ? -fd : 0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	return WIFEXITED(status) ? -WEXITSTATUS(status) : -EINTR;
}

/* ------------------------------------------------------------------ */
/* The matrix: one fixture variant per cell, from the tables above.    */

FIXTURE(perm) {
	int ctl;
};

FIXTURE_VARIANT(perm) {
	struct cell cell;
};

static void __attribute__((constructor)) perm_register_cells(void)
{
	static struct __fixture_variant_metadata meta[NR_WHO * NR_MODES * NR_OP];
	static FIXTURE_VARIANT(perm) cells[NR_WHO * NR_MODES * NR_OP];
	static char names[NR_WHO * NR_MODES * NR_OP][48];
	unsigned int i = 0, w, m, o;

	for (w = 0; w < NR_WHO; w++)
		for (m = 0; m < NR_MODES; m++)
			for (o = 0; o < NR_OP; o++, i++) {
				cells[i].cell.who = w;
				cells[i].cell.mode = modes[m];
				cells[i].cell.op = o;
				snprintf(names[i], sizeof(names[i]), "%s_%04o_%s",
					 who_name[w], modes[m], op_name[o]);
				meta[i].name = names[i];
				meta[i].data = &cells[i];
				__register_fixture_variant(&_perm_fixture_object,
							   &meta[i]);
			}
}

FIXTURE_SETUP(perm)
{
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
}

FIXTURE_TEARDOWN(perm)
{
	shmk_cleanup();
	close(self->ctl);
}

TEST_F(perm, cell)
{
	const struct cell *c = &variant->cell;
	int want = expect(c), got, status, victim;
	struct shmk_info info;
	char name[SHMK_NAME_MAX];
	pid_t pid;

	if (geteuid() != 0)
		SKIP(return, "needs root to switch to the test users");
	snprintf(name, sizeof(name), "%d-perm", getpid());
	ASSERT_EQ(0, create_as_owner(name, c->mode));
	/* A client to kick: root attaches through CAP_IPC_OWNER. */
	victim = shmk_open(self->ctl, name, 0, "victim");
	ASSERT_LE(0, victim);
	ASSERT_EQ(0, shmk_get_info(victim, &info));
	ASSERT_EQ(OWNER_UID, (int)info.uid);
	ASSERT_EQ(c->mode, (unsigned int)info.mode);

	pid = spawn_cell(c, name, info.client_id);
	ASSERT_LT(0, pid);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	got = WEXITSTATUS(status);
	if (got == SKIPPED)
		SKIP(goto out, "cannot create a user namespace");
	ASSERT_NE(SETUP_FAILED, got);
	EXPECT_EQ(want, got) {
		TH_LOG("%s on a %04o segment as %s: expected %s, got %s",
		       op_name[c->op], c->mode, who_name[c->who],
		       want ? strerror(want) : "success",
		       got ? strerror(got) : "success");
	}

	/* What the operation did to the segment, seen by root. */
	if (!got && (c->op == OP_UNLINK_IOCTL || c->op == OP_UNLINK_NL))
		EXPECT_EQ(-ENOENT, shmk_open(self->ctl, name, SHMK_ATTACH_RDONLY,
					     NULL));
	if (!got && c->op == OP_KICK_NL)
		EXPECT_EQ(-ENOTCONN, shmk_get_info(victim, &info));
	if (got) {
		/* Refused: the segment is untouched (the subject has gone). */
		ASSERT_EQ(0, shmk_get_info(victim, &info));
		EXPECT_EQ(2 * page_size(), info.size);
		EXPECT_EQ(1U, info.nr_clients);
	}
out:
	close(victim);
	/* Not left to the teardown: its list of names is bounded. */
	shmk_unlink_name(self->ctl, name);
}

/* ------------------------------------------------------------------ */
/* Pid namespaces.                                                     */

FIXTURE(pidns) {
	int ctl;
	char name[SHMK_NAME_MAX];
	int fd;
};

FIXTURE_SETUP(pidns)
{
	if (geteuid() != 0)
		SKIP(return, "needs root");
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	SHMK_NAME(self->name, "pidns");
	ASSERT_EQ(0, create_as_owner(self->name, 0640));
	/* A client of the parent pid namespace: this process. */
	self->fd = shmk_open(self->ctl, self->name, SHMK_ATTACH_RDONLY,
			     "outside");
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(pidns)
{
	shmk_unlink_name(self->ctl, self->name);
	close(self->fd);
	close(self->ctl);
}

/*
 * In a new pid namespace as @uid:@gid: attach read-only when @may, and check
 * that every pid shown (ioctl, netlink, status page) is in this namespace:
 * the outside client shows as 0, this process as its pid here. When not
 * @may, nothing is shown: attach EACCES, netlink ENOENT.
 */
static int pidns_child(const char *name, uid_t uid, gid_t gid, bool may)
{
	struct shmk_client_info ci[4];
	struct shmk_clients req;
	struct shmk_status *st;
	struct nlans a;
	pid_t pid;
	int fd, status, i, seen = 0;

	CHK_EQ(0, unshare(CLONE_NEWPID));
	pid = fork();
	CHK(pid >= 0);
	if (pid) {
		CHK_EQ(pid, waitpid(pid, &status, 0));
		CHK(WIFEXITED(status));
		return WEXITSTATUS(status);
	}
	/* pid 1 of the new namespace. */
	if (getpid() != 1 || become(uid, gid, 0, NULL, -1))
		_exit(2);
	fd = attach(name, false);
	if (!may) {
		if (fd != -EACCES || nl_do(SHMK_CMD_SEGMENT_GET, name, 0) !=
		    -ENOENT || nl_clients(name, &a) != -ENOENT || a.nclients)
			_exit(3);
		_exit(0);
	}
	if (fd < 0)
		_exit(4);
	memset(&req, 0, sizeof(req));
	req.clients = (__u64)(uintptr_t)ci;
	req.count = 4;
	/* "creator" is gone: its client went with its process. */
	if (shmk_ioctl(fd, SHMK_IOC_CLIENTS, &req) < 0 || req.total != 2)
		_exit(5);
	for (i = 0; i < 2; i++) {
		if (!strcmp(ci[i].name, "perm") && ci[i].pid == 1)
			seen |= 1;
		if (!strcmp(ci[i].name, "outside") && ci[i].pid == 0)
			seen |= 2;
	}
	if (seen != 3)
		_exit(6);
	if (nl_clients(name, &a) || a.nclients != 2)
		_exit(7);
	for (i = 0, seen = 0; i < 2; i++)
		seen |= a.pid[i] == 1 ? 1 : a.pid[i] == 0 ? 2 : 4;
	if (seen != 3)
		_exit(8);
	st = mmap(NULL, sizeof(*st), PROT_READ, MAP_SHARED, fd,
		  SHMK_STATUS_OFFSET);
	if (st == MAP_FAILED)
		_exit(9);
	for (i = 0, seen = 0; i < (int)st->table_len; i++)
		seen |= st->clients[i].pid == 1 ? 1 :
			st->clients[i].pid == 0 ? 2 : 4;
	if (seen != 3)
		_exit(10);
	_exit(0);
}

static int pidns_run(const char *name, uid_t uid, gid_t gid, bool may)
{
	pid_t pid = fork();
	int status;

	if (pid == 0)
		_exit(pidns_child(name, uid, gid, may));
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

TEST_F(pidns, group_reader_sees_pids_in_its_namespace)
{
	EXPECT_EQ(0, pidns_run(self->name, GROUP_UID, OWNER_GID, true));
}

TEST_F(pidns, other_sees_nothing)
{
	EXPECT_EQ(0, pidns_run(self->name, OTHER_UID, OTHER_GID, false));
}

TEST_HARNESS_MAIN
