// SPDX-License-Identifier: GPL-2.0
/*
 * shmk status page: layout, values that follow resizes, attaches and
 * detaches, read-only enforcement, and snapshots that are never torn while
 * another process resizes the segment as fast as it can.
 */
#include "shmk_test.h"

#define NKIDS		3

FIXTURE(status) {
	int ctl;
	int fd;
	char name[SHMK_NAME_MAX];
	const struct shmk_status *st;
	struct shmk_attach a;
	pid_t pids[NKIDS];
	struct shmk_barrier b;
};

FIXTURE_SETUP(status)
{
	shmk_barrier_clear(&self->b);
	self->ctl = shmk_open_ctl();
	ASSERT_LE(0, self->ctl);
	SHMK_NAME(self->name, "status");
	self->fd = shmk_attach_opts(self->ctl, self->name,
				    SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL,
				    0600, 2 * page_size(), 64 * page_size(),
				    "main", &self->a);
	ASSERT_LE(0, self->fd);
	self->st = shmk_map_status(self->fd);
	ASSERT_NE(NULL, self->st);
	ASSERT_EQ(0, shmk_barrier_init(&self->b));
}

FIXTURE_TEARDOWN(status)
{
	shmk_kill_children(NKIDS, self->pids);
	shmk_barrier_destroy(&self->b);
	if (self->st)
		munmap((void *)self->st, page_size());
	if (self->fd >= 0)
		close(self->fd);
	shmk_cleanup();
	close(self->ctl);
}

static int find_client(const struct shmk_status *s, pid_t pid)
{
	__u32 i;

	for (i = 0; i < s->table_len && i < SHMK_STATUS_MAX_CLIENTS; i++)
		if (s->clients[i].pid == pid)
			return (int)i;
	return -1;
}

