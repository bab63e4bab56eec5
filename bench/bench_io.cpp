// Storage tier benchmark: each tier's throughput for expert-sized reads (1 to 32 MiB,
// 1 to 16 in flight), cold (file evicted from the page cache) and warm (file cached),
// against the device's own sequential bandwidth measured in the same run with large
// O_DIRECT reads. Reads land at random 4 KiB-aligned slots of a test file, each slot at
// most once per cold cell, the way a layer's experts are scattered over a checkpoint.
//
//   build/bench/bench_io [--dir DIR] [--size-gib N] [--volume-mib N] [--max-seconds S]
//                        [--repeat N] [--rows a,b,...] [--keep] [--drop-caches]
//
// The test file goes in DIR (default: the working directory; it must be on the device
// to measure, not tmpfs) and is removed afterwards unless --keep; a file of the right
// size left by --keep is reused. Cold cells evict the file with posix_fadvise(DONTNEED)
// (no root needed) and check with mincore that it left; --drop-caches also writes
// /proc/sys/vm/drop_caches (root), which drops every file's cache on the machine.
#include <fcntl.h>
#ifdef MST_HAVE_URING
#include <liburing.h>
#endif
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/thread_pool.h"
#include "storage/storage_tier.h"

namespace mst {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kSlotAlign = 4096;

struct Config {
    std::string dir = ".";
    uint64_t size = 4ull << 30;
    uint64_t volume = 512ull << 20;  // bytes per measurement (at least 4 batches)
    double max_seconds = 2.0;      // per measurement
    int repeat = 3;                // measurements per cell; the table shows their median
    std::vector<std::string> rows;
    bool keep = false;
    bool drop_caches = false;
};

[[noreturn]] void usage(const char *why) {
    std::fprintf(stderr, "bench_io: %s\nusage: bench_io [--dir DIR] [--size-gib N] [--volume-mib N] "
                         "[--max-seconds S] [--repeat N] [--rows a,b,...] [--keep] [--drop-caches]\n", why);
    std::exit(2);
}

std::vector<std::string> split(const std::string &s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        const size_t comma = s.find(',', start);
        out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

Config parse(int argc, char **argv) {
    Config c;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(("option " + a + " needs a value").c_str());
            return argv[++i];
        };
        if (a == "--dir") c.dir = value();
        else if (a == "--size-gib") c.size = uint64_t(std::stod(value()) * double(1ull << 30));
        else if (a == "--volume-mib") c.volume = std::stoull(value()) * kMiB;
        else if (a == "--max-seconds") c.max_seconds = std::stod(value());
        else if (a == "--repeat") c.repeat = std::max(1, std::stoi(value()));
        else if (a == "--rows") c.rows = split(value());
        else if (a == "--keep") c.keep = true;
        else if (a == "--drop-caches") c.drop_caches = true;
        else usage(("unknown option " + a).c_str());
    }
    c.size = c.size / (32 * kMiB) * (32 * kMiB);
    if (c.size < 256 * kMiB) usage("--size-gib must give at least 256 MiB");
    return c;
}

// ---- the test file and the page cache -------------------------------------------

void write_test_file(const std::string &path, uint64_t size) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && uint64_t(st.st_size) == size) {
        std::printf("reusing %s (%.1f GiB)\n", path.c_str(), double(size) / double(1ull << 30));
        return;
    }
    std::printf("writing %s (%.1f GiB) ...\n", path.c_str(), double(size) / double(1ull << 30));
    std::fflush(stdout);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail(MST_ERR_IO, "cannot create '{}': {}", path, errno_text(errno));
    // Random bytes: a device or file system that compresses or deduplicates must not
    // make the test file cheaper to read than a checkpoint.
    AlignedBuffer chunk(64 * kMiB, "file chunk");
    std::mt19937_64 rng(12345);
    for (uint64_t done = 0; done < size; done += chunk.size()) {
        auto *words = reinterpret_cast<uint64_t *>(chunk.data());
        for (size_t i = 0; i < chunk.size() / 8; ++i) words[i] = rng();
        const size_t n = size_t(std::min<uint64_t>(chunk.size(), size - done));
        size_t written = 0;
        while (written < n) {
            const ssize_t w = ::write(fd, chunk.data() + written, n - written);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) fail(MST_ERR_IO, "writing '{}' failed: {}", path, errno_text(errno));
            written += size_t(w);
        }
    }
    ::fsync(fd);
    ::close(fd);
}

