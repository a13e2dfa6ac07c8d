// See signals.h.
#include "signals.h"

#include <csignal>
#include <unistd.h>

namespace ctx {
namespace {

volatile sig_atomic_t noted = 0;
volatile sig_atomic_t heard = 0;
struct sigaction savedInt, savedTerm;
bool intSwapped = false, termSwapped = false;
// The handlers the watching handler passes each signal on to (written only while it is not installed).
struct sigaction nextInt, nextTerm;

void note(int sig) {
  if (noted == 0) noted = sig;
}

void noteAndSendInt(int sig) {
  note(sig);
  kill(getpid(), SIGINT);  // async-signal-safe
}

void remember(int sig, siginfo_t* info, void* context) {
  if (heard == 0) heard = sig;
  const struct sigaction& next = sig == SIGINT ? nextInt : nextTerm;
  if (next.sa_flags & SA_SIGINFO) next.sa_sigaction(sig, info, context);
  else next.sa_handler(sig);
}

void watch(int sig, struct sigaction* next) {
  struct sigaction current {};
  sigaction(sig, nullptr, &current);
  if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == remember) return;
  bool function = (current.sa_flags & SA_SIGINFO) ? current.sa_sigaction != nullptr : current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN;
  if (!function || (current.sa_flags & SA_RESETHAND)) return;
  *next = current;
  struct sigaction action = current;
  action.sa_sigaction = remember;
  action.sa_flags = current.sa_flags | SA_SIGINFO;
  sigaction(sig, &action, nullptr);
}

void swap(int sig, void (*handler)(int), struct sigaction* saved) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(sig, &action, saved);
}

}  // namespace

void watchSignals() {
  watch(SIGINT, &nextInt);
  watch(SIGTERM, &nextTerm);
}

int heardSignal() { return heard; }

void acknowledgeSignals() { heard = 0; }

void holdSignals() {
  watchSignals();
  noted = 0;
  swap(SIGINT, note, &savedInt);
  swap(SIGTERM, note, &savedTerm);
  intSwapped = termSwapped = true;
}

void termAsInt() {
  watchSignals();
  noted = 0;
  swap(SIGTERM, noteAndSendInt, &savedTerm);
  termSwapped = true;
}

int releaseSignals() {
  if (intSwapped) sigaction(SIGINT, &savedInt, nullptr);
  if (termSwapped) sigaction(SIGTERM, &savedTerm, nullptr);
  intSwapped = termSwapped = false;
  // breakOnSigint took SIGINT's listeners away for the call and gave them back after it, and with
  // them libuv's handler alone.
  watchSignals();
  int sig = noted;
  noted = 0;
  return sig;
}

}  // namespace ctx
