// SPDX-License-Identifier: GPL-2.0
/*
 * shmk_helper: a scriptable shmk client for the netlink tests, on the raw
 * ioctl uapi (no libshmk). It reads one command per line on stdin and
 * answers each with one line on stdout: "ok ...", "err ERRNO-NAME" or
 * "sigbus". Commands:
 *
 *   attach NAME [create SIZE MAX MODE] [excl] [rdonly|writer] [cname NAME]
 *                       -> ok seg=ID client=ID created=0|1
 *   map                 map the whole reservation -> ok base=0xADDR
 *   grow SIZE | shrink SIZE
 *                       -> ok old=N new=N gen=N
 *   write OFF VALUE     store a u64 in the mapping -> ok | sigbus
 *   read OFF            load a u64 -> ok VALUE | sigbus
 *   info                SHMK_IOC_INFO -> ok seg=ID size=N clients=N client=ID
 *   close               unmap and close the handle -> ok
 *   unlink NAME         SHMK_IOC_UNLINK -> ok
 *   create-many PREFIX N SIZE MAX MODE
 *                       create PREFIX0..PREFIX(N-1), not attached -> ok
 *   unlink-many PREFIX N
 *                       -> ok
 *   pid                 -> ok PID
 *   exit                -> ok, then exits 0
 *
 * Numbers accept C syntax (0x..). End of input exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/shmk.h>

static int ctl_fd = -1;
static int handle = -1;
static void *map_base;
static size_t map_len;
static uint64_t max_size;

static sigjmp_buf bus_env;
static volatile sig_atomic_t bus_armed;

static void on_sigbus(int sig)
{
	(void)sig;
	if (bus_armed)
		siglongjmp(bus_env, 1);
	signal(SIGBUS, SIG_DFL);
	raise(SIGBUS);
}

static const char *errname(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case EACCES: return "EACCES";
	case EBUSY: return "EBUSY";
	case ENOSPC: return "ENOSPC";
	case EFBIG: return "EFBIG";
	case ENOTCONN: return "ENOTCONN";
	case EUSERS: return "EUSERS";
	case ENOTTY: return "ENOTTY";
	case EBADF: return "EBADF";
	case ENOMEM: return "ENOMEM";
	default: return "EOTHER";
	}
}

static int reply_err(int e)
{
	printf("err %s\n", errname(e));
	return 0;
}

static uint64_t num(const char *s)
{
	return s ? strtoull(s, NULL, 0) : 0;
}

static int ctl(void)
{
	if (ctl_fd < 0)
		ctl_fd = open(SHMK_DEVICE, O_RDWR | O_CLOEXEC);
	return ctl_fd;
}

static int do_attach(char **argv, int argc, int *fd_out, struct shmk_attach *a)
{
	int i, fd;

	memset(a, 0, sizeof(*a));
	if (argc < 2 || strlen(argv[1]) >= sizeof(a->name))
		return -EINVAL;
	strcpy(a->name, argv[1]);
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "create") && i + 3 < argc) {
			a->flags |= SHMK_ATTACH_CREATE;
			a->size = num(argv[i + 1]);
			a->max_size = num(argv[i + 2]);
			a->mode = (uint32_t)strtoul(argv[i + 3], NULL, 8);
			i += 3;
		} else if (!strcmp(argv[i], "excl")) {
			a->flags |= SHMK_ATTACH_EXCL;
		} else if (!strcmp(argv[i], "rdonly")) {
			a->flags |= SHMK_ATTACH_RDONLY;
		} else if (!strcmp(argv[i], "writer")) {
			a->flags |= SHMK_ATTACH_WRITER;
		} else if (!strcmp(argv[i], "cname") && i + 1 < argc &&
			   strlen(argv[i + 1]) < sizeof(a->client_name)) {
			strcpy(a->client_name, argv[++i]);
		} else {
			return -EINVAL;
		}
	}
	if (ctl() < 0)
		return -errno;
	fd = ioctl(ctl_fd, SHMK_IOC_ATTACH, a);
	if (fd < 0)
		return -errno;
	*fd_out = fd;
	return 0;
}

static int cmd_info(struct shmk_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl(handle, SHMK_IOC_INFO, info) ? -errno : 0;
}

static int run(char **argv, int argc)
{
	const char *cmd = argv[0];
	struct shmk_resize rs;
	struct shmk_attach a;
	struct shmk_info info;
	int ret, fd;

	if (!strcmp(cmd, "attach")) {
		if (handle >= 0)
			return reply_err(EBUSY);
		ret = do_attach(argv, argc, &fd, &a);
		if (ret)
			return reply_err(-ret);
		handle = fd;
		ret = cmd_info(&info);
		if (ret)
			return reply_err(-ret);
		max_size = info.max_size;
		printf("ok seg=%llu client=%u created=%d\n",
		       (unsigned long long)a.segment_id, a.client_id,
		       !!(a.out_flags & SHMK_ATTACH_CREATED));
	} else if (!strcmp(cmd, "map")) {
		int prot = PROT_READ;
		void *p;

		if (cmd_info(&info))
			return reply_err(errno);
		if (!(info.client_flags & SHMK_CLIENT_RDONLY))
			prot |= PROT_WRITE;
		p = mmap(NULL, max_size, prot, MAP_SHARED | MAP_POPULATE,
			 handle, 0);
		if (p == MAP_FAILED)
			return reply_err(errno);
		map_base = p;
		map_len = max_size;
		printf("ok base=%p\n", p);
	} else if (!strcmp(cmd, "grow") || !strcmp(cmd, "shrink")) {
		memset(&rs, 0, sizeof(rs));
		rs.size = num(argv[1]);
		if (ioctl(handle, cmd[0] == 'g' ? SHMK_IOC_GROW :
			  SHMK_IOC_SHRINK, &rs))
			return reply_err(errno);
		printf("ok old=%llu new=%llu gen=%llu\n",
		       (unsigned long long)rs.old_size,
		       (unsigned long long)rs.new_size,
		       (unsigned long long)rs.generation);
	} else if (!strcmp(cmd, "write") || !strcmp(cmd, "read")) {
		volatile uint64_t *p;
		uint64_t off = num(argv[1]), v = 0;

		if (!map_base || off + 8 > map_len)
			return reply_err(EINVAL);
		p = (volatile uint64_t *)((char *)map_base + off);
		if (sigsetjmp(bus_env, 1)) {
			bus_armed = 0;
			printf("sigbus\n");
			return 0;
		}
		bus_armed = 1;
		if (cmd[0] == 'w')
			*p = num(argv[2]);
		else
			v = *p;
		bus_armed = 0;
		if (cmd[0] == 'w')
			printf("ok\n");
		else
			printf("ok %llu\n", (unsigned long long)v);
	} else if (!strcmp(cmd, "info")) {
		ret = cmd_info(&info);
		if (ret)
			return reply_err(-ret);
		printf("ok seg=%llu size=%llu clients=%u client=%u\n",
		       (unsigned long long)info.segment_id,
		       (unsigned long long)info.size, info.nr_clients,
		       info.client_id);
	} else if (!strcmp(cmd, "close")) {
		if (map_base)
			munmap(map_base, map_len);
		map_base = NULL;
		if (handle >= 0)
			close(handle);
		handle = -1;
		printf("ok\n");
	} else if (!strcmp(cmd, "unlink") && argc == 2) {
		struct shmk_unlink u;

		memset(&u, 0, sizeof(u));
		snprintf(u.name, sizeof(u.name), "%s", argv[1]);
		if (ctl() < 0 || ioctl(ctl_fd, SHMK_IOC_UNLINK, &u))
			return reply_err(errno);
		printf("ok\n");
	} else if (!strcmp(cmd, "create-many") && argc == 6) {
		unsigned long i, n = num(argv[2]);
		char name[SHMK_NAME_MAX];
		char *av[] = { "attach", name, "create", argv[3], argv[4],
			       argv[5], "excl" };

		for (i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "%s%lu", argv[1], i);
			ret = do_attach(av, 7, &fd, &a);
			if (ret)
				return reply_err(-ret);
			close(fd);
		}
		printf("ok\n");
	} else if (!strcmp(cmd, "unlink-many") && argc == 3) {
		unsigned long i, n = num(argv[2]);
		struct shmk_unlink u;

		for (i = 0; i < n; i++) {
			memset(&u, 0, sizeof(u));
			snprintf(u.name, sizeof(u.name), "%s%lu", argv[1], i);
			if (ctl() < 0 || ioctl(ctl_fd, SHMK_IOC_UNLINK, &u))
				return reply_err(errno);
		}
		printf("ok\n");
	} else if (!strcmp(cmd, "pid")) {
		printf("ok %d\n", getpid());
	} else if (!strcmp(cmd, "exit")) {
		printf("ok\n");
		fflush(stdout);
		exit(0);
	} else {
		return reply_err(EINVAL);
	}
	return 0;
}

int main(void)
{
	struct sigaction sa;
	char line[1024];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigaction(SIGBUS, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	while (fgets(line, sizeof(line), stdin)) {
		char *argv[16], *save = NULL, *tok;
		int argc = 0;

		for (tok = strtok_r(line, " \t\n", &save); tok && argc < 16;
		     tok = strtok_r(NULL, " \t\n", &save))
			argv[argc++] = tok;
		if (argc)
			run(argv, argc);
		fflush(stdout);
	}
	return 0;
}