TEST_F(status, layout_and_values)
{
	struct shmk_status s;
	struct shmk_info info;
	size_t pg = page_size();
	struct shmk_resize r;
	int ro, i;
	void *p;

	ASSERT_LE((size_t)sizeof(struct shmk_status), pg);
	ASSERT_LE(0, shmk_status_read(self->st, &s, 2000));
	ASSERT_EQ(0, shmk_get_info(self->fd, &info));

	EXPECT_EQ(SHMK_STATUS_MAGIC, s.magic);
	EXPECT_EQ((__u32)SHMK_STATUS_VERSION, s.version);
	EXPECT_EQ(0u, s.seq & 1);
	EXPECT_EQ(self->a.segment_id, s.segment_id);
	EXPECT_EQ(2 * pg, s.size);
	EXPECT_EQ(64 * pg, s.max_size);
	EXPECT_EQ(info.generation, s.generation);
	EXPECT_EQ(0u, s.base_addr);
	EXPECT_EQ(1u, s.nr_clients);
	EXPECT_EQ(1u, s.table_len);
	EXPECT_EQ(0u, s.reserved0);
	for (i = 0; i < 6; i++)
		EXPECT_EQ(0u, s.reserved[i]);
	EXPECT_EQ(self->a.client_id, s.clients[0].client_id);
	EXPECT_EQ(getpid(), s.clients[0].pid);
	EXPECT_EQ(0u, s.clients[0].flags);
	EXPECT_EQ(0u, s.clients[0].reserved);
	EXPECT_STREQ("main", s.clients[0].name);

	/* base_addr: set by the first data mapping. */
	p = shmk_map(self->fd, 4 * pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_LE(0, shmk_status_read(self->st, &s, 2000));
	EXPECT_EQ((__u64)(uintptr_t)p, s.base_addr);

	/* Size and generation follow grow and shrink at once. */
	ASSERT_EQ(0, shmk_grow(self->fd, 8 * pg, 0, &r));
	ASSERT_LE(0, shmk_status_read(self->st, &s, 2000));
	EXPECT_EQ(8 * pg, s.size);
	EXPECT_EQ(r.generation, s.generation);
	ASSERT_EQ(0, shmk_grow(self->fd, 16 * pg, SHMK_GROW_LAZY, &r));
	ASSERT_LE(0, shmk_status_read(self->st, &s, 2000));
	EXPECT_EQ(16 * pg, s.size);
	EXPECT_EQ(r.generation, s.generation);
	ASSERT_EQ(0, shmk_shrink(self->fd, 3 * pg, &r));
	ASSERT_LE(0, shmk_status_read(self->st, &s, 2000));
	EXPECT_EQ(3 * pg, s.size);
	EXPECT_EQ(r.generation, s.generation);
	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	EXPECT_EQ(info.generation, s.generation);
	EXPECT_EQ(info.size, s.size);
	EXPECT_EQ(info.base_addr, s.base_addr);
	munmap(p, 4 * pg);

	/* Attach and detach in this process. */
	ro = shmk_attach_opts(self->ctl, self->name, SHMK_ATTACH_RDONLY, 0, 0,
			      0, "reader", NULL);
	ASSERT_LE(0, ro);
	ASSERT_LE(0, shmk_status_read(self->st, &s, 2000));
	EXPECT_EQ(2u, s.nr_clients);
	EXPECT_EQ(2u, s.table_len);
	EXPECT_EQ(SHMK_CLIENT_RDONLY, s.clients[1].flags);
	EXPECT_STREQ("reader", s.clients[1].name);
	EXPECT_EQ(getpid(), s.clients[1].pid);
	close(ro);
	ASSERT_LE(0, shmk_status_read(self->st, &s, 2000));
	EXPECT_EQ(1u, s.nr_clients);
	EXPECT_EQ(1u, s.table_len);
}

struct kid_args {
	char name[SHMK_NAME_MAX];
	struct shmk_barrier *b;
};

static int kid(int idx, void *arg)
{
	struct kid_args *ka = arg;
	char cname[SHMK_CLIENT_NAME_MAX];
	const struct shmk_status *st;
	struct shmk_status s;
	int fd;

	snprintf(cname, sizeof(cname), "kid-%d", idx);
	fd = shmk_open_simple(ka->name, idx == 1 ? SHMK_ATTACH_WRITER : 0,
			      cname);
	CHK(fd >= 0);
	/* Its own view of the status page agrees. */
	st = shmk_map_status(fd);
	CHK(st != NULL);
	CHK(shmk_status_read(st, &s, 2000) >= 0);
	CHK_EQ(SHMK_STATUS_MAGIC, s.magic);
	CHK(find_client(&s, getpid()) >= 0);
	CHK(shmk_barrier_arrive(ka->b) >= 0);
	/* idx 0 closes and waits; the others exit holding everything. */
	if (idx == 0) {
		munmap((void *)st, page_size());
		close(fd);
		CHK(shmk_barrier_arrive(ka->b) >= 0);
	}
	return 0;
}

TEST_F(status, clients_table)
{
	char cname[SHMK_CLIENT_NAME_MAX];
	struct kid_args ka;
	struct shmk_status s;
	int i, j;

	strcpy(ka.name, self->name);
	ka.b = &self->b;
	for (i = 0; i < NKIDS; i++) {
		self->pids[i] = shmk_fork(&self->b, kid, i, &ka);
		ASSERT_LT(0, self->pids[i]);
		ASSERT_EQ(0, shmk_barrier_wait(&self->b, 1, 20000));
	}

	ASSERT_LE(0, shmk_status_read(self->st, &s, 2000));
	EXPECT_EQ(NKIDS + 1, (int)s.nr_clients);
	EXPECT_EQ(NKIDS + 1, (int)s.table_len);
	EXPECT_EQ(getpid(), s.clients[0].pid);
	for (i = 0; i < NKIDS; i++) {
		snprintf(cname, sizeof(cname), "kid-%d", i);
		j = find_client(&s, self->pids[i]);
		ASSERT_EQ(i + 1, j) TH_LOG("kid %d", i);
		EXPECT_STREQ(cname, s.clients[j].name);
		EXPECT_EQ(i == 1 ? SHMK_CLIENT_WRITER : 0u, s.clients[j].flags);
		EXPECT_NE(0u, s.clients[j].client_id);
	}

	/* kid 0 detaches but lives on; the others exit. */
	ASSERT_EQ(0, shmk_barrier_release(&self->b, NKIDS, 1));
	ASSERT_EQ(0, shmk_barrier_wait(&self->b, 1, 20000));
	for (i = 1; i < NKIDS; i++) {
		EXPECT_TRUE(shmk_status_ok(self->pids[i],
					   shmk_wait(self->pids[i], 20000)));
		self->pids[i] = 0;
	}
	ASSERT_LE(0, shmk_status_read(self->st, &s, 2000));
	EXPECT_EQ(1u, s.nr_clients);
	EXPECT_EQ(1u, s.table_len);
	EXPECT_EQ(getpid(), s.clients[0].pid);
	EXPECT_EQ(-1, find_client(&s, self->pids[0]));
	ASSERT_EQ(0, shmk_barrier_release(&self->b, 1, 2));
	EXPECT_TRUE(shmk_status_ok(self->pids[0],
				   shmk_wait(self->pids[0], 20000)));
	self->pids[0] = 0;
}

TEST_F(status, read_only)
{
	const struct shmk_status *st2;
	size_t pg = page_size();
	void *p;
	int ro;

	p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		 (off_t)SHMK_STATUS_OFFSET);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EACCES, errno);
	p = mmap(NULL, pg, PROT_WRITE, MAP_SHARED, self->fd,
		 (off_t)SHMK_STATUS_OFFSET);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EACCES, errno);

	/* The existing read-only mapping cannot be made writable later. */
	EXPECT_EQ(-1, mprotect((void *)self->st, pg, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(SHMK_STATUS_MAGIC, self->st->magic);

	/* One page exactly, at exactly that offset. */
	p = mmap(NULL, 2 * pg, PROT_READ, MAP_SHARED, self->fd,
		 (off_t)SHMK_STATUS_OFFSET);
	EXPECT_EQ(MAP_FAILED, p);
	if (p != MAP_FAILED)
		munmap(p, 2 * pg);
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, self->fd,
		 (off_t)(SHMK_STATUS_OFFSET + pg));
	EXPECT_EQ(MAP_FAILED, p);
	if (p != MAP_FAILED)
		munmap(p, pg);

	/* A read-only client may map it too. */
	ro = shmk_open(self->ctl, self->name, SHMK_ATTACH_RDONLY, NULL);
	ASSERT_LE(0, ro);
	st2 = shmk_map_status(ro);
	EXPECT_NE(NULL, st2);
	if (st2) {
		EXPECT_EQ(self->a.segment_id, st2->segment_id);
		munmap((void *)st2, pg);
	}
	close(ro);
}

