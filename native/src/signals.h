// Signals during a synchronous call on Node's main thread (src/model/bounded-run.ts). While the
// thread runs JavaScript, Node only queues a signal for its event loop, so a long call hears neither
// Ctrl-C nor SIGTERM until it returns; node:vm's breakOnSigint stops a call on SIGINT only. These
// swap the process's handlers around such a call:
//
//   holdSignals()   SIGINT and SIGTERM are only noted (the call is short: the caller raises the
//                   noted signal again once it has put the handlers back)
//   termAsInt()     SIGTERM is noted and sent on as SIGINT, which breakOnSigint's watchdog stops
//                   the call on; SIGINT is left to that watchdog
//   releaseSignals() puts back the handlers that were there before; returns the signal noted
//                   meanwhile (the first one), or 0
//
// Only the main thread calls them, never two at a time.
#pragma once

namespace ctx {

void holdSignals();
void termAsInt();
int releaseSignals();

}  // namespace ctx
