/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * The client registry: shmk_clients() lists every attached client with id,
 * pid, flags and name (comm by default); shmk_client_pid() finds one by
 * name; SHMK_WRITER admits one writer; a killed client disappears, and its
 * writer role with it.
 */
#include <sys/prctl.h>

#include "harness.h"

static const char *seg;
static int sync_pipe[2];

static int beta(void *arg)
{
	struct shmk_opts o = { .client_name = "beta" };
	struct shmk *h;
	char c = 'r';

	(void)arg;
	if (shmk_open(seg, SHMK_WRITER, &o, &h))
		return 2;
	if (write(sync_pipe[1], &c, 1) != 1)
		return 3;
	pause();		/* until killed */
	return 4;
}

static const struct shmk_client *find(const struct shmk_client *c, int n,
				      const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return &c[i];
	return NULL;
}

int main(void)
{
	struct shmk_opts o = { .client_name = "alpha" };
	struct shmk_client c[8];
	const struct shmk_client *e;
	struct shmk_stats st;
	struct shmk *h, *h2, *w, *x;
	char comm[16] = "";
	char ch;
	pid_t pid;
	int n;

	seg = test_name("clients");
	CHECK_OK(shmk_open(seg, SHMK_CREATE, &o, &h));
	n = shmk_clients(h, c, 8);
	CHECK_EQ(n, 1);
	CHECK(!strcmp(c[0].name, "alpha"));
	CHECK_EQ(c[0].pid, getpid());
	CHECK_EQ(c[0].flags, 0);
	CHECK(c[0].id != 0);
	CHECK_EQ(shmk_client_pid(h, "alpha"), getpid());
	CHECK_ERR(shmk_client_pid(h, "nobody"), ENOENT);
	CHECK_ERR(shmk_client_pid(h, ""), EINVAL);
	CHECK_ERR(shmk_client_pid(h, NULL), EINVAL);
	CHECK_ERR(shmk_client_pid(h, "a name far too long for a client"),
		  EINVAL);
	CHECK_ERR(shmk_clients(h, NULL, 1), EINVAL);
	CHECK_EQ(shmk_clients(h, NULL, 0), 1);

	/* Default name: comm */
	CHECK_OK(shmk_open(seg, 0, NULL, &h2));
	n = shmk_clients(h, c, 8);
	CHECK_EQ(n, 2);
	prctl(PR_GET_NAME, comm, 0, 0, 0);
	CHECK(find(c, n, comm) != NULL);
	CHECK(c[0].id != c[1].id);
	CHECK_EQ(shmk_clients(h, c, 1), 2);	/* the total, one written */

	/* A writer in another process */
	CHECK(!pipe(sync_pipe));
	pid = test_fork(beta, NULL);
	CHECK_EQ(read(sync_pipe[0], &ch, 1), 1);
	n = shmk_clients(h, c, 8);
	CHECK_EQ(n, 3);
	e = find(c, n, "beta");
	CHECK(e && e->pid == pid && e->flags == SHMK_CLIENT_WRITER);
	CHECK_EQ(shmk_client_pid(h, "beta"), pid);
	CHECK_OK(shmk_stats(h, &st));
	CHECK_EQ(st.clients, 3);
	CHECK_ERR(shmk_open(seg, SHMK_WRITER, NULL, &w), EBUSY);

	/* Killed: gone from the list, its writer role free */
	kill(pid, SIGKILL);
	CHECK_EQ(test_wait(pid), 128 + SIGKILL);
	n = shmk_clients(h, c, 8);
	CHECK_EQ(n, 2);
	CHECK(!find(c, n, "beta"));
	CHECK_ERR(shmk_client_pid(h, "beta"), ENOENT);
	o.client_name = "gamma";
	CHECK_OK(shmk_open(seg, SHMK_WRITER, &o, &w));
	CHECK_ERR(shmk_open(seg, SHMK_WRITER, NULL, &x), EBUSY);
	CHECK(x == NULL);
	n = shmk_clients(h, c, 8);
	CHECK_EQ(n, 3);
	e = find(c, n, "gamma");
	CHECK(e && e->flags == SHMK_CLIENT_WRITER && e->pid == getpid());

	/* Closing unregisters; the writer role goes with it */
	CHECK_OK(shmk_close(w));
	CHECK_EQ(shmk_clients(h, c, 8), 2);
	CHECK_OK(shmk_open(seg, SHMK_WRITER, NULL, &w));
	CHECK_OK(shmk_close(w));
	CHECK_OK(shmk_close(h2));
	CHECK_EQ(shmk_clients(h, c, 8), 1);
	CHECK_OK(shmk_close(h));
	test_pass("clients");
	return 0;
}
