// SPDX-License-Identifier: GPL-2.0
/*
 * shmk client registry: SHMK_IOC_CLIENTS and SHMK_IOC_LOOKUP with real
 * processes, default names, clients going away on SIGKILL and on the last
 * close or munmap.
 */
#include "shmk_test.h"

#define NCHILD		5
#define COMM_CHILD	4	/* attaches with "" after setting its comm */
#define CHILD_COMM	"commchild"

struct reg_shared {
	__u32 client_id[NCHILD];
};

struct reg_args {
	int ctl;
	char name[SHMK_NAME_MAX];
	struct shmk_barrier *b;
	struct reg_shared *sh;
};

FIXTURE(reg) {
	int ctl;
	int fd;
	char name[SHMK_NAME_MAX];
	pid_t pids[NCHILD];
	struct shmk_barrier b;
	struct reg_shared *sh;
	struct shmk_attach a;
};

FIXTURE_SETUP(reg)
{
	shmk_barrier_clear(&self->b);
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	SHMK_NAME(self->name, "reg");
	self->fd = shmk_attach_opts(self->ctl, self->name,
				    SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL,
				    0644, page_size(), 4 * page_size(), "",
				    &self->a);
	ASSERT_LE(0, self->fd);
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	ASSERT_EQ(0, shmk_barrier_init(&self->b));
}

FIXTURE_TEARDOWN(reg)
{
	shmk_kill_children(NCHILD, self->pids);
	shmk_barrier_destroy(&self->b);
	if (self->fd >= 0)
		close(self->fd);
	shmk_cleanup();
	close(self->ctl);
}

static __u32 child_flags(int idx)
{
	if (idx == 0)
		return SHMK_ATTACH_WRITER;
	if (idx == 1 || idx == 2)
		return SHMK_ATTACH_RDONLY;
	return 0;
}

static __u32 client_flags(int idx)
{
	if (idx == 0)
		return SHMK_CLIENT_WRITER;
	if (idx == 1 || idx == 2)
		return SHMK_CLIENT_RDONLY;
	return 0;
}

static void child_name(int idx, char *buf)
{
	if (idx == COMM_CHILD)
		strcpy(buf, CHILD_COMM);
	else
		snprintf(buf, SHMK_CLIENT_NAME_MAX, "peer-%d", idx);
}

static int reg_child(int idx, void *arg)
{
	struct reg_args *ra = arg;
	char cname[SHMK_CLIENT_NAME_MAX];
	__u32 flags = child_flags(idx);
	struct shmk_info info;
	struct shmk_attach a;
	__u32 cid;
	pid_t pid;
	void *p;
	int fd;

	child_name(idx, cname);
	if (idx == COMM_CHILD)
		CHK(!prctl(PR_SET_NAME, CHILD_COMM, 0, 0, 0));
	fd = shmk_attach_opts(ra->ctl, ra->name, flags, 0, 0, 0,
			      idx == COMM_CHILD ? "" : cname, &a);
	CHK(fd >= 0);
	ra->sh->client_id[idx] = a.client_id;
	/* A mapping too, so that SIGKILL also has an mm to tear down. */
	p = shmk_map(fd, page_size(), flags & SHMK_ATTACH_RDONLY ?
		     PROT_READ : PROT_READ | PROT_WRITE);
	CHK(p != MAP_FAILED);

	CHK(shmk_barrier_arrive(ra->b) >= 0);

	/* Released: look ourselves up, then leave. */
	CHK(shmk_lookup(fd, cname, &pid, &cid) == 0);
	CHK_EQ(getpid(), pid);
	CHK_EQ(a.client_id, cid);
	CHK(shmk_get_info(fd, &info) == 0);
	CHK_EQ(client_flags(idx), info.client_flags);
	CHK_EQ(a.client_id, info.client_id);
	munmap(p, page_size());
	close(fd);
	return 0;
}