// The fraction of the file's pages in the page cache (mincore over a mapping).
double resident_fraction(const std::string &path, uint64_t size) {
    const File f = File::open_read(path);
    void *m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, f.fd(), 0);
    if (m == MAP_FAILED) return -1.0;
    const size_t page = size_t(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> vec((size + page - 1) / page);
    double fraction = -1.0;
    if (::mincore(m, size, vec.data()) == 0) {
        size_t in = 0;
        for (unsigned char v : vec) in += v & 1;
        fraction = double(in) / double(vec.size());
    }
    ::munmap(m, size);
    return fraction;
}

bool evict(const std::string &path, uint64_t size, bool drop_caches) {
    {
        const File f = File::open_read(path);
        ::posix_fadvise(f.fd(), 0, 0, POSIX_FADV_DONTNEED);
    }
    if (drop_caches) {
        ::sync();
        if (FILE *d = std::fopen("/proc/sys/vm/drop_caches", "w")) {
            std::fputs("1\n", d);
            std::fclose(d);
        }
    }
    return resident_fraction(path, size) < 0.01;
}

// Reads the file until (nearly) all of it is cached; returns the cached fraction. A
// percent or two can stay out even with memory to spare (the kernel's workingset
// accounting), so 95% counts as warm.
double warm_up(const std::string &path, uint64_t size) {
    double cached = resident_fraction(path, size);
    for (int pass = 0; pass < 3 && cached < 0.95; ++pass) {
        const File f = File::open_read(path);
        AlignedBuffer chunk(16 * kMiB, "warm-up chunk");
        for (uint64_t off = 0; off < size; off += chunk.size()) f.pread_exact(chunk.data(), chunk.size(), off);
        cached = resident_fraction(path, size);
    }
    return cached;
}

// ---- measurement ------------------------------------------------------------------

struct Result {
    double mb_per_s = 0;
    double cpu_s_per_gb = 0;
};

