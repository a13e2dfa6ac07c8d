// What the process holds but no longer needs, given back to the kernel (Linux; a no-op elsewhere).
// Used by the cpu backend (src/backend/cpu/sessions.ts), which runs ONNX Runtime in this process.
#pragma once

#include <cstddef>
#include <string>

namespace ctx {

/**
 * Drops this process's resident pages of every mapping of the file at `path` (an absolute, resolved
 * path as /proc/self/maps prints it) that holds no page of its own (nothing written to it) with
 * MADV_DONTNEED. Such pages hold nothing that is not in the file: one read again later faults back
 * in from the page cache. Returns the bytes of the mappings advised.
 */
size_t releaseFilePages(const std::string& path);

/** malloc_trim(0): returns the free memory of glibc's heaps to the kernel; true when some was. */
bool trimHeap();

}  // namespace ctx
