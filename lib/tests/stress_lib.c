/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * stress_lib: a crash storm of library users (make stress-lib; not part of
 * make check, for its time). In each round, NMIX processes run random
 * allocs, frees, directory operations (shmk_find_or_alloc(), shmk_remove(),
 * shmk_find()) and message operations (shmk_msg_alloc(), shmk_send(),
 * shmk_msg_free()) on one segment, and one more process receives
 * (shmk_recv()) and frees messages. Each journals, in anonymous memory
 * shared with the parent, what it owns and which operation it is in; every
 * block and named object is filled with a pattern derived from a seed kept
 * in the journal. The parent SIGKILLs a random non-empty subset at a random
 * moment (and some kill themselves at a random fault point of the library,
 * SHMK_FAULT_INJECT), stops the rest, and then:
 *
 *  - shmk_check() passes (the first lock recovers the dead owner's);
 *  - it takes the queue over as its receiver and drains it: every message
 *    is intact and each sender's messages come in order; every message a
 *    sender counted as sent was received, but the one a killed receiver
 *    was taking;
 *  - every block and name the journals hold is allocated, with its contents
 *    intact; every other allocated block (shmk__alloc_walk()) is the
 *    directory's or the one a killed process was allocating or freeing
 *    (at most one per killed process with such an operation in flight),
 *    and the parent frees it; a named object no journal holds is the one a
 *    killed process was creating;
 *  - shmk_stats(): live_allocs is the journals' count of blocks, and
 *    named_objects their count of names (and the queue).
 *
 * What survivors and journals own carries over to the next round, where
 * new processes take it over (free it, send it, look it up). Every
 * CLEAN_EVERY rounds and at the end the parent frees it all: live_allocs
 * must then be 0 and used_bytes back to the directory's and the queue's.
 *
 * Usage: stress_lib [-r ROUNDS] (default 1000, or STRESS_ROUNDS), on the
 * backend SHMK_BACKEND selects; SHMK_TEST_SEED replays a run. The last line
 * says the rounds survived, the kills, and the blocks lost with the bound.
 */
#include "internal.h"
#include "page_heap.h"
#include "small.h"
#include "directory.h"
#include "harness.h"
#include "blocks.h"

#define NMIX		3		/* processes doing everything */
#define NPROC		(NMIX + 1)	/* and the receiver, the last */
#define MAXLIVE		96		/* blocks a process may own */
#define MAXNAMES	24		/* names a process may own */
#define CLEAN_EVERY	50
#define ROUND_TIMEOUT	120		/* seconds: a round that hangs */
#define QNAME		"stress"
#define QCAP		64
#define MSG_HDR_BYTES	16		/* queue.c's MSG_HDR before a message */
#define MSG_MAGIC_T	0x4d534753u

enum op {
	OP_NONE, OP_ALLOC, OP_FREE, OP_CREATE, OP_REMOVE, OP_FIND,
	OP_MSG_ALLOC, OP_SEND, OP_MSG_FREE, OP_RECV, OP_VERIFY, NOPS
};

static const char *const op_names[NOPS] = {
	"none", "alloc", "free", "create", "remove", "find", "msg_alloc",
	"send", "msg_free", "recv", "verify",
};

enum kind { K_BLOCK = 1, K_MSG };

/* A block or message a process owns: live while off != 0. */
struct ent {
	volatile uint64_t off;		/* payload offset (shmk_off()) */
	uint64_t size, seed;
	uint32_t kind;
};

struct nent {
	volatile int valid;
	uint64_t size, seed;
	char name[32];
};

struct journal {
	volatile int ready, stop;
	volatile int op;		/* in flight */
	volatile int slot;
	volatile uint64_t ioff;		/* the block being freed, received */
	volatile uint64_t iseq;		/* the message being sent */
	char iname[32];			/* the name being created */
	volatile uint64_t sent;		/* sender: next sequence number */
	volatile uint64_t next[NMIX];	/* receiver: next expected */
	volatile long ops, fault;
	volatile uint64_t names_made;
	struct ent live[MAXLIVE];
	struct nent names[MAXNAMES];
};

/* A message's own header, after the library's. */
struct msg {
	uint32_t sender, magic;
	uint64_t seq, seed, size;
};

static const char *seg;
static struct journal *js;
static uint32_t round_no;

#define JB() __atomic_thread_fence(__ATOMIC_SEQ_CST)

/* ---- contents ---------------------------------------------------------- */

static void fill(uint8_t *p, uint64_t n, uint64_t seed)
{
	if (n >= 8) {
		memcpy(p, &seed, 8);
		p += 8;
		n -= 8;
	}
	memset(p, (int)(0x40 | (seed >> 56)), n);
}

static bool intact(const uint8_t *p, uint64_t n, uint64_t seed)
{
	const uint8_t c = (uint8_t)(0x40 | (seed >> 56));

	if (n >= 8) {
		if (memcmp(p, &seed, 8))
			return false;
		p += 8;
		n -= 8;
	}
	for (uint64_t i = 0; i < n; i++)
		if (p[i] != c)
			return false;
	return true;
}

static bool msg_intact(const struct msg *m, size_t size)
{
	return m->magic == MSG_MAGIC_T && m->size == size &&
	       size >= sizeof(*m) &&
	       intact((const uint8_t *)(m + 1), size - sizeof(*m), m->seed);
}

static bool ent_intact(struct shmk *h, const struct ent *e)
{
	const uint8_t *p = shmk_ptr(h, e->off);

	if (!p)
		return false;
	if (e->kind == K_MSG) {
		const struct msg *m = (const void *)p;

		return m->seed == e->seed && msg_intact(m, e->size);
	}
	return intact(p, e->size, e->seed);
}

/* ---- the processes ------------------------------------------------------ */

#define WFAIL(...)							\
	do {								\
		fprintf(stderr, "worker %d, round %u: ", id, round_no);	\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		return 10;						\
	} while (0)

/* A live entry of @kind (0: any) from a random start; -1 when none. */
static int pick_live(const struct journal *j, uint32_t kind)
{
	int s = (int)rnd_below(MAXLIVE);

	for (int k = 0; k < MAXLIVE; k++) {
		int i = (s + k) % MAXLIVE;

		if (j->live[i].off && (!kind || j->live[i].kind == kind))
			return i;
	}
	return -1;
}

static int pick_empty(const struct journal *j)
{
	int s = (int)rnd_below(MAXLIVE);

	for (int k = 0; k < MAXLIVE; k++)
		if (!j->live[(s + k) % MAXLIVE].off)
			return (s + k) % MAXLIVE;
	return -1;
}

static int pick_name(const struct journal *j, bool valid)
{
	int s = (int)rnd_below(MAXNAMES);

	for (int k = 0; k < MAXNAMES; k++)
		if (!!j->names[(s + k) % MAXNAMES].valid == valid)
			return (s + k) % MAXNAMES;
	return -1;
}

static void begin(struct journal *j, int op, int slot)
{
	j->slot = slot;
	JB();
	j->op = op;
	JB();
}

static void end(struct journal *j)
{
	JB();
	j->op = OP_NONE;
	JB();
	j->ops++;
}

static int mixed(void *arg)
{
	int id = (int)(intptr_t)arg;
	struct journal *j = &js[id];
	struct shmk_queue *q;
	struct shmk *h;
	int r;

	test_rng_state ^= (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
	r = shmk_open(seg, 0, NULL, &h);
	if (r)
		WFAIL("shmk_open: %s", strerror(-r));
	r = shmk_queue_open(h, QNAME, 0, NULL, &q);
	if (r)
		WFAIL("shmk_queue_open: %s", strerror(-r));
	j->ready = 1;
	shmk__fault_countdown = j->fault;
	while (!j->stop) {
		uint64_t x = rnd_below(100);
		int i;

		if (x < 22) {				/* alloc */
			uint64_t n = rnd_below(4) ? 1 + rnd_below(600)
						  : 1 + rnd_below(40000);
			uint64_t seed = rnd();
			uint8_t *p;

			i = pick_empty(j);
			if (i < 0)
				continue;
			begin(j, OP_ALLOC, i);
			p = shmk_alloc(h, n);
			if (!p)
				WFAIL("shmk_alloc(%llu): %s",
				      (unsigned long long)n, strerror(errno));
			fill(p, n, seed);
			j->live[i].size = n;
			j->live[i].seed = seed;
			j->live[i].kind = K_BLOCK;
			JB();
			j->live[i].off = shmk_off(h, p);
			end(j);
		} else if (x < 40) {			/* free */
			i = pick_live(j, K_BLOCK);
			if (i < 0)
				continue;
			if (!ent_intact(h, &j->live[i]))
				WFAIL("block %#llx not intact before free",
				      (unsigned long long)j->live[i].off);
			j->ioff = j->live[i].off;
			begin(j, OP_FREE, i);
			shmk_free(h, shmk_ptr(h, j->ioff));
			JB();
			j->live[i].off = 0;
			end(j);
		} else if (x < 50) {			/* create */
			uint64_t n = 1 + rnd_below(3000), seed = rnd();
			int created = 0;
			uint8_t *p;

			i = pick_name(j, false);
			if (i < 0)
				continue;
			snprintf(j->iname, sizeof(j->iname), "w%d-%llu", id,
				 (unsigned long long)j->names_made++);
			begin(j, OP_CREATE, i);
			p = shmk_find_or_alloc(h, j->iname, n, &created);
			if (!p || !created)
				WFAIL("shmk_find_or_alloc(%s): %p, created %d, "
				      "%s", j->iname, (void *)p, created,
				      strerror(errno));
			fill(p, n, seed);
			j->names[i].size = n;
			j->names[i].seed = seed;
			memcpy(j->names[i].name, j->iname, 32);
			JB();
			j->names[i].valid = 1;
			end(j);
		} else if (x < 57) {			/* remove */
			i = pick_name(j, true);
			if (i < 0)
				continue;
			begin(j, OP_REMOVE, i);
			r = shmk_remove(h, j->names[i].name);
			if (r)
				WFAIL("shmk_remove(%s): %s", j->names[i].name,
				      strerror(-r));
			JB();
			j->names[i].valid = 0;
			end(j);
		} else if (x < 65) {			/* find */
			size_t sz = 0;
			uint8_t *p;

			i = pick_name(j, true);
			if (i < 0)
				continue;
			begin(j, OP_FIND, i);
			p = shmk_find(h, j->names[i].name, &sz);
			if (!p || sz < j->names[i].size ||
			    !intact(p, j->names[i].size, j->names[i].seed))
				WFAIL("shmk_find(%s): %p, size %zu, not intact",
				      j->names[i].name, (void *)p, sz);
			end(j);
		} else if (x < 77) {			/* msg_alloc */
			uint64_t n = sizeof(struct msg) +
				     (rnd_below(4) ? rnd_below(500)
						   : rnd_below(20000));
			struct msg *m;

			i = pick_empty(j);
			if (i < 0)
				continue;
			begin(j, OP_MSG_ALLOC, i);
			m = shmk_msg_alloc(h, n);
			if (!m)
				WFAIL("shmk_msg_alloc(%llu): %s",
				      (unsigned long long)n, strerror(errno));
			m->sender = (uint32_t)id;
			m->magic = MSG_MAGIC_T;
			m->seq = UINT64_MAX;
			m->seed = rnd();
			m->size = n;
			fill((uint8_t *)(m + 1), n - sizeof(*m), m->seed);
			j->live[i].size = n;
			j->live[i].seed = m->seed;
			j->live[i].kind = K_MSG;
			JB();
			j->live[i].off = shmk_off(h, m);
			end(j);
		} else if (x < 89) {			/* send */
			struct msg *m;

			i = pick_live(j, K_MSG);
			if (i < 0)
				continue;
			m = shmk_ptr(h, j->live[i].off);
			if (!ent_intact(h, &j->live[i]))
				WFAIL("message %#llx not intact before send",
				      (unsigned long long)j->live[i].off);
			m->sender = (uint32_t)id;
			m->seq = j->sent;
			j->iseq = j->sent;
			begin(j, OP_SEND, i);
			r = shmk_send(q, m, rnd_below(8) ? SHMK_NONBLOCK : 0);
			JB();
			if (!r) {
				j->live[i].off = 0;
				JB();
				j->sent++;
			} else if (r != -EAGAIN && r != -ECONNRESET) {
				WFAIL("shmk_send: %s", strerror(-r));
			}
			end(j);
			if (r == -EAGAIN || r == -ECONNRESET)
				sched_yield();
		} else if (x < 94) {			/* msg_free */
			i = pick_live(j, K_MSG);
			if (i < 0)
				continue;
			if (!ent_intact(h, &j->live[i]))
				WFAIL("message %#llx not intact before free",
				      (unsigned long long)j->live[i].off);
			j->ioff = j->live[i].off;
			begin(j, OP_MSG_FREE, i);
			shmk_msg_free(h, shmk_ptr(h, j->ioff));
			JB();
			j->live[i].off = 0;
			end(j);
		} else {				/* verify */
			i = pick_live(j, 0);
			if (i < 0)
				continue;
			begin(j, OP_VERIFY, i);
			if (!ent_intact(h, &j->live[i]))
				WFAIL("%#llx not intact",
				      (unsigned long long)j->live[i].off);
			end(j);
		}
	}
	shmk__fault_countdown = 0;
	shmk_queue_close(q);
	shmk_close(h);
	return 0;
}

static int receiver(void *arg)
{
	int id = NMIX;
	struct journal *j = &js[id];
	struct shmk_queue *q;
	struct shmk *h;
	int r;

	(void)arg;
	test_rng_state ^= (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
	r = shmk_open(seg, 0, NULL, &h);
	if (r)
		WFAIL("shmk_open: %s", strerror(-r));
	r = shmk_queue_open(h, QNAME, SHMK_QUEUE_RECV, NULL, &q);
	if (r)
		WFAIL("shmk_queue_open(RECV): %s", strerror(-r));
	j->ready = 1;
	shmk__fault_countdown = j->fault;
	while (!j->stop) {
		struct msg *m;
		size_t sz;

		begin(j, OP_RECV, 0);
		r = shmk_recv(q, (void **)&m, &sz, 2000000);
		if (r == -ETIMEDOUT) {
			end(j);
			continue;
		}
		if (r)
			WFAIL("shmk_recv: %s", strerror(-r));
		j->ioff = shmk_off(h, m);
		if (!msg_intact(m, sz) || m->sender >= NMIX ||
		    m->seq != j->next[m->sender])
			WFAIL("message %#llx from %u seq %llu (expected %llu), "
			      "size %zu: not intact or out of order",
			      (unsigned long long)j->ioff, m->sender,
			      (unsigned long long)m->seq,
			      m->sender < NMIX ?
			      (unsigned long long)j->next[m->sender] : 0ULL, sz);
		j->next[m->sender]++;
		JB();
		j->op = OP_MSG_FREE;
		JB();
		shmk_msg_free(h, m);
		end(j);
	}
	shmk__fault_countdown = 0;
	shmk_queue_close(q);
	shmk_close(h);
	return 0;
}

/* ---- accounting --------------------------------------------------------- */

/* The block (shmk__alloc_walk()'s offset) of an entry. */
static uint64_t ent_block(const struct ent *e)
{
	return e->kind == K_MSG ? e->off - MSG_HDR_BYTES : e->off;
}

struct dir_acc {
	struct shmk *h;
	struct blocks *expected;
	struct blocks *strays;		/* killed creates: remove them */
	char (*stray_names)[32];
	int nstray;
};

static bool journals_have_name(const char *name)
{
	for (int c = 0; c < NMIX; c++)
		for (int i = 0; i < MAXNAMES; i++)
			if (js[c].names[i].valid &&
			    !strncmp(js[c].names[i].name, name, 32))
				return true;
	return false;
}

static int dir_fn(const char *name, void *ptr, size_t size, void *arg)
{
	struct dir_acc *a = arg;

	(void)size;
	blocks_add(a->expected, shmk_off(a->h, ptr) -
				dir_obj_delta(strlen(name)));
	if (!strncmp(name, "shmk.queue/", 11) || journals_have_name(name))
		return 0;
	for (int c = 0; c < NMIX; c++)
		if (js[c].op == OP_CREATE && !strncmp(js[c].iname, name, 32)) {
			CHECK(a->nstray < NMIX);
			memcpy(a->stray_names[a->nstray++], name, 32);
			return 0;
		}
	fprintf(stderr, "round %u: named object %s has no owner\n", round_no,
		name);
	return -1;
}

struct totals {
	long kills, faults, lost, bound, inflight_bound, ops, msgs, drained;
	long sent_killed, recv_lost;
};

static struct totals tot;

/* Take the queue over, drain it, check every sender's messages. */
static void drain(struct shmk *h, const bool *killed)
{
	const struct journal *rj = &js[NMIX];
	bool lost_ok = killed[NMIX] && rj->op != OP_NONE;
	uint64_t next[NMIX];
	struct shmk_queue *q;
	struct msg *m;
	size_t sz;
	int r;

	for (int i = 0; i < NMIX; i++)
		next[i] = rj->next[i];
	r = shmk_queue_open(h, QNAME, SHMK_QUEUE_RECV, NULL, &q);
	if (r < 0) {
		fprintf(stderr, "round %u: shmk_queue_open(RECV): %s\n",
			round_no, strerror(-r));
		test_fail();
	}
	while (shmk_recv(q, (void **)&m, &sz, 0) == 0) {
		if (!msg_intact(m, sz) || m->sender >= NMIX) {
			fprintf(stderr, "round %u: drained message %#llx not "
				"intact\n", round_no,
				(unsigned long long)shmk_off(h, m));
			test_fail();
		}
		if (m->seq == next[m->sender] + 1 && lost_ok) {
			lost_ok = false;	/* the dead receiver's */
			tot.recv_lost++;
			next[m->sender]++;
		}
		if (m->seq != next[m->sender]) {
			fprintf(stderr, "round %u: drained from %u seq %llu, "
				"expected %llu\n", round_no, m->sender,
				(unsigned long long)m->seq,
				(unsigned long long)next[m->sender]);
			test_fail();
		}
		next[m->sender]++;
		tot.drained++;
		shmk_msg_free(h, m);
	}
	CHECK_OK(shmk_queue_close(q));

	for (int c = 0; c < NMIX; c++) {
		struct journal *j = &js[c];

		/* A killed send: sent if it was received. */
		if (killed[c] && j->op == OP_SEND) {
			if (j->sent == j->iseq + 1) {
				/* killed after counting it */
			} else if (next[c] > j->iseq) {
				j->live[j->slot].off = 0;
				j->sent = j->iseq + 1;
				tot.sent_killed++;
			} else {
				CHECK_EQ(j->sent, j->iseq);
			}
			j->op = OP_NONE;
		}
		if (next[c] == j->sent)
			continue;
		/* Taken by a receiver killed before it counted it. */
		if (next[c] + 1 == j->sent && lost_ok) {
			lost_ok = false;
			tot.recv_lost++;
			continue;
		}
		fprintf(stderr, "round %u: sender %d sent %llu, %llu received\n",
			round_no, c, (unsigned long long)j->sent,
			(unsigned long long)next[c]);
		test_fail();
	}
	/* The next round's receiver starts where this one ended. */
	for (int c = 0; c < NMIX; c++)
		js[NMIX].next[c] = js[c].sent;
}

static bool loses(int op)
{
	return op == OP_ALLOC || op == OP_FREE || op == OP_CREATE ||
	       op == OP_REMOVE || op == OP_MSG_ALLOC || op == OP_MSG_FREE ||
	       op == OP_RECV;
}

static void account(struct shmk *h, const bool *killed)
{
	struct blocks used = { 0 }, expected = { 0 };
	char stray_names[NMIX][32];
	struct dir_acc da = { h, &expected, NULL, stray_names, 0 };
	long extra = 0, allowed = 0, nlive = 0, nnames = 0;
	struct shmk_stats st;

	CHECK_OK(shmk__alloc_walk(h, blocks_walk_fn, &used));
	blocks_sort(&used);
	blocks_add(&expected, h->hdr->dir_table);
	if (shmk_foreach(h, dir_fn, &da) < 0)
		test_fail();

	for (int c = 0; c < NPROC; c++) {
		struct journal *j = &js[c];

		if (!killed[c] && j->op != OP_NONE) {
			fprintf(stderr, "round %u: survivor %d stopped in %s\n",
				round_no, c, op_names[j->op]);
			test_fail();
		}
		if (killed[c] && loses(j->op))
			allowed++;
		if (c == NMIX)
			continue;
		for (int i = 0; i < MAXLIVE; i++) {
			struct ent *e = &j->live[i];

			if (!e->off)
				continue;
			if ((j->op == OP_FREE || j->op == OP_MSG_FREE) &&
			    j->slot == i)
				continue;	/* being freed */
			if (!blocks_has(&used, ent_block(e))) {
				fprintf(stderr, "round %u: process %d's block "
					"%#llx (%s) lost\n", round_no, c,
					(unsigned long long)e->off,
					e->kind == K_MSG ? "message" : "block");
				test_fail();
			}
			if (!ent_intact(h, e)) {
				fprintf(stderr, "round %u: process %d's block "
					"%#llx not intact\n", round_no, c,
					(unsigned long long)e->off);
				test_fail();
			}
			blocks_add(&expected, ent_block(e));
		}
		for (int i = 0; i < MAXNAMES; i++) {
			struct nent *n = &j->names[i];
			size_t sz = 0;
			uint8_t *p;

			if (!n->valid)
				continue;
			p = shmk_find(h, n->name, &sz);
			if (j->op == OP_REMOVE && j->slot == i) {
				if (p)		/* not removed yet */
					CHECK_OK(shmk_remove(h, n->name));
				continue;
			}
			if (!p || sz < n->size || !intact(p, n->size, n->seed)) {
				fprintf(stderr, "round %u: process %d's object "
					"%s %s\n", round_no, c, n->name,
					p ? "not intact" : "lost");
				test_fail();
			}
		}
	}
	blocks_sort(&expected);
	for (size_t i = 0; i < used.n; i++) {
		if (blocks_has(&expected, used.off[i]))
			continue;
		extra++;
		shmk_free(h, shmk_ptr(h, used.off[i]));
	}
	/* A named object a killed create left: its block, in flight. */
	for (int k = 0; k < da.nstray; k++) {
		CHECK_OK(shmk_remove(h, stray_names[k]));
		extra++;
	}
	if (extra > allowed) {
		fprintf(stderr, "round %u: %ld blocks lost, %ld allowed (killed "
			"in flight)\n", round_no, extra, allowed);
		for (int c = 0; c < NPROC; c++)
			fprintf(stderr, "  process %d: %s, in %s\n", c,
				killed[c] ? "killed" : "stopped",
				op_names[js[c].op]);
		test_fail();
	}
	tot.lost += extra;
	tot.inflight_bound += allowed;

	/* The journals are what is left: make them so. */
	for (int c = 0; c < NPROC; c++) {
		struct journal *j = &js[c];

		if (c < NMIX && (j->op == OP_FREE || j->op == OP_MSG_FREE))
			j->live[j->slot].off = 0;
		if (c < NMIX && j->op == OP_REMOVE)
			j->names[j->slot].valid = 0;
		j->op = OP_NONE;
		if (c == NMIX)
			continue;
		for (int i = 0; i < MAXLIVE; i++)
			nlive += !!j->live[i].off;
		for (int i = 0; i < MAXNAMES; i++)
			nnames += !!j->names[i].valid;
	}
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_stats(h, &st));
	if ((long)st.live_allocs != nlive ||
	    (long)st.named_objects != nnames + 1) {
		fprintf(stderr, "round %u: shmk_stats: %llu live allocations, "
			"%llu named objects; the journals: %ld and %ld + the "
			"queue\n", round_no,
			(unsigned long long)st.live_allocs,
			(unsigned long long)st.named_objects, nlive, nnames);
		test_fail();
	}
	free(used.off);
	free(expected.off);
}

static uint64_t dir_table_block(struct shmk *h)
{
	return blk_size(shmk__rd(h, h->hdr->dir_table - 8));
}

/* Free what the journals hold: the heap is back to the directory's. */
static void clean(struct shmk *h, uint64_t base_used, uint64_t base_table)
{
	struct shmk_stats st;

	for (int c = 0; c < NMIX; c++) {
		struct journal *j = &js[c];

		for (int i = 0; i < MAXLIVE; i++) {
			struct ent *e = &j->live[i];

			if (!e->off)
				continue;
			if (e->kind == K_MSG)
				shmk_msg_free(h, shmk_ptr(h, e->off));
			else
				shmk_free(h, shmk_ptr(h, e->off));
			e->off = 0;
		}
		for (int i = 0; i < MAXNAMES; i++) {
			if (!j->names[i].valid)
				continue;
			CHECK_OK(shmk_remove(h, j->names[i].name));
			j->names[i].valid = 0;
		}
	}
	CHECK_OK(shmk_check(h));
	CHECK_OK(shmk_stats(h, &st));
	if (st.live_allocs != 0 || st.named_objects != 1 ||
	    st.used_bytes != base_used - base_table + dir_table_block(h)) {
		fprintf(stderr, "round %u: after freeing everything: %llu live "
			"allocations, %llu named objects, %llu bytes used "
			"(expected 0, 1, %llu)\n", round_no,
			(unsigned long long)st.live_allocs,
			(unsigned long long)st.named_objects,
			(unsigned long long)st.used_bytes,
			(unsigned long long)(base_used - base_table +
					     dir_table_block(h)));
		test_fail();
	}
}

static void on_alarm(int sig)
{
	static const char msg[] = "stress-lib: a round took more than 120 "
				  "seconds: hung\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	test_fail();
}

static void wait_ready(const pid_t *pids)
{
	for (int c = 0; c < NPROC; c++) {
		while (!js[c].ready) {
			int ws;

			if (waitpid(pids[c], &ws, WNOHANG) == pids[c]) {
				fprintf(stderr, "round %u: process %d ended "
					"early: %#x\n", round_no, c, ws);
				test_fail();
			}
			usleep(100);
		}
	}
}

/* Wait for a process; a SIGKILL it did not get from us is a fault point. */
static void reap(pid_t pid, int c, bool *killed)
{
	int st = test_wait(pid);

	if (st == 128 + SIGKILL && !killed[c] && js[c].fault) {
		killed[c] = true;
		tot.faults++;
	}
	if (st != (killed[c] ? 128 + SIGKILL : 0)) {
		fprintf(stderr, "round %u: process %d ended with status %d "
			"(%s)\n", round_no, c, st,
			killed[c] ? "killed" : "stopped");
		test_fail();
	}
	tot.kills += killed[c];
}

int main(int argc, char **argv)
{
	const char *env = getenv("STRESS_ROUNDS");
	long rounds = env ? atol(env) : 1000;
	uint64_t base_used, base_table;
	struct shmk_queue_opts qo = { .capacity = QCAP };
	struct shmk_queue *q;
	struct shmk_stats st;
	struct shmk *h;
	int opt;

	while ((opt = getopt(argc, argv, "r:")) != -1) {
		if (opt != 'r') {
			fprintf(stderr, "usage: %s [-r ROUNDS]\n", argv[0]);
			return 2;
		}
		rounds = atol(optarg);
	}
	if (rounds < 1)
		rounds = 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	test_seed();
	seg = test_name("slib");
	js = test_shared(NPROC * sizeof(*js));
	h = test_open(seg, SHMK_CREATE, 1 << 20, 256 << 20);
	printf("stress-lib: backend %s, %ld rounds of %d processes\n",
	       shmk_backend(h), rounds, NPROC);
	CHECK_OK(shmk_queue_open(h, QNAME, SHMK_QUEUE_RECV, &qo, &q));
	CHECK_OK(shmk_queue_close(q));
	CHECK_OK(shmk_stats(h, &st));
	base_used = st.used_bytes;
	base_table = dir_table_block(h);

	for (long round = 0; round < rounds; round++) {
		unsigned int mask = 1 + (unsigned int)rnd_below((1 << NPROC) - 1);
		bool killed[NPROC];
		pid_t pids[NPROC];

		round_no = (uint32_t)round;
		alarm(ROUND_TIMEOUT);
		for (int c = 0; c < NPROC; c++) {
			js[c].ready = js[c].stop = 0;
			js[c].ops = 0;
			js[c].fault = rnd_below(4) ? 0 : 1 + (long)rnd_below(300);
		}
		for (int c = 0; c < NMIX; c++)
			tot.msgs -= (long)js[c].sent;
		pids[NMIX] = test_fork(receiver, NULL);
		for (int c = 0; c < NMIX; c++)
			pids[c] = test_fork(mixed, (void *)(intptr_t)c);
		wait_ready(pids);
		usleep((useconds_t)rnd_below(5000));
		for (int c = 0; c < NPROC; c++) {
			killed[c] = mask & (1u << c);
			if (killed[c])
				kill(pids[c], SIGKILL);
		}
		/* Senders first: a live receiver makes room for them. */
		for (int c = 0; c < NMIX; c++) {
			js[c].stop = 1;
			reap(pids[c], c, killed);
		}
		js[NMIX].stop = 1;
		reap(pids[NMIX], NMIX, killed);
		for (int c = 0; c < NPROC; c++)
			tot.ops += js[c].ops;
		CHECK_OK(shmk_check(h));
		drain(h, killed);
		for (int c = 0; c < NMIX; c++)
			tot.msgs += (long)js[c].sent;
		account(h, killed);
		if ((round + 1) % CLEAN_EVERY == 0 || round + 1 == rounds)
			clean(h, base_used, base_table);
		if ((round + 1) % 100 == 0)
			printf("round %ld: %ld kills, %ld blocks lost\n",
			       round + 1, tot.kills, tot.lost);
	}
	CHECK_OK(shmk_stats(h, &st));
	printf("%ld operations, %ld messages sent (%ld drained by the "
	       "parent), %ld sends completed by killed senders, %ld messages "
	       "taken by killed receivers, %llu recoveries\n", tot.ops,
	       tot.msgs, tot.drained, tot.sent_killed, tot.recv_lost,
	       (unsigned long long)st.recoveries);
	CHECK(tot.msgs > 0);
	CHECK(st.recoveries > 0);
	CHECK_OK(shmk_close(h));
	printf("stress-lib: %ld rounds survived, %ld kills (%ld at fault "
	       "points), %ld blocks lost (bound: one per killed process, %ld; "
	       "%ld killed in flight)\n", rounds, tot.kills, tot.faults,
	       tot.lost, tot.kills, tot.inflight_bound);
	return 0;
}