double cpu_seconds() {
    struct rusage u;
    ::getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// A cell's slots: distinct random `size`-byte slots of the file, in batches of `depth`.
std::vector<uint64_t> slots(uint64_t file_size, uint64_t size, size_t depth, uint64_t volume, uint32_t seed) {
    // Slots start on 4 KiB boundaries but not on `size` boundaries: experts do not.
    const uint64_t stride = size + 7 * kSlotAlign;
    std::vector<uint64_t> all;
    for (uint64_t off = 0; off + size <= file_size; off += stride) all.push_back(off);
    std::mt19937 rng(seed);
    std::shuffle(all.begin(), all.end(), rng);
    const size_t batches = std::max<size_t>(4, size_t(volume / (size * depth)));
    all.resize(std::min(all.size(), batches * depth) / depth * depth);
    return all;
}

// Runs `batch(first slot index)` over the slots until done or out of time.
template <typename Batch>
Result run_cell(const std::vector<uint64_t> &offsets, uint64_t size, size_t depth, double max_seconds,
                Batch &&batch) {
    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    uint64_t bytes = 0;
    double elapsed = 0;
    for (size_t first = 0; first + depth <= offsets.size(); first += depth) {
        batch(first);
        bytes += size * depth;
        elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
        if (elapsed > max_seconds) break;
    }
    const double cpu = cpu_seconds() - cpu0;
    if (bytes == 0) fail(MST_ERR_INVALID_ARGUMENT, "the file has fewer than {} slots of {} bytes", depth, size);
    return Result{double(bytes) / elapsed / 1e6, cpu / (double(bytes) / 1e9)};
}

struct Cell {
    uint64_t size;
    size_t depth;
    const std::vector<uint64_t> *offsets;
    double max_seconds;
};

// A library tier, read through read_batch into per-slot buffers.
Result tier_cell(const std::string &path, const StorageOptions &options, const Cell &c) {
    auto tier = open_storage({path}, options);
    std::vector<AlignedBuffer> buffers;
    for (size_t i = 0; i < c.depth; ++i) {
        buffers.emplace_back(c.size, "bench buffer");
        std::memset(buffers.back().data(), 0, c.size);  // fault the buffers in before timing
    }
    std::vector<ReadRequest> reads(c.depth);
    return run_cell(*c.offsets, c.size, c.depth, c.max_seconds, [&](size_t first) {
        for (size_t i = 0; i < c.depth; ++i)
            reads[i] = ReadRequest{0, (*c.offsets)[first + i], c.size, buffers[i].data(), "bench read"};
        tier->read_batch(reads);
    });
}

// The mmap tier as the expert store uses it: map every expert of the batch (which
// issues MADV_WILLNEED when asked), touch every page in place on `depth` threads as a
// layer step would, then release the batch as an expert cache of budget 0 does.
Result mmap_cell(const std::string &path, const StorageOptions &options, const Cell &c) {
    auto tier = open_storage({path}, options);
    ThreadPool pool(int(c.depth));
    std::vector<const uint8_t *> data(c.depth);
    std::atomic<uint64_t> sink{0};
    const Result r = run_cell(*c.offsets, c.size, c.depth, c.max_seconds, [&](size_t first) {
        for (size_t i = 0; i < c.depth; ++i)
            data[i] = static_cast<const uint8_t *>(tier->map(0, (*c.offsets)[first + i], c.size));
        pool.run_all(c.depth, [&](size_t i) {
            uint64_t sum = 0;
            for (uint64_t off = 0; off < c.size; off += 4096) sum += data[i][off];
            sink += sum;
        });
        for (size_t i = 0; i < c.depth; ++i) tier->release(0, (*c.offsets)[first + i], c.size);
    });
    if (sink.load() == 1) std::printf(" ");  // keeps the page touches from being optimised away
    return r;
}

#ifdef MST_HAVE_URING
// io_uring with O_DIRECT, written here rather than through the tier so that plain,
// fixed (registered once) and per-batch registered buffers differ in nothing else.
enum class Buffers { Plain, RegisteredOnce, RegisteredPerBatch };

Result uring_buffers_cell(const std::string &path, Buffers mode, const Cell &c) {
    const File f = File::open_read(path, O_DIRECT);
    struct io_uring ring;
    if (int ret = io_uring_queue_init(64, &ring, 0); ret < 0) fail(MST_ERR_IO, "io_uring: {}", errno_text(-ret));
    std::vector<AlignedBuffer> buffers;
    std::vector<struct iovec> iov;
    for (size_t i = 0; i < c.depth; ++i) {
        buffers.emplace_back(c.size, "bench buffer");
        std::memset(buffers.back().data(), 0, c.size);
        iov.push_back({buffers.back().data(), c.size});
    }
    auto check = [](int ret, const char *what) {
        if (ret < 0) fail(MST_ERR_IO, "{}: {}", what, errno_text(-ret));
    };
    if (mode == Buffers::RegisteredOnce) check(io_uring_register_buffers(&ring, iov.data(), unsigned(c.depth)), "register");
    const Result r = run_cell(*c.offsets, c.size, c.depth, c.max_seconds, [&](size_t first) {
        if (mode == Buffers::RegisteredPerBatch)
            check(io_uring_register_buffers(&ring, iov.data(), unsigned(c.depth)), "register");
        for (size_t i = 0; i < c.depth; ++i) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            if (mode == Buffers::Plain)
                io_uring_prep_read(sqe, f.fd(), buffers[i].data(), unsigned(c.size), (*c.offsets)[first + i]);
            else
                io_uring_prep_read_fixed(sqe, f.fd(), buffers[i].data(), unsigned(c.size), (*c.offsets)[first + i],
                                         int(i));
        }
        check(io_uring_submit(&ring), "submit");
        for (size_t i = 0; i < c.depth; ++i) {
            struct io_uring_cqe *cqe;
            check(io_uring_wait_cqe(&ring, &cqe), "wait");
            if (cqe->res != int(c.size)) fail(MST_ERR_IO, "short or failed read: {}", cqe->res);
            io_uring_cqe_seen(&ring, cqe);
        }
        if (mode == Buffers::RegisteredPerBatch) check(io_uring_unregister_buffers(&ring), "unregister");
    });
    io_uring_queue_exit(&ring);
    return r;
}
#endif

