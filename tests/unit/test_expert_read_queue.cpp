// The expert store's I/O queue: reads the caller waits for go before reads ahead of need,
// a second thread serves a demand read while a read ahead is still running, reads ahead
// never take every thread, a read ahead that a demand needs is promoted, a failed
// read's error reaches every future of its job, and going away drops queued reads
// without hanging.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "experts/expert_read_queue.h"

namespace {

using mst::ExpertHandle;
using mst::ExpertReadQueue;
using Priority = ExpertReadQueue::Priority;
using namespace std::chrono_literals;

// A read function that records the layers it was asked for and holds the read of
// `blocked_layer` until release() (or until the test gives up).
class ScriptedReads {
public:
    explicit ScriptedReads(int32_t blocked_layer) : blocked_layer_(blocked_layer) {}

    ExpertReadQueue::ReadFn fn() {
        return [this](int32_t layer, std::span<const int32_t> experts) {
            if (layer == blocked_layer_) {
                started_.set_value();
                release_.get_future().wait_for(10s);
            }
            std::lock_guard lock(mutex_);
            order_.push_back(layer);
            std::vector<ExpertHandle> handles;
            for (size_t i = 0; i < experts.size(); ++i)
                handles.push_back(std::make_shared<mst::ExpertWeights>(4096, nullptr));
            return handles;
        };
    }
    void wait_until_blocked() { ASSERT_EQ(started_.get_future().wait_for(10s), std::future_status::ready); }
    void release() { release_.set_value(); }
    std::vector<int32_t> order() {
        std::lock_guard lock(mutex_);
        return order_;
    }

private:
    const int32_t blocked_layer_;
    std::promise<void> started_, release_;
    std::mutex mutex_;
    std::vector<int32_t> order_;
};

TEST(ExpertReadQueue, DemandReadsGoBeforeQueuedReadsAhead) {
    ScriptedReads reads(/*blocked_layer=*/0);
    ExpertReadQueue queue(reads.fn(), /*n_threads=*/1);
    auto first = queue.submit(0, {1}, Priority::kAhead);
    reads.wait_until_blocked();
    auto ahead = queue.submit(1, {2, 3}, Priority::kAhead);
    auto demand = queue.submit(2, {4}, Priority::kDemand);
    reads.release();
    ahead[1].get();
    demand[0].get();
    EXPECT_EQ(reads.order(), (std::vector<int32_t>{0, 2, 1}));
    EXPECT_NE(first[0].get(), nullptr);
}

TEST(ExpertReadQueue, DemandReadDoesNotWaitForARunningReadAhead) {
    ScriptedReads reads(/*blocked_layer=*/0);
    ExpertReadQueue queue(reads.fn(), /*n_threads=*/2);
    auto ahead = queue.submit(0, {1}, Priority::kAhead);
    reads.wait_until_blocked();
    auto demand = queue.submit(5, {7, 8}, Priority::kDemand);
    ASSERT_EQ(demand[1].wait_for(10s), std::future_status::ready);
    EXPECT_EQ(ahead[0].wait_for(0s), std::future_status::timeout);  // still held
    reads.release();
    EXPECT_NE(ahead[0].get(), nullptr);
    EXPECT_NE(demand[0].get(), nullptr);
}

// Prefetch uses idle disk time only: with two reads ahead queued, the second waits instead
// of taking the thread a demand read needs.
TEST(ExpertReadQueue, ReadsAheadLeaveOneThreadForDemand) {
    ScriptedReads reads(/*blocked_layer=*/0);
    ExpertReadQueue queue(reads.fn(), /*n_threads=*/2);
    auto held = queue.submit(0, {1}, Priority::kAhead);
    reads.wait_until_blocked();
    auto second_ahead = queue.submit(1, {2}, Priority::kAhead);
    std::this_thread::sleep_for(50ms);  // time for an idle thread to (wrongly) take it
    auto demand = queue.submit(5, {7}, Priority::kDemand);
    ASSERT_EQ(demand[0].wait_for(10s), std::future_status::ready);
    EXPECT_EQ(reads.order(), (std::vector<int32_t>{5}));  // layer 1's read ahead waited
    reads.release();
    EXPECT_NE(second_ahead[0].get(), nullptr);
    EXPECT_NE(held[0].get(), nullptr);
    EXPECT_EQ(reads.order(), (std::vector<int32_t>{5, 0, 1}));
}

TEST(ExpertReadQueue, PromotedReadAheadRunsAsDemand) {
    ScriptedReads reads(/*blocked_layer=*/0);
    ExpertReadQueue queue(reads.fn(), /*n_threads=*/2);
    auto held = queue.submit(0, {1}, Priority::kAhead);
    reads.wait_until_blocked();
    auto queued = queue.submit(3, {4, 6}, Priority::kAhead);
    queue.promote(3, 9);  // not queued: nothing moves
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(queued[0].wait_for(0s), std::future_status::timeout);
    queue.promote(3, 6);  // a demand now needs it: it no longer waits for the read ahead held
    ASSERT_EQ(queued[1].wait_for(10s), std::future_status::ready);
    EXPECT_EQ(reads.order(), (std::vector<int32_t>{3}));
    reads.release();
    EXPECT_NE(held[0].get(), nullptr);
}

TEST(ExpertReadQueue, ReadErrorReachesEveryFutureOfItsJob) {
    ExpertReadQueue queue([](int32_t layer, std::span<const int32_t> experts) -> std::vector<ExpertHandle> {
        mst::fail(MST_ERR_IO, "layer {} expert {}: Input/output error", layer, experts[0]);
    });
    auto futures = queue.submit(3, {5, 6}, Priority::kDemand);
    for (auto &f : futures) {
        try {
            f.get();
            ADD_FAILURE() << "the read's error did not reach the future";
        } catch (const mst::Error &e) {
            EXPECT_EQ(e.code(), MST_ERR_IO);
            EXPECT_NE(std::string(e.what()).find("layer 3 expert 5"), std::string::npos) << e.what();
        }
    }
}

TEST(ExpertReadQueue, GoingAwayDropsQueuedReads) {
    ScriptedReads reads(/*blocked_layer=*/0);
    std::vector<std::shared_future<ExpertHandle>> running, queued;
    std::thread releaser;
    {
        ExpertReadQueue queue(reads.fn(), /*n_threads=*/1);
        running = queue.submit(0, {1}, Priority::kAhead);
        reads.wait_until_blocked();
        queued = queue.submit(1, {2}, Priority::kAhead);
        releaser = std::thread([&] {
            std::this_thread::sleep_for(50ms);  // the queue is being destroyed by then
            reads.release();
        });
    }  // waits for the running read only
    releaser.join();
    EXPECT_NE(running[0].get(), nullptr);
    EXPECT_THROW(queued[0].get(), std::future_error);
    EXPECT_EQ(reads.order(), (std::vector<int32_t>{0}));
}

TEST(ExpertReadQueue, EmptyJobNeedsNoThread) {
    ExpertReadQueue queue([](int32_t, std::span<const int32_t>) -> std::vector<ExpertHandle> {
        ADD_FAILURE() << "an empty job reached the read function";
        return {};
    });
    EXPECT_TRUE(queue.submit(0, {}, Priority::kDemand).empty());
}

}  // namespace
