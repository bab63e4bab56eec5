#include "convert/output_room.h"

#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "core/output_file.h"

namespace mst {

void ensure_room_for(const std::string &destination, uint64_t needed) {
    namespace fs = std::filesystem;
    const StaleTempFiles stale = clear_stale_temp_files(destination);
    for (const std::string &path : stale.removed)
        log(MST_LOG_WARN, "removed '{}', a temporary file left by an interrupted write of '{}'", path, destination);
    const std::string dir =
        fs::path(destination).parent_path().empty() ? "." : fs::path(destination).parent_path().string();
    const uint64_t available = free_disk_bytes(dir);
    if (available >= needed) return;
    std::string busy;
    if (!stale.busy.empty())
        busy = fmt::format(" ({} bytes of them held by '{}'{}, which another process is still writing)",
                           stale.busy_bytes, stale.busy.front(),
                           stale.busy.size() > 1 ? fmt::format(" and {} more", stale.busy.size() - 1) : "");
    fail(MST_ERR_IO, "not enough free space in '{}' for '{}': the file needs up to {} bytes, {} are available{}", dir,
         destination, needed, available, busy);
}

}  // namespace mst