// The device's sequential bandwidth: O_DIRECT reads of `chunk` bytes, `threads` at a
// time, walking the file in order.
double sequential_mb_per_s(const std::string &path, uint64_t file_size, uint64_t chunk, int threads,
                           double max_seconds) {
    const File f = File::open_read(path, O_DIRECT);
    std::atomic<uint64_t> next{0};
    std::atomic<uint64_t> bytes{0};
    const auto t0 = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            AlignedBuffer buf(chunk, "sequential buffer");
            for (;;) {
                const uint64_t off = next.fetch_add(chunk);
                if (off + chunk > file_size) return;
                if (std::chrono::duration<double>(Clock::now() - t0).count() > max_seconds) return;
                f.pread_exact(buf.data(), chunk, off);
                bytes += chunk;
            }
        });
    for (auto &t : pool) t.join();
    return double(bytes.load()) / std::chrono::duration<double>(Clock::now() - t0).count() / 1e6;
}

// ---- the table ---------------------------------------------------------------------

struct Row {
    std::string name;
    std::string description;
    std::function<Result(const Cell &)> measure;
    bool direct = false;  // bypasses the page cache: "warm" measures the same as cold
};

std::vector<Row> make_rows(const std::string &path) {
    std::vector<Row> rows;
    auto tier = [&](const std::string &name, const std::string &description, StorageOptions o, bool direct,
                    bool threads_per_read) {
        rows.push_back({name, description, [path, o, threads_per_read](const Cell &c) {
                            StorageOptions opt = o;
                            if (threads_per_read) opt.n_io_threads = int(c.depth);
                            return opt.tier == "mmap" ? mmap_cell(path, opt, c) : tier_cell(path, opt, c);
                        },
                        direct});
    };
    StorageOptions o;
    o.tier = "mmap";
    o.fadvise_random = false;
    o.willneed = false;
    tier("mmap-plain", "mmap without advice: page faults with the kernel's fault read-around", o, false, true);
    o.fadvise_random = true;
    tier("mmap", "mmap, page faults only (MADV_RANDOM: no read-around)", o, false, true);
    o.willneed = true;
    tier("mmap+willneed", "mmap, MADV_RANDOM, MADV_WILLNEED on each expert before touching it", o, false, true);
    o.fadvise_random = false;
    tier("mmap+willneed-norandom", "mmap, MADV_WILLNEED on each expert, fault read-around left on", o, false, true);
    o = {};
    o.tier = "pread";
    o.willneed = false;
    tier("pread-4t", "pread, 4 I/O threads (the default)", o, false, false);
    o.willneed = true;
    tier("pread-4t+willneed", "pread, 4 I/O threads, POSIX_FADV_WILLNEED on the batch first", o, false, false);
    o.willneed = false;
    tier("pread", "pread, one I/O thread per read in flight", o, false, true);
    o = {};
    o.tier = "direct";
    tier("direct", "O_DIRECT pread, one I/O thread per read in flight", o, true, true);
#ifdef MST_HAVE_URING  // a build without liburing has no uring rows
    o = {};
    o.tier = "uring";
    tier("uring", "io_uring, the batch in one submission, registered file", o, false, false);
    o.direct_io = true;
    tier("uring-direct", "io_uring with O_DIRECT", o, true, false);
    rows.push_back({"ud-plain", "io_uring O_DIRECT, buffers not registered (bench's own loop)",
                    [path](const Cell &c) { return uring_buffers_cell(path, Buffers::Plain, c); }, true});
    rows.push_back({"ud-fixed", "io_uring O_DIRECT, buffers registered once (a fixed arena)",
                    [path](const Cell &c) { return uring_buffers_cell(path, Buffers::RegisteredOnce, c); }, true});
    rows.push_back({"ud-regbatch", "io_uring O_DIRECT, buffers registered and unregistered per batch",
                    [path](const Cell &c) { return uring_buffers_cell(path, Buffers::RegisteredPerBatch, c); },
                    true});
#endif
    return rows;
}

// Prints the sequential bandwidth for a few read sizes and depths; returns the best.
double sequential_table(const std::string &path, const Config &cfg) {
    double best = 0;
    const std::pair<uint64_t, int> configs[] = {{4 * kMiB, 1}, {16 * kMiB, 1}, {4 * kMiB, 8}, {16 * kMiB, 4}, {16 * kMiB, 8}};
    for (auto [chunk, threads] : configs) {
        const double mbs = sequential_mb_per_s(path, cfg.size, chunk, threads, cfg.max_seconds);
        std::printf("  %3llu MiB reads x %d in flight: %7.0f MB/s\n", (unsigned long long)(chunk / kMiB), threads, mbs);
        best = std::max(best, mbs);
    }
    return best;
}

