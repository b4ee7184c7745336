// SPDX-License-Identifier: GPL-2.0
//
// ipc_iceoryx: the peer of ipc_bench for iceoryx 2.0 (Debian's
// libiceoryx-posh-dev): its C++ publish/subscribe API with loans, untyped
// publisher and subscriber, a WaitSet for blocking, take() in a loop for
// busy polling. RouDi (iox-roudi) must run: bench/ipc-run starts it with
// bench/iceoryx-roudi.toml. Same loops and CSV rows as ipc_bench
// (ipc_common.h).
//
//   ipc_iceoryx [-n ITERS] [-t MSGS] [-s SIZE,...] [-m busy,block] [-r REPS]
#include "ipc_common.h"

#include <string>
#include <vector>

#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"

namespace {

struct Side {
	iox::popo::UntypedPublisher *pub;
	iox::popo::UntypedSubscriber *sub;
	iox::popo::WaitSet<> *ws;
	bool busy;
};

void send(Side &s, uint32_t size, uint64_t seq)
{
	for (;;) {
		auto r = s.pub->loan(size);

		if (!r.has_error()) {
			void *p = r.value();

			*static_cast<uint64_t *>(p) = seq;
			s.pub->publish(p);
			return;
		}
		sched_yield();		// the pool is empty for a moment
	}
}

/*
 * A message that never comes (seen once in the first busy case: both
 * sides waiting, the first ping lost although the publisher had its
 * subscriber) fails the case after 2 s; run_case() runs it again.
 */
uint64_t recv(Side &s)
{
	uint64_t deadline = 0;

	for (unsigned int i = 0;; i++) {
		auto r = s.sub->take();

		if (!r.has_error()) {
			uint64_t v = *static_cast<const uint64_t *>(r.value());

			s.sub->release(r.value());
			return v;
		}
		if (s.busy) {
			ipc_relax();
		} else {
			s.ws->timedWait(iox::units::Duration::fromMilliseconds(100));
		}
		if (s.busy && (i & 1023))
			continue;
		if (!deadline)
			deadline = ipc_now() + 2000000000ULL;
		else if (ipc_now() > deadline)
			exit(3);
	}
}

int side_main(int side, struct ipc_shared *sh, const std::string &tag,
	      uint32_t size, bool busy, bool lat, long n)
{
	std::string name = "ipcb-" + std::to_string(getpid());
	iox::runtime::PoshRuntime::initRuntime(
		iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
	iox::popo::PublisherOptions po;
	iox::popo::SubscriberOptions so;

	po.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
	so.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
	so.queueCapacity = 256;
	iox::capro::IdString_t ev(iox::cxx::TruncateToCapacity, tag.c_str());
	iox::popo::UntypedPublisher pub({"ipcbench", side ? "pong" : "ping", ev}, po);
	iox::popo::UntypedSubscriber sub({"ipcbench", side ? "ping" : "pong", ev}, so);
	iox::popo::WaitSet<> ws;

	ws.attachState(sub, iox::popo::SubscriberState::HAS_DATA).or_else([](auto) {
		fprintf(stderr, "ipc_iceoryx: attachState failed\n");
		exit(1);
	});
	while (!pub.hasSubscribers() ||
	       sub.getSubscriptionState() != iox::SubscribeState::SUBSCRIBED)
		usleep(1000);
	ipc_barrier(sh, side);
	Side s{&pub, &sub, &ws, busy};

	if (lat) {
		if (side == 1) {
			for (long i = 0; i < n + IPC_WARMUP; i++)
				send(s, size, recv(s));
			return 0;
		}
		std::vector<uint64_t> rtt(n);

		for (long i = 0; i < n + IPC_WARMUP; i++) {
			uint64_t t0 = ipc_now();

			send(s, size, (uint64_t)i);
			if (recv(s) != (uint64_t)i)
				return 2;
			if (i >= IPC_WARMUP)
				rtt[i - IPC_WARMUP] = ipc_now() - t0;
		}
		ipc_percentiles(sh, rtt.data(), n);
		return 0;
	}
	if (side == 0) {
		sh->t_start = ipc_now();
		for (long i = 0; i < n; i++)
			send(s, size, (uint64_t)i);
		recv(s);		// B is done
		return 0;
	}
	for (long i = 0; i < n; i++)
		if (recv(s) != (uint64_t)i)
			return 2;
	sh->t_end = ipc_now();
	send(s, 8, 0);
	return 0;
}

int run_case(const char *mode, uint32_t size, bool lat, long n,
	     struct ipc_shared *sh)
{
	static int seq;
	std::string tag = std::string(mode) + std::to_string(size) +
			  (lat ? "l" : "t") + std::to_string(seq++);
	pid_t p[2];

	for (int attempt = 0; attempt < 3; attempt++) {
		memset(sh, 0, sizeof(*sh));
		fflush(stdout);
		for (int side = 0; side < 2; side++) {
			p[side] = fork();
			if (p[side] == 0)
				exit(side_main(side, sh, tag + "-" +
					       std::to_string(attempt), size,
					       !strcmp(mode, "busy"), lat, n));
		}
		if (!ipc_wait2(p[0], p[1]))
			return 0;
		fprintf(stderr, "ipc_iceoryx: %s: a message lost, again\n",
			tag.c_str());
	}
	return 1;
}

}  // namespace

int main(int argc, char **argv)
{
	long iters = 20000, msgs = 20000;
	std::vector<uint32_t> sizes = {64, 4096, 65536, 1 << 20};
	std::string modes = "busy,block";
	int c, reps = IPC_BUSY_REPS;

	while ((c = getopt(argc, argv, "n:t:s:m:r:")) != -1) {
		switch (c) {
		case 'n': iters = atol(optarg); break;
		case 'r': reps = atoi(optarg); break;
		case 't': msgs = atol(optarg); break;
		case 'm': modes = optarg; break;
		case 's': {
			sizes.clear();
			for (char *t = strtok(optarg, ","); t; t = strtok(NULL, ","))
				sizes.push_back((uint32_t)atol(t));
			break;
		}
		default:
			fprintf(stderr, "usage: %s [-n ITERS] [-t MSGS] "
				"[-s SIZE,...] [-m busy,block] [-r REPS]\n",
				argv[0]);
			return 2;
		}
	}
	if (reps < 1 || reps > IPC_MAX_REPS) {
		fprintf(stderr, "ipc_iceoryx: -r takes 1 to %d\n",
			IPC_MAX_REPS);
		return 2;
	}
	struct ipc_shared *lat = ipc_shared_new(), *thr = ipc_shared_new();

	for (const char *mode : {"busy", "block"}) {
		if (modes.find(mode) == std::string::npos)
			continue;
		bool busy = !strcmp(mode, "busy");

		for (uint32_t size : sizes) {
			struct ipc_reps rl = {};
			uint64_t floor_p50;
			double ratio;
			int r = 0;

			for (int j = 0; !r && j < (busy ? reps : 1); j++) {
				r = run_case(mode, size, true, iters, lat);
				if (!r)
					ipc_reps_add(&rl, lat, 0);
			}
			ipc_reps_median(&rl, lat, &floor_p50, &ratio);
			if (r || run_case(mode, size, false, msgs, thr)) {
				fprintf(stderr, "ipc_iceoryx: %s %u failed\n",
					mode, size);
				continue;
			}
			struct ipc_shared l = *lat, t = *thr;

			ipc_row("iceoryx", mode, size, iters, &l, msgs, &t,
				floor_p50, ratio);
		}
	}
	return 0;
}
