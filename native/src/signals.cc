// See signals.h.
#include "signals.h"

#include <csignal>
#include <unistd.h>

namespace ctx {
namespace {

volatile sig_atomic_t noted = 0;
struct sigaction savedInt, savedTerm;
bool intSwapped = false, termSwapped = false;

void note(int sig) {
  if (noted == 0) noted = sig;
}

void noteAndSendInt(int sig) {
  note(sig);
  kill(getpid(), SIGINT);  // async-signal-safe
}

void swap(int sig, void (*handler)(int), struct sigaction* saved) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(sig, &action, saved);
}

}  // namespace

void holdSignals() {
  noted = 0;
  swap(SIGINT, note, &savedInt);
  swap(SIGTERM, note, &savedTerm);
  intSwapped = termSwapped = true;
}

void termAsInt() {
  noted = 0;
  swap(SIGTERM, noteAndSendInt, &savedTerm);
  termSwapped = true;
}

int releaseSignals() {
  if (intSwapped) sigaction(SIGINT, &savedInt, nullptr);
  if (termSwapped) sigaction(SIGTERM, &savedTerm, nullptr);
  intSwapped = termSwapped = false;
  int sig = noted;
  noted = 0;
  return sig;
}

}  // namespace ctx