/* ---- torn snapshots -------------------------------------------------- */

#define MAX_OBS		(1 << 16)
#define TORN_MS		2000

struct obs {
	__u64 generation;
	__u64 size;
};

struct torn_shared {
	int stop;
	int bad;		/* inconsistent snapshots seen */
	unsigned long snaps;
	unsigned long retries;
	unsigned int nobs;
	struct obs obs[MAX_OBS];
};

struct torn_args {
	char name[SHMK_NAME_MAX];
	struct shmk_barrier *b;
	struct torn_shared *sh;
	__u64 base_addr, max_size, segment_id;
};

static int torn_reader(int idx, void *arg)
{
	struct torn_args *ta = arg;
	struct torn_shared *sh = ta->sh;
	const struct shmk_status *st;
	struct shmk_status s;
	__u64 last_gen = 0, last_size = ~0ULL;
	int fd, ret;

	(void)idx;
	fd = shmk_open_simple(ta->name, SHMK_ATTACH_RDONLY, "torn-reader");
	CHK(fd >= 0);
	st = shmk_map_status(fd);
	CHK(st != NULL);
	CHK(shmk_barrier_arrive(ta->b) >= 0);

	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		ret = shmk_status_read(st, &s, 5000);
		CHK(ret >= 0);
		sh->retries += ret;
		sh->snaps++;
		if (s.magic != SHMK_STATUS_MAGIC ||
		    s.max_size != ta->max_size ||
		    s.base_addr != ta->base_addr ||
		    s.segment_id != ta->segment_id ||
		    s.table_len != (s.nr_clients < SHMK_STATUS_MAX_CLIENTS ?
				    s.nr_clients : SHMK_STATUS_MAX_CLIENTS) ||
		    s.generation < last_gen) {
			if (sh->bad++ < 5)
				fprintf(stderr, "# bad snapshot: magic %#x max %llu base %#llx nr %u len %u gen %llu (last %llu)\n",
					s.magic,
					(unsigned long long)s.max_size,
					(unsigned long long)s.base_addr,
					s.nr_clients, s.table_len,
					(unsigned long long)s.generation,
					(unsigned long long)last_gen);
		}
		if (s.generation != last_gen || s.size != last_size) {
			if (sh->nobs < MAX_OBS) {
				sh->obs[sh->nobs].generation = s.generation;
				sh->obs[sh->nobs].size = s.size;
				sh->nobs++;
			}
			last_gen = s.generation;
			last_size = s.size;
		}
	}
	munmap((void *)st, page_size());
	close(fd);
	return 0;
}