int run(const Config &cfg) {
    const std::string path = cfg.dir + "/bench_io.dat";
    write_test_file(path, cfg.size);
    if (!evict(path, cfg.size, cfg.drop_caches))
        std::printf("warning: the file stays in the page cache after POSIX_FADV_DONTNEED; cold numbers are warm\n");

    std::printf("\nsequential O_DIRECT reads (device bandwidth), at the start:\n");
    const double seq = sequential_table(path, cfg);
    std::printf("  reference (best): %.0f MB/s\n\n", seq);

    const uint64_t sizes[] = {1 * kMiB, 4 * kMiB, 8 * kMiB, 32 * kMiB};
    const size_t depths[] = {1, 4, 16};
    std::vector<Row> rows = make_rows(path);
    std::printf("| row | read | in flight | cold MB/s | cold / seq | warm MB/s | warm / seq | CPU s/GB cold | CPU s/GB warm |\n");
    std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (const Row &row : rows) {
        if (!cfg.rows.empty() && std::find(cfg.rows.begin(), cfg.rows.end(), row.name) == cfg.rows.end()) continue;
        struct Line {
            uint64_t size;
            size_t depth;
            Result cold, warm;
        };
        std::vector<Line> lines;
        uint32_t seed = 1;
        // The median of cfg.repeat measurements, each on fresh slots (and, cold, after
        // evicting the file again): the device and the CPUs are shared and noisy.
        auto median = [&](uint64_t size, size_t depth, bool cold) {
            std::vector<Result> runs;
            for (int r = 0; r < cfg.repeat; ++r) {
                const std::vector<uint64_t> offsets = slots(cfg.size, size, depth, cfg.volume, seed++);
                if (cold && !evict(path, cfg.size, cfg.drop_caches))
                    std::printf("(warning: eviction incomplete) ");
                runs.push_back(row.measure(Cell{size, depth, &offsets, cfg.max_seconds}));
            }
            std::sort(runs.begin(), runs.end(), [](const Result &a, const Result &b) { return a.mb_per_s < b.mb_per_s; });
            return runs[runs.size() / 2];
        };
        try {
            for (uint64_t size : sizes)
                for (size_t depth : depths) lines.push_back(Line{size, depth, median(size, depth, true), {}});
            if (!row.direct) {
                const double cached = warm_up(path, cfg.size);
                if (cached < 0.95) std::printf("(warning: only %.0f%% of the file stays cached) ", 100 * cached);
            }
            size_t k = 0;
            for (uint64_t size : sizes)
                for (size_t depth : depths) lines[k++].warm = median(size, depth, false);
        } catch (const Error &e) {
            std::printf("| %s | %s |\n", row.name.c_str(), e.what());
            continue;
        }
        for (const Line &l : lines)
            std::printf("| %s | %llu MiB | %zu | %.0f | %.2f | %.0f | %.2f | %.2f | %.2f |\n", row.name.c_str(),
                        (unsigned long long)(l.size / kMiB), l.depth, l.cold.mb_per_s, l.cold.mb_per_s / seq,
                        l.warm.mb_per_s, l.warm.mb_per_s / seq, l.cold.cpu_s_per_gb, l.warm.cpu_s_per_gb);
        std::fflush(stdout);
    }
    std::printf("\nsequential O_DIRECT reads again, at the end (drift of the device over the run):\n");
    std::printf("  best: %.0f MB/s\n", sequential_table(path, cfg));
    std::printf("\nrows:\n");
    for (const Row &row : rows) std::printf("  %-18s %s\n", row.name.c_str(), row.description.c_str());
    if (!cfg.keep) ::unlink(path.c_str());
    return 0;
}

}  // namespace
}  // namespace mst

int main(int argc, char **argv) {
    try {
        return mst::run(mst::parse(argc, argv));
    } catch (const std::exception &e) {
        std::fprintf(stderr, "bench_io: %s\n", e.what());
        return 1;
    }
}
