// SPDX-License-Identifier: GPL-2.0
/*
 * grow_demo: one process grows a shmk segment while three peers use it.
 *
 * The peers attach and map the segment, then wait. The grower grows it
 * (eagerly: the module installs the new pages in every peer before the
 * ioctl returns), writes a message at the start of the new range and tells
 * the peers, which read the message and write every new page while counting
 * their minor page faults. The same is then done with a lazy grow, where
 * each peer faults every page in, as with memfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/shmk.h>

#define NAME		"grow-demo"
#define PEERS		3
#define MIB		(1UL << 20)
#define MAX_SIZE	(256 * MIB)

struct phase {
	const char *what;
	uint64_t from, to;
	uint32_t flags;
};

static const struct phase phases[] = {
	{ "eager grow", 1 * MIB, 65 * MIB, 0 },
	{ "lazy grow", 65 * MIB, 129 * MIB, SHMK_GROW_LAZY },
};

static void die(const char *what)
{
	fprintf(stderr, "grow_demo: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int attach(const char *client, uint32_t flags)
{
	struct shmk_attach a = {
		.flags = flags,
		.mode = 0600,
		.size = 1 * MIB,
		.max_size = MAX_SIZE,
	};
	int ctl, fd;

	snprintf(a.name, sizeof(a.name), "%s", NAME);
	snprintf(a.client_name, sizeof(a.client_name), "%s", client);
	ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		die("open " SHMK_DEVICE);
	fd = ioctl(ctl, SHMK_IOC_ATTACH, &a);
	if (fd < 0)
		die("attach");
	close(ctl);
	return fd;
}

/* Map at the segment's common base when it has one, as libshmk does. */
static char *map(int fd)
{
	struct shmk_info info = { 0 };
	void *hint, *p;

	if (ioctl(fd, SHMK_IOC_INFO, &info))
		die("info");
	hint = (void *)(uintptr_t)info.base_addr;
	p = mmap(hint, MAX_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | (hint ? MAP_FIXED_NOREPLACE : 0), fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static void peer(int id, int go, int done)
{
	char client[32];
	char *base;
	size_t i;
	int fd;

	snprintf(client, sizeof(client), "peer-%d", id);
	fd = attach(client, 0);
	base = map(fd);
	minflt();	/* fault in what measuring itself touches */
	if (write(done, "r", 1) != 1)
		die("ready");

	for (i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
		const struct phase *ph = &phases[i];
		unsigned long pages = (ph->to - ph->from) / 4096, p;
		long before;
		char c;

		if (read(go, &c, 1) != 1)
			die("wait");
		before = minflt();
		for (p = 1; p < pages; p++)
			base[ph->from + p * 4096 + id] = (char)id;
		printf("  %-7s pid %-5d read \"%s\" at %p, wrote %lu new pages, minor faults: %ld\n",
		       client, getpid(), base + ph->from, base + ph->from,
		       pages - 1, minflt() - before);
		fflush(stdout);
		if (write(done, "d", 1) != 1)
			die("done");
	}
	exit(0);
}

int main(void)
{
	int go[2], done[2], fd, i;
	size_t ph;
	char *base, c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = attach("grower", SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL);
	base = map(fd);
	printf("grower pid %d created segment \"%s\" (1 MiB active, %lu MiB max) at %p\n",
	       getpid(), NAME, MAX_SIZE / MIB, (void *)base);

	if (pipe(go) || pipe(done))
		die("pipe");
	for (i = 0; i < PEERS; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (!pid)
			peer(i + 1, go[0], done[1]);
	}
	for (i = 0; i < PEERS; i++)
		if (read(done[0], &c, 1) != 1)
			die("ready");
	printf("%d peers attached and mapped the segment at the same address\n",
	       PEERS);

	for (ph = 0; ph < sizeof(phases) / sizeof(phases[0]); ph++) {
		struct shmk_resize rs = {
			.size = phases[ph].to,
			.flags = phases[ph].flags,
		};

		if (ioctl(fd, SHMK_IOC_GROW, &rs))
			die("grow");
		snprintf(base + phases[ph].from, 64, "hello from pid %d (%s)",
			 getpid(), phases[ph].what);
		printf("%s: %llu -> %llu MiB (generation %llu); peers now write every new page:\n",
		       phases[ph].what, (unsigned long long)rs.old_size / MIB,
		       (unsigned long long)rs.new_size / MIB,
		       (unsigned long long)rs.generation);
		for (i = 0; i < PEERS; i++)
			if (write(go[1], "g", 1) != 1)
				die("go");
		for (i = 0; i < PEERS; i++)
			if (read(done[0], &c, 1) != 1)
				die("done");
	}
	while (wait(NULL) > 0)
		;

	{
		struct shmk_resize rs = { .size = 1 * MIB };

		if (ioctl(fd, SHMK_IOC_SHRINK, &rs))
			die("shrink");
		printf("shrunk back to %llu MiB; the cut range is unmapped from every client\n",
		       (unsigned long long)rs.new_size / MIB);
	}
	{
		struct shmk_unlink u = { .name = NAME };
		int ctl = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);

		if (ctl < 0 || ioctl(ctl, SHMK_IOC_UNLINK, &u))
			die("unlink");
		close(ctl);
	}
	munmap(base, MAX_SIZE);
	close(fd);
	printf("unlinked; the segment is freed now that every client has gone\n");
	return 0;
}
