// Signals during a synchronous call on Node's main thread (src/model/bounded-run.ts). While the
// thread runs JavaScript, Node only queues a signal for its event loop, so a long call hears neither
// Ctrl-C nor SIGTERM until it returns; node:vm's breakOnSigint stops a call on SIGINT only. These
// watch the process's handlers, and swap them around such a call:
//
//   watchSignals()  puts a handler in front of the process's own SIGINT and SIGTERM handlers (libuv's,
//                   which queue the signal for the event loop) that first remembers the signal, so a
//                   call about to start learns of one that is still queued (heardSignal). Node puts
//                   libuv's handler back whenever a signal's first listener is added, so every other
//                   function here watches again first; the default disposition and a one-shot handler
//                   (Node's own before any listener) are left alone: they end the process themselves
//   heardSignal()   the first signal the watching handler saw since acknowledgeSignals(), or 0
//   acknowledgeSignals() forgets it (the process's listener has run)
//   holdSignals()   SIGINT and SIGTERM are only noted (the call is short: the caller raises the
//                   noted signal again once it has put the handlers back)
//   termAsInt()     SIGTERM is noted and sent on as SIGINT, which breakOnSigint's watchdog stops
//                   the call on; SIGINT is left to that watchdog
//   releaseSignals() puts back the handlers that were there before (and watches again); returns the
//                   signal noted meanwhile (the first one), or 0
//
// Only the main thread calls them, never two at a time.
#pragma once

namespace ctx {

void watchSignals();
int heardSignal();
void acknowledgeSignals();
void holdSignals();
void termAsInt();
int releaseSignals();

}  // namespace ctx
