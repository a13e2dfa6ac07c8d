#include "process_memory.h"

#include <cstdio>
#include <fstream>
#include <vector>

#if defined(__linux__)
#include <malloc.h>
#include <sys/mman.h>
#endif

namespace ctx {

size_t releaseFilePages(const std::string& path) {
#if defined(__linux__)
  // ONNX Runtime maps external data private and writable (rw-p), though it never writes to it.
  // A page written to a private mapping would be this process's own copy (smaps counts it under
  // Anonymous), which MADV_DONTNEED would lose: only mappings with no such page are advised.
  struct Range {
    unsigned long start, end;
    bool written;
  };
  std::vector<Range> ranges;
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inFile = false;
  // A mapping's header "start-end perms offset dev inode   path", then "Key:   value kB" lines.
  while (std::getline(smaps, line)) {
    unsigned long start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2 && line.find(':') > line.find(' ')) {
      const size_t slash = line.find('/');
      inFile = slash != std::string::npos && line.compare(slash, std::string::npos, path) == 0;
      if (inFile) ranges.push_back({start, end, false});
      continue;
    }
    unsigned long kb = 0;
    if (inFile && std::sscanf(line.c_str(), "Anonymous: %lu kB", &kb) == 1 && kb > 0) ranges.back().written = true;
  }
  size_t advised = 0;
  for (const Range& r : ranges) {
    if (r.written) continue;
    if (madvise(reinterpret_cast<void*>(r.start), r.end - r.start, MADV_DONTNEED) == 0) advised += r.end - r.start;
  }
  return advised;
#else
  (void)path;
  return 0;
#endif
}

bool trimHeap() {
#if defined(__linux__) && defined(__GLIBC__)
  return malloc_trim(0) != 0;
#else
  return false;
#endif
}

}  // namespace ctx