/* Position of @pid in @arr, or -1. */
static int find_pid(const struct shmk_client_info *arr, int n, pid_t pid)
{
	int i;

	for (i = 0; i < n; i++)
		if (arr[i].pid == pid)
			return i;
	return -1;
}

TEST_F(reg, list_lookup_kill)
{
	struct shmk_client_info arr[NCHILD + 4];
	char comm[SHMK_CLIENT_NAME_MAX] = { 0 };
	char cname[SHMK_CLIENT_NAME_MAX];
	long long clients0;
	__u32 count, total, cid;
	struct reg_args ra;
	int i, status;
	pid_t pid;

	ASSERT_EQ(0, prctl(PR_GET_NAME, comm, 0, 0, 0));
	clients0 = shmk_counter("clients");

	ra.ctl = self->ctl;
	strcpy(ra.name, self->name);
	ra.b = &self->b;
	ra.sh = self->sh;

	/* One at a time, so the attach order is known. */
	for (i = 0; i < NCHILD; i++) {
		self->pids[i] = shmk_fork(&self->b, reg_child, i, &ra);
		ASSERT_LT(0, self->pids[i]);
		ASSERT_EQ(0, shmk_barrier_wait(&self->b, 1, 20000))
			TH_LOG("child %d did not attach", i);
	}
	EXPECT_EQ(clients0 + NCHILD, shmk_counter("clients"));

	memset(arr, 0xcc, sizeof(arr));
	ASSERT_EQ(0, shmk_list_clients(self->fd, arr, NCHILD + 4, &count,
				       &total));
	ASSERT_EQ(NCHILD + 1, (int)total);
	ASSERT_EQ(NCHILD + 1, (int)count);
	/* The creator first: default name is its comm. */
	EXPECT_EQ(getpid(), arr[0].pid);
	EXPECT_EQ(self->a.client_id, arr[0].client_id);
	EXPECT_EQ(0u, arr[0].flags);
	EXPECT_STREQ(comm, arr[0].name);
	for (i = 0; i < NCHILD; i++) {
		const struct shmk_client_info *ci = &arr[i + 1];

		child_name(i, cname);
		EXPECT_EQ(self->pids[i], ci->pid) TH_LOG("entry %d", i + 1);
		EXPECT_EQ(self->sh->client_id[i], ci->client_id);
		EXPECT_EQ(client_flags(i), ci->flags) TH_LOG("entry %d", i + 1);
		EXPECT_EQ(0u, ci->reserved);
		EXPECT_STREQ(cname, ci->name);
	}
	EXPECT_EQ(0xccccccccU, arr[NCHILD + 1].client_id);

	/* LOOKUP: name to pid. */
	for (i = 0; i < NCHILD; i++) {
		child_name(i, cname);
		ASSERT_EQ(0, shmk_lookup(self->fd, cname, &pid, &cid));
		EXPECT_EQ(self->pids[i], pid);
		EXPECT_EQ(self->sh->client_id[i], cid);
	}
	ASSERT_EQ(0, shmk_lookup(self->fd, comm, &pid, &cid));
	EXPECT_EQ(getpid(), pid);
	EXPECT_EQ(self->a.client_id, cid);
	EXPECT_EQ(-ENOENT, shmk_lookup(self->fd, "absent", &pid, &cid));
	EXPECT_EQ(-ENOENT, shmk_lookup(self->fd, "peer-", &pid, &cid));
	EXPECT_EQ(-ENOENT, shmk_lookup(self->fd, "peer-00", &pid, &cid));

	/* A smaller buffer: the first entries, and the real total. */
	memset(arr, 0xcc, sizeof(arr));
	ASSERT_EQ(0, shmk_list_clients(self->fd, arr, 2, &count, &total));
	EXPECT_EQ(2u, count);
	EXPECT_EQ(NCHILD + 1, (int)total);
	EXPECT_EQ(getpid(), arr[0].pid);
	EXPECT_EQ(self->pids[0], arr[1].pid);
	EXPECT_EQ(0xccccccccU, arr[2].client_id);

	/* SIGKILL one (it has a mapping): gone once waitpid returns. */
	kill(self->pids[2], SIGKILL);
	status = shmk_wait(self->pids[2], 20000);
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGKILL, WTERMSIG(status));
	ASSERT_EQ(0, shmk_list_clients(self->fd, arr, NCHILD + 4, &count,
				       &total));
	EXPECT_EQ(NCHILD, (int)total);
	EXPECT_EQ(NCHILD, (int)count);
	EXPECT_EQ(-1, find_pid(arr, count, self->pids[2]));
	EXPECT_EQ(3, find_pid(arr, count, self->pids[3]));
	EXPECT_EQ(-ENOENT, shmk_lookup(self->fd, "peer-2", &pid, &cid));
	EXPECT_EQ(clients0 + NCHILD - 1, shmk_counter("clients"));
	self->pids[2] = 0;
	shmk_barrier_forget(&self->b, 2);

	/* The rest look themselves up, detach and exit. */
	ASSERT_EQ(0, shmk_barrier_release(&self->b, NCHILD - 1, 1));
	for (i = 0; i < NCHILD; i++) {
		if (!self->pids[i])
			continue;
		EXPECT_TRUE(shmk_status_ok(self->pids[i],
					   shmk_wait(self->pids[i], 20000)));
		self->pids[i] = 0;
	}
	ASSERT_EQ(0, shmk_list_clients(self->fd, arr, NCHILD + 4, &count,
				       &total));
	EXPECT_EQ(1u, total);
	EXPECT_EQ(getpid(), arr[0].pid);
	EXPECT_EQ(clients0, shmk_counter("clients"));
}

