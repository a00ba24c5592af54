#pragma once
// Every long-running subcommand stops on signals the same way: block them in all threads, then let one thread
// take them with sigwait. Blocking must happen before any thread starts, so those threads inherit the mask.
#include <signal.h>

#include <initializer_list>

namespace sb::cli {

inline sigset_t block_signals(std::initializer_list<int> signals = {SIGINT, SIGTERM}) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

}  // namespace sb::cli