TEST_F_TIMEOUT(status, no_torn_snapshots, 120)
{
	size_t pg = page_size();
	__u64 rnd = 42, size, cur, gen0, *pub;
	unsigned int npub = 0, maxpub = 1 << 20, i, bad = 0;
	struct shmk_resize r;
	struct torn_shared *sh;
	struct shmk_info info;
	struct torn_args ta;
	__u64 end;
	char *p;
	int fd;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	pub = calloc(maxpub, sizeof(*pub));
	ASSERT_NE(NULL, pub);

	p = shmk_map(self->fd, 64 * pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, shmk_get_info(self->fd, &info));
	gen0 = info.generation;
	cur = info.size;
	pub[npub++] = cur;	/* pub[g - gen0] = size at generation g */

	strcpy(ta.name, self->name);
	ta.b = &self->b;
	ta.sh = sh;
	ta.base_addr = (__u64)(uintptr_t)p;
	ta.max_size = info.max_size;
	ta.segment_id = info.segment_id;
	self->pids[0] = shmk_fork(&self->b, torn_reader, 0, &ta);
	ASSERT_LT(0, self->pids[0]);
	ASSERT_EQ(0, shmk_barrier_wait(&self->b, 1, 20000));
	ASSERT_EQ(0, shmk_barrier_release(&self->b, 1, 1));

	end = mono_ms() + TORN_MS;
	while (mono_ms() < end && npub < maxpub) {
		/* A new size each time, so every step is a change. */
		do
			size = (1 + rnd_range(&rnd, 64)) * pg;
		while (size == cur);
		if (size > cur) {
			ASSERT_EQ(0, shmk_grow(self->fd, size,
					       rnd_range(&rnd, 2) ?
					       SHMK_GROW_LAZY : 0, &r));
		} else {
			ASSERT_EQ(0, shmk_shrink(self->fd, size, &r));
		}
		ASSERT_EQ(size, r.new_size);
		ASSERT_EQ(gen0 + npub, r.generation);
		pub[npub++] = size;
		cur = size;
		/* Client churn now and then. */
		if (npub % 16 == 0) {
			fd = shmk_open(self->ctl, self->name,
				       SHMK_ATTACH_RDONLY, "churn");
			ASSERT_LE(0, fd);
			close(fd);
		}
	}
	/* Let the reader see the final state, then stop it. */
	sleep_ms(50);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	EXPECT_TRUE(shmk_status_ok(self->pids[0],
				   shmk_wait(self->pids[0], 30000)));
	self->pids[0] = 0;

	TH_LOG("%u changes published; reader: %lu snapshots, %lu retries, %u distinct",
	       npub - 1, sh->snaps, sh->retries, sh->nobs);
	EXPECT_EQ(0, sh->bad);
	EXPECT_LT(1u, sh->nobs) TH_LOG("reader never saw a change");
	for (i = 0; i < sh->nobs; i++) {
		__u64 g = sh->obs[i].generation;

		if (g < gen0 || g - gen0 >= npub ||
		    pub[g - gen0] != sh->obs[i].size) {
			if (bad++ < 5)
				TH_LOG("torn: generation %llu with size %llu",
				       (unsigned long long)g,
				       (unsigned long long)sh->obs[i].size);
		}
	}
	EXPECT_EQ(0u, bad);
	/* The last thing the reader saw is the final state. */
	if (sh->nobs && sh->nobs < MAX_OBS) {
		EXPECT_EQ(gen0 + npub - 1, sh->obs[sh->nobs - 1].generation);
	}
	munmap(p, 64 * pg);
	free(pub);
	munmap(sh, sizeof(*sh));
}

TEST_HARNESS_MAIN