static int exit_child(int idx, void *arg)
{
	struct reg_args *ra = arg;
	void *p;
	int fd;

	fd = shmk_attach_opts(ra->ctl, ra->name, 0, 0, 0, 0, "exiter", NULL);
	CHK(fd >= 0);
	p = shmk_map(fd, page_size(), PROT_READ | PROT_WRITE);
	CHK(p != MAP_FAILED);
	if (idx == 1) {
		/* Leave only the mapping behind. */
		close(fd);
	}
	CHK(shmk_barrier_arrive(ra->b) >= 0);
	/* Exit without closing or unmapping anything. */
	return 0;
}

/* Normal exit (fd + mapping, or mapping only) drops the client. */
TEST_F(reg, exit_drops_client)
{
	struct reg_args ra;
	__u32 total;
	int i;

	ra.ctl = self->ctl;
	strcpy(ra.name, self->name);
	ra.b = &self->b;
	ra.sh = self->sh;

	for (i = 0; i < 2; i++) {
		self->pids[i] = shmk_fork(&self->b, exit_child, i, &ra);
		ASSERT_LT(0, self->pids[i]);
		ASSERT_EQ(0, shmk_barrier_wait(&self->b, 1, 20000));
		ASSERT_EQ(0, shmk_list_clients(self->fd, NULL, 0, NULL,
					       &total));
		EXPECT_EQ(2u, total);
		EXPECT_EQ(0, shmk_lookup(self->fd, "exiter", NULL, NULL));
		ASSERT_EQ(0, shmk_barrier_release(&self->b, 1, 1));
		EXPECT_TRUE(shmk_status_ok(self->pids[i],
					   shmk_wait(self->pids[i], 20000)));
		self->pids[i] = 0;
		ASSERT_EQ(0, shmk_list_clients(self->fd, NULL, 0, NULL,
					       &total));
		EXPECT_EQ(1u, total) TH_LOG("child %d still listed", i);
		EXPECT_EQ(-ENOENT, shmk_lookup(self->fd, "exiter", NULL, NULL));
	}
}

/* Closing the fd while a mapping exists keeps the client until munmap. */
TEST_F(reg, mapping_holds_client)
{
	struct shmk_client_info arr[4];
	long long clients0;
	struct shmk_attach a;
	__u32 count, total, cid;
	void *p, *st;
	int fd, fd2;

	clients0 = shmk_counter("clients");
	fd = shmk_attach_opts(self->ctl, self->name, SHMK_ATTACH_RDONLY, 0, 0,
			      0, "mapped", &a);
	ASSERT_LE(0, fd);
	p = shmk_map(fd, page_size(), PROT_READ);
	ASSERT_NE(MAP_FAILED, p);
	close(fd);

	EXPECT_EQ(clients0 + 1, shmk_counter("clients"));
	ASSERT_EQ(0, shmk_list_clients(self->fd, arr, 4, &count, &total));
	EXPECT_EQ(2u, total);
	EXPECT_EQ(a.client_id, arr[1].client_id);
	EXPECT_EQ(SHMK_CLIENT_RDONLY, arr[1].flags);
	EXPECT_STREQ("mapped", arr[1].name);
	ASSERT_EQ(0, shmk_lookup(self->fd, "mapped", NULL, &cid));
	EXPECT_EQ(a.client_id, cid);

	munmap(p, page_size());
	ASSERT_EQ(0, shmk_list_clients(self->fd, arr, 4, &count, &total));
	EXPECT_EQ(1u, total);
	EXPECT_EQ(-ENOENT, shmk_lookup(self->fd, "mapped", NULL, NULL));
	EXPECT_EQ(clients0, shmk_counter("clients"));

	/* Same with the status page as the last reference. */
	fd = shmk_attach_opts(self->ctl, self->name, SHMK_ATTACH_RDONLY, 0, 0,
			      0, "status-only", &a);
	ASSERT_LE(0, fd);
	st = (void *)shmk_map_status(fd);
	ASSERT_NE(NULL, st);
	close(fd);
	EXPECT_EQ(0, shmk_lookup(self->fd, "status-only", NULL, NULL));
	munmap(st, page_size());
	EXPECT_EQ(-ENOENT, shmk_lookup(self->fd, "status-only", NULL, NULL));

	/* A dup()ed fd is the same client: no new entry, kept until both go. */
	fd = shmk_attach_opts(self->ctl, self->name, 0, 0, 0, 0, "dup", NULL);
	ASSERT_LE(0, fd);
	fd2 = dup(fd);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, shmk_list_clients(self->fd, NULL, 0, NULL, &total));
	EXPECT_EQ(2u, total);
	close(fd);
	EXPECT_EQ(0, shmk_lookup(self->fd, "dup", NULL, NULL));
	close(fd2);
	EXPECT_EQ(-ENOENT, shmk_lookup(self->fd, "dup", NULL, NULL));
}

/* Same name twice: LOOKUP finds the first in attach order. */
TEST_F(reg, lookup_first_of_duplicates)
{
	struct shmk_attach a1, a2;
	int fd1, fd2;
	__u32 cid;
	pid_t pid;

	fd1 = shmk_attach_opts(self->ctl, self->name, 0, 0, 0, 0, "twin", &a1);
	ASSERT_LE(0, fd1);
	fd2 = shmk_attach_opts(self->ctl, self->name, 0, 0, 0, 0, "twin", &a2);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, shmk_lookup(self->fd, "twin", &pid, &cid));
	EXPECT_EQ(getpid(), pid);
	EXPECT_EQ(a1.client_id, cid);
	close(fd1);
	ASSERT_EQ(0, shmk_lookup(self->fd, "twin", &pid, &cid));
	EXPECT_EQ(a2.client_id, cid);
	close(fd2);
	EXPECT_EQ(-ENOENT, shmk_lookup(self->fd, "twin", &pid, &cid));
}

TEST_HARNESS_MAIN
